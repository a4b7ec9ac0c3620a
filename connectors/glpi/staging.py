"""The sub-items of a full sync, walked itemtype-wide and kept in a private SQLite file until the run ends.

A first load reads every ticket, so reading their followups, tasks, solutions, actors, item and document links
ticket by ticket costs seven requests per ticket (700,000 for 100,000 tickets). GLPI lists each of those
itemtypes globally (`GET /ITILFollowup`, `/TicketTask`, ...: `GlpiClient.iter_pages`), a
thousand rows per request; this stage holds what those walks return, by ticket, so each page of tickets is
assembled from it with one indexed query per itemtype. It lives in a temporary file, not in the hub's store:
it is the connector's own cache of the upstream, gone at `close()`, and memory stays one page whatever the
instance's size.

Rows are kept with `marshal`, not JSON: the file is this process's own, read back only by it, and a first load
stages some 7 rows per ticket, each written once and read once. marshal writes a row in a quarter of
`json.dumps`'s time and reads it in half of orjson's, and gives back exactly what was put in (a float NaN, an
integer of any size). The by-ticket index is built once, at the first `rows` (after a walk's inserts): SQLite
builds it from sorted keys then, instead of updating it row by row.
"""

from __future__ import annotations

import marshal
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

#: SQLite's default limit on variables per statement is 999 (older builds): ids per query stay below it.
_CHUNK = 900


class SubItemStage:
    """Rows of sub-itemtypes by the ticket they belong to; `add` as the walks go, `rows` per page of tickets."""

    def __init__(self) -> None:
        handle = tempfile.NamedTemporaryFile(prefix="itsm-glpi-stage-", suffix=".sqlite", delete=False)  # noqa: SIM115
        handle.close()
        self.path = Path(handle.name)
        self._lock = threading.Lock()  # walks run in parallel threads; one connection, used one at a time
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE rows (itemtype TEXT, ticket INTEGER, id INTEGER, data BLOB, PRIMARY KEY (itemtype, id));"
        )
        self._indexed = False

    def add(
        self, itemtype: str, rows: Iterable[dict[str, Any]], ticket_of: Callable[[dict[str, Any]], int | None]
    ) -> int:
        """Keep the rows that belong to a ticket (`ticket_of` says which); returns how many were kept."""
        kept = [(itemtype, ticket, int(row["id"]), marshal.dumps(row)) for row in rows if (ticket := ticket_of(row))]
        with self._lock, self._db:  # one transaction a page: alone, each row would take and drop the file's locks
            self._db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)", kept)
        return len(kept)

    def rows(self, itemtype: str, ticket_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """Each ticket's rows of `itemtype`, in id order (as GLPI lists a ticket's sub-items)."""
        found: dict[int, list[dict[str, Any]]] = {ticket: [] for ticket in ticket_ids}
        for start in range(0, len(ticket_ids), _CHUNK):
            chunk = list(ticket_ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT ticket, data FROM rows WHERE itemtype = ? AND ticket IN ({marks}) ORDER BY ticket, id"
            with self._lock:
                if not self._indexed:
                    self._db.execute("CREATE INDEX IF NOT EXISTS rows_by_ticket ON rows (itemtype, ticket, id)")
                    self._indexed = True
                selected = self._db.execute(query, [itemtype, *chunk]).fetchall()
            for ticket, data in selected:
                found[ticket].append(marshal.loads(data))
        return found

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self.path.unlink(missing_ok=True)
