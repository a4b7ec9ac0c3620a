"""The standard reports, each computed by aggregate SQL in the database (one query each; nothing is read ticket by
ticket), returned as small pandas frames. Their definitions, in words, are in docs/REPORTS.md.

Every report sees only the tickets the definition's filters keep (`_kept`). Times are compared as UTC instants; the
period's local days are precomputed boundaries, so both dialects bucket them alike (`Period.days`).
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, String, and_, case, cast, exists, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from itsm_core.models import OPEN_STATUSES, TicketStatus
from itsm_core.reports.clusters import Clusters, fit_clusters, shared_solution
from itsm_core.reports.period import Period
from itsm_core.reports.spec import ReportFilters
from itsm_core.rules.model import MAX_CHARS, word_tfidf
from itsm_core.store.tables import (
    AuditEventRow,
    CommentRow,
    DeadLetterRow,
    ExternalRefRow,
    InboundRecordRow,
    SlaClockRow,
    SyncStateRow,
    TicketRow,
)
from itsm_core.store.tickets import format_ticket_id

tickets = TicketRow.__table__
clocks = SlaClockRow.__table__
refs = ExternalRefRow.__table__
inbound = InboundRecordRow.__table__
letters = DeadLetterRow.__table__
sync_state = SyncStateRow.__table__
audit = AuditEventRow.__table__
comments = CommentRow.__table__

#: Statuses of a ticket nobody works on any more.
DONE = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value, TicketStatus.CANCELLED.value)
#: Ageing buckets of the backlog: (label, lower bound of the age).
AGE_BUCKETS = (("0-1d", timedelta(0)), ("1-3d", timedelta(days=1)), ("3-7d", timedelta(days=3)),
               ("7-30d", timedelta(days=7)), ("30d+", timedelta(days=30)))  # fmt: skip
NONE = "(none)"
#: A ticket reopened this long after its first resolution still counts as reopened (later: a new problem).
REOPEN_WINDOW_DAYS = 14
#: Statuses that end the work on a ticket as solved (the first move into one is its first resolution).
SOLVED = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value)


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


class _PlusDays(FunctionElement[datetime]):
    """`instant` + `days` days, in SQL: PostgreSQL adds an interval; SQLite, which keeps instants as text
    ("YYYY-MM-DD HH:MM:SS.ffffff", UTC), shifts the text and writes it back in that form (to the millisecond)."""

    inherit_cache = True

    def __init__(self, instant: ColumnElement[datetime], days: int) -> None:
        self.days = days
        super().__init__(instant)
        self.type = instant.type


@compiles(_PlusDays)
def _plus_days_postgresql(element: _PlusDays, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} + make_interval(days => {int(element.days)}))"


@compiles(_PlusDays, "sqlite")
def _plus_days_sqlite(element: _PlusDays, compiler: SQLCompiler, **kw: Any) -> str:
    instant = compiler.process(element.clauses, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', {instant}, '+{int(element.days)} days') || '000')"


def _json_texts(values: Any) -> list[str]:
    """Status values as the audit trail keeps them (JSON) and both databases print them: `"resolved"`."""
    return [json.dumps(str(value)) for value in values]


def _status_event(events: Any) -> list[ColumnElement[bool]]:
    return [events.c.entity == "ticket", events.c.field == "status"]


def _old(events: Any) -> ColumnElement[str]:
    """The status before the change as JSON text; `null` for the ticket's first status."""
    return func.coalesce(cast(events.c.old_value, String), literal("null"))


def _new(events: Any) -> ColumnElement[str]:
    return func.coalesce(cast(events.c.new_value, String), literal("null"))


