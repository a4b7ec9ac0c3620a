"""From raw records to canonical tickets, one batch per transaction: land → decode → map → store → rules.

Every fetched record ends in exactly one bucket: created, updated, unchanged or quarantined. A record that
cannot be decoded or mapped is kept whole as a dead letter with its reason; the batch goes on.

What every kind of record shares (the landing, outcomes, dead letters) is `RecordBatch` in `batch.py`;
configuration items go through the same steps in `ingest_cis.py`. Tickets that name CIs (``custom_fields.linked_items``)
are linked to those already known when the tickets are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Connection

from itsm_core.mapping import Mapping, map_ticket
from itsm_core.models import RawRecord
from itsm_core.rules import Rules
from itsm_core.store.cis import LINKED_ITEMS, link_tickets_to_cis
from itsm_core.store.landing import set_outcomes
from itsm_core.store.quarantine import record_replay
from itsm_core.store.tickets import TicketWrite, WriteResult, upsert_tickets
from itsm_core.sync.batch import BatchReport, Decoder, RecordBatch, failure_reason, ingest_isolating, letter_record
from itsm_core.sync.conflicts import FieldPolicy
from itsm_core.sync.decide import apply_rules
from itsm_core.sync.ingest_cis import CIPipeline
from itsm_core.sync.intake import AddComment, Defer, Disposition, Ignore, Intake, MakeTicket, Refuse, Triaged
from itsm_core.sync.propagate import HUB, Change, Propagator


@dataclass(frozen=True)
class SourcePipeline:
    """What turns one source's payloads into tickets; built once per run (mapping and rules compiled)."""

    source: str
    decode: Decoder
    mapping: Mapping
    rules: Rules
    intake: Intake | None = None  # channel rules before mapping (email: noise, duplicates, floods, threading)
    propagator: Propagator = field(default_factory=Propagator)  # who hears of the changes, in the same transaction
    cis: CIPipeline | None = None  # for sources that also read configuration items (`ingest_cis.py`)

    @property
    def actor(self) -> str:
        return f"source:{self.source}"

    @cached_property
    def policy(self) -> FieldPolicy | None:
        """Ownership and echo rules, for sources that also receive the hub's changes (they declare ownership)."""
        return FieldPolicy(self.mapping.ownership) if self.mapping.ownership else None

    @property
    def update_fields(self) -> frozenset[str]:
        owned = set(self.mapping.fields)
        if self.mapping.custom_fields:
            owned.add("custom_fields")
        return frozenset(owned)

    def to_ticket(self, record: RawRecord, decoded: dict[str, Any] | None = None) -> TicketWrite:
        """Decode (unless done) and map one record (pure: no I/O). Raises RecordError."""
        if decoded is None:
            decoded = self.decode(record.payload)
        ticket = map_ticket(decoded, self.mapping, received_at=record.received_at)
        return TicketWrite(record.external_id, ticket, record.payload_hash, self.update_fields)


MAX_WAVES = 5


def ingest_batch(conn: Connection, pipeline: SourcePipeline, records: Sequence[RawRecord]) -> BatchReport:
    """Land and apply one batch inside the caller's transaction. Safe to repeat: nothing lands twice. A record
    the database refuses is quarantined alone (`ingest_isolating`)."""
    return ingest_isolating(conn, pipeline.source, records, lambda c, batch: _Batch(c, pipeline, batch).run())


