"""What every source connector offers the flows: pages of raw records, a decoder, an acknowledgement.

A connector speaks one protocol and nothing else: it never touches the store, never imports Prefect and
knows no business rule. The flow plans pages (small, serialisable references), runs one task per page,
and acknowledges a page's records only after the store has committed them.

Entities. A source may read more than one kind of record: tickets, and configuration items ("cis"). A connector
that does declares them, in the order a run syncs them (CIs before tickets, so a ticket's links to its CIs
resolve in the same run):

```python
entities = ("cis", "tickets")
def plan_pages(self, watermark, entity="tickets"): ...   # pages of that entity, from its own watermark
def decode(self, payload, entity="tickets"): ...
def entity_of(self, external_id): ...                    # which entity a record is (to replay dead letters)
default_ci_mapping = "glpi_assets"                       # the CI mapping in mappings/
```

Each page object then carries its entity (an ``entity`` attribute), so `page_watermark`, `fetch_page` and the
flow route it; each entity has its own watermark (sync_state row `(source, entity)`). A connector that says
nothing (the mail connectors) reads tickets only, with the signatures below unchanged: `entities_of`,
`page_entity` and `plan_entity_pages` give the flows one way to ask either kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from itsm_core.models import RawRecord

#: The entity of connectors that declare none.
TICKETS = "tickets"
#: Configuration items (assets, software).
CIS = "cis"


class SourceConnector(Protocol):
    #: Format of the raw payloads it lands ("eml", "json", ...).
    payload_format: str
    #: Name of the mapping in `mappings/` used when the source's config names none.
    default_mapping: str

    def plan_pages(self, watermark: str | None) -> Iterator[Any]:
        """Small JSON-able references to pages of records (file names, UID ranges, cursors), in fetch order.

        `watermark` is what `page_watermark` returned for the last committed page (None on a first run).
        A connector with several entities takes ``entity=`` too, and plans only that entity's pages.
        """
        ...

    def page_watermark(self, page: Any, watermark: str | None) -> str | None:
        """The watermark once `page` is committed; stored in the same transaction as the page's records."""
        ...

    def fetch_page(self, page: Any) -> list[RawRecord]:
        """The raw records of one page, payloads verbatim."""
        ...

    def decode(self, payload: bytes) -> dict[str, Any]:
        """One payload as a plain dict for the mapping; raises `itsm_core.errors.ParseError` if unreadable.

        A connector with several entities takes ``entity=`` too (a ticket's payload is not a CI's).
        """
        ...

    def acknowledge(self, records: Sequence[RawRecord]) -> None:
        """Called after the records are committed (as tickets or dead letters): mark, move or forget them."""
        ...

    def close(self) -> None:
        """Release connections at the end of a run."""
        ...


def entities_of(connector: Any) -> tuple[str, ...]:
    """The entities `connector` reads, in sync order; ``("tickets",)`` when it declares none."""
    return tuple(getattr(connector, "entities", (TICKETS,)))


def page_entity(page: Any) -> str:
    """The entity of a page: its ``entity`` attribute, else tickets."""
    return str(getattr(page, "entity", TICKETS))


def plan_entity_pages(connector: Any, watermark: str | None, entity: str) -> Iterator[Any]:
    """`connector.plan_pages` for one entity; connectors without entities are asked for tickets as they always were."""
    if entity == TICKETS and entities_of(connector) == (TICKETS,):
        return connector.plan_pages(watermark)
    return connector.plan_pages(watermark, entity=entity)


T = TypeVar("T")


def pages_within(items: Iterable[tuple[T, int]], max_count: int, max_bytes: int) -> Iterator[list[T]]:
    """(item, size) pairs in order, cut into pages of at most `max_count` items and, unless one item alone is
    larger, at most `max_bytes`: a page is what one task holds in memory at once."""
    page: list[T] = []
    page_bytes = 0
    for item, size in items:
        if page and (len(page) >= max_count or page_bytes + size > max_bytes):
            yield page
            page, page_bytes = [], 0
        page.append(item)
        page_bytes += size
    if page:
        yield page
