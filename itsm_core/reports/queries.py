"""The standard reports, each computed by aggregate SQL in the database (one query each; nothing is read ticket by
ticket), returned as small pandas frames. Their definitions, in words, are in docs/REPORTS.md.

Every report sees only the tickets the definition's filters keep (`_kept`). Times are compared as UTC instants; the
period's local days are precomputed boundaries, so both dialects bucket them alike (`Period.days`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, String, and_, case, cast, exists, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from itsm_core.models import TicketStatus
from itsm_core.reports.period import Period
from itsm_core.reports.spec import ReportFilters
from itsm_core.store.tables import (
    DeadLetterRow,
    ExternalRefRow,
    InboundRecordRow,
    SlaClockRow,
    SyncStateRow,
    TicketRow,
)

tickets = TicketRow.__table__
clocks = SlaClockRow.__table__
refs = ExternalRefRow.__table__
inbound = InboundRecordRow.__table__
letters = DeadLetterRow.__table__
sync_state = SyncStateRow.__table__

#: Statuses of a ticket nobody works on any more.
DONE = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value, TicketStatus.CANCELLED.value)
#: Ageing buckets of the backlog: (label, lower bound of the age).
AGE_BUCKETS = (("0-1d", timedelta(0)), ("1-3d", timedelta(days=1)), ("3-7d", timedelta(days=3)),
               ("7-30d", timedelta(days=7)), ("30d+", timedelta(days=30)))  # fmt: skip
NONE = "(none)"


def _kept(filters: ReportFilters) -> list[ColumnElement[bool]]:
    kept: list[ColumnElement[bool]] = []
    if filters.sources:
        kept.append(exists().where(refs.c.ticket_id == tickets.c.id, refs.c.system.in_(filters.sources)))
    for column, values in ((tickets.c.category, filters.categories), (tickets.c.assignment_group, filters.groups),
                           (tickets.c.tenant, filters.tenants)):  # fmt: skip
        if values:
            kept.append(column.in_(values))
    return kept


def _label(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(column, literal(NONE))


def _priority() -> ColumnElement[Any]:
    """P1 … P5, or "(none)"."""
    return func.coalesce(literal("P") + cast(tickets.c.priority, String), literal(NONE))


def _frame(conn: Connection, query: Any, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(row) for row in conn.execute(query)], columns=columns)


def sla_compliance(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per metric, policy, priority, group and category: the SLA clocks of the tickets created in the period, by
    state as the SLA engine last computed them (met, breached, running, paused), and the compliance: met ÷ (met +
    breached), in percent (empty while none has ended)."""
    state_counts = [func.sum(case((clocks.c.state == state, 1), else_=0)).label(state)
                    for state in ("met", "breached", "running", "paused")]  # fmt: skip
    keys = [clocks.c.metric, clocks.c.policy, _priority(),
            _label(tickets.c.assignment_group), _label(tickets.c.category)]  # fmt: skip
    query = (
        select(*keys, *state_counts)
        .join(tickets, tickets.c.id == clocks.c.ticket_id)
        .where(tickets.c.created_at >= period.start, tickets.c.created_at < period.end, *_kept(filters))
        .group_by(*keys)
        .order_by(*keys)
    )
    frame = _frame(conn, query, ["metric", "policy", "priority", "group", "category", "met", "breached", "running",
                                 "paused"])  # fmt: skip
    ended = frame["met"] + frame["breached"]
    frame["compliance_pct"] = (100 * frame["met"] / ended.where(ended > 0)).round(1)
    return frame