def _first_resolutions(period: Period) -> Any:
    """Subquery (ticket_id, resolved_at): the tickets whose first resolution — the first status change into resolved
    or closed from any other status (or none: a ticket that arrived resolved) — is in the period."""
    first = func.min(audit.c.at)
    return (
        select(audit.c.entity_id.label("ticket_id"), first.label("resolved_at"))
        .where(*_status_event(audit), _new(audit).in_(_json_texts(SOLVED)), _old(audit).not_in(_json_texts(SOLVED)))
        .group_by(audit.c.entity_id)
        .having(first >= period.start, first < period.end)
        .subquery("first_resolution")
    )


def _reopened(first: Any) -> ColumnElement[bool]:
    """The ticket went back from resolved or closed to an open status after its first resolution, less than
    `REOPEN_WINDOW_DAYS` days after it."""
    later = audit.alias("reopen")
    return exists().where(
        *_status_event(later), later.c.entity_id == first.c.ticket_id,
        _old(later).in_(_json_texts(SOLVED)), _new(later).in_(_json_texts(OPEN_STATUSES)),
        later.c.at > first.c.resolved_at, later.c.at < _PlusDays(first.c.resolved_at, REOPEN_WINDOW_DAYS),
    )  # fmt: skip


def _changed_before(first: Any, field: str, condition: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """An audit event of `field` met `condition` before the ticket's first resolution."""
    earlier = audit.alias(f"before_{field}")
    return exists().where(
        earlier.c.entity == "ticket", earlier.c.field == field, earlier.c.entity_id == first.c.ticket_id,
        earlier.c.at < first.c.resolved_at, condition(earlier),
    )  # fmt: skip


def _with_all_row(frame: pd.DataFrame, keys: list[str], counts: list[str]) -> pd.DataFrame:
    """`frame` sorted by `keys`, then one row "all" summing `counts` over every row."""
    total = {key: "all" for key in keys} | {count: int(frame[count].sum()) for count in counts}
    frame = frame.sort_values(keys).reset_index(drop=True)
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True).astype(dict.fromkeys(counts, "int64"))


