"""The `automation_runs` table: each step of a ticket's automation, written in the transaction of what caused it.

Only a row in the expected state moves (`advance` returns False otherwise), so two hub processes that see the same
finished flow run, or a step retried after a crash, write its outcome once.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from itsm_core.models import utcnow
from itsm_core.store.audit import audit_event
from itsm_core.store.bulk import insert_ignoring_conflicts, insert_rows, one_of
from itsm_core.store.tables import AuditEventRow, AutomationRunRow

runs = AutomationRunRow.__table__
audit_events = AuditEventRow.__table__

#: States in which the hub still waits for something: the requester's answer, the start, the end.
WAITING = ("asking", "asked", "queued", "started")
FINISHED = ("succeeded", "failed", "declined")


def actor_of(rule: str) -> str:
    """Who the audit trail says acted: ``automation:<rule>``."""
    return f"automation:{rule}"


def runs_of(conn: Connection, ticket_ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """Each of these tickets' automation, if it has one."""
    if not ticket_ids:
        return {}
    query = select(runs).where(one_of(conn, runs.c.ticket_id, ticket_ids))
    return {row["ticket_id"]: dict(row) for row in conn.execute(query).mappings()}


def run_of(conn: Connection, ticket_id: int) -> dict[str, Any] | None:
    return runs_of(conn, [ticket_id]).get(ticket_id)


def create_runs(conn: Connection, planned: list[dict[str, Any]]) -> set[int]:
    """Insert planned runs (``ticket_id, rule, deployment, parameters, state``) unless the ticket has one; an audit
    event each. Returns the ticket ids that got one now."""
    now = utcnow()
    rows = [{**item, "created_at": now, "updated_at": now} for item in planned]
    new = {ticket_id for (ticket_id,) in insert_ignoring_conflicts(conn, runs, rows, ["ticket_id"], [runs.c.ticket_id])}
    events = [
        audit_event(
            "ticket",
            item["ticket_id"],
            "automation",
            None,
            {"rule": item["rule"], "state": item["state"]},
            actor_of(item["rule"]),
            None,
            now,
            item.get("detail"),
        )
        for item in planned
        if item["ticket_id"] in new
    ]
    if events:
        insert_rows(conn, audit_events, events)
    return new


def advance(conn: Connection, ticket_id: int, expected: str | Collection[str], state: str, **values: Any) -> bool:
    """Move the ticket's run from `expected` to `state` (with `values`: flow run id, reason, times) and audit it;
    False, and nothing written, when it is not in `expected` (another process moved it first)."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    row = conn.execute(select(runs.c.rule, runs.c.state).where(runs.c.ticket_id == ticket_id)).first()
    if row is None or row.state not in expected:
        return False
    now = utcnow()
    moved = conn.execute(
        update(runs)
        .where(runs.c.ticket_id == ticket_id, runs.c.state.in_(expected))
        .values(state=state, updated_at=now, **values)
    ).rowcount
    if not moved:
        return False
    new_value = {"rule": row.rule, "state": state, **{k: _plain(v) for k, v in values.items() if v is not None}}
    conn.execute(
        insert(audit_events),
        [
            audit_event(
                "ticket", ticket_id, "automation", {"state": row.state}, new_value, actor_of(row.rule), None, now
            )
        ],
    )
    return True


def started_runs(conn: Connection) -> list[dict[str, Any]]:
    """Runs whose flow run was started and has not been seen to end."""
    query = select(runs).where(runs.c.state == "started", runs.c.flow_run_id.is_not(None)).order_by(runs.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def history(conn: Connection, limit: int = 50, state: str | None = None) -> list[dict[str, Any]]:
    """The latest runs, newest first."""
    query = select(runs).order_by(runs.c.updated_at.desc(), runs.c.id.desc()).limit(limit)
    if state:
        query = query.where(runs.c.state == state)
    return [dict(row) for row in conn.execute(query).mappings()]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
