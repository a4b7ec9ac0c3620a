"""The raw landing: payloads kept verbatim, once per (source, external id, content hash)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from itsm_core.models import RawRecord
from itsm_core.store.bulk import insert_ignoring_conflicts, update_by_id
from itsm_core.store.tables import InboundRecordRow

inbound_records = InboundRecordRow.__table__


def land_records(conn: Connection, source: str, records: Sequence[RawRecord]) -> dict[int, int]:
    """Land `records`; returns {index in records: inbound record id} for those never landed before.

    A record whose exact payload was landed earlier is skipped by the unique key: replays and re-fetches
    land nothing twice.
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
    landed: dict[int, int] = {}
    for index, row in enumerate(rows):
        key = (row["external_id"], row["payload_hash"])
        if key in ids:
            landed[index] = ids.pop(key)  # pop: a duplicate inside the batch counts once
    return landed


def set_outcomes(conn: Connection, outcomes: Sequence[dict[str, Any]]) -> None:
    """Record what became of landed records: rows of {id, outcome, ticket_id}."""
    update_by_id(conn, inbound_records, outcomes)
