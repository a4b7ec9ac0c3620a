"""Channel rules that run before mapping: what each decoded record is for.

A plain source makes or updates a ticket from every record. A channel such as email first asks: is it noise
(an auto-reply, a bounce), a duplicate, a flood, or a reply to a ticket we already have? An `Intake` answers
with one disposition per record, and after the batch's tickets are written it records what it needs (e.g.
Message-IDs for threading, acknowledgements in the outbox) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from itsm_core.models import RawRecord
from itsm_core.sync.propagate import Change


@dataclass(frozen=True)
class MakeTicket:
    """Map the record to a ticket (created, or updated when its identity is known)."""


@dataclass(frozen=True)
class AddComment:
    """The record continues an existing ticket."""

    ticket_id: int
    matched_by: str  # e.g. "In-Reply-To", "subject token", "GLPI number"


@dataclass(frozen=True)
class Ignore:
    """Nothing to create. `kind` groups the counts (autoreply, bounce, own, duplicate)."""

    kind: str
    reason: str
    ticket_id: int | None = None  # e.g. the ticket whose acknowledgement bounced


@dataclass(frozen=True)
class Refuse:
    """Quarantine the record (stage `triage`): kept whole with the reason, replayable."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Decide again once the rest of the batch is written (e.g. a reply to a mail earlier in the same batch)."""


Disposition = MakeTicket | AddComment | Ignore | Refuse | Defer


@dataclass(frozen=True)
class Triaged:
    """One record after the batch is written: what it was for and the ticket it ended on (if any)."""

    record: RawRecord
    decoded: dict[str, Any]
    disposition: Disposition
    ticket_id: int | None
    created: bool


class Intake(Protocol):
    def triage(
        self, conn: Connection, items: Sequence[tuple[RawRecord, dict[str, Any]]], *, final: bool
    ) -> list[Disposition]:
        """One disposition per item, in order. May read the store, never writes. `Defer` only when not `final`."""
        ...

    def record(self, conn: Connection, items: Sequence[Triaged]) -> list[Change]:
        """Write what the channel keeps (comments, Message-IDs, outbox) in the batch's transaction.

        `items` holds every record the intake decided, its `Refuse`s included (they are quarantined; the
        channel may still answer the sender), but not records the mapping or the store refused.

        Returns the changes it made to tickets (comments added, tickets reopened), for propagation.
        """
        ...
