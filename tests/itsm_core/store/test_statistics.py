"""Planner statistics after bulk writes (`itsm_core/store/statistics.py`): which tables are stale, and that
analysing them makes them fresh again, on PostgreSQL; nothing at all on SQLite."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from itsm_core.store import Store
from itsm_core.store.bulk import insert_rows
from itsm_core.store.statistics import MIN_CHANGED, analyze_stale, refresh_statistics, stale_tables
from itsm_core.store.tables import InboundRecordRow

inbound = InboundRecordRow.__table__
AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def land(store: Store, first: int, count: int) -> None:
    rows = [{"source": "glpi", "external_id": f"Ticket/{n}", "payload": b"{}", "payload_format": "json",
             "payload_hash": f"h{n}", "received_at": AT, "outcome": "pending"}
            for n in range(first, first + count)]  # fmt: skip
    with store.transaction() as conn:
        insert_rows(conn, inbound, rows)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_stat_force_next_flush()"))  # counters otherwise reach the view within 1 s


def last_analyzed(store: Store, table: str):
    with store.connect() as conn:
        query = text("SELECT last_analyze FROM pg_stat_user_tables WHERE relid = CAST(:t AS regclass)")
        return conn.execute(query, {"t": table}).scalar()


@pytest.mark.postgres
def test_a_table_is_analysed_once_it_has_doubled_since_its_statistics(postgres_url):
    store = Store(postgres_url)
    store.upgrade()
    try:
        land(store, 0, MIN_CHANGED - 1)
        with store.connect() as conn:
            assert "inbound_records" not in stale_tables(conn)  # small: planned well enough without
        land(store, MIN_CHANGED, 1)
        with store.connect() as conn:
            assert "inbound_records" in stale_tables(conn)
        assert last_analyzed(store, "inbound_records") is None
        assert "inbound_records" in refresh_statistics(store)
        assert last_analyzed(store, "inbound_records") is not None
        with store.connect() as conn:
            assert "inbound_records" not in stale_tables(conn)
            assert conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'inbound_records'")).scalar() == (
                MIN_CHANGED
            )
        land(store, 10_000, MIN_CHANGED - 1)  # grown by less than it held: still trusted
        with store.connect() as conn:
            assert "inbound_records" not in stale_tables(conn)
        land(store, 20_000, 1)
        with store.connect() as conn:
            assert stale_tables(conn) == ["inbound_records"]
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_second_session_skips_the_analysis_another_is_running(postgres_url):
    store = Store(postgres_url)
    store.upgrade()
    try:
        land(store, 0, MIN_CHANGED)
        with store.transaction() as first:
            first.execute(text("SELECT pg_advisory_xact_lock(CAST(:key AS bigint))"), {"key": 0x175A7A75})
            with store.transaction() as second:
                assert analyze_stale(second) == []  # not waiting for the lock
        assert refresh_statistics(store) == ["inbound_records"]
    finally:
        store.dispose()


def test_sqlite_is_left_alone(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    store.upgrade()
    try:
        land(store, 0, MIN_CHANGED * 2)
        with store.connect() as conn:
            assert stale_tables(conn) == []
        assert refresh_statistics(store) == []
    finally:
        store.dispose()
