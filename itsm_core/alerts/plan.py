"""From ticket changes and fired SLA levels to alert deliveries, queued in the outbox in the change's transaction.

Each (rule, event, ticket, what happened) is queued once per channel — its key is the outbox row's hash, so a
change seen twice (a retried page, a second `itsm sla check`) queues nothing more — and at most
`max_per_ticket_per_hour` alerts per ticket are queued in any hour (a storm is counted in the log, not sent).
Outbox targets are ``alert:<channel>``; the payload holds the rendered subject and text, so `itsm alerts history`
shows what was sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from itsm_core.alerts.messages import render
from itsm_core.alerts.spec import AlertRule, AlertsConfig
from itsm_core.models import utcnow
from itsm_core.rules.conditions import compile_condition, record_view
from itsm_core.store.bulk import one_of
from itsm_core.store.outbox import already_queued, enqueue_once
from itsm_core.store.tables import OutboxRow
from itsm_core.store.tickets import format_ticket_id
from itsm_core.sync.decide import read_for_rules
from itsm_core.sync.propagate import Change

log = logging.getLogger("itsm.alerts")
outbox = OutboxRow.__table__
ALERT_PREFIX = "alert:"
#: Target of an escalation that notifies an address rather than a rule (sent through email.smtp).
MAILTO = "mailto"
_IDS = uuid.UUID("5a1e7c3e-0b1d-4c55-9d8e-1f2a3b4c5d6e")


#: (rule, event, ticket row, what happened, detail) of one alert to queue on each of the rule's channels.
Planned = tuple[AlertRule, str, dict[str, Any], str, dict[str, Any]]


def alert_target(channel: str) -> str:
    return ALERT_PREFIX + channel


def events_of(change: Change) -> list[tuple[str, str]]:
    """The (event, what happened) a change is: created, assigned, status or priority changed."""
    if change.created:
        return [("ticket_created", "")]
    found = []
    if {"assignee", "assignment_group"} & change.fields:
        found.append(("assigned", "assignee"))
    if "status" in change.fields:
        found.append(("status_changed", "status"))
    if "priority" in change.fields:
        found.append(("priority_changed", "priority"))
    return found


def sla_event(level: str) -> str:
    return "sla_warning" if level.startswith("warn:") else "sla_breach" if level == "breach" else "escalation"


class AlertPlanner:
    """The alert rules of one run, compiled once; `announce` and `announce_sla` queue what they call for."""

    def __init__(self, config: AlertsConfig) -> None:
        self.config = config
        self.conditions = {rule.name: compile_condition(rule.when) if rule.when else None for rule in config.rules}

    def announce(self, conn: Connection, changes: Sequence[Change]) -> dict[str, int]:
        wanted = [(c.ticket_id, event, field) for c in changes for event, field in events_of(c)]
        if not wanted or not self.config.rules:
            return {}
        rows = {row["id"]: row for row in read_for_rules(conn, {t for t, _, _ in wanted})}
        planned, historical = [], 0
        opened_since = self._opened_since()
        for ticket_id, event, field in wanted:
            row = rows.get(ticket_id)
            if row is None:
                continue
            if event == "ticket_created" and opened_since and row["created_at"] and row["created_at"] < opened_since:
                historical += 1
                continue
            what = (
                f"{row['assignee']}/{row['assignment_group']}" if field == "assignee" else f"{field}={row.get(field)}"
            )
            for rule in self._rules(event, row):
                planned.append((rule, event, row, what if field else "", {}))
        if historical:
            log.info(
                "%d new ticket(s) opened more than %g h ago (an upstream's history): no ticket_created alert "
                "(alerts.max_ticket_age_hours)", historical, self.config.max_ticket_age_hours,
            )  # fmt: skip
        return self._queue(conn, planned)

    def _opened_since(self) -> datetime | None:
        hours = self.config.max_ticket_age_hours
        return utcnow() - timedelta(hours=hours) if hours is not None else None

    def announce_sla(self, conn: Connection, fired: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Fired SLA levels (``{"ticket_id", "metric", "level", "actions"}``) to the rules that listen for them,
        and each escalation's ``notify`` to the rule or address it names."""
        fired = list(fired)
        if not fired:
            return {}
        rows = {row["id"]: row for row in read_for_rules(conn, {f["ticket_id"] for f in fired})}
        planned = []
        for item in fired:
            row, event = rows.get(item["ticket_id"]), sla_event(item["level"])
            if row is None:
                continue
            what = f"{item['metric']}:{item['level']}"
            detail = {"metric": item["metric"], "level": item["level"].partition(":")[2] or item["level"]}
            if event == "sla_warning":
                detail["percent"] = item["level"].partition(":")[2]
            for rule in self._rules(event, row):
                planned.append((rule, event, row, what, detail))
            for action in item.get("actions", []):
                named = action.removeprefix("notify ") if action.startswith("notify ") else None
                if named is None:
                    continue
                rule = self.config.rule(named)
                if rule is not None:
                    planned.append((rule, "escalation", row, what, detail))
                else:  # an address
                    notify = AlertRule(name="notify", events=["escalation"], channels=[MAILTO])
                    planned.append((notify, "escalation", row, what, {**detail, "to": named}))
        return self._queue(conn, planned)

    def _rules(self, event: str, row: dict[str, Any]) -> list[AlertRule]:
        view = record_view(row)
        return [
            rule
            for rule in self.config.rules
            if event in rule.events and (self.conditions[rule.name] is None or self.conditions[rule.name](view))
        ]

    def _queue(self, conn: Connection, planned: list[Planned]) -> dict[str, int]:
        """Queue each planned alert once per channel (its key: rule, event, ticket, what, channel), within each
        ticket's hourly budget; one query for what was queued before and one insert per channel."""
        budget = self._budget(conn, {row["id"] for _, _, row, _, _ in planned})
        candidates: list[tuple[str, int, dict[str, Any], str]] = []  # (target, ticket id, fields, key)
        for rule, event, row, what, detail in planned:
            number = format_ticket_id(row["id"])
            subject, text = render(event, number, row, detail, rule.template)
            for channel in rule.channels:
                key = f"{rule.name}|{event}|{row['id']}|{what}|{channel}"
                fields = {
                    "event_id": str(uuid.uuid5(_IDS, key)), "event": event, "rule": rule.name, "ticket": number,
                    "subject": subject, "text": text, "detail": {k: str(v) for k, v in detail.items()},
                    "occurred_at": utcnow().isoformat(),
                }  # fmt: skip
                if channel == MAILTO:
                    fields["to"] = [detail["to"]]
                candidates.append((alert_target(channel), row["id"], fields, key))
        targets = {target for target, *_ in candidates}
        known = {
            target: already_queued(conn, target, [k for t, _, _, k in candidates if t == target]) for target in targets
        }
        batches: dict[str, list[tuple[int | None, dict[str, Any], str]]] = {}
        storms: dict[int, int] = {}
        for target, ticket_id, fields, key in candidates:
            if key in known[target]:
                continue  # announced before: delivered once
            if budget.get(ticket_id, 0) <= 0:
                storms[ticket_id] = storms.get(ticket_id, 0) + 1
                continue
            known[target].add(key)
            budget[ticket_id] -= 1
            batches.setdefault(target, []).append((ticket_id, fields, key))
        queued = {target: enqueue_once(conn, target, items) for target, items in batches.items()}
        for ticket_id, dropped in storms.items():
            log.warning(
                "%s: %d alert(s) not sent: over max_per_ticket_per_hour (%d)",
                format_ticket_id(ticket_id), dropped, self.config.max_per_ticket_per_hour,
            )  # fmt: skip
        return queued

    def _budget(self, conn: Connection, ticket_ids: set[int]) -> dict[int, int]:
        """Per ticket, how many alerts it may still get this hour."""
        since = utcnow() - timedelta(hours=1)
        query = (
            select(outbox.c.ticket_id, func.count())
            .where(
                outbox.c.target_system.like(ALERT_PREFIX + "%"),
                outbox.c.created_at >= since,
                one_of(conn, outbox.c.ticket_id, ticket_ids),
            )
            .group_by(outbox.c.ticket_id)
        )
        sent = dict(conn.execute(query).all())
        return {t: self.config.max_per_ticket_per_hour - sent.get(t, 0) for t in ticket_ids}
