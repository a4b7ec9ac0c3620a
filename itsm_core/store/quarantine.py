"""Dead letters: records kept whole with the reason they failed, until they are replayed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from itsm_core.errors import NotFound
from itsm_core.models import utcnow
from itsm_core.store.bulk import insert_returning
from itsm_core.store.tables import DeadLetterRow

dead_letters = DeadLetterRow.__table__


def quarantine(conn: Connection, letters: list[dict[str, Any]]) -> list[int]:
    """Store dead letters (rows with source, stage, external_id, payload, payload_format, reason, traceback)."""
    if not letters:
        return []
    now = utcnow()
    rows = [{"created_at": now, "replay_attempts": 0, **letter} for letter in letters]
    return insert_returning(conn, dead_letters, rows)


def list_dead_letters(
    conn: Connection, *, include_replayed: bool = False, source: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    columns = [c for c in dead_letters.c if c.name not in {"payload", "traceback"}]
    query = select(*columns, func.length(dead_letters.c.payload).label("size")).order_by(dead_letters.c.id).limit(limit)
    if not include_replayed:
        query = query.where(dead_letters.c.replayed_at.is_(None))
    if source:
        query = query.where(dead_letters.c.source == source)
    return [dict(row) for row in conn.execute(query).mappings()]


def count_dead_letters(conn: Connection, source: str | None = None) -> int:
    query = select(func.count()).select_from(dead_letters).where(dead_letters.c.replayed_at.is_(None))
    if source:
        query = query.where(dead_letters.c.source == source)
    return conn.execute(query).scalar_one()


def get_dead_letter(conn: Connection, letter_id: int) -> dict[str, Any]:
    row = conn.execute(select(dead_letters).where(dead_letters.c.id == letter_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no dead letter {letter_id}; `itsm deadletters list` shows the waiting ones")
    return dict(row)


def record_replay(conn: Connection, letter_id: int, *, ticket_id: int | None, reason: str | None = None) -> None:
    """Count a replay attempt; on success mark the letter replayed, on failure keep it with the new reason."""
    values: dict[str, Any] = {"replay_attempts": dead_letters.c.replay_attempts + 1}
    if reason is None:
        values.update(replayed_at=utcnow(), replay_ticket_id=ticket_id)
    else:
        values.update(reason=reason)
    conn.execute(update(dead_letters).where(dead_letters.c.id == letter_id).values(values))
