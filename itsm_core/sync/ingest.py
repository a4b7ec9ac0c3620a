"""From raw records to canonical tickets, one batch per transaction: land → decode → map → store → rules.

Every fetched record ends in exactly one bucket: created, updated, unchanged or quarantined. A record that
cannot be decoded or mapped is kept whole as a dead letter with its reason; the batch goes on.

`RecordBatch` is what every kind of record shares (the landing, outcomes, dead letters); configuration items
go through the same steps in `itsm_core/sync/ingest_cis.py`. Tickets that name CIs (``custom_fields.linked_items``)
are linked to those already known when the tickets are written.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from itsm_core.errors import RecordError
from itsm_core.mapping import Mapping, map_ticket
from itsm_core.models import RawRecord
from itsm_core.rules import Rules
from itsm_core.store.cis import LINKED_ITEMS, link_tickets_to_cis
from itsm_core.store.landing import land_records, set_outcomes
from itsm_core.store.quarantine import quarantine, record_replay
from itsm_core.store.tickets import TicketWrite, WriteResult, upsert_tickets
from itsm_core.sync.conflicts import FieldPolicy
from itsm_core.sync.decide import RulesReport, apply_rules
from itsm_core.sync.intake import AddComment, Defer, Disposition, Ignore, Intake, MakeTicket, Refuse, Triaged
from itsm_core.sync.propagate import HUB, Change, Propagator

if TYPE_CHECKING:
    from itsm_core.sync.ingest_cis import CIPipeline

Decoder = Callable[[bytes], dict[str, Any]]


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


@dataclass(frozen=True)
class QuarantineNote:
    dead_letter_id: int
    external_id: str
    stage: str
    reason: str


MAX_WAVES = 5
COUNTS = ("fetched", "created", "updated", "unchanged", "commented", "ignored", "quarantined")


@dataclass
class BatchReport:
    """What became of a batch. Every fetched record is counted exactly once among the other counts."""

    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # the same payload or the same message seen before
    commented: int = 0  # continued an existing ticket
    ignored: int = 0  # noise: auto-replies, bounces, the hub's own mail
    quarantined: int = 0
    ignored_by_kind: dict[str, int] = field(default_factory=dict)
    notes: list[QuarantineNote] = field(default_factory=list)
    rules: RulesReport = field(default_factory=RulesReport)  # what the rules set on the batch's tickets

    def __iadd__(self, other: BatchReport) -> BatchReport:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rules += other.rules
        for kind, count in other.ignored_by_kind.items():
            self.ignored_by_kind[kind] = self.ignored_by_kind.get(kind, 0) + count
        self.notes.extend(other.notes)
        return self

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTS}


def ingest_batch(conn: Connection, pipeline: SourcePipeline, records: Sequence[RawRecord]) -> BatchReport:
    """Land and apply one batch inside the caller's transaction. Safe to repeat: nothing lands twice. A record
    the database refuses is quarantined alone (`ingest_isolating`)."""
    return ingest_isolating(conn, pipeline.source, records, lambda c, batch: _Batch(c, pipeline, batch).run())


BatchIngest = Callable[[Connection, Sequence[RawRecord]], BatchReport]


def ingest_isolating(conn: Connection, source: str, records: Sequence[RawRecord], ingest: BatchIngest) -> BatchReport:
    """`ingest` the batch; if the database refuses it (a value no check foresaw: too long for its column, out of
    range), the batch again one record at a time, each in its own savepoint. A record the database still refuses
    is landed and quarantined alone with the database's reason; the others are written. One bad record never
    costs its page, and a re-offered file is then "unchanged", not refused again every cycle.
    """
    try:
        with conn.begin_nested():
            return ingest(conn, records)
    except DBAPIError as exc:
        if len(records) == 1:
            return _refused_by_store(conn, source, records, exc)
    report = BatchReport()
    for record in records:
        try:
            with conn.begin_nested():
                report += ingest(conn, [record])
        except DBAPIError as exc:
            report += _refused_by_store(conn, source, [record], exc)
    return report


def _refused_by_store(conn: Connection, source: str, records: Sequence[RawRecord], exc: DBAPIError) -> BatchReport:
    batch = RecordBatch(conn, source, records)
    batch.land()
    reason = str(exc.orig or exc).splitlines()[0]
    for index in batch.landed:
        batch.refuse(index, stage="store", reason=f"the database refused it: {reason}; fix the mapping, then replay")
    return batch.finish()


#: landing outcome → the report's counter, where their names differ
_COUNTER = {"comment": "commented", "duplicate": "unchanged"}


class RecordBatch:
    """One batch of one source in flight, whatever its records become: what landed, what each record became, and
    the dead letters to write. What landed records become is up to its user: tickets (`_Batch`, below) or
    configuration items (`ingest_cis.ingest_ci_batch`).

    `land` first; then each landed record is either `count`ed once or `refuse`d once; `finish` writes the dead
    letters and the outcomes, so every fetched record is counted exactly once.
    """

    def __init__(self, conn: Connection, source: str, records: Sequence[RawRecord]) -> None:
        self.conn, self.source, self.records = conn, source, records
        self.report = BatchReport(fetched=len(records))
        self.landed: dict[int, int] = {}  # index in records → inbound record id
        self.outcomes: list[dict[str, Any]] = []
        self.letters: list[tuple[int, dict[str, Any]]] = []

    def land(self) -> None:
        self.landed = land_records(self.conn, self.source, self.records)
        self.report.unchanged += len(self.records) - len(self.landed)  # exact payload seen before

    def decode_landed(self, decode: Decoder) -> list[tuple[int, dict[str, Any]]]:
        """(index, decoded record) of every landed record; those that cannot be decoded are refused."""
        decoded = []
        for index in self.landed:
            try:
                decoded.append((index, decode(self.records[index].payload)))
            except Exception as exc:
                self.refuse(index, exc)
        return decoded

    def count(self, index: int, outcome: str, ticket_id: int | None = None) -> None:
        counter = _COUNTER.get(outcome, outcome)
        setattr(self.report, counter, getattr(self.report, counter) + 1)
        self.outcomes.append({"id": self.landed[index], "outcome": outcome, "ticket_id": ticket_id})

    def refuse(
        self, index: int, exc: Exception | None = None, *, stage: str | None = None, reason: str | None = None
    ) -> None:
        letter = _letter(self.source, self.records[index], self.landed[index], exc, stage=stage, reason=reason)
        self.letters.append((index, letter))

    def finish(self) -> BatchReport:
        """Write the dead letters and every landed record's outcome."""
        letter_ids = quarantine(self.conn, [letter for _, letter in self.letters])
        for (index, letter), letter_id in zip(self.letters, letter_ids, strict=True):
            self.report.quarantined += 1
            note = QuarantineNote(letter_id, self.records[index].external_id, letter["stage"], letter["reason"])
            self.report.notes.append(note)
            self.outcomes.append({"id": self.landed[index], "outcome": "quarantined"})
        set_outcomes(self.conn, self.outcomes)
        return self.report


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
        reason = failure_reason(exc)
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


def letter_record(letter: dict[str, Any]) -> RawRecord:
    """The record a dead letter keeps, as it was fetched."""
    return RawRecord(
        external_id=letter["external_id"] or f"dead-letter-{letter['id']}",
        payload=letter["payload"],
        payload_format=letter["payload_format"],
        received_at=letter["created_at"],
    )


def failure_reason(exc: Exception) -> str:
    """A RecordError's message is written for people; anything else is a bug whose type matters."""
    return str(exc) if isinstance(exc, RecordError) else f"unexpected {type(exc).__name__}: {exc}"


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
