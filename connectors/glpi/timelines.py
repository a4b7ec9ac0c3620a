"""How a run reads its tickets' sub-items: followups, solutions, tasks, actors, item and document links.

Per ticket, GLPI lists each of them under `GET /Ticket/:id/:sub`: seven requests a ticket. A run reads them in
bulk instead, one of two ways chosen by `GlpiConnector.plan_pages`:

- **stage** (a first load, or any run without a sub-item cursor): every sub-itemtype walked itemtype-wide
  (`GET /ITILFollowup`, …, a thousand rows a request) into a `SubItemStage`; each page of tickets is assembled from
  it;
- **merge** (an incremental run): only what changed since the cursor is walked, newest first — the dated
  sub-itemtypes (`DATED`: their rows carry ``date_mod``) down to ``date_mod`` ≥ the cursor's ``since``, the undated
  ones (actors, item links) down to the cursor's id mark — and each ticket of a page is its last landed document
  (`itsm_core.store.landing.last_payloads`) with the walked rows laid over it by id. A ticket whose row changed, or
  moved within the re-read window (≥ ``since``), has the rows of its last document read again by id, in batches
  (`getMultipleItems`), so a deleted followup or a removed actor leaves it. A ticket the walks found new sub-items
  for but GLPI did not bump (an import, a plugin writing to the database) is read as well (`touched`). A ticket
  without a usable landed document is read whole: from the walks when it was created since ``since`` (all its rows
  are new), else ticket by ticket.

Per ticket remains for a page planned by an earlier run (its stage is gone), and for an itemtype GLPI refuses to
list globally (403: a profile without the global read right), which the run's notices then name once.

Sub-item cursor (``"sub"`` in the tickets' watermark, committed by the run's last page, after every page the walks
touched, so a crash re-walks): ``{"since": GLPI's clock at the walks' first answer less `overlap_seconds`, GLPI's
zone, "ids": {undated itemtype: the highest id seen}}``. Bounds are closed: ``date_mod`` ≥ since; ids > mark, and
the walk reads `ID_OVERLAP` ids below the mark again, because an id taken before the mark may be committed after
it. Pages of a date walk overlap by `PAGE_OVERLAP` rows: a row modified during the walk moves to the top and shifts
the offsets by one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.glpi.client import MULTIPLE_ITEMS_CHUNK, GlpiClient
from connectors.glpi.staging import SubItemStage
from itsm_core.errors import UpstreamForbidden

log = logging.getLogger("itsm.connectors.glpi")

#: Timeline and actors of a ticket: document key → sub-itemtype of `GET /Ticket/:id/:sub`.
SUB_ITEMS = {
    "followups": "ITILFollowup",
    "solutions": "ITILSolution",
    "tasks": "TicketTask",
    "users": "Ticket_User",
    "groups": "Group_Ticket",
    "items": "Item_Ticket",
    "document_links": "Document_Item",
}
#: The keys whose rows carry ``date_mod`` (walked by it); the others are walked by id.
DATED = frozenset({"followups", "solutions", "tasks", "document_links"})
SUB_ITEMS_PAGE = 1000
#: Sub-itemtypes that name their parent by (itemtype, items_id), not by tickets_id.
POLYMORPHIC_SUB_ITEMS = frozenset({"ITILFollowup", "ITILSolution", "Document_Item"})
#: Rows of a date walk's page read again by the next page; ids below the mark read again by an id walk.
PAGE_OVERLAP, ID_OVERLAP = 50, 200
#: Ids per request when rows are read again (`getMultipleItems`'s own limit, for the URL's length).
REREAD_BATCH = MULTIPLE_ITEMS_CHUNK

Timeline = dict[str, list[dict[str, Any]]]


def ticket_of(itemtype: str) -> Callable[[dict[str, Any]], int | None]:
    """How a row of `itemtype` names its ticket (None: it belongs to another kind of item)."""
    return _ticket_of_polymorphic if itemtype in POLYMORPHIC_SUB_ITEMS else _ticket_of_child


def _ticket_of_child(row: dict[str, Any]) -> int | None:
    return int(row["tickets_id"]) if row.get("tickets_id") else None


def _ticket_of_polymorphic(row: dict[str, Any]) -> int | None:
    return int(row["items_id"]) if row.get("itemtype") == "Ticket" and row.get("items_id") else None


def is_document(document: Any) -> bool:
    """A landed ticket document the merge can build on: the ticket row and every sub-item list."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("ticket"), dict)
        and all(isinstance(document.get(key), list) for key in SUB_ITEMS)
    )


