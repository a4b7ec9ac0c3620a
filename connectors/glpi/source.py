"""`GlpiConnector`: GLPI tickets, each with its timeline, actors and linked items, as self-contained documents.

Incremental contract (per walk: live tickets, then the trash, each with its own cursor):

- a run reads the tickets whose ``date_mod`` ≥ (the last committed cursor − `overlap_seconds`), in ``date_mod``
  order, through GLPI's search (option 19, sorted ascending); without a cursor, every ticket;
- pages are keyset pages: each search restarts from the last ``date_mod`` read, skipping the ids already read at
  that second, so a ticket modified during the walk is never skipped (it moves to the end and is read there);
- the cursor committed with a page is ``{"date_mod": last second read (GLPI's zone, as GLPI shows it), "ids": the
  ids read at that second}``; the overlap re-reads a window before it, because GLPI's order among rows sharing a
  second is not stable and a ticket written in that second after the read would otherwise be missed. Re-read
  tickets land as "unchanged" (the landing's content hash), so the overlap costs requests, not writes;
- trashed tickets are read by a second walk (GLPI's search shows the trash or the rest, never both); trashing
  and restoring move ``date_mod``, so both walks see them. Purged tickets are not seen (GLPI keeps no trace).

A document is the ticket row, its followups, solutions, tasks, actors (users and groups), linked items, and the
names it refers to (users with their default e-mail, groups, category, entity), in a stable order: the same
GLPI state lands the same bytes, so the landing recognises it. `decode.py` reads it; nothing here interprets it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from connectors.glpi.client import GlpiClient, criterion, modified_since
from connectors.glpi.decode import DATE_FORMAT, decode_ticket, ticket_external_id
from itsm_core.config import GlpiSource
from itsm_core.models import RawRecord, utcnow

log = logging.getLogger("itsm.connectors.glpi")

#: Search options of Ticket: id and date_mod.
ID_FIELD, DATE_MOD_FIELD = 2, 19
#: Timeline and actors of a ticket: document key → sub-itemtype of `GET /Ticket/:id/:sub`.
SUB_ITEMS = {
    "followups": "ITILFollowup",
    "solutions": "ITILSolution",
    "tasks": "TicketTask",
    "users": "Ticket_User",
    "groups": "Group_Ticket",
    "items": "Item_Ticket",
}
SUB_ITEMS_PAGE = 1000
WALKS = ("live", "trash")


@dataclass(frozen=True)
class GlpiPage:
    """One page of a walk: the ticket ids in ``date_mod`` order and the cursor once they are committed."""

    walk: str
    ids: tuple[int, ...]
    date_mod: str
    tie_ids: tuple[int, ...]  # every id read at `date_mod`, this page's and earlier pages'


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


class GlpiConnector:
    payload_format = "json"
    default_mapping = "glpi"

    def __init__(self, source: GlpiSource, client: GlpiClient | None = None) -> None:
        self.source = source
        self.zone = ZoneInfo(source.timezone)
        self.client = client or build_client(source)
        self.names = _NameCache(self.client)
        self._pool = ThreadPoolExecutor(max_workers=source.max_concurrent_requests, thread_name_prefix="glpi")

    # --- planning ------------------------------------------------------------------------------------------

    def plan_pages(self, watermark: str | None) -> Iterator[GlpiPage]:
        cursors = json.loads(watermark) if watermark else {}
        for walk in WALKS:
            yield from self._walk(walk, cursors.get(walk))

    def _walk(self, walk: str, cursor: dict[str, Any] | None) -> Iterator[GlpiPage]:
        bound: str | None = None
        seen: set[int] = set()
        if cursor is not None:
            bound = _window_start(cursor["date_mod"], self.zone, self.source.overlap_seconds)
            if self.source.overlap_seconds == 0:
                seen = set(cursor["ids"])
        stalled = 0  # rows to skip beyond `seen` when GLPI returned a page of nothing new (an unstable tie)
        while True:
            # ≥ bound (GLPI's `morethan` is strict, at second precision); the rows at `bound` come first, so those
            # already read are skipped by offset, and filtered in case GLPI ordered the tie differently. Never an
            # empty criteria list: GLPI then applies the itemtype's default search (for tickets: not closed).
            first = modified_since(_second_before(bound)) if bound else criterion(ID_FIELD, "contains", "")
            result = self.client.search(
                "Ticket",
                [first],
                forcedisplay=(ID_FIELD, DATE_MOD_FIELD),
                sort=DATE_MOD_FIELD,
                order="ASC",
                start=len(seen) + stalled,
                limit=self.source.page_size,
                is_deleted=walk == "trash",
            )
            rows = [(int(row[str(ID_FIELD)]), str(row[str(DATE_MOD_FIELD)])) for row in result.rows]
            fresh = [(ticket_id, date_mod) for ticket_id, date_mod in rows if ticket_id not in seen]
            if fresh:
                last = fresh[-1][1]
                at_last = {ticket_id for ticket_id, date_mod in fresh if date_mod == last}
                seen = (seen | at_last) if last == bound else at_last
                bound, stalled = last, 0
                yield GlpiPage(walk, tuple(ticket_id for ticket_id, _ in fresh), last, tuple(sorted(seen)))
            else:
                stalled += result.returned
            if not result.more:
                return

    def page_watermark(self, page: GlpiPage, watermark: str | None) -> str | None:
        cursors = json.loads(watermark) if watermark else {}
        cursors[page.walk] = {"date_mod": page.date_mod, "ids": list(page.tie_ids)}
        return json.dumps(cursors, sort_keys=True)

    # --- fetching ------------------------------------------------------------------------------------------

    def fetch_page(self, page: GlpiPage) -> list[RawRecord]:
        """The page's tickets as documents. Tickets purged since the search are left out (GLPI answers 404)."""
        fetched = self.client.get_many("Ticket", list(page.ids))
        if fetched.forbidden:
            log.warning(
                "%s: the hub's GLPI account may not read tickets %s; grant it READALL on tickets",
                self.source.name,
                ", ".join(map(str, fetched.forbidden)),
            )
        tickets = [row for row in fetched.items if not row.get("is_template")]
        timelines = list(self._pool.map(self._sub_items, [int(row["id"]) for row in tickets]))
        documents = [{"ticket": row, **timeline} for row, timeline in zip(tickets, timelines, strict=True)]
        self.names.load(documents)
        received = utcnow()
        return [
            RawRecord(
                external_id=ticket_external_id(document["ticket"]["id"]),
                payload=json.dumps(
                    {**document, "names": self.names.for_document(document)}, sort_keys=True, ensure_ascii=False
                ).encode(),
                payload_format=self.payload_format,
                received_at=received,
            )
            for document in documents
        ]

    def _sub_items(self, ticket_id: int) -> dict[str, list[dict[str, Any]]]:
        return {
            key: self.client.all_sub_items("Ticket", ticket_id, itemtype, page_size=SUB_ITEMS_PAGE)
            for key, itemtype in SUB_ITEMS.items()
        }

    def decode(self, payload: bytes) -> dict[str, Any]:
        return decode_ticket(payload, self.zone)

    def acknowledge(self, records: Sequence[RawRecord]) -> None:
        """Nothing to do: GLPI keeps its tickets; the committed cursor is the acknowledgement."""

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()


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
    """Names of the users, groups, categories and entities the documents refer to, fetched once per run."""

    #: name table → itemtype (named by `completename`, else `name`); users are read with their e-mail
    TABLES: ClassVar[dict[str, str]] = {"groups": "Group", "categories": "ITILCategory", "entities": "Entity"}

    def __init__(self, client: GlpiClient) -> None:
        self.client = client
        self.tables: dict[str, dict[str, Any]] = {"users": {}, "groups": {}, "categories": {}, "entities": {}}
        self._lock = threading.Lock()

    def load(self, documents: Sequence[dict[str, Any]]) -> None:
        wanted = {table: set() for table in self.tables}
        for document in documents:
            for table, ids in _references(document).items():
                wanted[table] |= ids
        with self._lock:
            for table, ids in wanted.items():
                missing = sorted(i for i in ids if str(i) not in self.tables[table])
                if missing:
                    self._fetch(table, missing)

    def _fetch(self, table: str, ids: list[int]) -> None:
        names = self.tables[table]
        if table == "users":
            fetched = self.client.get_many("User", ids)
            for row in fetched.items:
                emails = self.client.all_sub_items("User", int(row["id"]), "UserEmail", page_size=SUB_ITEMS_PAGE)
                default = next((e for e in emails if e.get("is_default")), emails[0] if emails else {})
                names[str(row["id"])] = {
                    "name": row.get("name"),
                    "realname": row.get("realname"),
                    "firstname": row.get("firstname"),
                    "email": default.get("email"),
                }
        else:
            fetched = self.client.get_many(self.TABLES[table], ids)
            for row in fetched.items:
                names[str(row["id"])] = row.get("completename") or row.get("name")
        for gone in (*fetched.missing, *fetched.forbidden):
            names[str(gone)] = None  # deleted or hidden: asked once per run, shown as unknown

    def for_document(self, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            table: {str(i): self.tables[table].get(str(i)) for i in sorted(ids)}
            for table, ids in _references(document).items()
        }


def _references(document: dict[str, Any]) -> dict[str, set[int]]:
    """The ids of users, groups, categories and entities a ticket document names."""
    ticket = document["ticket"]
    users = {ticket.get("users_id_lastupdater"), ticket.get("users_id_recipient")}
    for key in ("followups", "solutions", "tasks", "users"):
        for row in document.get(key) or []:
            users |= {row.get("users_id"), row.get("users_id_tech")}
    groups = {row.get("groups_id") for row in document.get("groups") or []}
    return {
        "users": {int(i) for i in users if i},
        "groups": {int(i) for i in groups if i},
        "categories": {int(ticket["itilcategories_id"])} if ticket.get("itilcategories_id") else set(),
        "entities": {int(ticket["entities_id"])} if ticket.get("entities_id") is not None else set(),
    }
