"""The batch pipeline on a real store: land → decode → map → rules → write, with quarantine and replay."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from itsm_core.errors import ParseError
from itsm_core.mapping import Mapping
from itsm_core.models import RawRecord
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store.quarantine import get_dead_letter, list_dead_letters
from itsm_core.store.tables import AuditEventRow, InboundRecordRow, TicketRow
from itsm_core.store.tickets import get_ticket
from itsm_core.sync.ingest import SourcePipeline, ingest_batch, replay_dead_letter

MAPPING = Mapping(
    source_type="webhook",
    defaults={"kind": "incident"},
    fields={"title": "summary", "requester": "who", "status": "state", "impact": "impact", "urgency": "urgency"},
    value_maps={"status": {"1": "new", "2": "in_progress", "5": "resolved", "6": "closed"}},
    custom_fields={"ref": "ref"},
    required=["requester"],
)
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def decode(payload: bytes) -> dict:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise ParseError(f"not JSON: {exc}") from None


def pipeline(decoder=decode) -> SourcePipeline:
    return SourcePipeline("hooks", decoder, MAPPING, Rules(RulesConfig()))


def record(external_id: str, **fields) -> RawRecord:
    body = {"summary": f"ticket {external_id}", "who": "ann@example.org", "state": 1, "ref": external_id, **fields}
    return RawRecord(external_id, json.dumps(body).encode(), "json", AT)


def count(conn, table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_batch_creates_then_a_replay_of_it_changes_nothing(store):
    records = [record(f"E{i}", impact=1, urgency=2) for i in range(250)]
    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline(), records)
    assert report.counts() == {
        "fetched": 250,
        "created": 250,
        "updated": 0,
        "unchanged": 0,
        "commented": 0,
        "ignored": 0,
        "quarantined": 0,
    }
    with store.transaction() as conn:
        again = ingest_batch(conn, pipeline(), records)
        assert again.counts() == {
            "fetched": 250,
            "created": 0,
            "updated": 0,
            "unchanged": 250,
            "commented": 0,
            "ignored": 0,
            "quarantined": 0,
        }
        assert count(conn, TicketRow.__table__) == 250
        assert count(conn, InboundRecordRow.__table__) == 250
        ticket = get_ticket(conn, 1)
    assert ticket["priority"] == 2  # impact 1 × urgency 2 in the default matrix
    assert ticket["custom_fields"] == {"ref": "E0"}
    assert ticket["external_refs"][0]["system"] == "hooks"
    assert {e["field"] for e in ticket["audit"]} == {"status", "priority", "impact", "urgency"}


def test_changed_payload_updates_owned_fields_and_audits_each(store):
    with store.transaction() as conn:
        ingest_batch(conn, pipeline(), [record("A")])
    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline(), [record("A", summary="printer on fire", state=2)])
        assert report.updated == 1
        ticket = get_ticket(conn, 1)
    assert (ticket["title"], ticket["status"]) == ("printer on fire", "in_progress")
    changes = {(e["field"], e["old_value"], e["new_value"]) for e in ticket["audit"] if e["old_value"] is not None}
    assert changes == {("title", "ticket A", "printer on fire"), ("status", "new", "in_progress")}


def test_resolution_sets_resolved_at(store):
    with store.transaction() as conn:
        ingest_batch(conn, pipeline(), [record("A", state=2)])
        ingest_batch(conn, pipeline(), [record("A", state=5)])
        ticket = get_ticket(conn, 1)
    assert ticket["status"] == "resolved" and ticket["resolved_at"] is not None


def test_bad_records_are_quarantined_whole_and_the_batch_goes_on(store):
    corrupt = RawRecord("X1", b"\x89PNG\r\n\x1a\n not json", "json", AT)
    unmapped = record("X2", state=9)
    anonymous = record("X3", who="")
    good = record("G1")
    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline(), [corrupt, unmapped, good, anonymous])
    assert (report.created, report.quarantined) == (1, 3)
    by_record = {n.external_id: n for n in report.notes}
    assert by_record["X1"].stage == "parse" and "not JSON" in by_record["X1"].reason
    assert by_record["X2"].stage == "map" and "value_maps.status" in by_record["X2"].reason
    assert "no requester" in by_record["X3"].reason
    with store.connect() as conn:
        letters = list_dead_letters(conn)
        assert len(letters) == 3
        kept = get_dead_letter(conn, by_record["X1"].dead_letter_id)
        assert kept["payload"] == corrupt.payload  # whole, byte for byte
        outcomes = dict(conn.execute(select(InboundRecordRow.external_id, InboundRecordRow.outcome)).all())
    assert outcomes == {"X1": "quarantined", "X2": "quarantined", "X3": "quarantined", "G1": "created"}


def test_an_invalid_status_transition_is_quarantined_not_applied(store):
    with store.transaction() as conn:
        ingest_batch(conn, pipeline(), [record("A", state=2)])
        ingest_batch(conn, pipeline(), [record("A", state=5)])
        ingest_batch(conn, pipeline(), [record("A", state=6)])  # closed
        reopen = record("A", state=2, summary="reopen please")  # closed → in_progress: refused
        report = ingest_batch(conn, pipeline(), [reopen])
        assert report.quarantined == 1 and report.notes[0].stage == "store"
        assert "from 'closed' to 'in_progress'" in report.notes[0].reason
        assert get_ticket(conn, 1)["status"] == "closed"


def test_two_versions_of_one_record_in_a_batch_apply_in_order(store):
    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline(), [record("A"), record("A", summary="second"), record("A")])
        # the third is byte for byte the first: a payload landed before changes nothing
        assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
        assert get_ticket(conn, 1)["title"] == "second"
        assert count(conn, TicketRow.__table__) == 1


def test_replay_after_a_fix_creates_the_ticket_once(store):
    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline(), [record("X2", state=9)])
    letter_id = report.notes[0].dead_letter_id

    with store.transaction() as conn:
        failed = replay_dead_letter(conn, pipeline(), get_dead_letter(conn, letter_id))
    assert failed.outcome == "quarantined"
    with store.connect() as conn:
        assert get_dead_letter(conn, letter_id)["replay_attempts"] == 1

    fixed_mapping = MAPPING.model_copy(
        update={"value_maps": {"status": {**MAPPING.value_maps["status"], "9": "pending"}}}
    )
    fixed = SourcePipeline("hooks", decode, fixed_mapping, Rules(RulesConfig()))
    with store.transaction() as conn:
        result = replay_dead_letter(conn, fixed, get_dead_letter(conn, letter_id))
    assert result.outcome == "created"
    with store.connect() as conn:
        letter = get_dead_letter(conn, letter_id)
        assert letter["replayed_at"] is not None and letter["replay_ticket_id"] == result.ticket_id
        assert get_ticket(conn, result.ticket_id)["status"] == "pending"
        assert list_dead_letters(conn) == []
        assert conn.execute(select(InboundRecordRow.outcome)).scalar_one() == "created"


def test_an_unexpected_decoder_bug_is_quarantined_with_its_traceback(store):
    def buggy(payload: bytes) -> dict:
        raise KeyError("charset")

    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline(buggy), [record("A")])
        letter = get_dead_letter(conn, report.notes[0].dead_letter_id)
    assert letter["reason"] == "unexpected KeyError: 'charset'"
    assert "KeyError" in letter["traceback"]


@pytest.mark.parametrize("size", [1, 2000])
def test_audit_rows_are_written_in_bulk(store, size):
    with store.transaction() as conn:
        ingest_batch(conn, pipeline(), [record(f"B{i}", impact=2) for i in range(size)])
        # status, priority, impact per ticket (urgency unknown)
        assert count(conn, AuditEventRow.__table__) == 3 * size


def test_a_record_back_in_an_earlier_state_is_applied_again_but_a_refetch_is_not(store):
    first, second = record("E1"), record("E1", summary="renamed")  # A, B, then A again: a revert
    steps = ((first, "created"), (second, "updated"), (first, "updated"), (first, "unchanged"))
    for batch, outcome in steps:
        with store.transaction() as conn:
            report = ingest_batch(conn, pipeline(), [batch, batch])  # the second copy is a plain re-fetch
        assert (getattr(report, outcome), report.unchanged) == ((2, 2) if outcome == "unchanged" else (1, 1))
    with store.connect() as conn:
        assert count(conn, InboundRecordRow.__table__) == 2


def test_a_record_the_database_refuses_is_quarantined_alone_and_the_page_commits(postgres_url):
    """PostgreSQL refuses NUL in text (SQLite keeps it): no check before the store foresees every such value, so
    the page is retried record by record and only the refused one becomes a dead letter."""
    from itsm_core.store import Store

    store = Store(postgres_url)
    store.upgrade()
    records = [record("E1"), record("E2", summary="bad\x00title"), record("E3")]
    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline(), records)
    assert (report.fetched, report.created, report.quarantined) == (3, 2, 1)
    (note,) = report.notes
    assert note.external_id == "E2" and note.stage == "store" and "database refused" in note.reason
    with store.transaction() as conn:
        again = ingest_batch(conn, pipeline(), records)  # a re-offered page: the refused record landed, no new letter
        assert (again.created, again.quarantined, again.unchanged) == (0, 0, 3)
        assert len(list_dead_letters(conn)) == 1
        assert count(conn, TicketRow.__table__) == 2
    store.dispose()
