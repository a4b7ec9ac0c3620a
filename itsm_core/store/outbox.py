"""The transactional outbox: changes to push to other systems, written in the transaction of the change.

A push step drains it per target: `due` rows are sent, then `mark_sent`; a failure is retried with backoff
and becomes a dead letter (stage `push`) once the retry budget is spent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from itsm_core.models import utcnow
from itsm_core.store.bulk import one_of
from itsm_core.store.quarantine import quarantine
from itsm_core.store.tables import OutboxRow

outbox = OutboxRow.__table__
MAX_ATTEMPTS = 6
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4))


def enqueue(conn: Connection, target_system: str, items: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Queue (ticket id, fields) changes for `target_system`."""
    if not items:
        return
    now = utcnow()
    conn.execute(
        insert(outbox),
        [
            {
                "target_system": target_system,
                "ticket_id": ticket_id,
                "fields": fields,
                "fields_hash": hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest(),
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for ticket_id, fields in items
        ],
    )


def due(conn: Connection, target_system: str, limit: int = 200) -> list[dict[str, Any]]:
    query = (
        select(outbox)
        .where(
            outbox.c.target_system == target_system, outbox.c.state == "pending", outbox.c.next_attempt_at <= utcnow()
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def mark_sent(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(update(outbox).where(one_of(conn, outbox.c.id, ids)).values(state="sent", sent_at=utcnow()))


def mark_failed(conn: Connection, row: dict[str, Any], error: str, *, final: bool = False) -> None:
    """Count a failed attempt: retry later with backoff, or dead-letter it when the budget is spent or the
    target refused it for good (`final`: retrying the same request would get the same answer)."""
    attempts = row["attempts"] + 1
    if attempts >= MAX_ATTEMPTS or final:
        conn.execute(
            update(outbox).where(outbox.c.id == row["id"]).values(state="dead", attempts=attempts, last_error=error)
        )
        quarantine(
            conn,
            [
                {
                    "source": row["target_system"],
                    "stage": "push",
                    "external_id": f"outbox-{row['id']}",
                    "payload": json.dumps(row["fields"], sort_keys=True).encode(),
                    "payload_format": "json",
                    "reason": f"refused: {error}" if final else f"gave up after {attempts} attempts: {error}",
                    "traceback": None,
                }
            ],
        )
        return
    delay = BACKOFF[min(attempts - 1, len(BACKOFF) - 1)]
    conn.execute(
        update(outbox)
        .where(outbox.c.id == row["id"])
        .values(attempts=attempts, last_error=error, next_attempt_at=utcnow() + delay)
    )


def requeue(conn: Connection, outbox_id: int) -> int | None:
    """Put a dead outbox item back in the queue, due now, with a fresh retry budget; its ticket id, or None when
    there is no such dead item."""
    row = conn.execute(select(outbox.c.ticket_id).where(outbox.c.id == outbox_id, outbox.c.state == "dead")).first()
    if row is None:
        return None
    conn.execute(
        update(outbox).where(outbox.c.id == outbox_id).values(state="pending", attempts=0, next_attempt_at=utcnow())
    )
    return row.ticket_id


def depth(conn: Connection, target_system: str | None = None) -> int:
    query = select(func.count()).select_from(outbox).where(outbox.c.state == "pending")
    if target_system:
        query = query.where(outbox.c.target_system == target_system)
    return conn.execute(query).scalar_one()
