"""`GlpiConnector`: GLPI tickets, each with its timeline, actors and linked items, as self-contained documents.

Incremental contract (per walk: live tickets, then the trash, each with its own cursor):

- a run reads the tickets whose ``date_mod`` ≥ (the last committed cursor − `overlap_seconds`), in ``date_mod``
  order, through GLPI's search (option 19, sorted ascending); without a cursor, every ticket;
- pages are keyset pages: each search restarts from the last ``date_mod`` read, skipping the ids already read at
  that second, so a ticket modified during the walk is never skipped (it moves to the end and is read there); an
  incremental run writes each search's rows in pages of at most `MERGE_PAGE`, each with its own cursor;
- the cursor committed with a page is ``{"date_mod": last second read (GLPI's zone, as GLPI shows it), "ids": the
  ids read at that second, "settled": see below}``; the overlap re-reads a window before it, because a write
  GLPI committed late (its ``date_mod`` a second already read) would otherwise be missed. Re-read tickets land as
  "unchanged" (the landing's content hash), so the overlap costs requests, not writes;
- ``settled``: every row modified at or before it was visible to the walk that committed it — its first search's
  time by GLPI's clock (the answer's Date header; PHP writes ``date_mod`` from the same host) less
  `overlap_seconds`, never past the cursor. A run starts at max(cursor − overlap, settled); once settled reaches
  the cursor it reads only what is newer (≥ the cursor's second, less the ids already read there). A walk that
  finds nothing new but can settle further commits an empty page for it. Without a Date header nothing settles;
- trashed tickets are read by a second walk (GLPI's search shows the trash or the rest, never both); trashing
  and restoring move ``date_mod``, so both walks see them. Purged tickets are not seen (GLPI keeps no trace).

The ticket walks are followed by the tickets whose sub-items changed without the ticket (pages ``"touched"``), and
the run's last page commits the sub-item cursor (``"sub"``): `timelines.py` states that contract. Sub-items are
never read ticket by ticket but walked in bulk, whole on a first load and only what changed later.

A document is the ticket row, its followups, solutions, tasks, actors (users and groups), linked items, its GLPI
documents with their files (base64; a file the account may not read is left out, with a warning), and the names
it refers to (users with their default e-mail, groups, category, entity), in a stable order: the same GLPI state
lands the same bytes, so the landing recognises it. `decode.py` reads it; nothing here interprets it. A file over
`max_document_bytes` is not downloaded (nor held whole: see `GlpiClient.download`): its document row is kept with
``skipped``, the reason, instead of the file, so the ticket still lands and says what it lacks; the run's notices
count such files.

Configuration items (entity "cis", synced before tickets so a ticket's links to its assets resolve in the same run)
follow the same contract, one pair of walks (live, trash) per itemtype of the source's `assets`, each with its own
cursor (``"Computer:live"`` in the CI watermark). With ``Software`` among the assets, software versions are read
first (live only: versions have no trash; one in the trash of its product is read as such when it changes), and
each computer's document carries its installations (`Item_SoftwareVersion`), which become `installed_on`
relationships. An asset document is the row, those children, and the names it refers to (entity, location,
state, manufacturer, model, type, user, group); `decode_assets.py` reads it. Not read: direct connections
(`Computer_Item`), network ports, components; purged assets (no tombstone); installations changed without the
computer's `date_mod` moving are seen the next time it moves (or on a full re-read: drop the "cis" watermark).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from connectors._html import unescape
from connectors.base import CIS, TICKETS, SourceConnector
from connectors.glpi.client import Download, GlpiClient, criterion, modified_since
from connectors.glpi.config import GlpiSource
from connectors.glpi.decode import DATE_FORMAT, decode_ticket, ticket_external_id, ticket_glpi_id
from connectors.glpi.decode_assets import asset_external_id, decode_asset
from connectors.glpi.timelines import SUB_ITEMS_PAGE, Timeline, Timelines, is_document
from itsm_core import jsondoc
from itsm_core.errors import FileTooLarge, UpstreamForbidden, UpstreamNotFound, over_cap
from itsm_core.models import RawRecord, utcnow
from itsm_core.store.landing import last_payloads
from itsm_core.text import single_line
from itsm_core.threads import ContextPool

if TYPE_CHECKING:
    from itsm_core.store import Store

log = logging.getLogger("itsm.connectors.glpi")

#: Search options of Ticket: id and date_mod.
ID_FIELD, DATE_MOD_FIELD = 2, 19
#: Ids per request of the purge check's id walk.
PRESENT_IDS_PAGE = 1000
#: The most tickets per page of an incremental run (the ticket searches still read `page_size` rows at a time).
MERGE_PAGE = 250
WALKS = ("live", "trash")
#: Pages that follow the ticket walks: tickets with new sub-items GLPI did not bump, then the sub-item cursor.
TOUCHED, SUB_CURSOR = "touched", "sub"
#: In a source's `assets`: software versions as CIs, and the installations of each computer (`SOFTWARE_HOSTS`).
SOFTWARE, SOFTWARE_VERSION = "Software", "SoftwareVersion"
SOFTWARE_HOSTS = frozenset({"Computer"})
#: Itemtypes without a trash: only the live walk (GLPI's search ignores `is_deleted` for them).
NO_TRASH = frozenset({SOFTWARE_VERSION})


def ci_itemtypes(assets: Sequence[str]) -> tuple[str, ...]:
    """The itemtypes a source's `assets` read as CIs, in sync order: software versions first (computers list them)."""
    hardware = tuple(dict.fromkeys(a for a in assets if a != SOFTWARE))
    return ((SOFTWARE_VERSION,) if SOFTWARE in assets else ()) + hardware


