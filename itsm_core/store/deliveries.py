"""Webhook deliveries as received: landed once per (source, delivery key), read back in id order.

The receiver commits a delivery before it answers 202, so an accepted delivery is never lost; the `webhook`
connector reads them after its watermark (the last delivery id committed with a page), so each is processed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from itsm_core.store.bulk import insert_ignoring_conflicts
from itsm_core.store.tables import WebhookDeliveryRow

deliveries = WebhookDeliveryRow.__table__


@dataclass(frozen=True)
class Delivery:
    id: int
    source: str
    delivery_key: str
    received_at: datetime
    headers: dict[str, Any]
    body: bytes


def land_delivery(
    conn: Connection, source: str, delivery_key: str, received_at: datetime, headers: dict[str, Any], body: bytes
) -> tuple[Delivery, bool]:
    """The delivery stored under (source, key), and whether this call stored it (False: a retry of one known)."""
    row = {"source": source, "delivery_key": delivery_key, "received_at": received_at, "headers": headers, "body": body}
    inserted = insert_ignoring_conflicts(conn, deliveries, [row], ["source", "delivery_key"], [deliveries.c.id])
    if inserted:
        return Delivery(id=inserted[0][0], **row), True
    found = conn.execute(
        select(deliveries).where(deliveries.c.source == source, deliveries.c.delivery_key == delivery_key)
    ).one()
    return Delivery(**found._mapping), False


def delivery_ids_after(conn: Connection, source: str, after_id: int, limit: int) -> list[int]:
    """The ids of the next `limit` deliveries of `source` with id > `after_id` (half-open keyset), in order: what
    planning needs, without the bodies."""
    query = (
        select(deliveries.c.id)
        .where(deliveries.c.source == source, deliveries.c.id > after_id)
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def deliveries_between(conn: Connection, source: str, after_id: int, last_id: int) -> list[Delivery]:
    """The deliveries of `source` with `after_id` < id ≤ `last_id`, in id order."""
    rows = conn.execute(
        select(deliveries)
        .where(deliveries.c.source == source, deliveries.c.id > after_id, deliveries.c.id <= last_id)
        .order_by(deliveries.c.id)
    ).all()
    return [Delivery(**row._mapping) for row in rows]
