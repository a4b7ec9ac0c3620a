"""The connector contract: what every source offers the flows, and what every two-way system's writer offers.

A connector speaks one protocol and nothing else: it never writes to the store, and reads from it (handed over by
`use_store`) only its own landing (GLPI builds a ticket on the document it last landed) or, for the webhook kind,
the table its receiver lands deliveries in as its upstream; it never imports Prefect and
knows no business rule. The flow plans pages (small, serialisable references), runs one task per page, commits each
page's records with the page's watermark in one transaction, and only then acknowledges the page's records.
The conformance suite (`tests/connectors/conformance/`) checks every registered kind against this contract.

**Entities.** A source reads one or more kinds of record — tickets, and for some configuration items ("cis") —
declared in `entities` in the order a run syncs them (CIs before tickets, so a ticket's links to its CIs resolve
in the same run). Every method that depends on the entity takes it; a one-entity connector declares
``entities = ("tickets",)`` (the default). Each entity has its own watermark (sync_state row `(source, entity)`).

**The incremental contract.** A watermark is an opaque string the connector alone reads, committed in the same
transaction as the page it follows, so a crash re-reads a page and never skips one:

- `plan_pages(watermark, entity)` plans the records *after* `watermark`: every record created or changed since
  the watermark's page was read is in the plan (none is missed), and records before it may come again (a
  connector may re-read a window at the boundary, e.g. the same second: the store's landing key makes a
  re-read create nothing);
- `page_watermark(page, watermark)` is the watermark once `page` is committed; it only moves forward
  (`watermark_positions` exposes the order so the conformance suite can check it);
- a connector with ``incremental = False`` keeps no watermark (``page_watermark`` returns None) and offers every
  record it can see on every run; the landing key (source, external id, payload hash) makes repeats no-ops.

Half-open or closed at the boundary is each connector's to state in its docstring, in these terms.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from itsm_core.models import RawRecord
from itsm_core.sync.linked import PUSHED_FIELDS, Sent

if TYPE_CHECKING:
    from itsm_core.store import Store

#: The entity every source reads.
TICKETS = "tickets"
#: Configuration items (assets, software).
CIS = "cis"


class SourceConnector(ABC):
    """One configured source, opened for one run. Subclasses implement the four abstract methods; the hooks
    (`entity_of`, `watermark_positions`, `notices`, `check`, `facts`, `acknowledge`, `close`) have safe
    defaults."""

    #: What it reads, in sync order. An instance may narrow it from its config (GLPI without `assets`).
    entities: tuple[str, ...] = (TICKETS,)
    #: False: no watermark; every run offers every record, and the landing key dedupes.
    incremental: ClassVar[bool] = True
    #: Format of the raw payloads it lands ("eml", "json", ...), kept with each record and dead letter.
    payload_format: ClassVar[str]
    #: Entities whose records purged upstream it can find (`present_ids`, `gone`): a system that deletes for good.
    reconciles: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def plan_pages(self, watermark: str | None, entity: str = TICKETS) -> Iterator[Any]:
        """Small JSON-able references to pages of `entity`'s records after `watermark`, in fetch order.

        A page is what one Prefect task holds in memory: bounded by the source's `page_size` (and bytes, where
        records can be large). `watermark` is what `page_watermark` returned for the last committed page of this
        entity (None on a first run). Planning the same state from the same watermark plans the same pages.
        """

    @abstractmethod
    def page_watermark(self, page: Any, watermark: str | None) -> str | None:
        """The watermark once `page` is committed, from the one before it (stored with the page's records)."""

    @abstractmethod
    def fetch_page(self, page: Any) -> list[RawRecord]:
        """The raw records of one page, payloads verbatim (one upstream request per page where the API allows).

        A record gone since the plan is skipped, not an error."""

    @abstractmethod
    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        """One payload of `entity` as a plain dict for the mapping (pure: no I/O).

        Raises `itsm_core.errors.ParseError` if unreadable: the record is then quarantined whole, with the reason.
        """

    def entity_of(self, external_id: str) -> str:
        """Which entity a record is, by its external id (to replay a dead letter through the right path)."""
        if len(self.entities) == 1:
            return self.entities[0]
        raise NotImplementedError(f"{type(self).__name__} reads {self.entities}: it must say which is which")

    def reads_whole(self, watermark: str | None, entity: str = TICKETS) -> bool:
        """Whether a run from `watermark` reads `entity` as a first load does, whole or what is left of it (by
        default: no watermark yet). Such a run's pages may be written by several processes at once (the source's
        `first_load_processes()`, `flows/page_writers.py`); any other is written by the flow's own process."""
        return watermark is None

    def watermark_positions(self, watermark: str | None) -> dict[str, tuple[Any, ...]]:
        """The watermark as comparable positions, one per stream it tracks (a folder, a walk, a file): each
        position only grows from one committed page to the next. A new epoch (an IMAP folder's UIDVALIDITY, a
        rewritten file) is a new stream key. Empty for a connector that keeps no watermark."""
        return {}

    def present_ids(self, entity: str) -> Iterator[list[str]]:
        """Pages of the external ids of every `entity` record the upstream holds now, its trash included, walked so
        that a record deleted meanwhile cannot make the walk skip another (by key, not by offset). Only for the
        entities in `reconciles`; the hub compares them with its identities (`itsm_core/sync/purges.py`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list the ids it holds")

    def gone(self, entity: str, external_ids: Sequence[str]) -> list[str]:
        """Of `external_ids`, those the upstream no longer holds at all, each checked on its own."""
        raise NotImplementedError(f"{type(self).__name__} cannot tell a purged record")

    def notices(self) -> list[str]:
        """What ops should know about this run beyond its counts — a slower path taken, a right missing — each
        said once; shown in the run's artifact and by `itsm sync status`."""
        return []

    def check(self) -> list[str]:
        """Problems a run would meet, found by asking the upstream (the API's shape, the account's rights, the
        config's codes against the upstream's), each named with what to do; [] when none. `itsm sync check` runs
        it alone; a kind may refuse to run on them (Solman does)."""
        return []

    def facts(self) -> dict[str, str]:
        """What the upstream's administrator needs from the hub to set up their side (an id to register), by label;
        shown by `itsm sync check`."""
        return {}

    def acknowledge(self, records: Sequence[RawRecord]) -> None:  # noqa: B027 (a hook: nothing to do by default)
        """Called after the records are committed (as tickets, CIs or dead letters): mark, move or forget them."""

    def use_store(self, store: Store) -> None:  # noqa: B027 (a hook: nothing to do by default)
        """Given the hub's store before planning: for kinds whose upstream lands there first (webhook deliveries)
        or that build a record on the payload they last landed (GLPI's incremental timelines); read only."""

    def close(self) -> None:  # noqa: B027 (a hook: nothing to do by default)
        """Release connections at the end of a run."""


class SourceWriter(ABC):
    """The push side of a two-way source: the hub's changes, one outbox operation at a time.

    Operations are those of `itsm_core/sync/linked.py` (``update`` of `pushed_fields`, ``comment``). `send` must
    be idempotent per operation — the same outbox row sent twice (a crash between the upstream's answer and the
    outbox commit) causes one change upstream — and report in `Sent` what the system now holds, so that the
    system's next report of it is recognised as the hub's own echo and not as a new change.
    """

    #: The canonical ticket fields this system is told of when they change.
    pushed_fields: ClassVar[frozenset[str]] = PUSHED_FIELDS

    @abstractmethod
    def send(self, operation: dict[str, Any]) -> Sent:
        """Apply one operation upstream; raises `itsm_core.errors.UpstreamError` (retried later, then dead-lettered)."""

    def close(self) -> None:  # noqa: B027 (a hook: nothing to do by default)
        """Release connections at the end of a push run."""


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
