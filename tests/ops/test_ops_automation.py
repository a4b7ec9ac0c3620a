"""The automations prefect.yaml ships, on a real `prefect server start`: two failed hub-cycle runs, and an
`itsm.source.lagging` event, each make the server itself start an `ops-alert/on-trouble` run with the parameters
the trigger renders. (That flow's sending is tested in tests/flows/test_ops_alert.py.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from flows.serve import prefect_server
from tests.conftest import REPO

pytestmark = pytest.mark.server


def test_the_shipped_automations_start_the_ops_alert(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events import Event
    from prefect.events.clients import PrefectEventsClient
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Failed

    with prefect_server(tmp_path / "prefect") as server:
        assert server.cli("work-pool", "create", "itsm-process", "--type", "process", cwd=REPO).returncode == 0
        deployed = server.cli("deploy", "--all", cwd=REPO, ITSM_HOME=str(REPO))
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr

        async def provoke() -> None:
            async with get_client() as client:
                cycle = await client.read_deployment_by_name("hub-cycle/cycle-5min")
                for _ in range(2):  # two failed cycles (no worker: their state is set as a crashed worker would)
                    run = await client.create_flow_run_from_deployment(cycle.id)
                    await client.set_flow_run_state(run.id, Failed(message="GLPI down"), force=True)
            async with PrefectEventsClient(api_url=server.api_url) as events:
                await events.emit(Event(
                    event="itsm.source.lagging",
                    resource={"prefect.resource.id": "itsm.source.glpi-prod", "prefect.resource.name": "glpi-prod"},
                    payload={"entity": "tickets", "lag_minutes": 95, "last_error": "GLPI down"},
                ))  # fmt: skip

        async def ops_runs() -> list[Any]:
            async with get_client() as client:
                ops = await client.read_deployment_by_name("ops-alert/on-trouble")
                from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId

                of_ops = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[ops.id]))
                return await client.read_flow_runs(flow_run_filter=of_ops)

        with temporary_settings({PREFECT_API_URL: server.api_url}):
            asyncio.run(provoke())
            deadline = time.monotonic() + 90
            while True:
                runs = asyncio.run(ops_runs())
                reasons = sorted(run.parameters.get("reason") for run in runs)
                if len(runs) >= 2:
                    break
                assert time.monotonic() < deadline, (
                    f"the automations started {reasons}:\n" + server.log.read_text()[-4000:]
                )
                time.sleep(1)
    assert reasons == ["a source has not synced for too long", "hub-cycle failed twice in a row"]
    lagging = next(run for run in runs if run.parameters["reason"].startswith("a source"))
    assert lagging.parameters["source"] == "glpi-prod"  # rendered from the event
