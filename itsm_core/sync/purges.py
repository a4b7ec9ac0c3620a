"""Purge reconciliation: the hub's tickets whose record a linked system no longer holds at all.

A ticket purged upstream (GLPI's "delete permanently") leaves no trace in incremental pulls: nothing is modified
after it. Periodically the flow walks the ids the upstream still holds (its trash included: a trashed ticket is
not purged) and this module compares them with the hub's identities, in the store:

1. `unseen_identities` streams the walked ids into a temporary table and returns, by one anti-join, the hub's
   tickets linked to the system whose identity was not seen — candidates, which the connector then checks one by
   one (a record restored from the trash during the walk is seen by neither of its walks);
2. `settle_purged` acts on those confirmed gone, as the source's `purged_tickets` says: ``cancel`` (default) moves
   an open ticket to cancelled; ``keep`` leaves its status. Either way the identity is dropped (the upstream will
   never report that record again and its ids are not reused) and kept in an audit event
   (``field = "purged_upstream"``, old value = the external id), so the link is never forgotten silently; a
   closed ticket stays closed. Nothing is ever deleted from the hub.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Literal

from sqlalchemy import Column, Connection, MetaData, String, Table, delete, exists, insert, select

from itsm_core.models import TicketStatus, utcnow
from itsm_core.store.audit import audit_event
from itsm_core.store.tables import AuditEventRow, ExternalRefRow
from itsm_core.store.tickets import set_statuses
from itsm_core.sync.propagate import Change

external_refs = ExternalRefRow.__table__
audit_events = AuditEventRow.__table__
PurgedTickets = Literal["cancel", "keep"]


def unseen_identities(conn: Connection, system: str, present: Iterable[Sequence[str]]) -> list[tuple[int, str]]:
    """(ticket id, external id) of the hub's tickets linked to `system` whose external id is in none of the
    `present` pages; memory stays one page (the ids go to a temporary table)."""
    seen = Table(
        f"present_ids_{uuid.uuid4().hex[:12]}",
        MetaData(),
        Column("external_id", String(500), index=True),  # not unique: a record trashed mid-walk is seen twice
        prefixes=["TEMPORARY"],
    )
    seen.create(conn)
    try:
        for page in present:
            if page:
                conn.execute(insert(seen), [{"external_id": external_id} for external_id in page])
        query = (
            select(external_refs.c.ticket_id, external_refs.c.external_id)
            .where(
                external_refs.c.system == system,
                external_refs.c.ticket_id.is_not(None),
                ~exists().where(seen.c.external_id == external_refs.c.external_id),
            )
            .order_by(external_refs.c.ticket_id)
        )
        return [(ticket_id, external_id) for ticket_id, external_id in conn.execute(query)]
    finally:
        seen.drop(conn)


def settle_purged(
    conn: Connection, system: str, purged: Sequence[tuple[int, str]], policy: PurgedTickets = "cancel"
) -> list[Change]:
    """Drop the identities of records `system` purged, each kept in an audit event, and cancel their open tickets
    unless `policy` is ``keep``; returns the status changes (for the other push targets)."""
    if not purged:
        return []
    now, actor = utcnow(), f"source:{system}"
    conn.execute(
        insert(audit_events),
        [
            audit_event("ticket", ticket_id, "purged_upstream", external_id, None, actor, system, now,
                        {"system": system, "policy": policy})
            for ticket_id, external_id in purged
        ],
    )  # fmt: skip
    conn.execute(
        delete(external_refs).where(
            external_refs.c.system == system, external_refs.c.external_id.in_([e for _, e in purged])
        )
    )
    if policy == "keep":
        return []
    # The transition table leaves closed (and cancelled) tickets as they are: closed is final.
    cancelled = set_statuses(conn, {ticket_id: TicketStatus.CANCELLED for ticket_id, _ in purged}, actor, source=system)
    return [Change(ticket_id, frozenset({"status"}), origin=system) for ticket_id in cancelled]
