"""Per source and entity: the watermark and when a run last started and last succeeded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from itsm_core.models import utcnow
from itsm_core.store.bulk import insert_ignoring_conflicts
from itsm_core.store.tables import SyncStateRow

sync_state = SyncStateRow.__table__


def _set(conn: Connection, source: str, entity: str, values: dict[str, Any]) -> None:
    insert_ignoring_conflicts(
        conn, sync_state, [{"source": source, "entity": entity, "details": {}}], ["source", "entity"]
    )
    conn.execute(sync_state.update().where(sync_state.c.source == source, sync_state.c.entity == entity).values(values))


def record_run(conn: Connection, source: str, entity: str, *, success: bool) -> None:
    """Note that a run of `source` ended, and whether it succeeded."""
    now = utcnow()
    _set(conn, source, entity, {"last_run_at": now, **({"last_success_at": now} if success else {})})


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
