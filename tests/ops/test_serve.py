"""`itsm serve --demo` (`make serve`): one command brings the demo up under a real Prefect server and worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from flows.serve import PrefectServer
from itsm_core.store import Store
from itsm_core.store.tables import ExternalRefRow
from itsm_core.store.tickets import count_tickets
from tests.conftest import REPO
from tests.support.net import free_port

pytestmark = pytest.mark.server


def cycle_states(api_url: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> list[str]:
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["hub-cycle"])))
            return [run.state_name for run in runs]

    with temporary_settings({PREFECT_API_URL: api_url}):
        try:
            return asyncio.run(read())
        except Exception:  # the server is not up yet
            return []


def test_serve_demo_runs_a_cycle_under_the_server_then_stops_cleanly_on_ctrl_c(tmp_path):
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", tmp_path / "prefect", tmp_path / "unused.log")
    command = [sys.executable, "-c", "from flows.cli import main; main()", "serve", "--demo", "--dir", str(tmp_path)]
    env = {k: v for k, v in server.env().items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*command, "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 240
        while "Completed" not in (states := cycle_states(server.api_url)):
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-4000:]
            assert "Failed" not in states and "Crashed" not in states, (tmp_path / "worker.log").read_text()[-4000:]
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-4000:]
            time.sleep(2)
        output = (tmp_path / "serve.log").read_text()
        assert f"Prefect UI: http://127.0.0.1:{port}" in output and "Ctrl-C stops everything" in output
        store = Store(f"sqlite:///{tmp_path / 'itsm.db'}")
        with store.connect() as conn:
            assert count_tickets(conn) > 0  # the demo's mail, GLPI and Solman tickets, by a worker-run cycle
            linked = conn.execute(select(ExternalRefRow.system).distinct()).scalars().all()
            assert {"demo-glpi", "demo-solman"} <= set(linked), linked
        store.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(60)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-4000:]
    assert "stopped: worker, Prefect server, simulated GLPI and Solman" in (tmp_path / "serve.log").read_text()
