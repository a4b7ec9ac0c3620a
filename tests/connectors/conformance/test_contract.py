"""The connector contract (`connectors/base.py`), checked on every registered kind over its testbed.

A new kind gets every test here by registering (and a testbed: `testbed.py`); a kind that breaks a rule fails.
"""

from __future__ import annotations

import json

import pytest
from pydantic_core import to_jsonable_python

from connectors.base import TICKETS, SourceConnector
from connectors.registry import build_writer
from flows import sync as sync_flow
from flows.outbound import deliver_linked
from flows.runtime import change_ticket
from itsm_core.errors import ParseError
from itsm_core.models import Comment
from itsm_core.store.comments import add_comments
from itsm_core.store.tables import CommentRow, DeadLetterRow, ExternalRefRow, InboundRecordRow, OutboxRow, TicketRow
from itsm_core.store.tickets import change_status
from tests.connectors.conformance.conftest import PAGE_SIZE, Hub
from tests.connectors.conformance.testbed import SOURCE

inbound = InboundRecordRow.__table__
tickets = TicketRow.__table__
comments = CommentRow.__table__
outbox = OutboxRow.__table__
dead_letters = DeadLetterRow.__table__
external_refs = ExternalRefRow.__table__


def plan_json(connector: SourceConnector, entity: str, watermark: str | None) -> str:
    return json.dumps(to_jsonable_python(list(connector.plan_pages(watermark, entity))), sort_keys=True)


def test_planned_pages_are_json_and_the_same_state_plans_the_same_pages(hub: Hub) -> None:
    hub.testbed.add_tickets(3 * PAGE_SIZE - 1)
    first, second = hub.runtime().connector, hub.runtime().connector
    try:
        for entity in first.entities:
            planned = plan_json(first, entity, None)
            assert planned == plan_json(second, entity, None) == plan_json(first, entity, None)
            pages = json.loads(planned)
            assert pages, f"{entity}: nothing planned"
            if entity == TICKETS:
                assert len(pages) >= 3, "pages hold at most page_size records"
    finally:
        first.close()
        second.close()


def test_every_fetched_record_decodes_and_says_its_format(hub: Hub) -> None:
    hub.testbed.add_tickets(PAGE_SIZE + 2)
    connector = hub.runtime().connector
    try:
        fetched = 0
        for entity in connector.entities:
            for page in connector.plan_pages(None, entity):
                for record in connector.fetch_page(page):
                    assert record.payload_format == connector.payload_format
                    assert connector.entity_of(record.external_id) == entity
                    assert isinstance(connector.decode(record.payload, entity), dict)
                    fetched += entity == TICKETS
        assert fetched == PAGE_SIZE + 2
    finally:
        connector.close()


def test_watermarks_only_move_forward(hub: Hub) -> None:
    seen: dict[tuple[str, str], tuple] = {}
    moves = 0

    def check(connector: SourceConnector, entity: str, watermark: str | None) -> None:
        nonlocal moves
        if not connector.incremental:
            assert watermark is None, "a connector without a watermark commits none"
            return
        positions = connector.watermark_positions(watermark)
        assert positions, f"{entity}: a committed page left no position"
        for stream, position in positions.items():
            before = seen.get((entity, stream))
            assert before is None or position >= before, f"{entity} {stream}: {before} → {position}"
            moves += before is not None and position > before
            seen[entity, stream] = position
        for entity_stream in [key for key in seen if key[0] == entity]:
            assert entity_stream[1] in positions, f"{entity}: stream {entity_stream[1]} dropped from the watermark"

    hub.testbed.add_tickets(2 * PAGE_SIZE + 1)
    hub.sync(on_page=check)
    hub.testbed.add_tickets(PAGE_SIZE + 1)
    hub.sync(on_page=check)
    if hub.runtime().connector.incremental:
        assert moves > 0, "the watermark never moved"


def test_a_second_run_from_the_committed_watermark_brings_nothing_new(hub: Hub) -> None:
    hub.testbed.add_tickets(2 * PAGE_SIZE + 1)
    first = hub.sync()
    assert first[TICKETS].created == 2 * PAGE_SIZE + 1
    before = hub.count(tickets), hub.count(inbound)
    second = hub.sync()
    for entity, report in second.items():
        assert (report.created, report.updated, report.quarantined) == (0, 0, 0), entity
        assert report.fetched == report.unchanged, f"{entity}: {report.counts()}"
    assert (hub.count(tickets), hub.count(inbound)) == before


def test_an_unreadable_payload_raises_parse_error_and_is_quarantined_whole(hub: Hub) -> None:
    hub.testbed.add_tickets(3)
    hub.testbed.add_unreadable()
    report = hub.sync()[TICKETS]
    assert (report.created, report.quarantined) == (3, 1), report.counts()
    with hub.store.connect() as conn:
        (letter,) = conn.execute(dead_letters.select()).mappings().all()
        landed = conn.execute(inbound.select().where(inbound.c.id == letter["inbound_record_id"])).mappings().one()
    assert letter["stage"] == "parse" and letter["source"] == SOURCE
    assert letter["payload"] == landed["payload"] and letter["external_id"] == landed["external_id"]
    connector = hub.runtime().connector
    with pytest.raises(ParseError):
        connector.decode(letter["payload"], TICKETS)
    connector.close()


