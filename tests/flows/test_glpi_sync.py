"""Pulling tickets from a simulated GLPI over real HTTP: pages, faults, trash, time zones, HTML, crashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import itsm_core.sync.batch as batch
from flows.sync import ENTITY, ingest_page
from itsm_core.store.tables import CommentRow, DeadLetterRow, ExternalRefRow, InboundRecordRow, TicketRow
from simulators.glpi.simulator import GlpiSimulator
from tests.support.glpi import GlpiHub, glpi_config

TICKETS = 30


@pytest.fixture
def sim():
    with GlpiSimulator(tickets=TICKETS, seed=11) as sim:
        yield sim


def timeline_size(sim: GlpiSimulator) -> int:
    """Followups, solutions and tasks of the tickets GLPI shows (templates excluded)."""
    tickets = {row["id"] for row in sim.rows("Ticket") if not row.get("is_template")}
    return sum(
        1
        for itemtype in ("ITILFollowup", "ITILSolution", "TicketTask")
        for row in sim.rows(itemtype)
        if row.get("itemtype", "Ticket") == "Ticket" and (row.get("items_id") or row.get("tickets_id")) in tickets
    )


def store_state(hub: GlpiHub) -> dict[str, list]:
    """The store's content without its surrogate keys and clocks: what two runs must agree on."""
    tickets, refs, comments = TicketRow.__table__, ExternalRefRow.__table__, CommentRow.__table__
    with hub.store.connect() as conn:
        by_id = dict(conn.execute(select(refs.c.ticket_id, refs.c.external_id)).all())
        columns = ("title", "description", "status", "priority", "urgency", "impact", "category", "tenant",
                   "requester", "assignee", "assignment_group", "created_at", "custom_fields")  # fmt: skip
        ticket_rows = sorted(
            (by_id[row["id"]], *(json.dumps(row[c], sort_keys=True, default=str) for c in columns))
            for row in conn.execute(select(tickets)).mappings()
        )
        comment_rows = sorted(
            (by_id[row.ticket_id], row.body, row.public, row.author, str(row.created_at))
            for row in conn.execute(select(comments))
        )
    return {"tickets": ticket_rows, "comments": comment_rows}


def test_a_full_pull_brings_every_ticket_with_its_timeline_and_a_second_changes_nothing(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path)
    first = hub.sync()
    visible = sum(1 for row in sim.rows("Ticket") if not row.get("is_template"))
    assert first.fetched == visible and first.quarantined == 0
    assert first.created == visible
    assert hub.count(CommentRow.__table__) == timeline_size(sim)
    second = hub.sync()
    assert second.created == second.updated == second.quarantined == 0
    assert hub.count(TicketRow.__table__) == visible


def test_pages_walk_by_modification_date_and_the_watermark_keeps_the_boundary(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path, page_size=7, overlap_seconds=0)
    runtime = hub.runtime()
    pages = list(runtime.connector.plan_pages(None))
    runtime.connector.close()
    live = [page for page in pages if page.walk == "live"]
    assert all(len(page.ids) <= 7 for page in pages) and len(live) >= TICKETS // 7
    ids = [i for page in pages for i in page.ids]
    assert len(ids) == len(set(ids))  # no ticket in two pages
    dates = [page.date_mod for page in live]
    assert dates == sorted(dates)
    hub.sync()
    cursor = json.loads(hub.watermark())["live"]
    assert cursor["date_mod"] == dates[-1] and live[-1].ids[-1] in cursor["ids"]
    # Without overlap, the next run starts after the boundary: nothing is read again.
    assert hub.sync().fetched == 0
    touched = sim.touch(0.1, seed=5)
    again = hub.sync()
    assert again.fetched == len(touched) and again.updated == len(touched)


def test_the_overlap_is_re_read_until_a_read_starts_after_it_then_only_what_is_newer(database_url, tmp_path):
    """The cursor settles: once a walk's first search ran `overlap_seconds` after the cursor (by GLPI's clock, its
    Date header), every row up to the cursor was visible to it, and later runs read only what is newer."""
    now = [datetime(2026, 12, 4, 9, 0, tzinfo=UTC)]
    with GlpiSimulator(tickets=TICKETS, seed=11, clock=lambda: now[0]) as sim:
        hub = GlpiHub.start(sim, database_url, tmp_path, assets=[], overlap_seconds=120)
        hub.sync()
        touched = sim.touch(0.2, seed=3)
        assert hub.sync().updated == len(touched)
        assert hub.sync().fetched == len(touched)  # within the overlap: re-read (each lands as unchanged)
        now[0] += timedelta(seconds=121)
        settling = hub.sync()  # the first read after the window: once more, and it settles the cursor
        assert (settling.fetched, settling.updated) == (len(touched), 0)
        cursor = json.loads(hub.watermark())["live"]
        assert cursor["settled"] == cursor["date_mod"]
        searches = len([t for _, t, _ in sim.requests if t.startswith("/search/Ticket")])
        assert hub.sync().fetched == 0
        assert len([t for _, t, _ in sim.requests if t.startswith("/search/Ticket")]) - searches == 2  # live, trash
        again = sim.touch(0.1, seed=4)
        assert hub.sync().fetched == len(again)  # only the newer ones