@dataclass(frozen=True)
class GlpiPage:
    """One page of a walk: the ids in ``date_mod`` order and the cursor once they are committed.

    `entity` is "tickets" (itemtype Ticket) or "cis" (an asset itemtype); the cursor is kept under `cursor_key` in
    that entity's watermark.
    """

    walk: str
    ids: tuple[int, ...]
    date_mod: str
    tie_ids: tuple[int, ...]  # every id read at `date_mod`, this page's and earlier pages'
    settled: str | None = None  # every row modified at or before this second was visible to this walk's reads
    entity: str = TICKETS
    itemtype: str = "Ticket"
    timeline: str = "per_ticket"  # how its tickets' sub-items are read: "stage", "merge" (`timelines.py`)
    sub: dict[str, Any] | None = None  # the sub-item cursor, on the run's last page (`SUB_CURSOR`)

    @property
    def cursor_key(self) -> str:
        return self.walk if self.entity == TICKETS else f"{self.itemtype}:{self.walk}"


def build_client(source: GlpiSource) -> GlpiClient:
    """One client per run for `source`: its credentials, TLS settings and concurrency bound."""

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    verify: bool | str = str(source.ca_file) if source.ca_file else source.verify_tls
    return GlpiClient(
        source.url,
        system=source.name,
        user_token=secret(source.user_token),
        login=source.login,
        password=secret(source.password),
        app_token=secret(source.app_token),
        timeout=source.timeout_seconds,
        verify=verify,
        max_concurrency=source.max_concurrent_requests,
        retry_attempts=source.retry_attempts,
    )


