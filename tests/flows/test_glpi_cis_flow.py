"""The sync-source flow on a real Prefect API for a GLPI source: configuration items first, then tickets, each with
its own watermark and run record; CIs counted in the result and the artifact; a failing CI walk does not keep the
tickets from syncing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.artifacts import cycle_rows
from flows.sync import sync_source
from itsm_core.store import Store
from itsm_core.store.sync_state import get_state
from itsm_core.store.tables import ConfigurationItemRow, TicketCILinkRow
from itsm_core.store.tickets import count_tickets
from simulators.glpi.simulator import HUB_USER_TOKEN, GlpiSimulator

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


def make_config(tmp_path: Path, sim: GlpiSimulator) -> tuple[str, Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = tmp_path / "itsm.yaml"
    config.write_text(
        f"database_url: {url}\nsources:\n"
        f"  - {{name: glpi, kind: glpi, url: '{sim.url}', user_token: {HUB_USER_TOKEN}, timezone: Europe/Paris}}\n"
    )
    store = Store(url)
    store.upgrade()
    return str(config), store


def read_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def latest():
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                sort=ArtifactSort.CREATED_DESC,
                limit=1,
            )
            return found[0].data

    return asyncio.run(latest())


def count(store: Store, table) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_glpi_sync_lands_cis_before_tickets_and_counts_both(tmp_path):
    with GlpiSimulator(tickets=20, seed=3) as sim:
        config, store = make_config(tmp_path, sim)
        assets = sum(
            1
            for t in ("Computer", "NetworkEquipment", "Printer", "Monitor")
            for r in sim.rows(t)
            if not r["is_template"]
        )
        versions = len(sim.rows("SoftwareVersion"))
        tickets = len(sim.rows("Ticket"))
        result = sync_source("glpi", config_path=config)
    assert result["created"] == result["fetched"] == tickets  # the ticket counts, as for any source
    assert result["cis_created"] == result["cis_fetched"] == assets + versions and result["cis_quarantined"] == 0
    assert count(store, ConfigurationItemRow.__table__) == assets + versions
    assert count(store, TicketCILinkRow.__table__) > 0  # linked in the same run: CIs came first
    with store.connect() as conn:
        states = {entity: get_state(conn, "glpi", entity) for entity in ("cis", "tickets")}
    assert all(state["watermark"] and state["last_success_at"] for state in states.values())
    artifact = read_artifact("sync-glpi")
    assert f"Configuration items: **{assets + versions}** fetched" in artifact
    assert f"Tickets: **{tickets}** fetched" in artifact
    (row,) = cycle_rows({"glpi": result})
    assert row["cis"].startswith(f"{assets + versions} fetched: {assets + versions} created")


def test_a_failing_ci_walk_fails_the_run_but_the_tickets_still_sync(tmp_path):
    with GlpiSimulator(tickets=20, seed=3) as sim:
        config, store = make_config(tmp_path, sim)
        # GLPI refuses the computers' search (a broken search option, a plugin): not worth a retry.
        sim.fail_next("GET", r"^/search/Computer", 400, body=["ERROR", "Bad field ID in search criteria"], times=10)
        state = sync_source("glpi", config_path=config, return_state=True)
        assert state.is_failed() and "Bad field ID" in state.message
        with store.connect() as conn:
            cis, tickets = get_state(conn, "glpi", "cis"), get_state(conn, "glpi", "tickets")
            assert count_tickets(conn) == len(sim.rows("Ticket"))
    assert cis["last_run_at"] is not None and cis["last_success_at"] is None
    assert tickets["last_success_at"] is not None
    assert count(store, ConfigurationItemRow.__table__) > 0  # the software versions before the computers landed
