"""Per source and entity: the watermark and when a run last started and last succeeded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from itsm_core.models import utcnow
from itsm_core.store.bulk import insert_ignoring_conflicts
from itsm_core.store.tables import DeadLetterRow, OutboxRow, SyncStateRow

sync_state = SyncStateRow.__table__


def _set(conn: Connection, source: str, entity: str, values: dict[str, Any]) -> None:
    insert_ignoring_conflicts(
        conn, sync_state, [{"source": source, "entity": entity, "details": {}}], ["source", "entity"]
    )
    conn.execute(sync_state.update().where(sync_state.c.source == source, sync_state.c.entity == entity).values(values))


def record_run(
    conn: Connection,
    source: str,
    entity: str,
    *,
    success: bool,
    error: str | None = None,
    notices: list[str] | None = None,
) -> None:
    """Note that a run of `source` ended, and whether it succeeded; a failed run keeps its `error` (in
    ``details.last_error``, shown by `itsm sync status`) until a run succeeds, a successful one its connector's
    `notices` (``details.notices``) until the next."""
    now = utcnow()
    if success:
        values: dict[str, Any] = {
            "last_run_at": now,
            "last_success_at": now,
            "details": {"notices": notices} if notices else {},
        }
    else:
        values = {"last_run_at": now, "details": {"last_error": error or "failed", "last_error_at": now.isoformat()}}
    _set(conn, source, entity, values)


def save_watermark(conn: Connection, source: str, entity: str, watermark: str) -> None:
    """Move the watermark; call it in the transaction that commits the records it covers."""
    _set(conn, source, entity, {"watermark": watermark})


def get_state(conn: Connection, source: str, entity: str) -> dict[str, Any] | None:
    row = (
        conn.execute(select(sync_state).where(sync_state.c.source == source, sync_state.c.entity == entity))
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


def sync_overview(conn: Connection) -> dict[str, dict[str, Any]]:
    """Per system the hub reads from or writes to: its states per entity, outbox and dead-letter counts.

    ``{name: {"entities": [state rows], "outbox_pending": n, "outbox_dead": n, "oldest_pending_at": t | None,
    "dead_letters": n}}`` — dead letters waiting for a replay, by the source (or push target) that made them.
    """
    overview: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return overview.setdefault(
            name,
            {"entities": [], "outbox_pending": 0, "outbox_dead": 0, "oldest_pending_at": None, "dead_letters": 0},
        )

    for row in conn.execute(select(sync_state).order_by(sync_state.c.source, sync_state.c.entity)).mappings():
        entry(row["source"])["entities"].append(dict(row))
    outbox = OutboxRow.__table__
    query = select(outbox.c.target_system, outbox.c.state, func.count(), func.min(outbox.c.created_at)).group_by(
        outbox.c.target_system, outbox.c.state
    )
    for target, state, count, oldest in conn.execute(query.where(outbox.c.state != "sent")):
        if state == "pending":
            entry(target).update(outbox_pending=count, oldest_pending_at=oldest)
        else:
            entry(target)["outbox_dead"] = count
    letters = DeadLetterRow.__table__
    query = select(letters.c.source, func.count()).where(letters.c.replayed_at.is_(None)).group_by(letters.c.source)
    for source, count in conn.execute(query):
        entry(source)["dead_letters"] = count
    return overview
