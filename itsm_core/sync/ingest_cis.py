"""From raw records to configuration items, one batch per transaction: land → decode → map → store → relate.

The same landing, quarantine and outcomes as tickets (`RecordBatch`): every fetched record ends in exactly one
bucket (created, updated, unchanged or quarantined); one that cannot be decoded, mapped or stored is kept whole
as a dead letter with its reason, and the batch goes on. After the CIs are written:

- relationships the mapping derives from an attribute (`relationships:`) follow that attribute for every CI
  written, and CIs just created get the edges of CIs that listed them before they existed;
- tickets of the same system that already name a CI just created (``custom_fields.linked_items``) are linked to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from itsm_core.mapping import CIMapping, map_ci
from itsm_core.models import RawRecord
from itsm_core.store.cis import CIWrite, link_new_cis_to_tickets, relate_new_cis, sync_relationships, upsert_cis
from itsm_core.store.landing import set_outcomes
from itsm_core.store.quarantine import record_replay
from itsm_core.store.tickets import WriteResult
from itsm_core.sync.batch import (
    BatchReport,
    Decoder,
    RecordBatch,
    failure_reason,
    ingest_isolating,
    letter_record,
)


def _every_record(external_id: str) -> bool:
    return True


@dataclass(frozen=True)
class CIPipeline:
    """What turns one source's CI payloads into configuration items; built once per run.

    `owns` tells a CI's record from a ticket's by external id (to replay a dead letter through the right path).
    """

    source: str
    decode: Decoder
    mapping: CIMapping
    owns: Callable[[str], bool] = _every_record

    @property
    def actor(self) -> str:
        return f"source:{self.source}"

    def to_ci(self, record: RawRecord, decoded: dict[str, Any] | None = None) -> CIWrite:
        """Decode (unless done) and map one record (pure: no I/O). Raises RecordError."""
        if decoded is None:
            decoded = self.decode(record.payload)
        return CIWrite(record.external_id, map_ci(decoded, self.mapping), record.payload_hash)

    def replay(self, conn: Connection, letter: dict[str, Any]) -> WriteResult:
        """Run a CI's dead letter through today's decoder and mapping (see `ingest.replay_dead_letter`)."""
        record = letter_record(letter)
        try:
            write = self.to_ci(record)
        except Exception as exc:
            reason = failure_reason(exc)
            record_replay(conn, letter["id"], ticket_id=None, reason=reason)
            return WriteResult("quarantined", error=reason)
        (result,) = upsert_cis(conn, self.source, f"{self.actor}:replay", [write])
        if result.outcome == "quarantined":
            record_replay(conn, letter["id"], ticket_id=None, reason=result.error)
            return WriteResult("quarantined", error=result.error)
        assert result.ci_id is not None
        _relate(
            conn,
            self,
            [(write, result.ci_id)],
            {write.external_id: result.ci_id} if result.outcome == "created" else {},
        )
        record_replay(conn, letter["id"], ticket_id=None)
        if letter["inbound_record_id"] is not None:
            set_outcomes(conn, [{"id": letter["inbound_record_id"], "outcome": result.outcome}])
        return WriteResult(result.outcome, changed=result.changed)


def ingest_ci_batch(conn: Connection, pipeline: CIPipeline, records: Sequence[RawRecord]) -> BatchReport:
    """Land and apply one batch of CI records inside the caller's transaction. Safe to repeat. A record the
    database refuses is quarantined alone (`ingest_isolating`)."""
    return ingest_isolating(conn, pipeline.source, records, lambda c, batch: _ingest_cis(c, pipeline, batch))


def _ingest_cis(conn: Connection, pipeline: CIPipeline, records: Sequence[RawRecord]) -> BatchReport:
    batch = RecordBatch(conn, pipeline.source, records)
    batch.land()
    writes: list[tuple[int, CIWrite]] = []
    for index, decoded in batch.decode_landed(pipeline.decode):
        try:
            writes.append((index, pipeline.to_ci(records[index], decoded)))
        except Exception as exc:
            batch.refuse(index, exc)
    results = upsert_cis(conn, pipeline.source, pipeline.actor, [write for _, write in writes])
    written: list[tuple[CIWrite, int]] = []
    created: dict[str, int] = {}
    for (index, write), result in zip(writes, results, strict=True):
        if result.outcome == "quarantined" or result.ci_id is None:
            batch.refuse(index, stage="store", reason=result.error)
            continue
        batch.count(index, result.outcome)
        written.append((write, result.ci_id))
        if result.outcome == "created":
            created[write.external_id] = result.ci_id
    _relate(conn, pipeline, written, created)
    return batch.finish()


def _relate(
    conn: Connection, pipeline: CIPipeline, written: list[tuple[CIWrite, int]], created: dict[str, int]
) -> None:
    """Relationships of the CIs written, edges and ticket links to the CIs created."""
    for spec in pipeline.mapping.relationships:
        lists = {ci_id: _external_ids(write.ci.attributes.get(spec.attribute, None)) for write, ci_id in written}
        sync_relationships(conn, pipeline.source, spec, lists)
        relate_new_cis(conn, pipeline.source, spec, created)
    link_new_cis_to_tickets(conn, pipeline.source, created)


def _external_ids(value: Any) -> list[str] | None:
    """An attribute listing other CIs; None when the record does not say (not a list)."""
    return [str(item) for item in value] if isinstance(value, list) else None
