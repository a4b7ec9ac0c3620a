"""The transactional outbox: changes to push to other systems, written in the transaction of the change.

A push step drains it per target: it `claim_due`s rows, sends them, then `mark_sent`; a failure is retried with
backoff and becomes a dead letter (stage `push`) once the retry budget is spent.

Claims: two pushers (the scheduled cycle and a manual `itsm push`, two workers) must never send the same row.
Claiming moves a row's `next_attempt_at` a lease ahead in one statement that only takes rows still due, so a
second pusher finds them not due; on PostgreSQL the candidate rows are also locked with SKIP LOCKED, so
concurrent claimers take different rows instead of waiting on each other. A pusher that dies mid-page
leaves its rows due again once the lease has passed (at least once, never twice at the same time).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from itsm_core.models import utcnow
from itsm_core.store.bulk import insert_rows, one_of
from itsm_core.store.quarantine import quarantine
from itsm_core.store.tables import OutboxRow

outbox = OutboxRow.__table__
MAX_ATTEMPTS = 6
CLAIM_LEASE = timedelta(minutes=10)  # longer than any page takes to send; a crashed pusher's rows wait this long
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


def enqueue_once(conn: Connection, target_system: str, items: Sequence[tuple[int | None, dict[str, Any], str]]) -> int:
    """Queue (ticket id, fields, key) items for `target_system` unless an item with the same key was ever queued
    for it (the key's hash is the row's `fields_hash`): an event announced twice is delivered once. Returns how
    many were queued."""
    keyed = {_digest(key): (ticket_id, fields) for ticket_id, fields, key in items}
    if not keyed:
        return 0
    known = {_digest(key) for key in already_queued(conn, target_system, [key for _, _, key in items])}
    now = utcnow()
    rows = [
        {"target_system": target_system, "ticket_id": ticket_id, "fields": fields, "fields_hash": digest,
         "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for digest, (ticket_id, fields) in keyed.items()
        if digest not in known
    ]  # fmt: skip
    if rows:
        insert_rows(conn, outbox, rows)
    return len(rows)


def already_queued(conn: Connection, target_system: str, keys: Sequence[str]) -> set[str]:
    """Those of `keys` ever queued for `target_system` by `enqueue_once` (one query for them all)."""
    by_digest = {_digest(key): key for key in keys}
    if not by_digest:
        return set()
    found = conn.execute(
        select(outbox.c.fields_hash).where(
            outbox.c.target_system == target_system, one_of(conn, outbox.c.fields_hash, set(by_digest))
        )
    ).scalars()
    return {by_digest[digest] for digest in found}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


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


def claim_due(
    conn: Connection, target_system: str, limit: int = 200, lease: timedelta = CLAIM_LEASE
) -> list[dict[str, Any]]:
    """Take up to `limit` due rows of `target_system` for this pusher alone, oldest first. Commit the claim
    before sending (call it in a transaction of its own); `mark_sent`, `mark_failed` or `release` end it."""
    now = utcnow()
    candidates = (
        select(outbox.c.id)
        .where(outbox.c.target_system == target_system, outbox.c.state == "pending", outbox.c.next_attempt_at <= now)
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer at a time and renders nothing
    )
    claim = (
        update(outbox)
        .where(outbox.c.id.in_(candidates.scalar_subquery()), outbox.c.next_attempt_at <= now)
        .values(next_attempt_at=now + lease)
        .returning(*outbox.c)
    )
    return sorted((dict(row) for row in conn.execute(claim).mappings()), key=lambda row: row["id"])


def release(conn: Connection, ids: Sequence[int]) -> None:
    """Give claimed rows back unsent, due now (a page stopped before reaching them)."""
    if ids:
        conn.execute(update(outbox).where(one_of(conn, outbox.c.id, ids)).values(next_attempt_at=utcnow()))


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
