"""The rules step of a batch: read the tickets just written, let the rules decide, write what they decided.

One SELECT of the tickets (with the classes of their linked CIs), one of the agents' workload, one executemany
UPDATE, one INSERT of audit events (each with the rule, the model's confidence or the candidates weighed in
`detail`) and one upsert of round-robin turns — per batch, whatever its size. It runs in the batch's own
transaction, so the tickets and their classification commit together.

Which fields are decided again on a ticket that already has them (`redo`): a priority the matrix derived, when
the impact or urgency changed; the group and agent of a ticket in the triage queue, once it has a category.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from itsm_core.models import OPEN_STATUSES, ClassifiedBy, utcnow
from itsm_core.rules.engine import MATRIX, TRIAGE, Decided, Rules
from itsm_core.rules.routing import Workload
from itsm_core.store.audit import audit_event
from itsm_core.store.bulk import insert_rows, one_of, update_by_id, upsert
from itsm_core.store.tables import AuditEventRow, ConfigurationItemRow, RoutingTurnRow, TicketCILinkRow, TicketRow
from itsm_core.sync.propagate import HUB, Change

tickets = TicketRow.__table__
turns = RoutingTurnRow.__table__


@dataclass
class RulesReport:
    """What the rules did to a batch: fields set per name, and tickets left in triage."""

    decided: dict[str, int] = field(default_factory=dict)
    triaged: int = 0

    def __iadd__(self, other: RulesReport) -> RulesReport:
        for name, count in other.decided.items():
            self.decided[name] = self.decided.get(name, 0) + count
        self.triaged += other.triaged
        return self


def apply_rules(
    conn: Connection,
    rules: Rules,
    changed: Mapping[int, Collection[str]],
    *,
    actor_source: str | None = None,
    now: datetime | None = None,
) -> tuple[list[Change], RulesReport]:
    """Decide and write for the tickets in `changed` (ticket id → fields just changed; empty for a new ticket).

    Returns the hub's changes (for the push targets) and a report. `actor_source` is recorded as the audit
    events' source (the source whose batch ran the rules).
    """
    report = RulesReport()
    if not changed:
        return [], report
    now = now or utcnow()
    rows = read_for_rules(conn, changed)
    redo = {row["id"]: redo_fields(row, changed[row["id"]]) for row in rows}
    workload = load_workload(conn, rules)
    decisions = rules.decide(rows, workload, now, redo)
    by_id = {row["id"]: row for row in rows}
    updates, events, hub_changes = [], [], []
    for ticket_id, decided in decisions.items():
        if not decided:
            continue
        row = by_id[ticket_id]
        updates.append(_update(row, decided, now))
        # A new ticket's first decisions date from its creation, like the values its source gave: its history
        # (and so its SLA clock) starts with them, however late the batch ran.
        at = row["created_at"] if not changed[ticket_id] and row["created_at"] < now else now
        events += [_event(ticket_id, row, d, actor_source, at) for d in decided]
        hub_changes.append(Change(ticket_id, frozenset(d.field for d in decided), origin=HUB))
        for d in decided:
            report.decided[d.field] = report.decided.get(d.field, 0) + 1
            report.triaged += d.by == TRIAGE
    update_by_id(conn, tickets, updates)
    if events:
        insert_rows(conn, AuditEventRow.__table__, events)
    save_turns(conn, workload, now)
    return hub_changes, report


def dispatch_waiting(
    conn: Connection, rules: Rules, *, now: datetime | None = None, batch_size: int = 500
) -> tuple[list[Change], int]:
    """Give the open tickets waiting in a group's queue — routed when nobody of the group was on duty (at night,
    everyone absent) — to an agent on duty now, as routing picks one. Returns the changes (for the push targets)
    and how many were assigned. Tickets whose group the hub does not assign within (`auto_assign: false`, no
    agents) are left alone; what a person or a source decided stays, as in `apply_rules`."""
    groups = sorted(name for name in rules.config.groups if rules.router.agents_of(name))
    if not groups:
        return [], 0
    query = (
        select(tickets.c.id)
        .where(
            tickets.c.status.in_([s.value for s in OPEN_STATUSES]),
            tickets.c.assignee.is_(None),
            tickets.c.assignment_group.in_(groups),
        )
        .order_by(tickets.c.created_at, tickets.c.id)  # the longest waiting first
    )
    waiting = list(conn.execute(query).scalars())
    changes: list[Change] = []
    assigned = 0
    for start in range(0, len(waiting), batch_size):
        batch = dict.fromkeys(waiting[start : start + batch_size], frozenset({"assignee"}))
        made, report = apply_rules(conn, rules, batch, now=now)
        changes += made
        assigned += report.decided.get("assignee", 0)
    return changes, assigned


def read_for_rules(conn: Connection, ids: Collection[int]) -> list[dict[str, Any]]:
    """The tickets as stored, each with `ci_classes`: the classes of the CIs linked to it (conditions may ask)."""
    rows = [dict(row) for row in conn.execute(select(tickets).where(one_of(conn, tickets.c.id, ids))).mappings()]
    links = TicketCILinkRow.__table__
    cis = ConfigurationItemRow.__table__
    classes: dict[int, list[str]] = {}
    query = (
        select(links.c.ticket_id, cis.c.ci_class)
        .join(cis, cis.c.id == links.c.ci_id)
        .where(one_of(conn, links.c.ticket_id, ids))
        .distinct()
    )
    for ticket_id, ci_class in conn.execute(query):
        classes.setdefault(ticket_id, []).append(ci_class)
    for row in rows:
        row["ci_classes"] = sorted(classes.get(row["id"], []))
    return rows


def redo_fields(row: Mapping[str, Any], changed: Collection[str]) -> set[str]:
    decided = row.get("decided_by") or {}
    redo: set[str] = set()
    if decided.get("priority") == MATRIX and {"impact", "urgency"} & set(changed):
        redo.add("priority")
    if decided.get("assignment_group") == TRIAGE and row.get("category") is not None:
        redo.add("assignment_group")
        if "assignee" in decided:
            redo.add("assignee")
    return redo


def load_workload(conn: Connection, rules: Rules) -> Workload:
    """Every agent's open tickets weighted by priority, and the round-robin turns: two queries."""
    workload = rules.new_workload()
    agents = rules.agents()
    if not agents:
        return workload
    query = (
        select(tickets.c.assignee, tickets.c.priority, func.count())
        .where(tickets.c.status.in_([s.value for s in OPEN_STATUSES]), tickets.c.assignee.in_(sorted(agents)))
        .group_by(tickets.c.assignee, tickets.c.priority)
    )
    for agent, priority, count in conn.execute(query):
        workload.load[agent] = workload.load.get(agent, 0.0) + count * workload.weight(priority)
    for group, agent, turn in conn.execute(select(turns.c.group_name, turns.c.agent, turns.c.turn)):
        workload.turns[(group, agent)] = turn
    return workload


