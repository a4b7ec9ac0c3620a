"""The SLA step over a batch of tickets: read their histories, compute their clocks, store them, fire what is due.

Per batch, whatever its size: one SELECT of the tickets, one of their audit events (the tracked fields), one of
their first replies; then one upsert of the clocks, one INSERT … ON CONFLICT DO NOTHING RETURNING of the levels
reached (so each warning, breach and escalation fires once per ticket, metric and level, however often the check
runs or the clocks are recomputed), and the escalations' actions with their audit events.

Only live clocks fire (tickets not resolved, closed or cancelled): recomputing last year's tickets after a
policy change corrects their clocks without paging anyone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, tuple_

from itsm_core.models import utcnow
from itsm_core.rules import Rules
from itsm_core.rules.sla import STOPPED, TRACKED, Change, Clock, SlaRules
from itsm_core.store.audit import audit_event
from itsm_core.store.bulk import insert_ignoring_conflicts, insert_rows, one_of, update_by_id, upsert
from itsm_core.store.comments import author_address
from itsm_core.store.tables import (
    AuditEventRow,
    CommentRow,
    MailMessageRow,
    SlaClockRow,
    SlaEventRow,
    TicketRow,
    TicketWatcherRow,
)
from itsm_core.sync.decide import apply_rules, read_for_rules
from itsm_core.sync.propagate import HUB
from itsm_core.sync.propagate import Change as TicketChange

tickets = TicketRow.__table__
audit = AuditEventRow.__table__
comments = CommentRow.__table__
watchers = TicketWatcherRow.__table__
mail_messages = MailMessageRow.__table__
clocks_table = SlaClockRow.__table__
events_table = SlaEventRow.__table__
ACTOR = "sla:check"


@dataclass
class SlaReport:
    tickets: int = 0
    clocks: dict[str, int] = field(default_factory=dict)  # state → count
    fired: list[dict[str, Any]] = field(default_factory=list)  # ticket_id, metric, level, actions

    def __iadd__(self, other: SlaReport) -> SlaReport:
        self.tickets += other.tickets
        for state, n in other.clocks.items():
            self.clocks[state] = self.clocks.get(state, 0) + n
        self.fired += other.fired
        return self


def histories(conn: Connection, ids: Collection[int]) -> dict[int, list[Change]]:
    """The audit trail of the tracked fields, per ticket, in order."""
    query = (
        select(audit.c.entity_id, audit.c.at, audit.c.field, audit.c.old_value, audit.c.new_value)
        .where(audit.c.entity == "ticket", one_of(conn, audit.c.entity_id, ids), audit.c.field.in_(TRACKED))
        .order_by(audit.c.entity_id, audit.c.at, audit.c.id)
    )
    found: dict[int, list[Change]] = {}
    for ticket_id, at, name, old, new in conn.execute(query):
        found.setdefault(ticket_id, []).append(Change(at, name, old, new))
    return found


def replies(
    conn: Connection, rows: Sequence[dict[str, Any]], agents: Collection[str] = ()
) -> dict[int, list[datetime]]:
    """When each ticket got a public comment from the desk (in time order): the first is its first response, each
    one an update (for ``next_update``).

    The desk is not the requester's side: not the requester, not the ticket's watchers (people CC'd), and not
    whoever wrote to the service desk's mailbox (a colleague's "me too" answers nothing) — unless the author is one
    of the `agents` (an agent who mailed from their own address). Authors are compared by address, so
    "Ann Lee <ann@example.org>" is ann@example.org.
    """
    customer = {row["id"]: {author_address(row["requester"])} for row in rows}
    watching = select(watchers.c.ticket_id, watchers.c.address).where(one_of(conn, watchers.c.ticket_id, customer))
    for ticket_id, address in conn.execute(watching):
        customer[ticket_id].add(author_address(address))
    by_mail = select(mail_messages.c.comment_id).where(
        mail_messages.c.direction == "in",
        one_of(conn, mail_messages.c.ticket_id, customer),
        mail_messages.c.comment_id.is_not(None),
    )
    mailed = set(conn.execute(by_mail).scalars())
    desk = {author_address(agent) for agent in agents}
    query = (
        select(comments.c.id, comments.c.ticket_id, comments.c.author, comments.c.created_at)
        .where(one_of(conn, comments.c.ticket_id, customer), comments.c.public.is_(True))
        .order_by(comments.c.created_at)
    )
    found: dict[int, list[datetime]] = {}
    for comment_id, ticket_id, author, at in conn.execute(query):
        address = author_address(author)
        if address in desk or (comment_id not in mailed and address not in customer[ticket_id]):
            found.setdefault(ticket_id, []).append(at)
    return found


def check_batch(
    conn: Connection,
    sla: SlaRules,
    ids: Collection[int],
    now: datetime | None = None,
    *,
    fire: bool = True,
    rules: Rules | None = None,
) -> tuple[SlaReport, list[TicketChange]]:
    """Compute and store the clocks of `ids`; with `fire`, fire the levels they reached. Returns the report and the
    ticket changes escalations made (for the push targets). With `rules`, a ticket an escalation handed to another
    group gets an agent of that group as routing picks one (skills, load, round-robin, who is on duty)."""
    now = now or utcnow()
    report = SlaReport()
    rows = read_for_rules(conn, ids)  # with the classes of linked CIs: policies may match on them
    history = histories(conn, ids)
    answered = replies(conn, rows, rules.agents() if rules is not None else ())
    stored: list[dict[str, Any]] = []
    live: list[tuple[dict[str, Any], Clock]] = []
    for row in rows:
        report.tickets += 1
        updates = answered.get(row["id"], [])
        first = updates[0] if updates else None
        for clock in sla.compute(row, history.get(row["id"], []), now, first, updates):
            stored.append(_row(row["id"], clock, now))
            report.clocks[clock.state] = report.clocks.get(clock.state, 0) + 1
            if row["status"] not in STOPPED:
                live.append((row, clock))
    _store_clocks(conn, [r["id"] for r in rows], stored)
    if not fire:
        return report, []
    changes = _fire(conn, sla, live, now, report)
    handed = {c.ticket_id: c.fields for c in changes if "assignment_group" in c.fields}
    if rules is not None and handed:
        changes += apply_rules(conn, rules, handed, actor_source=None, now=now)[0]
    return report, changes


def _row(ticket_id: int, clock: Clock, now: datetime) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "metric": clock.metric,
        "policy": clock.policy,
        "calendar": clock.calendar,
        "target_seconds": clock.target,
        "used_seconds": round(clock.used, 3),
        "state": clock.state,
        "started_at": clock.started_at,
        "stopped_at": clock.stopped_at,
        "due_at": clock.due_at,
        "breached_at": clock.breached_at,
        "computed_at": now,
    }


def _store_clocks(conn: Connection, ids: list[int], rows: list[dict[str, Any]]) -> None:
    """Replace the batch's clocks: upsert those computed, delete those no policy gives any more."""
    upsert(conn, clocks_table, rows, ["ticket_id", "metric"])
    kept = {(r["ticket_id"], r["metric"]) for r in rows}
    query = select(clocks_table.c.ticket_id, clocks_table.c.metric).where(one_of(conn, clocks_table.c.ticket_id, ids))
    stale = [tuple(pair) for pair in conn.execute(query) if tuple(pair) not in kept]  # usually none
    if stale:
        conn.execute(delete(clocks_table).where(tuple_(clocks_table.c.ticket_id, clocks_table.c.metric).in_(stale)))