class GlpiConnector(SourceConnector):
    payload_format = "json"
    reconciles = frozenset({TICKETS})

    def __init__(self, source: GlpiSource, client: GlpiClient | None = None) -> None:
        self.source = source
        self.zone = ZoneInfo(source.timezone)
        self.client = client or build_client(source)
        self.ci_itemtypes = ci_itemtypes(source.assets)
        self.reads_software = SOFTWARE in source.assets
        #: CIs first: a ticket's links to the assets it names resolve in the same run.
        self.entities: tuple[str, ...] = (CIS, TICKETS) if self.ci_itemtypes else (TICKETS,)
        # ContextPool: log lines of its threads (a retry, a file not downloaded) belong to the flow run too
        self._pool = ContextPool(max_workers=source.max_concurrent_requests, thread_name_prefix="glpi")
        self.names = _NameCache(self.client, self._pool)
        self.timelines = Timelines(self.client, self._pool, source.name, self._since_from)
        self._store: Store | None = None
        #: Ids of the documents left out of their tickets in this run for their size (each logged once).
        self._too_large: set[int] = set()

    def entity_of(self, external_id: str) -> str:
        return TICKETS if external_id.startswith("Ticket/") else CIS

    def use_store(self, store: Store) -> None:
        """An incremental run builds each ticket on its last landed document (`timelines.py`): read from here."""
        self._store = store

    # --- planning ------------------------------------------------------------------------------------------

    def plan_pages(self, watermark: str | None, entity: str = TICKETS) -> Iterator[GlpiPage]:
        if entity not in self.entities:
            raise ValueError(f"{self.source.name} reads {', '.join(self.entities)}, not {entity!r}")
        cursors = json.loads(watermark) if watermark else {}
        if entity == TICKETS:
            yield from self._plan_tickets(cursors)
            return
        for itemtype in self.ci_itemtypes:
            for walk in ("live",) if itemtype in NO_TRASH else WALKS:
                yield from self._walk(itemtype, walk, cursors.get(f"{itemtype}:{walk}"), CIS)

    def _plan_tickets(self, cursors: dict[str, Any]) -> Iterator[GlpiPage]:
        """The ticket walks with their sub-items walked in bulk (`timelines.py`); then the tickets whose sub-items
        changed without the ticket, and last the sub-item cursor. Without one (a first load, or a run after one
        that did not finish), every sub-itemtype is walked whole."""
        if SUB_CURSOR in cursors and self._store is not None:
            timeline, sub = "merge", self.timelines.stage_changes(cursors[SUB_CURSOR])
        else:
            timeline, sub = "stage", self.timelines.stage_all()
        walked: set[int] = set()
        # An incremental run's pages are smaller: its tickets cost more each (read again, merged, updated), and
        # a change of a few hundred tickets would otherwise be one page, fetched and then written, never both.
        size = min(self.source.page_size, MERGE_PAGE) if timeline == "merge" else self.source.page_size
        for walk in WALKS:
            for page in self._walk("Ticket", walk, cursors.get(walk), TICKETS, size):
                walked.update(page.ids)
                yield replace(page, timeline=timeline)
        touched = sorted(self.timelines.touched - walked)
        for first in range(0, len(touched), size):
            yield GlpiPage(TOUCHED, tuple(touched[first : first + size]), "", (), timeline=timeline)
        if sub is not None:
            yield GlpiPage(SUB_CURSOR, (), "", (), timeline=timeline, sub=sub)

    def _since_from(self, answered: datetime | None) -> str | None:
        """The sub-item cursor's `since` from GLPI's clock at the walks' first answer (its Date header; else its
        session's current time), less the overlap; None when GLPI tells neither."""
        if answered is not None:
            now: str | None = answered.astimezone(self.zone).strftime(DATE_FORMAT)
        else:
            now = self.client.server_time().current_time
        return self._overlap_before(now) if now else None

    def _overlap_before(self, glpi_now: str) -> str:
        """How far reads are known complete when GLPI's clock showed `glpi_now`: `overlap_seconds` before it."""
        return _window_start(glpi_now, self.zone, self.source.overlap_seconds)

    def _walk(
        self, itemtype: str, walk: str, cursor: dict[str, Any] | None, entity: str, size: int | None = None
    ) -> Iterator[GlpiPage]:
        """The pages of one walk: searches of `page_size` rows, each yielded in pages of at most `size` ids."""
        bound: str | None = None
        seen: set[int] = set()
        if cursor is not None:
            overlap_start = _window_start(cursor["date_mod"], self.zone, self.source.overlap_seconds)
            bound = max(overlap_start, cursor.get("settled", ""))
            if bound >= cursor["date_mod"]:  # settled, or no overlap: only what the cursor's second did not hold
                bound, seen = cursor["date_mod"], set(cursor["ids"])
        settled: str | None = None  # from GLPI's clock at the walk's first search, the overlap before it
        yielded = False
        stalled = 0  # rows to skip when GLPI returned a page of nothing new (a tie longer than a page)
        while True:
            # ≥ bound (GLPI's `morethan` is strict, at second precision), from the first row: the rows at `bound`
            # already read come back and are filtered out. Skipping them by offset instead would skip an unread one
            # whenever a row already read left the tie meanwhile (modified during the walk). Never an empty
            # criteria list: GLPI then applies the itemtype's default search (for tickets: not closed).
            first = modified_since(_second_before(bound)) if bound else criterion(ID_FIELD, "contains", "")
            result = self.client.search(
                itemtype,
                [first],
                forcedisplay=(ID_FIELD, DATE_MOD_FIELD),
                sort=DATE_MOD_FIELD,
                order="ASC",
                start=stalled,
                limit=self.source.page_size,
                is_deleted=walk == "trash",
            )
            if settled is None and result.server_time is not None:
                settled = self._overlap_before(result.server_time.astimezone(self.zone).strftime(DATE_FORMAT))
            rows = [(int(row[str(ID_FIELD)]), str(row[str(DATE_MOD_FIELD)])) for row in result.rows]
            # `seen` holds ids read at `bound`: the same id at a later second was modified since, and is new
            fresh = [(row_id, date_mod) for row_id, date_mod in rows if date_mod != bound or row_id not in seen]
            if fresh:
                stalled, yielded = 0, True
                step = size or len(fresh)
                for part in (fresh[first : first + step] for first in range(0, len(fresh), step)):
                    last = part[-1][1]
                    at_last = {row_id for row_id, date_mod in part if date_mod == last}
                    seen = (seen | at_last) if last == bound else at_last
                    bound = last
                    ids = tuple(row_id for row_id, _ in part)
                    yield GlpiPage(walk, ids, last, tuple(sorted(seen)), _settled(settled, last), entity, itemtype)
            else:
                stalled += result.returned
            if not result.more:
                break
        if cursor is not None and not yielded and _settled(settled, cursor["date_mod"]) > cursor.get("settled", ""):
            # Nothing new, but the window has settled further: an empty page commits that, so the next run
            # re-reads less (nothing at all once settled reaches the cursor).
            yield GlpiPage(
                walk, (), cursor["date_mod"], tuple(cursor["ids"]), _settled(settled, cursor["date_mod"]),
                entity, itemtype,
            )  # fmt: skip

    def page_watermark(self, page: GlpiPage, watermark: str | None) -> str | None:
        """The watermark with the page's walk at the page's last second, unless it is already later: the overlap
        re-reads a window before the cursor, and committing such a page must not move the cursor back."""
        cursors = json.loads(watermark) if watermark else {}
        if page.walk == TOUCHED:
            return json.dumps(cursors, sort_keys=True)
        if page.walk == SUB_CURSOR:
            assert page.sub is not None
            known_sub = cursors.get(SUB_CURSOR) or {"since": "", "ids": {}}
            marks = {**known_sub["ids"]}
            for itemtype, mark in page.sub["ids"].items():
                marks[itemtype] = max(mark, marks.get(itemtype, 0))
            cursors[SUB_CURSOR] = {"since": max(page.sub["since"], known_sub["since"]), "ids": marks}
            return json.dumps(cursors, sort_keys=True)
        known = cursors.get(page.cursor_key)
        if known is None or page.date_mod >= known["date_mod"]:  # GLPI's "Y-m-d H:i:s" sorts as text
            settled = max(page.settled or "", known.get("settled") or "" if known else "")
            cursors[page.cursor_key] = {"date_mod": page.date_mod, "ids": list(page.tie_ids), "settled": settled}
        return json.dumps(cursors, sort_keys=True)

    def reads_whole(self, watermark: str | None, entity: str = TICKETS) -> bool:
        """Tickets are read as a first load until one has finished: until then, with no sub-item cursor, every
        sub-itemtype is walked whole and the ticket walk goes on from where the unfinished load stopped."""
        if entity != TICKETS:
            return super().reads_whole(watermark, entity)
        return SUB_CURSOR not in (json.loads(watermark) if watermark else {})

    def watermark_positions(self, watermark: str | None) -> dict[str, tuple[Any, ...]]:
        """Per walk (``live``, ``trash``, ``Computer:live``, …), the last committed second; the sub-item cursor's
        ``since`` (``sub``) and its id marks (``sub:Ticket_User``, …)."""
        positions: dict[str, tuple[Any, ...]] = {}
        for key, cursor in (json.loads(watermark) if watermark else {}).items():
            if key == SUB_CURSOR:
                positions[key] = (cursor["since"],)
                positions.update({f"{key}:{itemtype}": (mark,) for itemtype, mark in cursor["ids"].items()})
            else:
                positions[key] = (cursor["date_mod"],)
        return positions

    # --- purges --------------------------------------------------------------------------------------------

    def present_ids(self, entity: str) -> Iterator[list[str]]:
        """Every ticket id GLPI shows the hub's account, live then trashed, by id keyset (``id > last``, sorted by
        id): a ticket purged meanwhile cannot shift the walk past another, as offsets would."""
        if entity != TICKETS:
            raise ValueError(f"{self.source.name}: purges are checked for tickets only, not {entity!r}")
        for walk in WALKS:
            last = 0
            while True:
                result = self.client.search(
                    "Ticket",
                    [criterion(ID_FIELD, "contains", f">{last}")],  # on numbers GLPI reads the operator in the value
                    forcedisplay=(ID_FIELD,),
                    sort=ID_FIELD,
                    order="ASC",
                    start=0,
                    limit=PRESENT_IDS_PAGE,
                    is_deleted=walk == "trash",
                )
                ids = [int(row[str(ID_FIELD)]) for row in result.rows]
                if ids:
                    yield [ticket_external_id(ticket_id) for ticket_id in ids]
                    last = max(ids)
                if not result.more or not ids:
                    break

    def gone(self, entity: str, external_ids: Sequence[str]) -> list[str]:
        """Those GLPI answers 404 for, checked by `getMultipleItems` in chunks: purged (or moved out of the account's
        entities, which GLPI does not tell apart)."""
        ids = [ticket_glpi_id(external_id) for external_id in external_ids]
        return [ticket_external_id(ticket_id) for ticket_id in self.client.get_many("Ticket", ids).missing]

    # --- fetching ------------------------------------------------------------------------------------------

    def fetch_page(self, page: GlpiPage) -> list[RawRecord]:
        """The page's tickets or assets as documents. Those purged since the search are left out (GLPI: 404)."""
        if page.entity == CIS:
            return self._fetch_assets(page)
        if not page.ids:
            return []
        tickets = self._rows("Ticket", page.ids, "READALL on tickets")
        ticket_ids = [int(row["id"]) for row in tickets]
        bases: dict[int, dict[str, Any]] = {}
        timelines: list[Timeline]
        if page.timeline == "stage" and self.timelines.stage is not None:
            timelines = self.timelines.staged(ticket_ids)
        elif page.timeline == "merge" and self.timelines.stage is not None:
            bases = self._last_documents(ticket_ids)
            timelines = self.timelines.merged(tickets, bases)
        else:  # a page planned by another run: its stage is gone
            timelines = list(self._pool.map(self.timelines.read_per_ticket, ticket_ids))
        documents = [{"ticket": row, **timeline} for row, timeline in zip(tickets, timelines, strict=True)]
        self._attach_files(documents, bases)
        return self._records(documents, _ticket_references, lambda d: ticket_external_id(d["ticket"]["id"]))

    def _last_documents(self, ticket_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The tickets' documents as they last landed, by GLPI id; those never landed or unreadable are absent."""
        assert self._store is not None
        with self._store.connect() as conn:
            payloads = last_payloads(conn, self.source.name, [ticket_external_id(t) for t in ticket_ids])
        documents: dict[int, dict[str, Any]] = {}
        for external_id, payload in payloads.items():
            try:
                document = jsondoc.loads(payload)
            except ValueError:
                continue
            if is_document(document):
                documents[ticket_glpi_id(external_id)] = document
        return documents

    def _rows(self, itemtype: str, ids: Sequence[int], right: str) -> list[dict[str, Any]]:
        """The rows of a page, templates left out; rows the account may not read are named in a warning."""
        fetched = self.client.get_many(itemtype, list(ids), parallel=self._pool)
        if fetched.forbidden:
            log.warning(
                "%s: the hub's GLPI account may not read %s %s; grant it %s",
                self.source.name,
                itemtype,
                ", ".join(map(str, fetched.forbidden)),
                right,
            )
        return [row for row in fetched.items if not row.get("is_template")]

    def _attach_files(self, documents: list[dict[str, Any]], bases: dict[int, dict[str, Any]]) -> None:
        """Put each ticket's GLPI documents (their row and file, base64) under ``files``, so the record is whole.

        A file whose Document row is as it was in a ticket's last landed document (`bases`) is taken from there,
        not downloaded again. A file over `max_document_bytes` is listed by its row with ``skipped`` (the reason)
        instead of its content: the ticket lands without it and says so (`decode.py` puts the reason in its
        description)."""
        wanted = sorted({int(link["documents_id"]) for d in documents for link in d["document_links"]})
        rows = {int(row["id"]): row for row in self.client.get_many("Document", wanted, parallel=self._pool).items}
        landed = {int(entry["id"]): entry for base in bases.values() for entry in base.get("files") or []
                  if isinstance(entry, dict) and "content_b64" in entry}  # fmt: skip
        kept = {i: landed[i] for i, row in rows.items() if i in landed and _file_row(landed[i]) == row}
        fetch = [i for i in rows if i not in kept]
        downloads: dict[int, Any] = dict(zip(fetch, self._pool.map(self._download, fetch), strict=True))
        for document in documents:
            linked = {int(link["documents_id"]) for link in document["document_links"]}
            files = []
            for i in sorted(linked & rows.keys()):
                download = downloads.get(i)
                if i in kept:
                    files.append(kept[i])
                elif isinstance(download, Download):
                    content = {"content_type": download.content_type, "content_b64": _b64(download.content)}
                    files.append({**rows[i], **content})
                elif isinstance(download, FileTooLarge):
                    files.append({**rows[i], "skipped": self._left_out(i, rows[i], download)})
            document["files"] = files

    def _download(self, document_id: int) -> Download | FileTooLarge | None:
        """The file, or why it is left out: over the cap (`FileTooLarge`), or None when GLPI would not give it."""
        try:
            return self.client.download(document_id, max_bytes=self.source.max_document_bytes)
        except FileTooLarge as exc:
            return exc
        except (UpstreamNotFound, UpstreamForbidden) as exc:
            # Purged since, or the account may not read documents: the ticket lands without that file.
            log.warning(
                "%s: document %d not downloaded (%s); the ticket lands without it", self.source.name, document_id, exc
            )
            return None

    def _left_out(self, document_id: int, row: dict[str, Any], exc: FileTooLarge) -> str:
        """The reason a document is not in its ticket, as the ticket shows it; logged once per document and run.

        Stable for the same file and cap (the landing's content hash depends on it): the size is GLPI's
        Content-Length, or "more than" the cap when GLPI did not send one."""
        name = single_line(unescape(row.get("filename") or row.get("name") or ""))
        what = f"document {document_id} {name}".rstrip()
        reason = over_cap(what, exc.size, "max_document_bytes", exc.limit)
        reason += "; raise max_document_bytes to import it with the ticket's next change in GLPI"
        if document_id not in self._too_large:
            self._too_large.add(document_id)
            log.warning("%s: %s", self.source.name, reason)
        return reason

    def _fetch_assets(self, page: GlpiPage) -> list[RawRecord]:
        itemtype = page.itemtype
        rows = self._rows(itemtype, page.ids, "read rights on that asset type")
        documents: list[dict[str, Any]] = [{"itemtype": itemtype, "item": row} for row in rows]
        if itemtype == SOFTWARE_VERSION:
            wanted = sorted({int(row["softwares_id"]) for row in rows if row.get("softwares_id")})
            products = {int(p["id"]): p for p in self.client.get_many("Software", wanted).items} if wanted else {}
            for document in documents:
                document["software"] = products.get(int(document["item"].get("softwares_id") or 0))
        elif itemtype in SOFTWARE_HOSTS and self.reads_software:
            installs = self._pool.map(
                lambda row_id: self._installations(itemtype, row_id), [int(r["id"]) for r in rows]
            )
            for document, rows_installed in zip(documents, installs, strict=True):
                document["installations"] = rows_installed
        return self._records(documents, _asset_references, lambda d: asset_external_id(itemtype, d["item"]["id"]))

    def _installations(self, itemtype: str, item_id: int) -> list[dict[str, Any]]:
        return self.client.all_sub_items(itemtype, item_id, "Item_SoftwareVersion", page_size=SUB_ITEMS_PAGE)

    def _records(
        self,
        documents: list[dict[str, Any]],
        references: Callable[[dict[str, Any]], dict[str, tuple[str, set[int]]]],
        external_id: Callable[[dict[str, Any]], str],
    ) -> list[RawRecord]:
        """The documents, each with the names it refers to, as records (stable bytes: sorted keys)."""
        wanted = [references(document) for document in documents]
        self.names.load(wanted)
        received = utcnow()
        return [
            RawRecord(
                external_id=external_id(document),
                payload=jsondoc.dumps({**document, "names": self.names.names(refs)}),
                payload_format=self.payload_format,
                received_at=received,
            )
            for document, refs in zip(documents, wanted, strict=True)
        ]

    def notices(self) -> list[str]:
        notices = list(self.timelines.notices)
        if self._too_large:
            ids = sorted(self._too_large)
            shown = ", ".join(map(str, ids[:20])) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
            notices.append(
                f"{len(ids)} GLPI document(s) over max_document_bytes ({self.source.max_document_bytes}) were left "
                f"out of their tickets, each ticket's description says which: {shown}; raise max_document_bytes "
                "to import them with their tickets' next change in GLPI"
            )
        return notices

    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        return decode_asset(payload, self.zone) if entity == CIS else decode_ticket(payload, self.zone)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.timelines.close()
        self.client.close()


def _file_row(entry: dict[str, Any]) -> dict[str, Any]:
    """A ``files`` entry less what `_attach_files` added to GLPI's Document row."""
    return {key: value for key, value in entry.items() if key not in ("content_type", "content_b64")}


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def _settled(window_start: str | None, cursor: str) -> str:
    """How far a walk's reads are known complete once it read up to `cursor`: to its first search's time less the
    overlap (GLPI's clock; "" when GLPI sent no Date), never past the cursor itself."""
    return min(window_start or "", cursor)


def _second_before(value: str) -> str:
    return (datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC) - timedelta(seconds=1)).strftime(DATE_FORMAT)


