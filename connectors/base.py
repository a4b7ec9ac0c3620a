"""What every source connector offers the flows: pages of raw records, a decoder, an acknowledgement.

A connector speaks one protocol and nothing else: it never touches the store, never imports Prefect and
knows no business rule. The flow plans pages (small, serialisable references), runs one task per page,
and acknowledges a page's records only after the store has committed them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from itsm_core.models import RawRecord


class SourceConnector(Protocol):
    #: Format of the raw payloads it lands ("eml", "json", ...).
    payload_format: str
    #: Name of the mapping in `mappings/` used when the source's config names none.
    default_mapping: str

    def plan_pages(self, watermark: str | None) -> Iterator[Any]:
        """Small JSON-able references to pages of records (file names, UID ranges, cursors), in fetch order.

        `watermark` is what `page_watermark` returned for the last committed page (None on a first run).
        """
        ...

    def page_watermark(self, page: Any, watermark: str | None) -> str | None:
        """The watermark once `page` is committed; stored in the same transaction as the page's records."""
        ...

    def fetch_page(self, page: Any) -> list[RawRecord]:
        """The raw records of one page, payloads verbatim."""
        ...

    def decode(self, payload: bytes) -> dict[str, Any]:
        """One payload as a plain dict for the mapping; raises `itsm_core.errors.ParseError` if unreadable."""
        ...

    def acknowledge(self, records: Sequence[RawRecord]) -> None:
        """Called after the records are committed (as tickets or dead letters): mark, move or forget them."""
        ...

    def close(self) -> None:
        """Release connections at the end of a run."""
        ...