def levels_reached(sla: SlaRules, clock: Clock) -> list[tuple[str, dict[str, Any]]]:
    """The levels a clock has reached: warnings (percent of the target used), the breach, escalation levels."""
    reached: list[tuple[str, dict[str, Any]]] = []
    for percent in sla.config.warn_at:
        if clock.used >= clock.target * percent / 100:
            reached.append((f"warn:{percent}", {"percent": percent}))
    if clock.used > clock.target:  # at exactly the target it is due, not yet breached (as the clock says)
        reached.append(("breach", {"breached_at": clock.breached_at.isoformat() if clock.breached_at else None}))
    metric = clock.metric if not clock.metric.startswith("ola:") else None
    for escalation in sla.config.escalations:
        if escalation.metric == metric and clock.used >= clock.target + escalation.at:
            actions = [a.model_dump(exclude_none=True) for a in escalation.actions]
            reached.append((f"escalation:{escalation.name}", {"at": escalation.at, "actions": actions}))
    return reached


def _fire(
    conn: Connection, sla: SlaRules, live: list[tuple[dict[str, Any], Clock]], now: datetime, report: SlaReport
) -> list[TicketChange]:
    candidates = []
    for row, clock in live:
        for level, detail in levels_reached(sla, clock):
            detail = {**detail, "policy": clock.policy, "used": round(clock.used), "target": clock.target}
            candidates.append({"ticket_id": row["id"], "metric": clock.metric, "level": level, "fired_at": now,
                               "detail": detail})  # fmt: skip
    if not candidates:
        return []
    fired = insert_ignoring_conflicts(
        conn,
        events_table,
        candidates,
        ["ticket_id", "metric", "level"],
        returning=[events_table.c.ticket_id, events_table.c.metric, events_table.c.level],
    )
    new = {(t, m, lv) for t, m, lv in fired}
    rows = {row["id"]: row for row, _ in live}
    audit_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    touched: dict[int, set[str]] = {}
    for item in candidates:
        if (item["ticket_id"], item["metric"], item["level"]) not in new:
            continue
        row = rows[item["ticket_id"]]
        event = audit_event("ticket", row["id"], f"sla:{item['metric']}", None, item["level"], ACTOR, None, now)
        audit_rows.append({**event, "detail": item["detail"]})
        fired_item = {"ticket_id": row["id"], "metric": item["metric"], "level": item["level"], "actions": []}
        for action in item["detail"].get("actions", []):
            done = _act(row, action, item["level"], now, updates, audit_rows)
            if done is not None:
                fired_item["actions"].append(done[0])
                touched.setdefault(row["id"], set()).update(done[1])
        report.fired.append(fired_item)
    update_by_id(conn, tickets, _merge(updates))
    if audit_rows:
        insert_rows(conn, audit, audit_rows)
    return [TicketChange(ticket_id, frozenset(names), origin=HUB) for ticket_id, names in touched.items()]


