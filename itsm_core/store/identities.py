"""Identities across systems: which canonical ticket or CI a `(system, external id)` names."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, insert

from itsm_core.store.tables import ExternalRefRow

external_refs = ExternalRefRow.__table__


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
        conn.execute(insert(external_refs), rows)
