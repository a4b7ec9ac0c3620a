"""`WebhookConnector`: the deliveries a webhook source accepted, as records of the tickets they are about.

Incremental contract: the upstream is the hub's own `webhook_deliveries` table, which the receiver fills (each
delivery committed before its 202). A run reads the deliveries with id > the watermark (half-open keyset, id
order) in pages of `page_size`; the watermark committed with a page is its last delivery id, so each delivery is
applied once, whether the running server or a later `itsm run` gets to it first.

A record's external id is the delivery's identity (the mapping's ``events.identity``: the ticket it is about);
its payload is the delivery as received — ``{"delivery", "received_at", "headers", "body"}`` with sorted keys —
and a delivery without an identity lands under ``delivery/<key>`` to be quarantined by its decode, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.base import TICKETS, SourceConnector
from connectors.registry import default_mapping
from connectors.webhook.config import WebhookSource
from itsm_core.errors import ConfigError, ParseError
from itsm_core.mapping import EventRules, load_mapping, value_at
from itsm_core.models import RawRecord
from itsm_core.store.deliveries import Delivery, deliveries_between, delivery_ids_after

if TYPE_CHECKING:
    from itsm_core.store import Store

NO_IDENTITY = "delivery/"


@dataclass(frozen=True)
class DeliveryPage:
    """Deliveries with `after` < id ≤ `last`."""

    after: int
    last: int


class WebhookConnector(SourceConnector):
    payload_format = "json"

    def __init__(self, source: WebhookSource) -> None:
        self.source = source
        self.events = webhook_events(source)
        self.store: Store | None = None

    def use_store(self, store: Store) -> None:
        self.store = store

    def _store(self) -> Store:
        if self.store is None:
            raise RuntimeError(f"{self.source.name}: a webhook source reads the hub's store; call use_store first")
        return self.store

    def plan_pages(self, watermark: str | None, entity: str = TICKETS) -> Iterator[DeliveryPage]:
        after = int(watermark or 0)
        while True:
            with self._store().connect() as conn:
                ids = delivery_ids_after(conn, self.source.name, after, self.source.page_size)
            if not ids:
                return
            yield DeliveryPage(after, ids[-1])
            after = ids[-1]

    def page_watermark(self, page: DeliveryPage, watermark: str | None) -> str | None:
        return str(max(page.last, int(watermark or 0)))

    def watermark_positions(self, watermark: str | None) -> dict[str, tuple[Any, ...]]:
        return {"deliveries": (int(watermark),)} if watermark else {}

    def fetch_page(self, page: DeliveryPage) -> list[RawRecord]:
        with self._store().connect() as conn:
            found = deliveries_between(conn, self.source.name, page.after, page.last)
        return [self.record(d) for d in found]

    def record(self, delivery: Delivery) -> RawRecord:
        envelope = {
            "delivery": delivery.delivery_key,
            "received_at": delivery.received_at.isoformat(),
            "headers": delivery.headers,
            "body": _json_or_text(delivery.body),
        }
        identity = value_at(envelope, self.events.identity)
        external_id = str(identity) if identity not in (None, "") else NO_IDENTITY + delivery.delivery_key
        return RawRecord(
            external_id=external_id[:500],
            payload=json.dumps(envelope, sort_keys=True, ensure_ascii=False).encode(),
            payload_format=self.payload_format,
            received_at=delivery.received_at,
        )

    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        try:
            envelope = json.loads(payload)
        except ValueError as exc:
            raise ParseError(f"not a webhook delivery ({exc})") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("body"), dict | list):
            raise ParseError("the delivery's body is not a JSON object")
        if value_at(envelope, self.events.identity) in (None, ""):
            raise ParseError(
                f"the delivery has no {self.events.identity} (the mapping's events.identity): nothing says which "
                "ticket it is about"
            )
        return envelope


def webhook_events(source: WebhookSource) -> EventRules:
    """The source mapping's ``events`` section (refused at start when the mapping has none)."""
    name = default_mapping(source)
    events = load_mapping(name).events
    if events is None:
        raise ConfigError(
            f"sources.{source.name}.mapping: the mapping {name!r} has no events section (identity, event, actions); "
            "a webhook source needs one — see mappings/webhook_alertmanager.yaml",
            key=f"sources.{source.name}.mapping",
        )
    return events


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
