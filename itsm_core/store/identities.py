"""Identities across systems: which canonical ticket or CI a `(system, external id)` names."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, select

from itsm_core.models import TicketStatus
from itsm_core.store.bulk import insert_rows
from itsm_core.store.tables import ExternalRefRow, TicketRow

external_refs = ExternalRefRow.__table__
tickets = TicketRow.__table__

FINAL_STATUSES = (TicketStatus.CLOSED, TicketStatus.CANCELLED)


def add_identities(
    conn: Connection,
    system: str,
    owner: Literal["ticket_id", "ci_id"],
    items: Iterable[tuple[str, str, int]],
    now: datetime,
) -> None:
    """Record new identities: (external id, hash of the payload that landed, canonical id) for `system`."""
    rows = [
        {"system": system, "external_id": external_id, owner: owner_id, "landed_hash": digest,
         "created_at": now, "updated_at": now}
        for external_id, digest, owner_id in items
    ]  # fmt: skip
    if rows:
        insert_rows(conn, external_refs, rows)


def unfinished_ticket_ids(conn: Connection, system: str) -> list[str]:
    """The external ids in `system` of the tickets the hub holds neither closed nor cancelled: what a connector
    whose upstream lists only its unclosed records reads once more, to see those closed since."""
    query = (
        select(external_refs.c.external_id)
        .join(tickets, tickets.c.id == external_refs.c.ticket_id)
        .where(external_refs.c.system == system, tickets.c.status.not_in([str(s) for s in FINAL_STATUSES]))
        .order_by(external_refs.c.external_id)
    )
    return list(conn.execute(query).scalars())
