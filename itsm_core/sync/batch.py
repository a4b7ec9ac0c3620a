"""What every kind of record's batch shares: the landing, each record's outcome, dead letters and the report.

`RecordBatch` is one batch of one source in flight; tickets (`ingest.py`) and configuration items
(`ingest_cis.py`) extend it with what their records become. `ingest_isolating` runs a batch so that a record the
database refuses is quarantined alone, never costing its page.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from itsm_core.errors import RecordError
from itsm_core.models import RawRecord
from itsm_core.store.landing import land_records, set_outcomes
from itsm_core.store.quarantine import quarantine
from itsm_core.sync.decide import RulesReport

Decoder = Callable[[bytes], dict[str, Any]]


@dataclass(frozen=True)
class QuarantineNote:
    dead_letter_id: int
    external_id: str
    stage: str
    reason: str


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
