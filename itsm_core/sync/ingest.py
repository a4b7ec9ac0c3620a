"""From raw records to canonical tickets, one batch per transaction: land → decode → map → rules → store.

Every fetched record ends in exactly one bucket: created, updated, unchanged or quarantined. A record that
cannot be decoded or mapped is kept whole as a dead letter with its reason; the batch goes on.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from itsm_core.errors import RecordError
from itsm_core.mapping import Mapping, map_ticket
from itsm_core.models import RawRecord
from itsm_core.rules import CompiledRules
from itsm_core.store.landing import land_records, set_outcomes
from itsm_core.store.quarantine import quarantine, record_replay
from itsm_core.store.tickets import TicketWrite, WriteResult, upsert_tickets

Decoder = Callable[[bytes], dict[str, Any]]


@dataclass(frozen=True)
class SourcePipeline:
    """What turns one source's payloads into tickets; built once per run (mapping and rules compiled)."""

    source: str
    decode: Decoder
    mapping: Mapping
    rules: CompiledRules

    @property
    def actor(self) -> str:
        return f"source:{self.source}"

    @property
    def update_fields(self) -> frozenset[str]:
        owned = set(self.mapping.fields)
        if self.mapping.custom_fields:
            owned.add("custom_fields")
        return frozenset(owned)

    def to_ticket(self, record: RawRecord) -> TicketWrite:
        """Decode, map and apply the rules to one record (pure: no I/O). Raises RecordError subclasses."""
        ticket = map_ticket(self.decode(record.payload), self.mapping, received_at=record.received_at)
        return TicketWrite(record.external_id, self.rules.apply(ticket), record.payload_hash, self.update_fields)


@dataclass(frozen=True)
class QuarantineNote:
    dead_letter_id: int
    external_id: str
    stage: str
    reason: str


@dataclass
class BatchReport:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    notes: list[QuarantineNote] = field(default_factory=list)

    def __iadd__(self, other: BatchReport) -> BatchReport:
        for name in ("fetched", "created", "updated", "unchanged", "quarantined"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.notes.extend(other.notes)
        return self

    def counts(self) -> dict[str, int]:
        return {
            "fetched": self.fetched,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
        }


def ingest_batch(conn: Connection, pipeline: SourcePipeline, records: Sequence[RawRecord]) -> BatchReport:
    """Land and apply one batch inside the caller's transaction. Safe to repeat: nothing lands twice."""
    report = BatchReport(fetched=len(records))
    landed = land_records(conn, pipeline.source, records)
    report.unchanged += len(records) - len(landed)  # exact payload seen before

    writes: list[tuple[int, TicketWrite]] = []  # (index in records, write)
    letters: list[tuple[int, dict[str, Any]]] = []
    for index in landed:
        record = records[index]
        try:
            writes.append((index, pipeline.to_ticket(record)))
        except Exception as exc:
            letters.append((index, _letter(pipeline.source, record, landed[index], exc)))

    outcomes: list[dict[str, Any]] = []
    results = upsert_tickets(conn, pipeline.source, pipeline.actor, [w for _, w in writes])
    for (index, _write), result in zip(writes, results, strict=True):
        if result.outcome == "quarantined":
            letters.append(
                (index, _letter(pipeline.source, records[index], landed[index], stage="store", reason=result.error))
            )
            continue
        setattr(report, result.outcome, getattr(report, result.outcome) + 1)
        outcomes.append({"id": landed[index], "outcome": result.outcome, "ticket_id": result.ticket_id})

    letter_ids = quarantine(conn, [letter for _, letter in letters])
    for (index, letter), letter_id in zip(letters, letter_ids, strict=True):
        report.quarantined += 1
        report.notes.append(QuarantineNote(letter_id, records[index].external_id, letter["stage"], letter["reason"]))
        outcomes.append({"id": landed[index], "outcome": "quarantined"})
    set_outcomes(conn, outcomes)
    return report


def _letter(
    source: str,
    record: RawRecord,
    inbound_id: int | None,
    exc: Exception | None = None,
    *,
    stage: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    if exc is not None:
        stage = exc.stage if isinstance(exc, RecordError) else "map"
        # A RecordError's message is written for people; anything else is a bug whose type matters.
        reason = str(exc) if isinstance(exc, RecordError) else f"unexpected {type(exc).__name__}: {exc}"
    return {
        "source": source,
        "stage": stage,
        "external_id": record.external_id,
        "inbound_record_id": inbound_id,
        "payload": record.payload,
        "payload_format": record.payload_format,
        "reason": reason,
        "traceback": None if exc is None or isinstance(exc, RecordError) else traceback.format_exc(),
    }


def replay_dead_letter(conn: Connection, pipeline: SourcePipeline, letter: dict[str, Any]) -> WriteResult:
    """Run a dead letter's payload through today's decoder, mapping and rules.

    On success the ticket is written and the letter marked replayed; on failure the letter stays, with the
    new reason, and the result says why.
    """
    record = RawRecord(
        external_id=letter["external_id"] or f"dead-letter-{letter['id']}",
        payload=letter["payload"],
        payload_format=letter["payload_format"],
        received_at=letter["created_at"],
    )
    try:
        write = pipeline.to_ticket(record)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, RecordError) else f"unexpected {type(exc).__name__}: {exc}"
        record_replay(conn, letter["id"], ticket_id=None, reason=reason)
        return WriteResult("quarantined", error=reason)
    (result,) = upsert_tickets(conn, pipeline.source, f"{pipeline.actor}:replay", [write])
    if result.outcome == "quarantined":
        record_replay(conn, letter["id"], ticket_id=None, reason=result.error)
        return result
    record_replay(conn, letter["id"], ticket_id=result.ticket_id)
    if letter["inbound_record_id"] is not None:
        set_outcomes(
            conn, [{"id": letter["inbound_record_id"], "outcome": result.outcome, "ticket_id": result.ticket_id}]
        )
    return result