def test_a_sub_item_list_longer_than_glpis_page_comes_whole(sim, database_url, tmp_path):
    glpi_id = sim.add_ticket("Chatty ticket")
    for n in range(40):  # the API user's page is 15 rows: only `range` gets them all (206 + Content-Range)
        sim.add_followup(glpi_id, f"<p>note {n}</p>")
    hub = GlpiHub.start(sim, database_url, tmp_path)
    hub.sync()
    assert hub.comments(glpi_id) == [f"note {n}" for n in range(40)]
    assert any("range=0-999" in target for _, target, _ in sim.requests if "/ITILFollowup" in target)


def test_an_expired_session_a_429_and_a_500_mid_run_are_survived(sim, database_url, tmp_path):
    reference = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'reference.db'}", tmp_path)
    reference.sync()
    hub = GlpiHub.start(sim, database_url, tmp_path, page_size=6)
    runtime = hub.runtime()
    watermark = None
    for number, page in enumerate(runtime.connector.plan_pages(None)):
        if number == 1:
            sim.expire_sessions()  # PHP's session GC: the next call gets 401 ERROR_SESSION_TOKEN_INVALID
        if number == 2:
            sim.fail_next("GET", r"^/getMultipleItems", 429, headers={"Retry-After": "1"})
        if number == 3:
            sim.fail_next("GET", r"^/search/Ticket", 500)
        _, watermark = ingest_page.fn(runtime, ENTITY, page, watermark)
    runtime.connector.close()
    statuses = [status for _, _, status in sim.requests]
    assert 401 in statuses and 429 in statuses and 500 in statuses
    assert store_state(hub) == store_state(reference)


def test_a_malformed_ticket_is_quarantined_whole_and_the_rest_lands(database_url, tmp_path):
    with GlpiSimulator(tickets=TICKETS, seed=11, malformed_ids=[4, 9]) as sim:
        hub = GlpiHub.start(sim, database_url, tmp_path)
        report = hub.sync()
    assert report.quarantined == 2 and report.created == report.fetched - 2
    with hub.store.connect() as conn:
        letters = conn.execute(select(DeadLetterRow.__table__)).mappings().all()
    assert sorted(letter["external_id"] for letter in letters) == ["Ticket/4", "Ticket/9"]
    for letter in letters:
        assert letter["reason"] and json.loads(letter["payload"])["ticket"]["id"] in (4, 9)  # kept whole


def test_a_trashed_ticket_is_marked_and_a_restored_one_unmarked(sim, database_url, tmp_path):
    hub = GlpiHub.start(sim, database_url, tmp_path)
    glpi_id = sim.add_ticket("Old request")
    hub.sync()
    sim.trash("Ticket", glpi_id)
    assert hub.sync().updated == 1
    assert hub.ticket(glpi_id)["custom_fields"]["glpi_deleted"] is True
    sim.restore("Ticket", glpi_id)
    hub.sync()
    assert hub.ticket(glpi_id)["custom_fields"]["glpi_deleted"] is False