def _act(
    row: dict[str, Any], action: dict[str, Any], level: str, now: datetime, updates: list[dict[str, Any]],
    audit_rows: list[dict[str, Any]],
) -> tuple[str, set[str]] | None:  # fmt: skip
    """Apply one escalation action to the row (in memory: written with the batch): what it did, in words, and
    the fields it changed; None when it changed nothing."""
    actor = f"sla:{level}"
    decided = dict(row.get("decided_by") or {})
    if "notify" in action:
        return f"notify {action['notify']}", set()  # delivered by the alert channels (they read sla_events)
    if "reassign" in action:
        group = action["reassign"]
        if row["assignment_group"] == group:
            return None
        change = {"id": row["id"], "assignment_group": group, "assignee": None, "updated_at": now}
        decided.update(assignment_group=actor)
        decided.pop("assignee", None)
        for name in ("assignment_group", "assignee"):
            if row[name] != change[name]:
                audit_rows.append(audit_event("ticket", row["id"], name, row[name], change[name], actor, None, now))
        row.update(assignment_group=group, assignee=None, decided_by=decided)
        updates.append({**change, "decided_by": decided})
        return f"reassigned to {group}", {"assignment_group", "assignee"}
    raised = max(1, (row["priority"] or 5) - int(action["raise_priority"]))
    if raised == row["priority"]:
        return None
    audit_rows.append(audit_event("ticket", row["id"], "priority", row["priority"], raised, actor, None, now))
    decided["priority"] = actor
    updates.append({"id": row["id"], "priority": raised, "updated_at": now, "decided_by": decided})
    row.update(priority=raised, decided_by=decided)
    return f"priority raised to {raised}", {"priority"}


def _merge(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[int, dict[str, Any]] = {}
    for update in updates:
        merged.setdefault(update["id"], {}).update(update)
    return list(merged.values())


def open_ticket_ids(conn: Connection, *, closed_since: datetime | None = None, everything: bool = False) -> list[int]:
    """The tickets an SLA check looks at: every one not closed or cancelled, and those closed since
    `closed_since` (their clocks stop: stored once more); `everything` for a full recompute."""
    query = select(tickets.c.id).order_by(tickets.c.id)
    if not everything:
        live = tickets.c.status.not_in(["closed", "cancelled"])
        if closed_since is not None:
            live = or_(live, and_(tickets.c.closed_at.is_not(None), tickets.c.closed_at >= closed_since))
        query = query.where(live)
    return list(conn.execute(query).scalars())