def save_turns(conn: Connection, workload: Workload, now: datetime) -> None:
    latest = {(group, agent): turn for group, agent, turn in workload.taken}
    rows = [{"group_name": g, "agent": a, "turn": turn, "assigned_at": now} for (g, a), turn in latest.items()]
    upsert(conn, turns, rows, ["group_name", "agent"])


def _update(row: Mapping[str, Any], decided: Sequence[Decided], now: datetime) -> dict[str, Any]:
    update: dict[str, Any] = {"id": row["id"], "updated_at": now}
    claims = dict(row.get("decided_by") or {})
    for d in decided:
        update[d.field] = d.value
        claims[d.field] = d.by
        if d.field == "category":
            update["classified_by"] = (ClassifiedBy.MODEL if d.by.startswith("model:") else ClassifiedBy.RULE).value
            update["classification_confidence"] = d.confidence
    update["decided_by"] = claims
    return update


def _event(ticket_id: int, row: Mapping[str, Any], d: Decided, source: str | None, now: datetime) -> dict[str, Any]:
    detail = {**d.detail, "confidence": d.confidence} if d.confidence is not None else dict(d.detail)
    return audit_event("ticket", ticket_id, d.field, row.get(d.field), d.value, d.by, source, now, detail)


# --- dry runs -------------------------------------------------------------------------------------------------


@dataclass
class Simulation:
    """What the rules would change on stored tickets: counts per field and value, and a sample of tickets."""

    tickets: int = 0
    changed_tickets: int = 0
    fields: dict[str, dict[tuple[Any, Any], int]] = field(default_factory=dict)  # field → (old, new) → count
    sample: list[dict[str, Any]] = field(default_factory=list)

    def changed(self, name: str) -> int:
        return sum(self.fields.get(name, {}).values())


def simulate(
    conn: Connection,
    rules: Rules,
    *,
    since: datetime | None = None,
    ticket_ids: Collection[int] | None = None,
    batch_size: int = 500,
    sample_size: int = 20,
    now: datetime | None = None,
) -> Simulation:
    """Replay `rules` on the stored tickets created at or after `since` (or those of `ticket_ids`), in creation
    order, writing nothing.

    Each ticket is decided as if it arrived now: what the rules, a model or the matrix set before is decided
    again; what a person or a source set stays. Agents' loads start from the store's and follow the simulated
    assignments (a ticket's own rules-made assignment is taken out of its agent's load first).
    """
    now = now or utcnow()
    workload = load_workload(conn, rules)
    result = Simulation()
    query = select(tickets.c.id).order_by(tickets.c.id)
    if since is not None:
        query = query.where(tickets.c.created_at >= since)
    if ticket_ids is not None:
        query = query.where(one_of(conn, tickets.c.id, ticket_ids))
    ids = list(conn.execute(query).scalars())
    for start in range(0, len(ids), batch_size):
        rows = read_for_rules(conn, ids[start : start + batch_size])
        redo = {row["id"]: _rules_made(row) for row in rows}
        for row in rows:
            if "assignee" in redo[row["id"]] and row["assignee"] and row["status"] in OPEN_STATUSES:
                workload.remove(row["assignee"], row["priority"])
        decisions = rules.decide(rows, workload, now, redo)
        for row in rows:
            result.tickets += 1
            decided = decisions[row["id"]]
            if decided:
                result.changed_tickets += 1
            for d in decided:
                transitions = result.fields.setdefault(d.field, {})
                key = (row.get(d.field), d.value)
                transitions[key] = transitions.get(key, 0) + 1
            if decided and len(result.sample) < sample_size:
                result.sample.append(
                    {
                        "ticket_id": row["id"],
                        "title": row["title"],
                        "changes": [(d.field, row.get(d.field), d.value, d.by) for d in decided],
                    }
                )
    return result


def _rules_made(row: Mapping[str, Any]) -> set[str]:
    """The fields the hub's rules set on a ticket (so a dry run decides them again)."""
    made = set(row.get("decided_by") or {})
    if row.get("classified_by") in (ClassifiedBy.RULE, ClassifiedBy.MODEL):
        made.add("category")
    return made


def explain_now(conn: Connection, rules: Rules, ticket_id: int) -> list[tuple[str, Any, Any, str]]:
    """What `rules` would change on one ticket today: (field, current value, new value, who would decide)."""
    result = simulate(conn, rules, ticket_ids=[ticket_id], sample_size=1)
    return [tuple(change) for change in result.sample[0]["changes"]] if result.sample else []  # type: ignore[misc]
