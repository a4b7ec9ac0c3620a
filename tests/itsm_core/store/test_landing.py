"""The raw landing read back: the payload each upstream record last landed, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

from itsm_core.models import RawRecord
from itsm_core.store.landing import land_records, last_payloads

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def record(external_id: str, payload: bytes, minutes: int) -> RawRecord:
    return RawRecord(external_id=external_id, payload=payload, payload_format="json",
                     received_at=T0 + timedelta(minutes=minutes))  # fmt: skip


def test_last_payloads_gives_each_records_latest_landing_of_that_source_only(store):
    with store.transaction() as conn:
        land_records(conn, "glpi", [record("Ticket/1", b"A", 0), record("Ticket/2", b"X", 0)])
        land_records(conn, "glpi", [record("Ticket/1", b"B", 5)])
        land_records(conn, "other", [record("Ticket/1", b"elsewhere", 9)])
    with store.connect() as conn:
        assert last_payloads(conn, "glpi", ["Ticket/1", "Ticket/2", "Ticket/3"]) == {"Ticket/1": b"B", "Ticket/2": b"X"}
        assert last_payloads(conn, "glpi", []) == {}


def test_a_large_payload_is_kept_whole_and_on_postgresql_compressed_with_lz4(store):
    # a ticket document's size: PostgreSQL compresses a value above ~2 KB (migration 0010 chose lz4 for it)
    payload = b'{"content": "' + b"printer on floor 3 is out of toner again. " * 100 + b'"}'
    with store.transaction() as conn:
        land_records(conn, "glpi", [record("Ticket/1", payload, 0)])
    with store.connect() as conn:
        assert last_payloads(conn, "glpi", ["Ticket/1"]) == {"Ticket/1": payload}
        if conn.dialect.name == "postgresql":
            method = conn.exec_driver_sql("SELECT pg_column_compression(payload) FROM inbound_records").scalar()
            assert method == "lz4"