def backlog(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per priority and group: the tickets created before the period's end and still open when the report runs,
    by age at the period's end (0-1d, 1-3d, 3-7d, 7-30d, 30d+)."""
    at = min(period.end, now)
    bucket = case(*[(tickets.c.created_at <= at - lower, label) for label, lower in reversed(AGE_BUCKETS[1:])],
                  else_=AGE_BUCKETS[0][0])  # fmt: skip
    keys = [_priority(), _label(tickets.c.assignment_group)]
    query = (
        select(*keys, bucket.label("age"), func.count())
        .where(tickets.c.created_at < at, tickets.c.status.not_in(DONE), *_kept(filters))
        .group_by(*keys, bucket)
    )
    long = _frame(conn, query, ["priority", "group", "age", "tickets"])
    labels = [label for label, _ in AGE_BUCKETS]
    wide = long.pivot_table(index=["priority", "group"], columns="age", values="tickets", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=labels, fill_value=0).reset_index()
    wide.columns.name = None
    wide["open"] = wide[labels].sum(axis=1)
    return wide.sort_values(["priority", "group"]).reset_index(drop=True)


def _created_bucket(period: Period) -> tuple[str, ColumnElement[Any]]:
    """("day" or "month", the label of the period's bucket a ticket was created in), for tickets of the period."""
    unit, buckets = period.buckets()
    return unit, case(*[(tickets.c.created_at < end, label) for label, _, end in buckets], else_=buckets[-1][0])


def volumes(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per local day of the period (per month for periods over 92 days: the first column is then "month"), source
    type and category: the tickets created."""
    unit, bucket = _created_bucket(period)
    keys = [bucket, tickets.c.source_type, _label(tickets.c.category)]
    query = (
        select(*keys, func.count())
        .where(tickets.c.created_at >= period.start, tickets.c.created_at < period.end, *_kept(filters))
        .group_by(*keys)
        .order_by(*keys)
    )
    return _frame(conn, query, [unit, "source_type", "category", "created"])


def sla_trend(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """The SLA compliance over the period, for its chart: per local day (per month for periods over 92 days, as in
    `volumes`) and metric, the ended clocks of the tickets created then — met, breached — and the compliance, met ÷
    (met + breached) in percent. Buckets where no clock has ended are left out."""
    unit, bucket = _created_bucket(period)
    keys = [bucket, clocks.c.metric]
    query = (
        select(*keys, *[func.sum(case((clocks.c.state == s, 1), else_=0)) for s in ("met", "breached")])
        .join(tickets, tickets.c.id == clocks.c.ticket_id)
        .where(tickets.c.created_at >= period.start, tickets.c.created_at < period.end,
               clocks.c.state.in_(("met", "breached")), *_kept(filters))
        .group_by(*keys)
        .order_by(*keys)
    )  # fmt: skip
    frame = _frame(conn, query, [unit, "metric", "met", "breached"])
    frame["compliance_pct"] = (100 * frame["met"] / (frame["met"] + frame["breached"])).round(1)
    return frame


def sync_health(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per source (and entity): the records it landed in the period by outcome, its dead letters waiting for a
    replay, its last success and the lag behind it when the report runs, in minutes. (Filters other than sources do
    not apply: records are not yet tickets.)"""
    outcomes = ("created", "updated", "unchanged", "comment", "ignored", "duplicate", "quarantined")
    counts = select(inbound.c.source, func.count().label("fetched"),
                    *[func.sum(case((inbound.c.outcome == o, 1), else_=0)).label(o) for o in outcomes]).where(
        inbound.c.received_at >= period.start, inbound.c.received_at < period.end
    ).group_by(inbound.c.source)  # fmt: skip
    waiting = select(letters.c.source, func.count()).where(letters.c.replayed_at.is_(None)).group_by(letters.c.source)
    states = select(sync_state.c.source, sync_state.c.entity, sync_state.c.last_success_at)
    landed = {row[0]: row[1:] for row in conn.execute(counts)}
    dead = dict(conn.execute(waiting).all())
    rows = []
    seen: set[str] = set()
    for source, entity, last_success in conn.execute(states):
        if (filters.sources and source not in filters.sources) or entity == "purges":
            continue
        first = source not in seen
        seen.add(source)
        numbers = landed.get(source, (0,) * (len(outcomes) + 1)) if first else (None,) * (len(outcomes) + 1)
        lag = round((now - last_success).total_seconds() / 60, 1) if last_success else None
        rows.append((source, entity, *numbers, dead.get(source, 0) if first else None, last_success, lag))
    columns = ["source", "entity", "fetched", *outcomes, "dead_letters_waiting", "last_success_at", "lag_minutes"]
    frame = pd.DataFrame(rows, columns=columns).sort_values(["source", "entity"]).reset_index(drop=True)
    if not frame.empty:
        frame["last_success_at"] = pd.to_datetime(frame["last_success_at"], utc=True)
    return frame


def response_times(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per priority (and for all): MTTA — first response, for the tickets whose first-response clock stopped in the
    period — and MTTR — resolution, for the tickets resolved in the period: how many, the median and the 90th
    percentile in hours, in business hours (the SLA engine's clock: its calendar, pauses left out) and in calendar
    hours (clock start to stop). Tickets without the clock (no SLA policy) are not counted."""
    stopped = and_(clocks.c.stopped_at >= period.start, clocks.c.stopped_at < period.end)
    query = (
        select(clocks.c.metric, _priority(), clocks.c.used_seconds, clocks.c.started_at, clocks.c.stopped_at)
        .join(tickets, tickets.c.id == clocks.c.ticket_id)
        .where(clocks.c.metric.in_(("first_response", "resolution")), clocks.c.state.in_(("met", "breached")),
               stopped, *_kept(filters))
    )  # fmt: skip
    # One row per ticket and metric of the period (a month's resolved tickets, not the store): the percentiles are
    # taken here, alike on both databases.
    raw = _frame(conn, query, ["metric", "priority", "business_s", "started_at", "stopped_at"])
    columns = ["measure", "priority", "tickets", "median_business_h", "p90_business_h", "median_calendar_h",
               "p90_calendar_h"]  # fmt: skip
    if raw.empty:
        return pd.DataFrame(columns=columns)
    raw["measure"] = raw["metric"].map({"first_response": "MTTA", "resolution": "MTTR"})
    raw["business_h"] = raw["business_s"] / 3600
    started, stopped_at = pd.to_datetime(raw["started_at"], utc=True), pd.to_datetime(raw["stopped_at"], utc=True)
    raw["calendar_h"] = (stopped_at - started).dt.total_seconds() / 3600
    every = raw.assign(priority="all")
    rows = []
    for (measure, priority), group in pd.concat([raw, every]).groupby(["measure", "priority"], sort=True):
        rows.append((measure, priority, len(group), *(round(float(group[c].quantile(q)), 2)
                     for c in ("business_h", "calendar_h") for q in (0.5, 0.9))))  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame[["measure", "priority", "tickets", "median_business_h", "p90_business_h", "median_calendar_h",
                  "p90_calendar_h"]]  # fmt: skip


def workload(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per group and agent (the ticket's present assignment): the tickets open when the report runs, those created
    in the period, and those resolved in the period (`resolved_at` in it)."""
    created = and_(tickets.c.created_at >= period.start, tickets.c.created_at < period.end)
    resolved = and_(tickets.c.resolved_at >= period.start, tickets.c.resolved_at < period.end)
    keys = [_label(tickets.c.assignment_group), _label(tickets.c.assignee)]
    query = (
        select(*keys,
               func.sum(case((tickets.c.status.not_in(DONE), 1), else_=0)),
               func.sum(case((created, 1), else_=0)),
               func.sum(case((resolved, 1), else_=0)))
        .where(*_kept(filters))
        .group_by(*keys)
        .having(func.sum(case((tickets.c.status.not_in(DONE) | created | resolved, 1), else_=0)) > 0)
        .order_by(*keys)
    )  # fmt: skip
    return _frame(conn, query, ["group", "agent", "open_now", "created_in_period", "resolved_in_period"])


REPORTS: dict[str, Callable[[Connection, Period, ReportFilters, datetime], pd.DataFrame]] = {
    "sla_compliance": sla_compliance,
    "backlog": backlog,
    "volumes": volumes,
    "sync_health": sync_health,
    "response_times": response_times,
    "workload": workload,
}
