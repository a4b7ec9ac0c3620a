"""GLPI assets pulled over real HTTP from the simulator as configuration items, on SQLite and PostgreSQL.

A sync here is the flow's own page task (`ingest_page.fn`) over every entity of the source, CIs first, as
`sync-source` runs it (without Prefect).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from connectors.glpi.client import GlpiClient
from flows.sync import ingest_page
from itsm_core.store.cis import get_ci
from itsm_core.store.quarantine import list_dead_letters
from itsm_core.store.sync_state import get_state
from itsm_core.store.tables import (
    AuditEventRow,
    CIRelationshipRow,
    ConfigurationItemRow,
    DeadLetterRow,
    ExternalRefRow,
    TicketCILinkRow,
    TicketRow,
)
from itsm_core.sync.batch import BatchReport
from itsm_core.sync.ingest import replay_dead_letter
from simulators.glpi.simulator import TECH_USER_TOKEN, GlpiSimulator
from tests.support.glpi import SOURCE, GlpiHub

HARDWARE = ("Computer", "NetworkEquipment", "Printer", "Monitor")
CLASSES = {"Computer": "computer", "NetworkEquipment": "network_device", "Printer": "printer", "Monitor": "monitor"}
STATUSES = {"In use": "active", "In stock": "planned", "Under repair": "maintenance", "Retired": "retired"}


class AssetHub(GlpiHub):
    def sync_all(self) -> dict[str, BatchReport]:
        """One run over every entity the source reads, each from its committed watermark, CIs first."""
        runtime = self.runtime()
        reports: dict[str, BatchReport] = {}
        try:
            for entity in runtime.connector.entities:
                with self.store.connect() as conn:
                    watermark = (get_state(conn, SOURCE, entity) or {}).get("watermark")
                report = reports[entity] = BatchReport()
                for page in runtime.connector.plan_pages(watermark, entity):
                    page_report, watermark = ingest_page.fn(runtime, entity, page, watermark)
                    report += page_report
        finally:
            runtime.connector.close()
        for report in reports.values():  # every fetched record counted exactly once
            assert report.fetched == report.created + report.updated + report.unchanged + report.quarantined + (
                report.commented + report.ignored
            )
        return reports

    def cis(self) -> dict[str, dict[str, Any]]:
        """external id → CI row."""
        cis, refs = ConfigurationItemRow.__table__, ExternalRefRow.__table__
        with self.store.connect() as conn:
            query = select(refs.c.external_id, cis).join(refs, refs.c.ci_id == cis.c.id).where(refs.c.system == SOURCE)
            return {row["external_id"]: dict(row) for row in conn.execute(query).mappings()}

    def ci(self, external_id: str) -> dict[str, Any]:
        with self.store.connect() as conn:
            found = get_ci(conn, SOURCE, external_id)
        assert found is not None, external_id
        return found

    def links(self) -> set[tuple[str, str]]:
        """(ticket external id, CI external id) of every ticket ↔ CI link."""
        links, refs = TicketCILinkRow.__table__, ExternalRefRow.__table__
        with self.store.connect() as conn:
            tickets = dict(
                conn.execute(select(refs.c.ticket_id, refs.c.external_id).where(refs.c.ticket_id.is_not(None))).all()
            )
            cis = dict(conn.execute(select(refs.c.ci_id, refs.c.external_id).where(refs.c.ci_id.is_not(None))).all())
            return {(tickets[t], cis[c]) for t, c in conn.execute(select(links.c.ticket_id, links.c.ci_id))}

    def edges(self) -> set[tuple[str, str, str]]:
        rels, refs = CIRelationshipRow.__table__, ExternalRefRow.__table__
        with self.store.connect() as conn:
            cis = dict(conn.execute(select(refs.c.ci_id, refs.c.external_id).where(refs.c.ci_id.is_not(None))).all())
            rows = conn.execute(select(rels.c.source_ci_id, rels.c.rel_type, rels.c.target_ci_id)).all()
        return {(cis[s], r, cis[t]) for s, r, t in rows}

    def audit(self, external_id: str) -> list[tuple[str, Any, Any]]:
        audit = AuditEventRow.__table__
        ci_id = self.ci(external_id)["id"]
        with self.store.connect() as conn:
            query = select(audit.c.field, audit.c.old_value, audit.c.new_value).where(
                audit.c.entity == "ci", audit.c.entity_id == ci_id
            )
            return [tuple(row) for row in conn.execute(query.order_by(audit.c.id))]


@pytest.fixture
def sim():
    with GlpiSimulator(tickets=30, seed=11) as sim:
        yield sim


@pytest.fixture
def hub(sim, database_url, tmp_path) -> AssetHub:
    return AssetHub.start(sim, database_url, tmp_path)


def hardware(sim: GlpiSimulator) -> dict[str, tuple[str, dict[str, Any]]]:
    """external id → (itemtype, decoded row) of the assets GLPI shows (templates are not)."""
    return {
        f"{itemtype}/{row['id']}": (itemtype, row)
        for itemtype in HARDWARE
        for row in sim.rows(itemtype, decoded=True)
        if not row["is_template"]
    }


def expected_status(sim: GlpiSimulator, row: dict[str, Any]) -> str:
    if row["is_deleted"]:
        return "retired"
    state = sim.row("State", row["states_id"]) if row["states_id"] else None
    return STATUSES[state["name"]] if state else "active"


def state_id(sim: GlpiSimulator, name: str) -> int:
    (row,) = sim.rows("State", name=name)
    return row["id"]


def test_a_full_sync_lands_every_asset_as_a_ci_with_class_tenant_and_status_and_a_second_changes_nothing(sim, hub):
    first = hub.sync_all()
    assets = hardware(sim)
    versions = sim.rows("SoftwareVersion", decoded=True)
    assert list(first) == ["cis", "tickets"]  # CIs first
    assert first["cis"].fetched == first["cis"].created == len(assets) + len(versions)
    assert first["cis"].quarantined == 0
    cis = hub.cis()
    assert set(cis) == set(assets) | {f"SoftwareVersion/{row['id']}" for row in versions}
    for external_id, (itemtype, row) in assets.items():
        ci = cis[external_id]
        entity = sim.row("Entity", row["entities_id"], decoded=True)["completename"]
        assert (ci["ci_class"], ci["name"], ci["serial"]) == (CLASSES[itemtype], row["name"], row["serial"])
        assert ci["tenant"] == entity and " > " in entity  # the entity's full name, decoded once
        assert ci["status"] == expected_status(sim, row), external_id
        assert ci["attributes"]["asset_tag"] == row["otherserial"]
        assert ci["attributes"]["glpi_id"] == row["id"] and ci["attributes"]["glpi_deleted"] is False
    software = {cis[f"SoftwareVersion/{row['id']}"]["ci_class"] for row in versions}
    assert software == {"software"}
    with hub.store.connect() as conn:
        watermark = json.loads(get_state(conn, SOURCE, "cis")["watermark"])
    assert {f"{t}:live" for t in ("SoftwareVersion", *HARDWARE)} <= set(watermark)

    second = hub.sync_all()
    for report in second.values():
        assert report.created == report.updated == report.quarantined == 0
    assert hub.cis() == cis


def test_an_asset_changed_in_glpi_updates_its_ci_with_an_audit_event(sim, hub):
    hub.sync_all()
    computer = next(row for row in sim.rows("Computer") if not row["is_template"] and row["states_id"] == 1)
    external_id = f"Computer/{computer['id']}"
    sim.update("Computer", computer["id"], name="PC-PAR-renamed & spare", states_id=state_id(sim, "Under repair"))
    report = hub.sync_all()["cis"]
    # The overlap window re-reads the last records of each walk: those land as unchanged.
    assert (report.updated, report.created, report.unchanged) == (1, 0, report.fetched - 1)
    ci = hub.ci(external_id)
    assert ci["name"] == "PC-PAR-renamed & spare" and ci["status"] == "maintenance"
    trail = hub.audit(external_id)
    assert ("name", computer["name"], "PC-PAR-renamed & spare") in trail
    assert ("status", "active", "maintenance") in trail
    assert ("attributes.glpi_state", "In use", "Under repair") in trail


def test_a_trashed_asset_is_retired_and_a_restored_one_comes_back(sim, hub):
    monitor = next(row for row in sim.rows("Monitor") if not row["is_template"] and row["states_id"] == 1)
    external_id = f"Monitor/{monitor['id']}"
    hub.sync_all()
    sim.trash("Monitor", monitor["id"])
    assert hub.sync_all()["cis"].updated == 1  # found by the trash walk
    ci = hub.ci(external_id)
    assert ci["status"] == "retired" and ci["attributes"]["glpi_deleted"] is True
    sim.restore("Monitor", monitor["id"])
    assert hub.sync_all()["cis"].updated == 1
    ci = hub.ci(external_id)
    assert ci["status"] == "active" and ci["attributes"]["glpi_deleted"] is False


def test_a_malformed_asset_is_quarantined_whole_and_the_rest_lands(sim, hub):
    computer = next(row for row in sim.rows("Computer") if not row["is_template"])
    sim.update("Computer", computer["id"], date_mod="0000-00-00 00:00:00")  # a broken import
    report = hub.sync_all()["cis"]
    assert report.quarantined == 1 and report.created == report.fetched - 1
    assert f"Computer/{computer['id']}" not in hub.cis()
    with hub.store.connect() as conn:
        (letter,) = conn.execute(select(DeadLetterRow.__table__)).mappings().all()
    assert letter["external_id"] == f"Computer/{computer['id']}" and letter["stage"] == "parse"
    assert "date_mod" in letter["reason"]
    assert json.loads(letter["payload"])["item"]["id"] == computer["id"]  # kept whole

    # A replay goes through the CI path (not the ticket mapping) and still fails for the same reason.
    runtime = hub.runtime()
    runtime.connector.close()
    with hub.store.transaction() as conn:
        result = replay_dead_letter(conn, runtime.pipeline, dict(letter))
    assert result.outcome == "quarantined" and "date_mod" in result.error
    assert hub.count(TicketRow.__table__) == sum(1 for row in sim.rows("Ticket") if not row.get("is_template"))

    # Fixed in GLPI (which moves date_mod): the next run lands it.
    sim.update("Computer", computer["id"], comment="date fixed")
    assert hub.sync_all()["cis"].created == 1
    assert hub.ci(f"Computer/{computer['id']}")["ci_class"] == "computer"
    with hub.store.connect() as conn:
        assert len(list_dead_letters(conn)) == 1  # the letter waits for its replay, or to be dropped


def ticket_links(sim: GlpiSimulator) -> set[tuple[str, str]]:
    tickets = {row["id"] for row in sim.rows("Ticket") if not row.get("is_template")}
    return {
        (f"Ticket/{row['tickets_id']}", f"{row['itemtype']}/{row['items_id']}")
        for row in sim.rows("Item_Ticket")
        if row["tickets_id"] in tickets and row["itemtype"] in HARDWARE
    }


def test_tickets_that_name_an_asset_are_linked_to_its_ci_in_the_same_run(sim, hub):
    expected = ticket_links(sim)
    assert expected  # the generated tickets name assets
    hub.sync_all()
    assert hub.links() == expected
    hub.sync_all()
    assert hub.links() == expected

    # A technician links a printer to a ticket: the ticket moves, lands again, and is linked.
    ticket = next(row["id"] for row in sim.rows("Ticket") if not row.get("is_template"))
    printer = next(row["id"] for row in sim.rows("Printer") if not row["is_template"])
    with GlpiClient(sim.url, user_token=TECH_USER_TOKEN) as tech:
        tech.add("Item_Ticket", {"tickets_id": ticket, "itemtype": "Printer", "items_id": printer})
    assert hub.sync_all()["tickets"].updated == 1
    assert hub.links() == expected | {(f"Ticket/{ticket}", f"Printer/{printer}")}


def test_tickets_landed_before_their_assets_are_linked_when_the_assets_land(sim, hub):
    hub.sync()  # tickets only (as before CIs existed)
    assert hub.links() == set()
    reports = hub.sync_all()
    assert reports["tickets"].created == reports["tickets"].updated == 0
    assert hub.links() == ticket_links(sim)


def test_software_installations_become_installed_on_relationships_that_follow_glpi(sim, hub):
    computers = {row["id"] for row in sim.rows("Computer") if not row["is_template"]}
    installs = [
        row
        for row in sim.rows("Item_SoftwareVersion")
        if row["itemtype"] == "Computer" and row["items_id"] in computers
    ]
    expected = {
        (f"SoftwareVersion/{row['softwareversions_id']}", "installed_on", f"Computer/{row['items_id']}")
        for row in installs
        if not row["is_deleted"]
    }
    assert expected
    hub.sync_all()
    assert hub.edges() == expected

    # Uninstalled in GLPI; the computer's own change (an inventory run) brings the new list.
    gone = installs[0]
    computer = f"Computer/{gone['items_id']}"
    sim.purge("Item_SoftwareVersion", gone["id"])
    sim.update("Computer", gone["items_id"], comment="inventory 2026-11-23")
    hub.sync_all()
    removed = (f"SoftwareVersion/{gone['softwareversions_id']}", "installed_on", computer)
    assert hub.edges() == expected - {removed}
    assert f"SoftwareVersion/{gone['softwareversions_id']}" not in hub.ci(computer)["attributes"]["installed_software"]
    assert any(field == "attributes.installed_software" for field, _, _ in hub.audit(computer))


def test_a_source_without_assets_reads_tickets_only(sim, database_url, tmp_path):
    hub = AssetHub.start(sim, database_url, tmp_path, assets="[]")
    reports = hub.sync_all()
    assert list(reports) == ["tickets"] and hub.cis() == {}
