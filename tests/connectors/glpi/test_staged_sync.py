"""Ticket sub-items are read in bulk (`connectors/glpi/timelines.py`) and land exactly what the per-ticket path
lands: a full sync by itemtype-wide walks, an incremental one by walks of what changed laid over the last landed
documents. An itemtype GLPI refuses to list globally falls back to the per-ticket path alone."""

from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import func, select

import connectors.glpi.source as glpi_source
import connectors.glpi.timelines as glpi_timelines
from connectors.glpi.source import GlpiConnector, GlpiPage
from connectors.glpi.timelines import SUB_ITEMS, Timelines
from itsm_core.store.landing import last_payloads
from itsm_core.store.tables import CommentRefRow, InboundRecordRow
from simulators.glpi.simulator import GlpiSimulator
from tests.flows.test_glpi_sync import store_state
from tests.support.glpi import GlpiHub

PER_TICKET = re.compile(r"^/Ticket/\d+/(\w+)")


@pytest.fixture
def sim(monkeypatch):
    monkeypatch.setattr(glpi_timelines, "SUB_ITEMS_PAGE", 7)  # every walk and list spans pages
    with GlpiSimulator(tickets=40, seed=13) as sim:
        chatty = sim.add_ticket("Chatty ticket")
        for n in range(20):
            sim.add_followup(chatty, f"<p>note {n}</p>", is_private=n % 3 == 0)
        sim.trash("Ticket", sim.add_ticket("Trashed one"))
        yield sim


def landed(hub: GlpiHub) -> dict[str, bytes]:
    """Each ticket's document as it last landed."""
    inbound = InboundRecordRow.__table__
    with hub.store.connect() as conn:
        external_ids = set(conn.execute(select(inbound.c.external_id)).scalars())
        return last_payloads(conn, "glpi", external_ids)


def per_ticket_requests(sim: GlpiSimulator, since: int) -> set[str]:
    return {m.group(1) for _, target, _ in list(sim.requests)[since:] if (m := PER_TICKET.match(target))}


def per_ticket_hub(sim, tmp_path, monkeypatch) -> GlpiHub:
    """The reference: every ticket's sub-items read ticket by ticket (`GET /Ticket/:id/:sub`), from scratch."""
    hub = GlpiHub.start(sim, f"sqlite:///{tmp_path / f'per-ticket-{len(sim.requests)}.db'}", tmp_path, assets=[])
    with monkeypatch.context() as patch:
        patch.setattr(Timelines, "stage_all", lambda self: None)  # no stage: each page reads per ticket
        hub.sync()
    return hub


def test_a_full_sync_by_itemtype_wide_walks_lands_what_the_per_ticket_path_lands(
    sim, database_url, tmp_path, monkeypatch, caplog
):
    reference = per_ticket_hub(sim, tmp_path, monkeypatch)
    assert per_ticket_requests(sim, 0) == set(SUB_ITEMS.values())  # the reference did read per ticket
    before = len(sim.requests)
    hub = GlpiHub.start(sim, database_url, tmp_path, assets=[])
    with caplog.at_level(logging.INFO, logger="itsm.connectors.glpi"):
        report = hub.sync()
    assert report.quarantined == 0
    assert per_ticket_requests(sim, before) == set()  # not one request per ticket
    walked = {target.split("?")[0] for _, target, _ in list(sim.requests)[before:]}
    assert {f"/{itemtype}" for itemtype in SUB_ITEMS.values()} <= walked
    assert landed(hub) == landed(reference)  # the same documents, byte for byte
    assert store_state(hub) == store_state(reference)  # so the same tickets and comments (private ones too)
    private = [c for c in store_state(hub)["comments"] if c[2] is False]
    assert private, "the seed should hold private followups or tasks"
    # the run's log says what the walks read before its first page, by itemtype: what landed
    said = [r.getMessage() for r in caplog.records if "walked every sub-item itemtype-wide" in r.getMessage()]
    assert len(said) == 1, said
    counts = {name: int(n.replace(",", "")) for name, n in re.findall(r"(\w+) ([\d,]+)", said[0].split("(")[1])}
    assert set(counts) == set(SUB_ITEMS.values())
    refs = CommentRefRow.__table__
    with hub.store.connect() as conn:
        followups = conn.execute(
            select(func.count()).select_from(refs).where(refs.c.external_id.like("ITILFollowup/%"))
        ).scalar_one()
    assert counts["ITILFollowup"] == followups > 20  # the chatty ticket's twenty, and the seed's


def test_an_itemtype_glpi_will_not_list_globally_is_read_per_ticket_and_said_once(sim, tmp_path, monkeypatch):
    reference = per_ticket_hub(sim, tmp_path, monkeypatch)
    sim.fail_next("GET", r"^/ITILFollowup\?", 403, body=["ERROR_RIGHT_MISSING", "You don't have permission"], times=50)
    before = len(sim.requests)
    hub = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, assets=[])
    runtime = hub.runtime()
    pages = list(runtime.connector.plan_pages(None))
    notices = runtime.connector.notices()
    runtime.connector.close()
    assert len(notices) == 1 and "ITILFollowup" in notices[0] and "ticket by ticket" in notices[0]
    hub.sync()
    assert per_ticket_requests(sim, before) == {"ITILFollowup"}  # only the refused itemtype, per ticket
    assert landed(hub) == landed(reference)
    assert pages and all(page.timeline == "stage" for page in pages)


