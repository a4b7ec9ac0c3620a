"""The raw landing: payloads kept verbatim, once per (source, external id, content hash)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from itsm_core.models import RawRecord
from itsm_core.store.bulk import insert_ignoring_conflicts, one_of, update_by_id
from itsm_core.store.tables import ExternalRefRow, InboundRecordRow

inbound_records = InboundRecordRow.__table__
external_refs = ExternalRefRow.__table__


def land_records(conn: Connection, source: str, records: Sequence[RawRecord]) -> dict[int, int]:
    """Land `records`; returns {index in records: inbound record id} for those never landed before.

    A record whose exact payload was landed earlier is skipped by the unique key: replays and re-fetches
    land nothing twice. Except a record that went back to an earlier state (A, then B, then A again within
    one of the upstream's clock ticks: a ticket trashed and restored in the same second): its identity's last
    landed payload is B, so the earlier landing of A is taken up again and applied.
    """
    rows = [
        {
            "source": source,
            "external_id": r.external_id,
            "payload": r.payload,
            "payload_format": r.payload_format,
            "payload_hash": r.payload_hash,
            "received_at": r.received_at,
            "outcome": "pending",
        }
        for r in records
    ]
    inserted = insert_ignoring_conflicts(
        conn,
        inbound_records,
        rows,
        ["source", "external_id", "payload_hash"],
        returning=[inbound_records.c.id, inbound_records.c.external_id, inbound_records.c.payload_hash],
    )
    ids = {(external_id, digest): record_id for record_id, external_id, digest in inserted}
    new_now = set(ids)
    landed: dict[int, int] = {}
    seen_before: dict[tuple[str, str], int] = {}
    for index, row in enumerate(rows):
        key = (row["external_id"], row["payload_hash"])
        if key in ids:
            landed[index] = ids.pop(key)  # pop: a duplicate inside the batch counts once
        elif key not in new_now:
            seen_before.setdefault(key, index)
    landed.update(_reverted(conn, source, rows, seen_before))
    return landed


def _reverted(
    conn: Connection, source: str, rows: list[dict[str, Any]], keys: dict[tuple[str, str], int]
) -> dict[int, int]:
    """Of the records landed before (`keys`: (external id, hash) → index), those whose identity has landed
    another payload since: their earlier landing is taken up again."""
    if not keys:
        return {}
    current = dict(
        conn.execute(
            select(external_refs.c.external_id, external_refs.c.landed_hash).where(
                external_refs.c.system == source,
                one_of(conn, external_refs.c.external_id, {external_id for external_id, _ in keys}),
                external_refs.c.landed_hash.is_not(None),
            )
        ).all()
    )
    wanted = [(external_id, digest) for external_id, digest in keys if current.get(external_id, digest) != digest]
    if not wanted:
        return {}
    found = conn.execute(
        select(inbound_records.c.id, inbound_records.c.external_id, inbound_records.c.payload_hash).where(
            inbound_records.c.source == source,
            tuple_(inbound_records.c.external_id, inbound_records.c.payload_hash).in_(wanted),
        )
    ).all()
    again = {keys[(external_id, digest)]: record_id for record_id, external_id, digest in found}
    pending = [
        {"id": record_id, "outcome": "pending", "received_at": rows[index]["received_at"]}
        for index, record_id in again.items()
    ]
    update_by_id(conn, inbound_records, pending)
    return again


def set_outcomes(conn: Connection, outcomes: Sequence[dict[str, Any]]) -> None:
    """Record what became of landed records: rows of {id, outcome, ticket_id}."""
    update_by_id(conn, inbound_records, outcomes)


def last_payloads(conn: Connection, source: str, external_ids: Iterable[str]) -> dict[str, bytes]:
    """The payload each of `external_ids` last landed from `source` (by `received_at`, which taking an earlier
    landing up again renews), whatever became of it; ids never landed are absent. A connector that rebuilds a
    record from its last state plus what changed upstream reads it here."""
    wanted = set(external_ids)
    if not wanted:
        return {}
    latest = (
        select(
            inbound_records.c.external_id,
            inbound_records.c.payload,
            func.row_number()
            .over(
                partition_by=inbound_records.c.external_id,
                order_by=(inbound_records.c.received_at.desc(), inbound_records.c.id.desc()),
            )
            .label("rank"),
        )
        .where(inbound_records.c.source == source, one_of(conn, inbound_records.c.external_id, wanted))
        .subquery()
    )
    rows = conn.execute(select(latest.c.external_id, latest.c.payload).where(latest.c.rank == 1))
    return {external_id: bytes(payload) for external_id, payload in rows}