@dataclass
class _Walked:
    """What one sub-itemtype's walk found: the tickets it saw new rows of, its id mark, GLPI's clock."""

    refused: str | None = None
    rows: int = 0  # kept in the stage
    touched: set[int] = field(default_factory=set)
    mark: int = 0
    answered: datetime | None = None


class Timelines:
    """The sub-items of one run's tickets (see the module docstring); `close` drops the stage."""

    def __init__(
        self,
        client: GlpiClient,
        pool: ThreadPoolExecutor,
        system: str,
        since_from: Callable[[datetime | None], str | None],
    ) -> None:
        self.client, self.pool, self.system = client, pool, system
        self._since_from = since_from  # GLPI's clock at a walk's first answer → the cursor's `since`
        self.stage: SubItemStage | None = None
        #: Keys GLPI would not list globally in this run: read ticket by ticket.
        self.per_ticket: set[str] = set()
        #: Tickets the walks found new or changed sub-items of.
        self.touched: set[int] = set()
        self.notices: list[str] = []
        self._reread_since = ""  # the cursor's `since`: tickets modified since are read again whole

    # --- the walks -------------------------------------------------------------------------------------------

    def stage_all(self) -> dict[str, Any] | None:
        """Walk every sub-itemtype whole into a new stage; returns the sub-item cursor to commit at the run's end."""
        self._new_stage()
        started = time.monotonic()
        walked = dict(zip(SUB_ITEMS, self.pool.map(self._walk_all, SUB_ITEMS), strict=True))
        self._say_walked("every sub-item", walked, started)
        return self._cursor(walked, {})

    def stage_changes(self, cursor: dict[str, Any]) -> dict[str, Any] | None:
        """Walk what changed since `cursor` into a new stage; returns the cursor to commit at the run's end."""
        self._new_stage()
        self._reread_since = str(cursor["since"])
        marks: dict[str, int] = cursor.get("ids") or {}
        started = time.monotonic()
        walked = dict(
            zip(SUB_ITEMS, self.pool.map(lambda key: self._walk_changes(key, cursor["since"], marks), SUB_ITEMS),
                strict=True)
        )  # fmt: skip
        self._say_walked(f"the sub-items changed since {cursor['since']}", walked, started)
        for result in walked.values():
            self.touched |= result.touched
        return self._cursor(walked, marks)

    def _say_walked(self, what: str, walked: dict[str, _Walked], started: float) -> None:
        """One line in the run's log before its first page: a first load's walks can take minutes on a slow GLPI."""
        counts = ", ".join(f"{SUB_ITEMS[key]} {result.rows:,}" for key, result in walked.items() if not result.refused)
        log.info(
            "%s: walked %s itemtype-wide in %.1f s (%s); the tickets' pages are assembled from them",
            self.system, what, time.monotonic() - started, counts or "none listable globally",
        )  # fmt: skip

    def _new_stage(self) -> None:
        if self.stage is not None:
            self.stage.close()
        self.stage, self.per_ticket, self.touched = SubItemStage(), set(), set()

    def _cursor(self, walked: dict[str, _Walked], marks: dict[str, int]) -> dict[str, Any] | None:
        for key, result in walked.items():
            if result.refused:
                self._refused(key, result.refused)
        answers = [result.answered for result in walked.values() if result.answered is not None]
        since = self._since_from(min(answers) if answers else None)
        if since is None:
            return None  # GLPI sent no clock: no cursor, the next run walks everything again
        ids = {SUB_ITEMS[key]: max(result.mark, marks.get(SUB_ITEMS[key], 0))
               for key, result in walked.items() if key not in DATED and not result.refused}  # fmt: skip
        return {"since": since, "ids": ids}

    def _refused(self, key: str, reason: str) -> None:
        self.per_ticket.add(key)
        self.notices.append(
            f"GLPI refused to list {SUB_ITEMS[key]} globally ({reason}); they were read ticket by ticket "
            f"(one request per ticket): grant the hub's profile read rights on {SUB_ITEMS[key]}"
        )
        log.warning("%s: %s", self.system, self.notices[-1])

    def _walk_all(self, key: str) -> _Walked:
        itemtype, stage, walked = SUB_ITEMS[key], self.stage, _Walked()
        assert stage is not None
        try:
            pages = self.client.iter_pages(
                itemtype, page_size=SUB_ITEMS_PAGE, sort="id", params=_only_tickets(itemtype)
            )
            for page in pages:
                walked.answered = walked.answered or page.server_time
                walked.rows += stage.add(itemtype, page.rows, ticket_of(itemtype))
                walked.mark = max([walked.mark, *(int(row["id"]) for row in page.rows)])
        except UpstreamForbidden as exc:
            walked.refused = str(exc)
        return walked

    def _walk_changes(self, key: str, since: str, marks: dict[str, int]) -> _Walked:
        """Newest first, down to ``date_mod`` ≥ `since` (dated) or to `ID_OVERLAP` ids below the mark (undated)."""
        itemtype, stage, walked = SUB_ITEMS[key], self.stage, _Walked()
        assert stage is not None
        dated = key in DATED
        if not dated and itemtype not in marks:
            # No mark yet (a cursor from an older version): this run reads the itemtype per ticket and sets one.
            self.per_ticket.add(key)
            return self._mark_only(itemtype, walked)
        mark = 0 if dated else marks[itemtype]
        owner = ticket_of(itemtype)
        overlap = min(PAGE_OVERLAP, SUB_ITEMS_PAGE // 4)
        start = 0
        try:
            while True:
                page = self.client.list_items(
                    itemtype, start=start, limit=SUB_ITEMS_PAGE, sort="date_mod" if dated else "id", order="DESC",
                    params=_only_tickets(itemtype),
                )  # fmt: skip
                walked.answered = walked.answered or page.server_time
                if dated:  # a row without date_mod (older data) sorts last and counts as old
                    fresh = [row for row in page.rows if str(row.get("date_mod") or "") >= since]
                    new = fresh
                else:
                    fresh = [row for row in page.rows if int(row["id"]) > mark - ID_OVERLAP]
                    new = [row for row in fresh if int(row["id"]) > mark]
                    walked.mark = max([walked.mark, *(int(row["id"]) for row in page.rows)])
                walked.rows += stage.add(itemtype, fresh, owner)
                walked.touched |= {ticket for row in new if (ticket := owner(row))}
                if len(fresh) < len(page.rows) or not page.more:
                    return walked
                start = page.next_start - overlap
        except UpstreamForbidden as exc:
            walked.refused = str(exc)
        return walked

    def _mark_only(self, itemtype: str, walked: _Walked) -> _Walked:
        try:
            page = self.client.list_items(itemtype, limit=1, sort="id", order="DESC", params=_only_tickets(itemtype))
        except UpstreamForbidden as exc:
            walked.refused = str(exc)
            return walked
        walked.answered = page.server_time
        walked.mark = max([0, *(int(row["id"]) for row in page.rows)])
        return walked

    # --- a page's timelines ------------------------------------------------------------------------------------

    def read_per_ticket(self, ticket_id: int, keys: Iterable[str] = SUB_ITEMS) -> Timeline:
        return {
            key: self.client.all_sub_items("Ticket", ticket_id, SUB_ITEMS[key], page_size=SUB_ITEMS_PAGE)
            for key in keys
        }

    def staged(self, ticket_ids: list[int]) -> list[Timeline]:
        """The tickets' sub-items from a whole-instance stage (refused keys read per ticket)."""
        stage = self.stage
        assert stage is not None
        by_key = {key: stage.rows(SUB_ITEMS[key], ticket_ids) for key in SUB_ITEMS if key not in self.per_ticket}
        extra = self._per_ticket_keys(ticket_ids, set())
        return [
            {key: by_key[key][ticket_id] if key in by_key else extra[ticket_id][key] for key in SUB_ITEMS}
            for ticket_id in ticket_ids
        ]

    def merged(self, tickets: list[dict[str, Any]], bases: dict[int, dict[str, Any]]) -> list[Timeline]:
        """The tickets' sub-items: each ticket's last landed document (`bases`) with the walks' rows over it."""
        ids = [int(row["id"]) for row in tickets]
        stage = self.stage
        assert stage is not None
        walked = {key: stage.rows(SUB_ITEMS[key], ids) for key in SUB_ITEMS if key not in self.per_ticket}
        whole: set[int] = set()  # no document to build on, and older than the cursor: read ticket by ticket
        reread: set[int] = set()  # their earlier rows are read again by id
        for row in tickets:
            ticket_id, base = int(row["id"]), bases.get(int(row["id"]))
            if base is None:
                if str(row.get("date_creation") or "") < self._reread_since:
                    whole.add(ticket_id)
            elif base["ticket"] != row or str(row.get("date_mod") or "") >= self._reread_since:
                reread.add(ticket_id)
        again = self._read_again([bases[t] for t in sorted(reread)])
        extra = self._per_ticket_keys(ids, whole)
        timelines: list[Timeline] = []
        for ticket_id in ids:
            if ticket_id in whole:
                timelines.append(extra[ticket_id])
                continue
            base = bases.get(ticket_id) or {}
            timeline: Timeline = {}
            for key, itemtype in SUB_ITEMS.items():
                if key in self.per_ticket:
                    timeline[key] = extra[ticket_id][key]
                    continue
                rows = {int(row["id"]): row for row in base.get(key) or []}
                if ticket_id in reread:
                    for row_id in list(rows):
                        fresh = again[key].get(row_id)
                        if fresh is None or ticket_of(itemtype)(fresh) != ticket_id:
                            del rows[row_id]  # gone from GLPI, hidden from the account, or moved to another ticket
                        else:
                            rows[row_id] = fresh
                for row in walked[key][ticket_id]:
                    if not (ticket_id in reread and int(row["id"]) in again[key]):  # read again after the walk
                        rows[int(row["id"])] = row
                timeline[key] = [rows[row_id] for row_id in sorted(rows)]
            timelines.append(timeline)
        return timelines

    def _read_again(self, bases: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any] | None]]:
        """The rows of `bases` as GLPI holds them now, by key and id (None: gone or hidden): a `getMultipleItems`
        per hundred ids, every itemtype's batches in parallel."""
        keys = [key for key in SUB_ITEMS if key not in self.per_ticket]
        found: dict[str, dict[int, dict[str, Any] | None]] = {}
        batches = []
        for key in keys:
            ids = sorted({int(row["id"]) for base in bases for row in base[key]})
            found[key] = dict.fromkeys(ids)
            batches += [(key, ids[first : first + REREAD_BATCH]) for first in range(0, len(ids), REREAD_BATCH)]
        fetched = self.pool.map(lambda batch: self.client.get_many(SUB_ITEMS[batch[0]], batch[1]), batches)
        for (key, _), result in zip(batches, fetched, strict=True):
            found[key].update((int(row["id"]), row) for row in result.items)
        return found

    def _per_ticket_keys(self, ticket_ids: list[int], whole: set[int]) -> dict[int, Timeline]:
        """What is read ticket by ticket: every key for `whole`, the refused keys for the others."""
        refused = [key for key in SUB_ITEMS if key in self.per_ticket]
        wanted = [(t, list(SUB_ITEMS) if t in whole else refused) for t in ticket_ids if t in whole or refused]
        read = self.pool.map(lambda item: self.read_per_ticket(*item), wanted)
        return {ticket_id: timeline for (ticket_id, _), timeline in zip(wanted, read, strict=True)}

    def close(self) -> None:
        if self.stage is not None:
            self.stage.close()
            self.stage = None


def _only_tickets(itemtype: str) -> dict[str, Any] | None:
    """Narrow a polymorphic itemtype's list to tickets' rows (GLPI's LIKE: `ticket_of` checks again)."""
    return {"searchText": {"itemtype": "Ticket"}} if itemtype in POLYMORPHIC_SUB_ITEMS else None