def change_everything_a_timeline_holds(sim: GlpiSimulator) -> dict[str, int]:
    """One change of each kind an incremental run must see, on tickets the full sync landed."""
    tickets = sorted(row["id"] for row in sim.rows("Ticket") if not row["is_deleted"] and row["status"] in (1, 2, 3, 4))
    quiet, private, actors, purged, chatty = tickets[1], tickets[2], tickets[3], tickets[4], tickets[-2]
    before = sim.ticket(quiet)
    sim.add_followup(quiet, "<p>written by an import: GLPI did not bump the ticket</p>")
    sim.update("Ticket", quiet, date_mod=before["date_mod"], users_id_lastupdater=before["users_id_lastupdater"])
    sim.add_followup(private, "<p>only technicians see this</p>", is_private=True)
    for link in sim.rows("Ticket_User", tickets_id=actors)[:1]:
        sim.purge("Ticket_User", link["id"])
    sim.add_actor(actors, 3, login="tech")
    for followup in sim.followups(chatty)[:2]:
        sim.purge("ITILFollowup", followup["id"])
    for n in range(9):  # the chatty ticket's followups span more pages
        sim.add_followup(chatty, f"<p>more {n}</p>")
    sim.add_document(private, "notes.txt", b"a file added later")
    new = sim.add_ticket("Opened after the full sync", requester="tech")
    sim.add_followup(new, "<p>first answer</p>")
    sim.purge("Ticket", purged)
    return {"quiet": quiet, "new": new}


def test_an_incremental_run_lands_what_the_per_ticket_path_lands_without_reading_per_ticket(
    sim, database_url, tmp_path, monkeypatch
):
    hub = GlpiHub.start(sim, database_url, tmp_path, assets=[])
    hub.sync()
    changed = change_everything_a_timeline_holds(sim)
    before = len(sim.requests)
    report = hub.sync()
    assert report.quarantined == 0 and report.fetched >= 5, report.counts()
    assert per_ticket_requests(sim, before) == set()  # sub-items walked, not read ticket by ticket
    walks = [target for _, target, _ in list(sim.requests)[before:] if "order=DESC" in target]
    assert {target.split("?")[0] for target in walks} == {f"/{itemtype}" for itemtype in SUB_ITEMS.values()}
    reference = per_ticket_hub(sim, tmp_path, monkeypatch)
    ours, theirs = landed(hub), landed(reference)
    theirs_ids = set(theirs)
    assert {k: v for k, v in ours.items() if k in theirs_ids} == theirs  # byte for byte, purged one aside
    assert "written by an import" in ours[f"Ticket/{changed['quiet']}"].decode()
    comments = {(ticket, body) for ticket, body, *_ in store_state(hub)["comments"]}
    assert (f"Ticket/{changed['quiet']}", "written by an import: GLPI did not bump the ticket") in comments
    again = len(sim.requests)
    hub.sync()
    assert per_ticket_requests(sim, again) == set()
    assert landed(hub) == ours  # a run with nothing new changes nothing


def test_an_incremental_run_reads_an_itemtype_glpi_will_not_list_per_ticket_and_says_so(sim, tmp_path, monkeypatch):
    hub = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, assets=[])
    hub.sync()
    change_everything_a_timeline_holds(sim)
    sim.fail_next("GET", r"^/Ticket_User\?", 403, body=["ERROR_RIGHT_MISSING", "You don't have permission"], times=50)
    before = len(sim.requests)
    runtime = hub.runtime()
    list(runtime.connector.plan_pages(hub.watermark()))
    notices = runtime.connector.notices()
    runtime.connector.close()
    assert len(notices) == 1 and "Ticket_User" in notices[0]
    hub.sync()
    assert per_ticket_requests(sim, before) == {"Ticket_User"}
    reference = per_ticket_hub(sim, tmp_path, monkeypatch)
    ours, theirs = landed(hub), landed(reference)
    assert {k: v for k, v in ours.items() if k in theirs} == theirs


def test_an_incremental_run_splits_a_search_into_smaller_pages_that_land_the_same(sim, tmp_path, monkeypatch):
    monkeypatch.setattr(glpi_source, "MERGE_PAGE", 2)  # the hub's searches read 10 rows: 5 pages each
    hub = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, assets=[])
    hub.sync()
    open_tickets = [row["id"] for row in sim.rows("Ticket") if not row["is_deleted"] and row["status"] in (1, 2, 3, 4)]
    assert len(open_tickets) >= 4
    for ticket in open_tickets[:3]:
        sim.add_followup(ticket, f"<p>answer to {ticket}</p>")
    sim.update("Ticket", open_tickets[3], urgency=5)
    for n in range(5):
        sim.add_followup(sim.add_ticket(f"Opened after the first sync ({n})"), "<p>first answer</p>")
    pages: list[GlpiPage] = []
    fetch_page = GlpiConnector.fetch_page
    monkeypatch.setattr(GlpiConnector, "fetch_page", lambda self, page: pages.append(page) or fetch_page(self, page))
    report = hub.sync()
    assert report.quarantined == 0 and report.updated >= 4 and report.created == 5, report.counts()
    live = [page for page in pages if page.walk == "live"]
    assert len(live) >= 4 and all(page.timeline == "merge" and len(page.ids) <= 2 for page in live)
    read = [ticket for page in live for ticket in page.ids]
    assert len(read) == len(set(read))  # each ticket once, in date_mod order across the pages
    assert [page.date_mod for page in live] == sorted(page.date_mod for page in live)
    reference = per_ticket_hub(sim, tmp_path, monkeypatch)
    assert landed(hub) == landed(reference)
    cursor = json.loads(hub.watermark() or "{}")["live"]
    assert cursor["date_mod"] == live[-1].date_mod
    # every ticket read at the cursor's second, whichever page it came in: a tie split across pages is kept whole
    assert set(cursor["ids"]) == {ticket for ticket in read if sim.ticket(ticket)["date_mod"] == cursor["date_mod"]}
