"""A full sync reads ticket sub-items by itemtype-wide walks (`connectors/glpi/staging.py`) and lands exactly what
the per-ticket path lands; an itemtype GLPI refuses to list globally falls back to the per-ticket path alone."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

import connectors.glpi.source as glpi_source
from connectors.glpi.source import SUB_ITEMS, GlpiConnector
from itsm_core.store.tables import InboundRecordRow
from simulators.glpi.simulator import GlpiSimulator
from tests.flows.test_glpi_sync import store_state
from tests.support.glpi import GlpiHub

PER_TICKET = re.compile(r"^/Ticket/\d+/(\w+)")


@pytest.fixture
def sim(monkeypatch):
    monkeypatch.setattr(glpi_source, "SUB_ITEMS_PAGE", 7)  # every walk and list spans pages
    with GlpiSimulator(tickets=40, seed=13) as sim:
        chatty = sim.add_ticket("Chatty ticket")
        for n in range(20):
            sim.add_followup(chatty, f"<p>note {n}</p>", is_private=n % 3 == 0)
        sim.trash("Ticket", sim.add_ticket("Trashed one"))
        yield sim


def landed(hub: GlpiHub) -> dict[str, str]:
    inbound = InboundRecordRow.__table__
    with hub.store.connect() as conn:
        return dict(conn.execute(select(inbound.c.external_id, inbound.c.payload_hash)).all())


def per_ticket_requests(sim: GlpiSimulator, since: int) -> set[str]:
    return {m.group(1) for _, target, _ in list(sim.requests)[since:] if (m := PER_TICKET.match(target))}


def per_ticket_hub(sim, tmp_path, monkeypatch) -> GlpiHub:
    """The reference: every ticket's sub-items read ticket by ticket, as an incremental run reads them."""
    hub = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'per-ticket.db'}", tmp_path, assets=[])
    with monkeypatch.context() as patch:
        patch.setattr(GlpiConnector, "_stage_sub_items", lambda self: None)
        hub.sync()
    return hub


def test_a_full_sync_by_itemtype_wide_walks_lands_what_the_per_ticket_path_lands(
    sim, database_url, tmp_path, monkeypatch
):
    reference = per_ticket_hub(sim, tmp_path, monkeypatch)
    assert per_ticket_requests(sim, 0) == set(SUB_ITEMS.values())  # the reference did read per ticket
    before = len(sim.requests)
    hub = GlpiHub.start(sim, database_url, tmp_path, assets=[])
    report = hub.sync()
    assert report.quarantined == 0
    assert per_ticket_requests(sim, before) == set()  # not one request per ticket
    walked = {target.split("?")[0] for _, target, _ in list(sim.requests)[before:]}
    assert {f"/{itemtype}" for itemtype in SUB_ITEMS.values()} <= walked
    assert landed(hub) == landed(reference)  # the same documents, byte for byte
    assert store_state(hub) == store_state(reference)  # so the same tickets and comments (private ones too)
    private = [c for c in store_state(hub)["comments"] if c[2] is False]
    assert private, "the seed should hold private followups or tasks"


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
    assert pages and all(page.staged for page in pages)


def test_an_incremental_run_reads_only_the_changed_tickets_sub_items_per_ticket(sim, tmp_path):
    hub = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, assets=[], overlap_seconds=0)
    hub.sync()
    changed = sim.add_ticket("A new one")
    before = len(sim.requests)
    hub.sync()
    walked = {target.split("?")[0] for _, target, _ in list(sim.requests)[before:]}
    assert not {f"/{itemtype}" for itemtype in SUB_ITEMS.values()} & walked  # no itemtype-wide walk
    assert {f"/Ticket/{changed}/ITILFollowup"} <= walked
