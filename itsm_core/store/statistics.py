"""Planner statistics after bulk writes: the tables a sync grows are analysed once they outgrow what the planner
knows of them.

PostgreSQL plans each query from the statistics of the last ANALYZE. Autovacuum refreshes them once a tenth of a
table has changed, but only on its own schedule (a minute apart by default), and not at all where it is turned
off. A first load writes 100,000 tickets in minutes: the next run's queries were planned for empty tables (the
landing's last-payload query scanned every row of the source instead of reading its index: 190 ms against 50 ms
at 100,000 tickets). So after each page the sync asks, in one cheap query, which of its tables changed by more
than they held at their last analysis (`GROWTH`), and analyses those, in a transaction of its own, at most one
session at a time (`pg_try_advisory_xact_lock`: a second worker skips rather than waits). Doubling keeps the
number of analyses logarithmic in the table's size, a few per table over a first load, and none in a steady
state that autovacuum keeps up with. SQLite is left alone: its planner needs no statistics for these queries.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import String

if TYPE_CHECKING:
    from itsm_core.store import Store

log = logging.getLogger("itsm.store")

#: The tables a sync page writes to in bulk.
SYNCED_TABLES = (
    "inbound_records",
    "external_refs",
    "tickets",
    "comments",
    "comment_refs",
    "audit_events",
    "attachments",
    "outbox",
)
#: A table is analysed once the rows changed since its last analysis reach this share of the rows it had then …
GROWTH = 1.0
#: … and at least this many (small tables are planned well enough without).
MIN_CHANGED = 1000
#: `pg_try_advisory_xact_lock` key: one hub session analyses at a time.
_LOCK_KEY = 0x17_5A_7A_75  # "itsm stats"

_STALE = text(
    """
    SELECT s.relname
    FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid
    WHERE s.relid = ANY(CAST(:tables AS regclass[]))
      AND s.n_mod_since_analyze >= GREATEST(:floor, :growth * c.reltuples)
    ORDER BY s.relname
    """
).bindparams(bindparam("tables", type_=ARRAY(String)))


def stale_tables(conn: Connection, tables: tuple[str, ...] = SYNCED_TABLES) -> list[str]:
    """Those of `tables` whose statistics the planner should not trust any more (always none on SQLite)."""
    if conn.dialect.name != "postgresql":
        return []
    found = conn.execute(_STALE, {"tables": list(tables), "floor": MIN_CHANGED, "growth": GROWTH})
    return list(found.scalars())


def analyze_stale(conn: Connection, tables: tuple[str, ...] = SYNCED_TABLES) -> list[str]:
    """ANALYZE the stale ones of `tables`, in `conn`'s transaction, unless another session is analysing (then
    nothing: it will be asked again after the next page). Returns the tables analysed."""
    stale = stale_tables(conn, tables)
    if not stale or not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}).scalar():
        return []
    started = time.perf_counter()
    preparer = conn.dialect.identifier_preparer
    for table in stale:
        conn.execute(text(f"ANALYZE {preparer.quote(table)}"))
    log.debug("analysed %s in %.2f s (they had grown)", ", ".join(stale), time.perf_counter() - started)
    return stale


def refresh_statistics(store: Store) -> list[str]:
    """`analyze_stale` in a transaction of its own, after a page has committed. A failure is logged, not raised:
    the page is written, and statistics are only an optimisation."""
    if store.dialect != "postgresql":
        return []
    try:
        with store.transaction() as conn:
            return analyze_stale(conn)
    except DBAPIError as exc:
        log.warning("could not refresh the planner statistics (%s); queries may be slower until autovacuum does", exc)
        return []
