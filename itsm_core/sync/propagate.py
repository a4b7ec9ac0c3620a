"""Propagation: which change goes to which linked system, queued in the outbox in the change's own transaction.

A `Change` says what happened to one ticket (fields changed, comments added) and which system it came
from. Each `PushTarget` decides what, if anything, it needs to hear of it and returns outbox items; a target
never hears of a change that came from itself (the first half of loop prevention; the second half, echo
suppression, recognises the target's report of what the hub pushed: see `itsm_core/sync/conflicts.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from itsm_core.store.outbox import enqueue

#: The origin of a change the hub made itself (rules, a person at the CLI): every target hears of it.
HUB = None


@dataclass(frozen=True)
class Change:
    """One ticket's change. `origin` is the system (source name) it came from, or `HUB`; `created`: a new ticket;
    `told`: push targets that already know by other means (a workflow that mailed the requester itself)."""

    ticket_id: int
    fields: frozenset[str] = frozenset()
    comment_ids: tuple[int, ...] = ()
    origin: str | None = HUB
    created: bool = False
    told: frozenset[str] = frozenset()


OutboxItem = tuple[int | None, dict[str, Any]]


class PushTarget(Protocol):
    #: The outbox's `target_system`: "email", or the name of a two-way source (e.g. "glpi-main").
    name: str

    def plan(self, conn: Connection, changes: Sequence[Change]) -> list[OutboxItem]:
        """The outbox items (ticket id or None, payload) these changes call for. Reads the store, never writes."""
        ...


class Announcer(Protocol):
    """Hears of every change (its origin included) and queues what it calls for itself: the alert rules."""

    def announce(self, conn: Connection, changes: Sequence[Change]) -> dict[str, int]:
        """Queue in the caller's transaction; returns items per outbox target."""
        ...

    def announce_sla(self, conn: Connection, fired: Sequence[dict[str, Any]]) -> dict[str, int]:
        """The same for SLA levels just fired (``{"ticket_id", "metric", "level", "actions"}``)."""
        ...


@dataclass(frozen=True)
class Propagator:
    """The push targets of one run, built once from the config, and who announces changes (alerts)."""

    targets: tuple[PushTarget, ...] = ()
    announcers: tuple[Announcer, ...] = ()

    def propagate(
        self, conn: Connection, changes: Sequence[Change], sla_fired: Sequence[dict[str, Any]] = ()
    ) -> dict[str, int]:
        """Queue what each target needs of `changes` (and announcers of `sla_fired` levels), in the caller's
        transaction; returns items per target."""
        queued: dict[str, int] = {}
        for target in self.targets:
            relevant = [c for c in changes if c.origin != target.name and target.name not in c.told]
            items = target.plan(conn, relevant) if relevant else []
            enqueue(conn, target.name, items)
            if items:
                queued[target.name] = len(items)
        for announcer in self.announcers:
            queued.update(announcer.announce(conn, changes) if changes else {})
            queued.update(announcer.announce_sla(conn, sla_fired) if sla_fired else {})
        return queued