class _Batch(RecordBatch):
    """A batch of records that become tickets (with the channel's intake and the propagation of changes)."""

    def __init__(self, conn: Connection, pipeline: SourcePipeline, records: Sequence[RawRecord]) -> None:
        super().__init__(conn, pipeline.source, records)
        self.pipeline = pipeline
        self.changes: list[Change] = []

    def run(self) -> BatchReport:
        self.land()
        pending = self.decode_landed(self.pipeline.decode)
        # Waves: a record the intake defers (a reply to a mail earlier in this batch) is decided again once
        # the records it depends on are written. The last wave may not defer.
        for wave in range(MAX_WAVES):
            dispositions = self._triage(pending, final=wave == MAX_WAVES - 1)
            decided = [(item, d) for item, d in zip(pending, dispositions, strict=True) if not isinstance(d, Defer)]
            pending = [item for item, d in zip(pending, dispositions, strict=True) if isinstance(d, Defer)]
            self._apply(decided)
            if not pending:
                break
        report = self.finish()
        self.pipeline.propagator.propagate(self.conn, self.changes)
        return report

    def _triage(self, items: list[tuple[int, dict[str, Any]]], *, final: bool) -> list[Disposition]:
        if self.pipeline.intake is None:
            return [MakeTicket()] * len(items)
        return self.pipeline.intake.triage(self.conn, [(self.records[i], d) for i, d in items], final=final)

    def _apply(self, items: list[tuple[tuple[int, dict[str, Any]], Disposition]]) -> None:
        """Write one wave: tickets for MakeTicket, dead letters for Refuse, then the intake's own records."""
        writes: list[tuple[int, TicketWrite]] = []
        for (index, data), disposition in items:
            if isinstance(disposition, Refuse):
                self.refuse(index, stage="triage", reason=disposition.reason)
            elif isinstance(disposition, MakeTicket):
                try:
                    writes.append((index, self.pipeline.to_ticket(self.records[index], data)))
                except Exception as exc:
                    self.refuse(index, exc)

        ticket_of: dict[int, tuple[int | None, bool]] = {}
        results = upsert_tickets(
            self.conn, self.pipeline.source, self.pipeline.actor, [w for _, w in writes], self.pipeline.policy
        )
        linked: dict[int, list[str]] = {}
        for (index, write), result in zip(writes, results, strict=True):
            if result.outcome == "quarantined":
                self.refuse(index, stage="store", reason=result.error)
                continue
            ticket_of[index] = (result.ticket_id, result.outcome == "created")
            self.count(index, result.outcome, result.ticket_id)
            named = write.ticket.custom_fields.get(LINKED_ITEMS)
            if result.ticket_id is not None and isinstance(named, list) and named:
                linked.setdefault(result.ticket_id, []).extend(str(item) for item in named)
            if result.outcome in ("created", "updated") and result.ticket_id is not None:
                self.changes.append(
                    Change(
                        result.ticket_id,
                        frozenset(result.changed),
                        origin=self.pipeline.source,
                        created=result.outcome == "created",
                    )
                )
            if result.repush and result.ticket_id is not None:
                self.changes.append(Change(result.ticket_id, frozenset(result.repush), origin=HUB))
        if linked:
            link_tickets_to_cis(self.conn, self.pipeline.source, linked)
        self._decide(results)
        if self.pipeline.intake is not None:
            self._record_intake(self.pipeline.intake, items, ticket_of)

    def _decide(self, results: Sequence[WriteResult]) -> None:
        """The rules, on the tickets this wave created or changed (after their CI links: conditions may ask)."""
        changed = {
            r.ticket_id: r.changed for r in results if r.ticket_id is not None and r.outcome in ("created", "updated")
        }
        changes, report = apply_rules(self.conn, self.pipeline.rules, changed, actor_source=self.pipeline.source)
        self.changes += changes
        self.report.rules += report

    def _record_intake(
        self,
        intake: Intake,
        items: list[tuple[tuple[int, dict[str, Any]], Disposition]],
        ticket_of: dict[int, tuple[int | None, bool]],
    ) -> None:
        """Let the channel record its side of the wave; count comments and ignored records."""
        triaged: list[tuple[int, Triaged]] = []
        for (index, data), disposition in items:
            if isinstance(disposition, MakeTicket) and index not in ticket_of:
                continue  # quarantined by the mapping or the store; a Refuse is the intake's own (it may answer)
            ticket_id, created = ticket_of.get(index, (getattr(disposition, "ticket_id", None), False))
            triaged.append((index, Triaged(self.records[index], data, disposition, ticket_id, created)))
        self.changes += intake.record(self.conn, [t for _, t in triaged])
        for index, item in triaged:
            if isinstance(item.disposition, AddComment):
                self.count(index, "comment", item.ticket_id)
            elif isinstance(item.disposition, Ignore) and item.disposition.kind == "duplicate":
                self.count(index, "duplicate", None)
            elif isinstance(item.disposition, Ignore):
                kind = item.disposition.kind
                self.report.ignored_by_kind[kind] = self.report.ignored_by_kind.get(kind, 0) + 1
                self.count(index, "ignored", item.ticket_id)


def replay_dead_letter(conn: Connection, pipeline: SourcePipeline, letter: dict[str, Any]) -> WriteResult:
    """Run a dead letter's payload through today's decoder, mapping and rules.

    On success the ticket is written and the letter marked replayed; on failure the letter stays, with the
    new reason, and the result says why. A configuration item's letter (a source that reads CIs says which
    records are CIs) goes through the CI path instead; its result names no ticket.
    """
    if pipeline.cis is not None and letter["external_id"] and pipeline.cis.owns(letter["external_id"]):
        return pipeline.cis.replay(conn, letter)
    record = letter_record(letter)
    try:
        write = pipeline.to_ticket(record)
    except Exception as exc:
        reason = failure_reason(exc)
        record_replay(conn, letter["id"], ticket_id=None, reason=reason)
        return WriteResult("quarantined", error=reason)
    (result,) = upsert_tickets(conn, pipeline.source, f"{pipeline.actor}:replay", [write])
    if result.outcome == "quarantined":
        record_replay(conn, letter["id"], ticket_id=None, reason=result.error)
        return result
    record_replay(conn, letter["id"], ticket_id=result.ticket_id)
    if result.ticket_id is not None and result.outcome in ("created", "updated"):
        changes, _ = apply_rules(conn, pipeline.rules, {result.ticket_id: result.changed}, actor_source=pipeline.source)
        pipeline.propagator.propagate(conn, changes)
    if letter["inbound_record_id"] is not None:
        set_outcomes(
            conn, [{"id": letter["inbound_record_id"], "outcome": result.outcome, "ticket_id": result.ticket_id}]
        )
    return result
