"""The set-based writes every store module uses, on SQLite and PostgreSQL: what comes back, in which order, and
that the column types' conversions (UTC timestamps, JSON) are applied on the fast PostgreSQL path too."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from itsm_core.store.audit import audit_event
from itsm_core.store.bulk import insert_ignoring_conflicts, insert_returning, insert_rows, one_of, update_by_id
from itsm_core.store.tables import AuditEventRow, ConfigurationItemRow, DeadLetterRow, InboundRecordRow, TicketRow

letters = DeadLetterRow.__table__
inbound = InboundRecordRow.__table__
PARIS_NOON = datetime(2026, 3, 29, 12, 0, tzinfo=timezone(timedelta(hours=2)))


def letter(n: int) -> dict:
    return {
        "source": "mailbox", "stage": "parse", "external_id": f"m{n}", "payload": b"\x00raw" * n,
        "payload_format": "eml", "reason": f"bad {n}", "traceback": None, "created_at": PARIS_NOON,
        "replay_attempts": 0,
    }  # fmt: skip


def test_insert_returning_gives_each_rows_id_in_order_with_types_converted(store):
    rows = [letter(n) for n in (3, 1, 2)]
    with store.transaction() as conn:
        ids = insert_returning(conn, letters, rows)
    assert len(set(ids)) == 3
    with store.connect() as conn:
        stored = {r.id: r for r in conn.execute(select(letters))}
    assert [stored[i].external_id for i in ids] == ["m3", "m1", "m2"]
    assert [stored[i].reason for i in ids] == ["bad 3", "bad 1", "bad 2"]
    assert all(stored[i].created_at == datetime(2026, 3, 29, 10, 0, tzinfo=UTC) for i in ids)  # stored in UTC
    assert stored[ids[0]].payload == b"\x00raw" * 3


def test_insert_ignoring_conflicts_returns_only_the_new_rows_even_when_a_batch_repeats_one(store):
    def record(external_id: str, digest: str) -> dict:
        return {"source": "mailbox", "external_id": external_id, "payload_hash": digest, "payload": b"x",
                "payload_format": "eml", "received_at": PARIS_NOON, "outcome": "pending"}  # fmt: skip

    key = ["source", "external_id", "payload_hash"]
    returning = [inbound.c.external_id, inbound.c.payload_hash]
    with store.transaction() as conn:
        first = insert_ignoring_conflicts(conn, inbound, [record("a", "1"), record("b", "1")], key, returning)
        again = [record("b", "1"), record("c", "1"), record("c", "1"), record("a", "2")]
        second = insert_ignoring_conflicts(conn, inbound, again, key, returning)
        assert insert_ignoring_conflicts(conn, inbound, [record("a", "1")], key) == []  # no RETURNING: nothing
    assert sorted(first) == [("a", "1"), ("b", "1")]
    assert sorted(second) == [("a", "2"), ("c", "1")]  # b was there, the second c repeats the first
    with store.connect() as conn:
        assert conn.execute(select(inbound.c.external_id)).scalars().all().count("c") == 1


def test_json_columns_are_converted_on_the_fast_path_too(store):
    cis = ConfigurationItemRow.__table__
    attributes = [{"ram_gb": 16, "owner": "Zoë", "tags": ["vpn", None]}, {}]
    rows = [{"ci_class": "computer", "name": f"pc{n}", "status": "active", "attributes": a, "created_at": PARIS_NOON,
             "updated_at": PARIS_NOON} for n, a in enumerate(attributes)]  # fmt: skip
    with store.transaction() as conn:
        ids = insert_returning(conn, cis, rows)
    with store.connect() as conn:
        stored = dict(conn.execute(select(cis.c.id, cis.c.attributes)).all())
    assert [stored[i] for i in ids] == attributes


def test_one_of_selects_the_rows_whose_value_is_listed(store):
    with store.transaction() as conn:
        ids = insert_returning(conn, letters, [letter(n) for n in range(5)])

    def picked(column, values):
        with store.connect() as conn:
            return sorted(conn.execute(select(letters.c.id).where(one_of(conn, column, values))).scalars())

    assert picked(letters.c.id, {ids[1], ids[3], 10**9}) == [ids[1], ids[3]]
    assert picked(letters.c.external_id, ["m0", "m4", "nope"]) == [ids[0], ids[4]]
    assert picked(letters.c.id, []) == []


def test_update_by_id_applies_rows_in_order_even_when_they_repeat_an_id_and_set_different_columns(store):
    with store.transaction() as conn:
        ids = insert_returning(conn, letters, [letter(n) for n in range(3)])
        update_by_id(
            conn,
            letters,
            [
                {"id": ids[0], "reason": "first", "replay_attempts": 1},
                {"id": ids[1], "reason": "other"},
                {"id": ids[0], "reason": "second"},  # later wins for reason; replay_attempts stays from the first
                {"id": ids[2], "created_at": PARIS_NOON + timedelta(hours=1)},
            ],
        )
    with store.connect() as conn:
        stored = {r.id: r for r in conn.execute(select(letters))}
    assert (stored[ids[0]].reason, stored[ids[0]].replay_attempts) == ("second", 1)
    assert (stored[ids[1]].reason, stored[ids[1]].replay_attempts) == ("other", 0)
    assert stored[ids[2]].created_at == datetime(2026, 3, 29, 11, 0, tzinfo=UTC)


def test_insert_rows_writes_every_row_with_nulls_and_json_kept(store):
    cis = ConfigurationItemRow.__table__
    given = [({"k": None}, None), ({}, "S1")]
    rows = [{"ci_class": "computer", "name": f"pc{n}", "status": "active", "attributes": a, "created_at": PARIS_NOON,
             "updated_at": PARIS_NOON, "serial": s} for n, (a, s) in enumerate(given)]  # fmt: skip
    with store.transaction() as conn:
        insert_rows(conn, cis, rows)
    with store.connect() as conn:
        stored = conn.execute(select(cis.c.name, cis.c.attributes, cis.c.serial).order_by(cis.c.name)).all()
    assert [tuple(r) for r in stored] == [("pc0", {"k": None}, None), ("pc1", {}, "S1")]


def test_whole_and_fractional_numbers_go_in_one_batch(store):
    tickets = TicketRow.__table__
    now = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    rows = [{"kind": "incident", "title": f"t{n}", "description": "", "status": "new", "source_type": "api",
             "custom_fields": {}, "created_at": now, "updated_at": now, "classification_confidence": c}
            for n, c in enumerate([1, 0.87, None])]  # fmt: skip
    with store.transaction() as conn:
        ids = insert_returning(conn, tickets, rows)
        update_by_id(
            conn,
            tickets,
            [{"id": ids[0], "classification_confidence": 0.5}, {"id": ids[1], "classification_confidence": 1}],
        )
    with store.connect() as conn:
        stored = dict(conn.execute(select(tickets.c.id, tickets.c.classification_confidence)).all())
    assert [stored[i] for i in ids] == [0.5, 1.0, None]


def test_values_orjson_would_write_otherwise_answer_as_sqlalchemy_does(store):
    """NaN and infinities, naive timestamps, integers beyond 64 bits and non-str keys: the PostgreSQL fast path
    (a JSON document) hands such a batch to SQLAlchemy, so each answers as on SQLite."""
    tickets, cis = TicketRow.__table__, ConfigurationItemRow.__table__
    now = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)

    def ticket(n: int, confidence: float | None) -> dict:
        return {"kind": "incident", "title": f"t{n}", "description": "", "status": "new", "source_type": "api",
                "custom_fields": {}, "created_at": now, "updated_at": now,
                "classification_confidence": confidence}  # fmt: skip

    def ci(n: int, attributes: dict, at: datetime = now) -> dict:
        return {"ci_class": "computer", "name": f"pc{n}", "status": "active", "attributes": attributes,
                "created_at": at, "updated_at": at}  # fmt: skip

    with store.transaction() as conn:
        if store.engine.dialect.name == "postgresql":  # SQLite stores NaN as NULL
            with pytest.raises(IntegrityError), conn.begin_nested():  # confidence_range: NaN is no such number
                insert_rows(conn, tickets, [ticket(0, 0.5), ticket(1, float("nan"))])
        ids = insert_returning(conn, cis, [ci(0, {"big": 2**70, "ok": [1.5]}), ci(1, {1: "one"})])
        with pytest.raises(StatementError, match="naive datetime"):
            insert_rows(conn, cis, [ci(2, {}), ci(3, {}, at=datetime(2026, 3, 29, 10, 0))])
    with store.connect() as conn:
        stored = dict(conn.execute(select(cis.c.id, cis.c.attributes)).all())
        assert conn.execute(select(tickets.c.id)).all() == []
    assert [stored[i] for i in ids] == [{"big": 2**70, "ok": [1.5]}, {"1": "one"}]  # json.dumps' str keys


def test_nan_in_a_json_document_is_refused_by_postgresql_as_before(store):
    """json.dumps writes NaN, which PostgreSQL's JSON refuses (the record is then quarantined with that reason),
    where orjson would have written null without a word."""
    if store.engine.dialect.name != "postgresql":
        return  # SQLite's JSON text takes NaN: the store's behaviour there is its own, unchanged
    cis = ConfigurationItemRow.__table__
    rows = [{"ci_class": "computer", "name": f"pc{n}", "status": "active", "attributes": {"load": value},
             "created_at": PARIS_NOON, "updated_at": PARIS_NOON}
            for n, value in enumerate([0.5, float("nan")])]  # fmt: skip
    with pytest.raises(DBAPIError, match="NaN"), store.transaction() as conn:
        insert_rows(conn, cis, rows)


def test_none_in_a_json_column_is_json_null_as_sqlalchemy_writes_it(store):
    """SQLAlchemy's JSON type writes None as JSON `null`, not SQL NULL; `json_to_recordset` would give NULL."""
    audit = AuditEventRow.__table__
    rows = [audit_event("ticket", n, "status", None, "new", "source:glpi", "glpi", PARIS_NOON) for n in (1, 2)]
    with store.transaction() as conn:
        insert_rows(conn, audit, rows)
    with store.connect() as conn:
        assert conn.execute(select(audit.c.id).where(audit.c.old_value.is_(None))).all() == []
        assert conn.execute(select(audit.c.old_value, audit.c.detail)).all() == [(None, None), (None, None)]
