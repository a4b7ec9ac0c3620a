"""Per source and entity: the watermark and when a run last started and last succeeded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from itsm_core.models import utcnow
from itsm_core.store.bulk import insert_ignoring_conflicts
from itsm_core.store.tables import SyncStateRow

sync_state = SyncStateRow.__table__


def record_run(conn: Connection, source: str, entity: str, *, success: bool, watermark: str | None = None) -> None:
    """Note a run of `source`; the watermark moves only with a successful run that covers it."""
    now = utcnow()
    insert_ignoring_conflicts(
        conn, sync_state, [{"source": source, "entity": entity, "details": {}}], ["source", "entity"]
    )
    values: dict[str, Any] = {"last_run_at": now}
    if success:
        values["last_success_at"] = now
        if watermark is not None:
            values["watermark"] = watermark
    conn.execute(sync_state.update().where(sync_state.c.source == source, sync_state.c.entity == entity).values(values))


def get_state(conn: Connection, source: str, entity: str) -> dict[str, Any] | None:
    row = (
        conn.execute(select(sync_state).where(sync_state.c.source == source, sync_state.c.entity == entity))
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None