def test_glpi_local_dates_become_utc_and_html_is_decoded_once(sim, database_url, tmp_path):
    glpi_id = sim.add_ticket(
        "Café & <VPN> “down”",  # typed in GLPI's form: stored entity-encoded
        "<p>Fish &amp; chips &lt;3</p><script>alert(1)</script><p>Line&nbsp;two</p>",
    )
    hub = GlpiHub.start(sim, database_url, tmp_path)
    hub.sync()
    ticket = hub.ticket(glpi_id)
    local = datetime.strptime(sim.ticket(glpi_id)["date"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Paris"))
    created = ticket["created_at"] if ticket["created_at"].tzinfo else ticket["created_at"].replace(tzinfo=UTC)
    assert created == local.astimezone(UTC)
    assert ticket["title"] == "Café & <VPN> “down”"  # decoded exactly once
    assert ticket["description"].startswith("Fish & chips <3")
    assert "<script" not in (ticket["description_html"] or "") and "alert" not in ticket["description"]


class Crash(Exception):
    pass


def test_a_sync_killed_mid_page_then_rerun_equals_an_uninterrupted_one(sim, database_url, tmp_path, monkeypatch):
    reference = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'reference.db'}", tmp_path)
    reference.sync()

    hub = GlpiHub.start(sim, database_url, tmp_path)
    runtime = hub.runtime()
    pages = list(runtime.connector.plan_pages(None))
    _, watermark = ingest_page.fn(runtime, ENTITY, pages[0], None)
    original = batch.set_outcomes

    def killed(*args, **kwargs):
        raise Crash("killed while writing page 2")

    monkeypatch.setattr(batch, "set_outcomes", killed)  # after tickets and comments are written, before commit
    with pytest.raises(Crash):
        ingest_page.fn(runtime, ENTITY, pages[1], watermark)
    monkeypatch.setattr(batch, "set_outcomes", original)
    runtime.connector.close()

    hub.sync()  # the restart, from the watermark page 1 committed
    assert store_state(hub) == store_state(reference)
    with hub.store.connect() as conn:
        landed = conn.execute(select(InboundRecordRow.__table__.c.external_id)).scalars().all()
    assert len(landed) == len(set(landed))


def test_glpi_documents_become_attachments_with_their_file(database_url, tmp_path):
    from itsm_core.store.tables import AttachmentBlobRow, AttachmentRow

    with GlpiSimulator(tickets=40, seed=7) as sim:
        links = [link for link in sim.rows("Document_Item") if link["itemtype"] == "Ticket"]
        assert links, "the generated data should attach documents to some tickets"
        hub = GlpiHub.start(sim, database_url, tmp_path)
        hub.sync()
        document = {link["documents_id"]: sim.row("Document", link["documents_id"], decoded=True) for link in links}
        files = {(link["items_id"], document[link["documents_id"]]["filename"]) for link in links}
        attachments, blobs = AttachmentRow.__table__, AttachmentBlobRow.__table__
        with hub.store.connect() as conn:
            rows = conn.execute(
                select(attachments.c.ticket_id, attachments.c.name, blobs.c.content).join(
                    blobs, blobs.c.sha256 == attachments.c.sha256
                )
            ).all()
        by_ticket = {hub.ticket_id(glpi_id): glpi_id for glpi_id, _ in files}
        assert {(by_ticket[ticket_id], name) for ticket_id, name, _ in rows} == files
        assert all(content.startswith(b"Simulated content of " + name.encode()) for _, name, content in rows)
        assert hub.sync().updated == 0  # files are part of the landed record: re-reading it changes nothing


def test_a_document_over_max_document_bytes_is_left_out_and_said_while_its_ticket_lands(database_url, tmp_path, caplog):
    from itsm_core.store.tables import AttachmentBlobRow, AttachmentRow

    def files(hub: GlpiHub, glpi_id: int) -> dict[str, bytes]:
        attachments, blobs = AttachmentRow.__table__, AttachmentBlobRow.__table__
        query = (
            select(attachments.c.name, blobs.c.content)
            .join(blobs, blobs.c.sha256 == attachments.c.sha256)
            .where(attachments.c.ticket_id == hub.ticket_id(glpi_id))
        )
        with hub.store.connect() as conn:
            return dict(conn.execute(query).tuples().all())

    with GlpiSimulator(tickets=10, seed=7) as sim:
        glpi_id = sim.add_ticket("The app crashed", "<p>It crashed at 9:00</p>")
        screenshot = b"\x89PNG" + bytes(500)
        sim.add_document(glpi_id, "screenshot.png", screenshot, mime="image/png")
        dump = sim.add_document(glpi_id, "core dump.zip", bytes(5000), mime="application/zip")
        hub = GlpiHub.start(sim, database_url, tmp_path, max_document_bytes=1024, assets=[])
        runtime = hub.runtime()
        report, watermark = batch.BatchReport(), None
        for page in runtime.connector.plan_pages(None):
            page_report, watermark = ingest_page.fn(runtime, ENTITY, page, watermark)
            report += page_report
        notices = runtime.connector.notices()
        runtime.connector.close()

        reason = (
            f"document {dump} core dump.zip (5000 bytes) left out: over max_document_bytes (1024); raise "
            "max_document_bytes to import it with the ticket's next change in GLPI"
        )
        assert report.quarantined == 0  # the ticket landed, with everything but the dump
        assert hub.ticket(glpi_id)["description"] == f"It crashed at 9:00\n\n[{reason}]"
        assert files(hub, glpi_id) == {"screenshot.png": screenshot}
        assert [r.getMessage() for r in caplog.records if f"document {dump} " in r.getMessage()] == [f"glpi: {reason}"]
        assert [n for n in notices if "max_document_bytes" in n] == [
            f"1 GLPI document(s) over max_document_bytes (1024) were left out of their tickets, each ticket's "
            f"description says which: {dump}; raise max_document_bytes to import them with their tickets' next "
            "change in GLPI"
        ]
        assert hub.sync().updated == 0  # the same file and cap land the same bytes: re-reading changes nothing

        # What the line says works: with a higher cap, the ticket's next change brings the file.
        raised = GlpiHub(sim, glpi_config(sim, database_url, tmp_path, max_document_bytes=10_000, assets=[]), hub.store)
        sim.add_followup(glpi_id, "<p>Dump attached above</p>")
        assert raised.sync().updated == 1
        assert files(raised, glpi_id) == {"screenshot.png": screenshot, "core dump.zip": bytes(5000)}
        assert raised.ticket(glpi_id)["description"] == "It crashed at 9:00"