def _percent(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (100 * part / whole.where(whole > 0)).round(1)


def reopen_rate(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per priority and group (the ticket's present ones), and "all": the tickets whose first resolution is in the
    period, those of them reopened — back from resolved or closed to an open status less than
    `REOPEN_WINDOW_DAYS` days after that first resolution (and before the report runs) — and the rate in percent.
    Read from the audit trail's status changes."""
    first = _first_resolutions(period)
    keys = [_priority(), _label(tickets.c.assignment_group)]
    query = (
        select(*keys, func.count(), func.sum(case((_reopened(first), 1), else_=0)))
        .select_from(first.join(tickets, tickets.c.id == first.c.ticket_id))
        .where(*_kept(filters))
        .group_by(*keys)
    )
    frame = _with_all_row(_frame(conn, query, ["priority", "group", "resolved", "reopened"]), ["priority", "group"],
                          ["resolved", "reopened"])  # fmt: skip
    frame["reopen_rate_pct"] = _percent(frame["reopened"], frame["resolved"])
    return frame


def first_contact_resolution(conn: Connection, period: Period, filters: ReportFilters, now: datetime) -> pd.DataFrame:
    """Per group (present) and source type, and "all": the tickets whose first resolution is in the period, those
    resolved at first contact — before that resolution never handed from one group to another and never pending
    (waiting on the requester or a third party), and not reopened (as in `reopen_rate`) — and the rate in percent."""
    first = _first_resolutions(period)
    transferred = _changed_before(first, "assignment_group",
                                  lambda e: (_old(e) != literal("null")) & (_new(e) != literal("null")))  # fmt: skip
    waited = _changed_before(first, "status", lambda e: _new(e) == literal(json.dumps(TicketStatus.PENDING.value)))
    at_first_contact = ~transferred & ~waited & ~_reopened(first)
    keys = [_label(tickets.c.assignment_group), tickets.c.source_type]
    query = (
        select(*keys, func.count(), func.sum(case((at_first_contact, 1), else_=0)))
        .select_from(first.join(tickets, tickets.c.id == first.c.ticket_id))
        .where(*_kept(filters))
        .group_by(*keys)
    )
    frame = _with_all_row(_frame(conn, query, ["group", "source_type", "resolved", "first_contact"]),
                          ["group", "source_type"], ["resolved", "first_contact"])  # fmt: skip
    frame["fcr_pct"] = _percent(frame["first_contact"], frame["resolved"])
    return frame


#: The most tickets of a period `kb_trends` clusters: beyond, an evenly spread sample of them (every n-th by id).
KB_CLUSTER_CAP = 3_000
#: Rows read at a time when tickets are read one by one (their text, or the row-level export).
CHUNK_ROWS = 5_000
#: Example tickets listed per cluster, and solutions compared per cluster (the ones nearest its centre).
KB_EXAMPLES, KB_SOLUTIONS = 3, 200
#: A cluster with fewer tickets in the period is not listed, nor any beyond the first `KB_CLUSTERS_LISTED`.
MIN_CLUSTER_TICKETS, KB_CLUSTERS_LISTED = 3, 25
KB_COLUMNS = ["rank", "cluster", "tickets", "previous_tickets", "growth_pct", "top_terms", "example_tickets",
              "shared_solution"]  # fmt: skip


def stream(conn: Connection, query: Any, chunk: int = CHUNK_ROWS) -> Iterator[list[Any]]:
    """The rows of `query` in lists of up to `chunk`, read through a server-side cursor on PostgreSQL (memory stays
    bounded by the chunk, whatever the number of rows)."""
    result = conn.execute(query, execution_options={"stream_results": True, "yield_per": chunk})
    for rows in result.partitions(chunk):
        yield list(rows)


def _resolved_texts(start: datetime, end: datetime, filters: ReportFilters, with_solution: bool) -> Any:
    """(id, title + the start of the description[, solution]) of the tickets resolved in [start, end), by id. The
    solution is the ticket's last public comment made at or before its resolution."""
    text = tickets.c.title + literal(" ") + func.coalesce(func.substr(tickets.c.description, 1, MAX_CHARS), "")
    solution = (
        select(comments.c.body)
        .where(comments.c.ticket_id == tickets.c.id, comments.c.public.is_(True),
               comments.c.created_at <= tickets.c.resolved_at)
        .order_by(comments.c.created_at.desc(), comments.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )  # fmt: skip
    return (
        select(tickets.c.id, text, *([solution] if with_solution else []))
        .where(tickets.c.resolved_at >= start, tickets.c.resolved_at < end, *_kept(filters))
        .order_by(tickets.c.id)
    )


def kb_trends(
    conn: Connection, period: Period, filters: ReportFilters, now: datetime, vectorizer: Any = None
) -> pd.DataFrame:
    """Clusters of similar tickets resolved in the period (`resolved_at` in it), by their title and the start of
    their description (`clusters.py`). The words are weighed by `vectorizer`, the trained classifier's fitted word
    TF-IDF when given, else by one with its settings fitted on every text of the period (read `CHUNK_ROWS` at a
    time). At most `KB_CLUSTER_CAP` tickets are clustered (beyond, every n-th by id); then every ticket resolved in
    the period, and in the period of the same length just before it, is placed in its nearest cluster if any. Per
    cluster of `MIN_CLUSTER_TICKETS` or more: `tickets` and `previous_tickets`, `growth_pct` (empty when it had none
    before), its top terms and its `KB_EXAMPLES` most typical tickets (comma-joined), and `shared_solution`. Ranked
    by tickets, then growth (a new cluster first), at most `KB_CLUSTERS_LISTED`."""
    period_texts = _resolved_texts(period.start, period.end, filters, False)
    count = conn.execute(select(func.count()).select_from(period_texts.subquery())).scalar_one()
    step = max(1, math.ceil(count / KB_CLUSTER_CAP))
    sample: list[str] = []

    def texts() -> Iterator[str]:
        for index, (_, text) in enumerate(row for chunk in stream(conn, period_texts) for row in chunk):
            if index % step == 0:
                sample.append(text)
            yield text

    if count == 0:
        return pd.DataFrame(columns=KB_COLUMNS)
    if vectorizer is None:
        try:
            vectorizer = word_tfidf().fit(texts())  # one pass: fits the weights and collects the sample
        except ValueError:  # not one word in any text
            return pd.DataFrame(columns=KB_COLUMNS)
    else:
        for _ in texts():  # one pass: collects the sample
            pass
    clusters = fit_clusters(sample, vectorizer)
    if clusters is None:
        return pd.DataFrame(columns=KB_COLUMNS)
    k = clusters.centres.shape[0]
    current, typical = _place(conn, clusters, _resolved_texts(period.start, period.end, filters, True), k)
    before, _ = _place(conn, clusters, _resolved_texts(period.start - (period.end - period.start), period.start,
                                                       filters, False), k)  # fmt: skip
    rows = []
    for cluster in range(k):
        if current[cluster] < MIN_CLUSTER_TICKETS:
            continue
        nearest = sorted(typical[cluster], key=lambda entry: (-entry[0], entry[1]))  # most typical, then lowest id
        growth = round(100 * (current[cluster] - before[cluster]) / before[cluster], 1) if before[cluster] else None
        rows.append({
            "cluster": " / ".join(clusters.terms[cluster][:3]), "tickets": int(current[cluster]),
            "previous_tickets": int(before[cluster]), "growth_pct": growth,
            "top_terms": ", ".join(clusters.terms[cluster]),
            "example_tickets": ", ".join(format_ticket_id(ticket_id) for _, ticket_id, _ in nearest[:KB_EXAMPLES]),
            "shared_solution": shared_solution([solution for _, _, solution in nearest]),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=KB_COLUMNS[1:])
    growth = frame["growth_pct"].fillna(math.inf)  # a new cluster grows the most
    order = frame.assign(growth=growth).sort_values(["tickets", "growth", "cluster"], ascending=[False, False, True])
    frame = frame.loc[order.index].head(KB_CLUSTERS_LISTED)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True).astype({"growth_pct": "float64"})


def _place(
    conn: Connection, clusters: Clusters, query: Any, k: int
) -> tuple[np.ndarray, list[list[tuple[float, int, str | None]]]]:
    """Place every ticket `query` reads in its cluster: the count per cluster, and per cluster the (similarity,
    id, solution) of up to `KB_SOLUTIONS` tickets nearest its centre (when the query reads solutions)."""
    counts = np.zeros(k, dtype=int)
    nearest: list[list[tuple[float, int, str | None]]] = [[] for _ in range(k)]
    for chunk in stream(conn, query):
        labels, similarity = clusters.assign([row[1] for row in chunk])
        counts += np.bincount(labels[labels >= 0], minlength=k)
        if len(chunk[0]) < 3:
            continue
        for row, label, score in zip(chunk, labels, similarity, strict=True):
            if label >= 0:
                entry = (float(score), -row[0], row[2])  # the heap drops the least similar, then the highest id
                if len(nearest[label]) < KB_SOLUTIONS:
                    heapq.heappush(nearest[label], entry)
                else:
                    heapq.heappushpop(nearest[label], entry)
    return counts, [[(score, -negated, solution) for score, negated, solution in heap] for heap in nearest]


REPORTS: dict[str, Callable[[Connection, Period, ReportFilters, datetime], pd.DataFrame]] = {
    "sla_compliance": sla_compliance,
    "backlog": backlog,
    "volumes": volumes,
    "sync_health": sync_health,
    "response_times": response_times,
    "workload": workload,
    "reopen_rate": reopen_rate,
    "first_contact_resolution": first_contact_resolution,
    "kb_trends": kb_trends,
}