def test_acknowledge_comes_only_after_the_page_is_committed(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.testbed.add_tickets(2 * PAGE_SIZE)
    runtime = hub.runtime()
    acknowledged: list[str] = []
    acknowledge = runtime.connector.acknowledge

    def spy(records) -> None:
        ids = [record.external_id for record in records]
        with hub.store.connect() as conn:  # another connection sees only what is committed
            committed = set(conn.execute(inbound.select().with_only_columns(inbound.c.external_id)).scalars())
        assert set(ids) <= committed, "acknowledged before its records were committed"
        acknowledged.extend(ids)
        acknowledge(records)

    monkeypatch.setattr(runtime.connector, "acknowledge", spy)
    pages = 0
    real_ingest = sync_flow.land_records

    def failing_second_page(conn, runtime, entity, records):
        nonlocal pages
        pages += entity == TICKETS
        if entity == TICKETS and pages == 2:
            raise RuntimeError("the database went away mid-page")
        return real_ingest(conn, runtime, entity, records)

    monkeypatch.setattr(sync_flow, "land_records", failing_second_page)
    with pytest.raises(RuntimeError, match="went away"):
        hub.sync(runtime=runtime)
    with hub.store.connect() as conn:
        landed_tickets = set(conn.execute(tickets.select().with_only_columns(tickets.c.id)).scalars())
    assert acknowledged and len(landed_tickets) == PAGE_SIZE  # the first page only: the second rolled back
    ticket_ids = [external_id for external_id in acknowledged if runtime.connector.entity_of(external_id) == TICKETS]
    assert len(ticket_ids) == PAGE_SIZE, "the failed page's records were acknowledged"


# --- two-way kinds -------------------------------------------------------------------------------------------


def _hub_change(hub: Hub, ticket_id: int, text: str) -> None:
    """A person's change in the hub: a comment and a new status, queued for the linked system."""

    def edit(conn, ticket_id: int):
        added = add_comments(conn, [(ticket_id, Comment(body=text, author="ops@example.org"))])
        changed = {"status"} if change_status(conn, ticket_id, "in_progress", "user:ops") else set()
        return frozenset(changed), tuple(added)

    change_ticket(hub.config, hub.store, ticket_id, edit)


def _linked_ticket(hub: Hub) -> tuple[int, str]:
    with hub.store.connect() as conn:
        row = (
            conn.execute(
                external_refs.select().where(external_refs.c.system == SOURCE, external_refs.c.ticket_id.is_not(None))
            )
            .mappings()
            .first()
        )
    return row["ticket_id"], row["external_id"]


def test_the_same_outbox_row_sent_twice_changes_upstream_once(two_way_hub: Hub) -> None:
    hub = two_way_hub
    hub.testbed.add_tickets(2)
    hub.sync()
    ticket_id, external_id = _linked_ticket(hub)
    before = hub.testbed.comment_count(external_id)
    _hub_change(hub, ticket_id, "Replaced the fuser; please try again.")
    with hub.store.connect() as conn:
        query = outbox.select().where(outbox.c.target_system == SOURCE)
        operations = [row["fields"] for row in conn.execute(query).mappings()]
    assert {operation["op"] for operation in operations} == {"comment", "update"}
    writer = build_writer(hub.config.source(SOURCE))
    try:
        for operation in operations:
            writer.send(operation)
            writer.send(operation)  # a crash between the upstream's answer and the outbox commit sends it again
    finally:
        writer.close()
    assert hub.testbed.comment_count(external_id) == before + 1


def test_a_change_the_hub_wrote_does_not_come_back_as_a_new_change(two_way_hub: Hub) -> None:
    hub = two_way_hub
    hub.testbed.add_tickets(2)
    hub.sync()
    ticket_id, _ = _linked_ticket(hub)
    _hub_change(hub, ticket_id, "Replaced the fuser; please try again.")
    writer = build_writer(hub.config.source(SOURCE))
    try:
        delivered = deliver_linked(hub.store, SOURCE, writer)
    finally:
        writer.close()
    assert delivered.sent == 2 and delivered.failed == 0
    hub_comments, queued = hub.count(comments), hub.count(outbox)
    report = hub.sync()[TICKETS]
    assert report.created == 0 and report.quarantined == 0
    assert hub.count(comments) == hub_comments, "the hub's own comment came back as a new one"
    assert hub.count(outbox) == queued, "the echo was propagated again"
    with hub.store.connect() as conn:
        assert (
            conn.execute(tickets.select().where(tickets.c.id == ticket_id)).mappings().one()["status"] == "in_progress"
        )


# --- kinds that find purges ----------------------------------------------------------------------------------


def test_present_ids_name_every_record_and_gone_tells_only_the_purged(reconciling_hub: Hub) -> None:
    hub = reconciling_hub
    hub.testbed.add_tickets(2 * PAGE_SIZE + 1)
    hub.sync()
    with hub.store.connect() as conn:
        linked = list(conn.execute(
            external_refs.select().with_only_columns(external_refs.c.external_id)
            .where(external_refs.c.system == SOURCE, external_refs.c.ticket_id.is_not(None))
        ).scalars())  # fmt: skip
    connector = hub.runtime().connector
    try:
        pages = list(connector.present_ids(TICKETS))
        assert all(isinstance(external_id, str) for page in pages for external_id in page)
        assert set(linked) <= {external_id for page in pages for external_id in page}
        purged, kept = linked[0], linked[1]
        hub.testbed.purge(purged)
        assert purged not in {external_id for page in connector.present_ids(TICKETS) for external_id in page}
        assert connector.gone(TICKETS, [purged, kept]) == [purged]
    finally:
        connector.close()