def _window_start(cursor: str, zone: ZoneInfo, overlap_seconds: int) -> str:
    """Where a run's walk starts: `overlap_seconds` before the cursor, in GLPI's wall-clock time.

    After a fall-back change (the clock's hour repeats), GLPI's zone-less dates written in the second pass of that
    hour sort before a cursor taken in its first pass: the window then reaches one hour further back.
    """
    local = datetime.strptime(cursor, DATE_FORMAT).replace(tzinfo=zone)
    start = local - timedelta(seconds=overlap_seconds)
    hour_before = start - timedelta(hours=1)
    if (hour_before.utcoffset() or timedelta()) > (local.utcoffset() or timedelta()):
        start = hour_before
    return start.strftime(DATE_FORMAT)


class _NameCache:
    """Names of the rows documents refer to, fetched once per run: users (login, names and default e-mail), and
    dropdowns and entities (by `completename`, else `name`). Deleted or hidden rows are None."""

    def __init__(self, client: GlpiClient, pool: ThreadPoolExecutor) -> None:
        self.client, self.pool = client, pool
        self.tables: dict[str, dict[str, Any]] = {}  # itemtype → {str(id): name}
        self._lock = threading.Lock()

    def load(self, references: Sequence[dict[str, tuple[str, set[int]]]]) -> None:
        """Fetch what `references` (per document: key → (itemtype, ids)) name and is not known yet."""
        wanted: dict[str, set[int]] = {}
        for refs in references:
            for itemtype, ids in refs.values():
                wanted.setdefault(itemtype, set()).update(ids)
        with self._lock:
            for itemtype, ids in wanted.items():
                table = self.tables.setdefault(itemtype, {})
                missing = sorted(i for i in ids if str(i) not in table)
                if missing:
                    self._fetch(itemtype, missing)

    def _fetch(self, itemtype: str, ids: list[int]) -> None:
        names = self.tables[itemtype]
        fetched = self.client.get_many(itemtype, ids)
        if itemtype == "User":
            by_user = self._emails([int(row["id"]) for row in fetched.items])
            for row in fetched.items:
                emails = by_user[int(row["id"])]
                default = next((e for e in emails if e.get("is_default")), emails[0] if emails else {})
                names[str(row["id"])] = {
                    "name": row.get("name"),
                    "realname": row.get("realname"),
                    "firstname": row.get("firstname"),
                    "email": default.get("email"),
                }
        else:
            for row in fetched.items:
                names[str(row["id"])] = row.get("completename") or row.get("name")
        for gone in (*fetched.missing, *fetched.forbidden):
            names[str(gone)] = None  # deleted or hidden: asked once per run, shown as unknown

    def _emails(self, user_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Each user's e-mail rows, in id order. GLPI has no request for "the e-mails of these users": one walk of
        every UserEmail when that takes no more requests than a list per user (its first page says how many
        there are), else a list per user, in parallel."""
        found: dict[int, list[dict[str, Any]]] = {user_id: [] for user_id in user_ids}
        if len(user_ids) > 1:
            try:
                first = self.client.list_items("UserEmail", limit=SUB_ITEMS_PAGE, sort="id")
            except UpstreamForbidden:
                first = None
            pages_needed = -(-first.total // SUB_ITEMS_PAGE) if first is not None and first.total is not None else None
            if first is not None and (not first.more or (pages_needed is not None and pages_needed <= len(user_ids))):
                rest = (
                    self.client.iter_pages("UserEmail", page_size=SUB_ITEMS_PAGE, start=first.next_start, sort="id")
                    if first.more
                    else ()
                )
                for page in (first, *rest):
                    for row in page.rows:
                        if (owner := int(row.get("users_id") or 0)) in found:
                            found[owner].append(row)
                return found
        listed = self.pool.map(
            lambda user_id: self.client.all_sub_items("User", user_id, "UserEmail", page_size=SUB_ITEMS_PAGE), user_ids
        )
        return dict(zip(user_ids, listed, strict=True))

    def names(self, references: dict[str, tuple[str, set[int]]]) -> dict[str, dict[str, Any]]:
        """What one document's `references` name: key → {str(id): name}."""
        return {
            key: {str(i): self.tables.get(itemtype, {}).get(str(i)) for i in sorted(ids)}
            for key, (itemtype, ids) in references.items()
        }


def _ids(*values: Any) -> set[int]:
    """The non-zero ids among `values` (GLPI writes 0 for "none")."""
    return {int(value) for value in values if value}


def _ticket_references(document: dict[str, Any]) -> dict[str, tuple[str, set[int]]]:
    """The users, groups, category and entity a ticket document names (document key → (itemtype, ids))."""
    ticket = document["ticket"]
    users = {ticket.get("users_id_lastupdater"), ticket.get("users_id_recipient")}
    for key in ("followups", "solutions", "tasks", "users"):
        for row in document.get(key) or []:
            users |= {row.get("users_id"), row.get("users_id_tech")}
    groups = {row.get("groups_id") for row in document.get("groups") or []}
    return {
        "users": ("User", _ids(*users)),
        "groups": ("Group", _ids(*groups)),
        "categories": ("ITILCategory", _ids(ticket.get("itilcategories_id"))),
        "entities": ("Entity", {int(ticket["entities_id"])} if ticket.get("entities_id") is not None else set()),
    }


def _asset_references(document: dict[str, Any]) -> dict[str, tuple[str, set[int]]]:
    """The entity, location, state, manufacturer, model, type, user and group an asset document names."""
    itemtype, row = document["itemtype"], document["item"]
    entities = {int(row["entities_id"])} if row.get("entities_id") is not None else set()
    if itemtype == SOFTWARE_VERSION:
        product = document.get("software") or {}
        return {
            "entities": ("Entity", entities),
            "states": ("State", _ids(row.get("states_id"))),
            "manufacturers": ("Manufacturer", _ids(product.get("manufacturers_id"))),
        }
    lower = itemtype.lower()
    return {
        "entities": ("Entity", entities),
        "locations": ("Location", _ids(row.get("locations_id"))),
        "states": ("State", _ids(row.get("states_id"))),
        "manufacturers": ("Manufacturer", _ids(row.get("manufacturers_id"))),
        "models": (f"{itemtype}Model", _ids(row.get(f"{lower}models_id"))),
        "types": (f"{itemtype}Type", _ids(row.get(f"{lower}types_id"))),
        "users": ("User", _ids(row.get("users_id"))),
        "groups": ("Group", _ids(row.get("groups_id"))),
    }
