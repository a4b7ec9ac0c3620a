"""Purge reconciliation against the GLPI simulator: a ticket purged in GLPI ends cancelled in the hub with an
audit row and its link kept there; a trashed one is left alone; a closed one stays closed; the check is periodic
and idempotent; and the sync-source flow runs it and says so in its artifact."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import connectors.glpi.source as glpi_source
from connectors.base import TICKETS
from flows.sync import PURGES, _purge_checks_due, check_purges, sync_source
from itsm_core.store.sync_state import get_state, save_watermark
from itsm_core.store.tables import AuditEventRow, ExternalRefRow, TicketRow
from simulators.glpi.simulator import GlpiSimulator
from tests.flows.test_glpi_cis_flow import make_config, read_artifact
from tests.support.glpi import GlpiHub

audit_events = AuditEventRow.__table__
external_refs = ExternalRefRow.__table__
hub_tickets = TicketRow.__table__


@pytest.fixture
def synced(tmp_path, database_url, monkeypatch):
    monkeypatch.setattr(glpi_source, "PRESENT_IDS_PAGE", 7)  # several pages of ids, live and trash
    with GlpiSimulator(tickets=30, seed=5, assets=0) as sim:
        hub = GlpiHub.start(sim, database_url, tmp_path, assets=[])
        hub.sync()
        yield sim, hub


def new_tickets(sim: GlpiSimulator, count: int) -> list[int]:
    """Open tickets created in GLPI now (the generated history is mostly closed)."""
    return [sim.add_ticket(f"Scanner {n} offline", assign="tech") for n in range(count)]


def purge_audit(hub: GlpiHub, ticket_id: int) -> list[dict]:
    with hub.store.connect() as conn:
        query = select(audit_events).where(
            audit_events.c.entity_id == ticket_id, audit_events.c.field == "purged_upstream"
        )
        return [dict(row) for row in conn.execute(query).mappings()]


def test_a_purged_ticket_is_cancelled_with_its_link_in_the_audit_trail_and_a_trashed_one_is_not(synced):
    sim, hub = synced
    purged, trashed, kept = new_tickets(sim, 3)
    hub.sync()
    closed = next(row["id"] for row in sim.rows("Ticket") if row["status"] == 6)
    purged_id, closed_id = hub.ticket_id(purged), hub.ticket_id(closed)  # before their identities go
    sim.purge("Ticket", purged)
    sim.purge("Ticket", closed)
    sim.trash("Ticket", trashed)
    runtime = hub.runtime()
    counts = check_purges.fn(runtime, TICKETS)
    assert counts == {"purged": 2, "cancelled": 1, "unconfirmed": 0}
    with hub.store.connect() as conn:
        statuses = dict(conn.execute(select(hub_tickets.c.id, hub_tickets.c.status)).all())
        refs = set(conn.execute(select(external_refs.c.external_id)).scalars())
    assert statuses[purged_id] == "cancelled"
    assert statuses[closed_id] == "closed"  # closed is final
    assert hub.ticket(trashed)["status"] != "cancelled" and hub.ticket(kept)["status"] != "cancelled"
    assert f"Ticket/{purged}" not in refs and f"Ticket/{trashed}" in refs
    (event,) = purge_audit(hub, purged_id)
    assert event["old_value"] == f"Ticket/{purged}" and event["actor"] == "source:glpi"
    again = check_purges.fn(hub.runtime(), TICKETS)  # idempotent: the identities are settled
    assert again == {"purged": 0, "cancelled": 0, "unconfirmed": 0}
    assert len(purge_audit(hub, purged_id)) == 1
    runtime.connector.close()


def test_keep_leaves_the_status_and_still_records_the_purge(tmp_path, database_url):
    with GlpiSimulator(tickets=12, seed=5, assets=0) as sim:
        hub = GlpiHub.start(sim, database_url, tmp_path, assets=[], purged_tickets="keep")
        (purged,) = new_tickets(sim, 1)
        hub.sync()
        before, ticket_id = hub.ticket(purged)["status"], hub.ticket_id(purged)
        sim.purge("Ticket", purged)
        assert check_purges.fn(hub.runtime(), TICKETS) == {"purged": 1, "cancelled": 0, "unconfirmed": 0}
    assert len(purge_audit(hub, ticket_id)) == 1
    with hub.store.connect() as conn:
        assert conn.execute(select(hub_tickets.c.status).where(hub_tickets.c.id == ticket_id)).scalar_one() == before


def test_the_check_runs_when_due_and_never_for_a_source_that_cannot_tell(synced, tmp_path):
    sim, hub = synced
    runtime = hub.runtime()
    assert _purge_checks_due(runtime) == [TICKETS]  # never checked
    check_purges.fn(runtime, TICKETS)
    assert _purge_checks_due(runtime) == []  # checked just now; the default is hourly
    with hub.store.transaction() as conn:
        save_watermark(conn, "glpi", PURGES, "2020-01-01T00:00:00+00:00")
    assert _purge_checks_due(runtime) == [TICKETS]
    runtime.connector.close()
    off = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'off.db'}", tmp_path, assets=[], purge_check_minutes=0)
    assert _purge_checks_due(off.runtime()) == []


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_the_sync_flow_checks_for_purges_and_says_so_in_its_artifact(tmp_path):
    with GlpiSimulator(tickets=15, seed=5, assets=0) as sim:
        config, store = make_config(tmp_path, sim)
        (purged,) = new_tickets(sim, 1)
        sync_source("glpi", config_path=config)
        sim.purge("Ticket", purged)
        with store.transaction() as conn:
            save_watermark(conn, "glpi", PURGES, "2020-01-01T00:00:00+00:00")  # make the hourly check due
        sync_source("glpi", config_path=config)
        with store.connect() as conn:
            assert get_state(conn, "glpi", PURGES)["watermark"] > "2020"
    artifact = read_artifact("sync-glpi")
    assert "## Purged upstream" in artifact and "1 gone upstream (1 cancelled in the hub" in artifact
