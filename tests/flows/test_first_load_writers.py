"""A first load written by several processes (GLPI's `first_load_writers`, `flows/page_writers.py`) through the
sync-source flow on a real Prefect API and PostgreSQL: it lands what one writer lands, one `write-page` task run
per page, says so in its artifact, and commits a watermark the next run goes on from. SQLite refuses the setting."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner

from connectors.base import TICKETS
from flows.page_writers import start_writer
from flows.sync import sync_source, writer_count
from itsm_core.config import HubConfig, parse_config
from itsm_core.errors import ConfigError
from itsm_core.store.sync_state import get_state
from itsm_core.store.tables import TicketRow
from simulators.glpi.simulator import GlpiSimulator
from tests.flows.test_glpi_cis_flow import read_artifact
from tests.flows.test_glpi_sync import store_state
from tests.support.glpi import SOURCE, GlpiHub

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]


def task_run_names(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            return [run.name for run in runs]

    return asyncio.run(read())


def test_a_first_load_by_two_writer_processes_lands_what_one_writer_lands(postgres_url, tmp_path):
    with GlpiSimulator(tickets=45, seed=21, assets=0) as sim:
        chatty = sim.add_ticket("Chatty ticket")
        for n in range(15):
            sim.add_followup(chatty, f"<p>note {n}</p>", is_private=n % 4 == 0)
        sim.trash("Ticket", sim.add_ticket("Trashed one"))
        (tmp_path / "one").mkdir()
        reference = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'one' / 'store.db'}", tmp_path / "one", assets=[])
        reference.sync()  # one writer: this process, page after page

        hub = GlpiHub.start(sim, postgres_url, tmp_path, assets=[], first_load_writers=2)
        state = sync_source(SOURCE, config_path=str(tmp_path / "itsm.yaml"), return_state=True)
        counts = state.result()
        assert counts["fetched"] == counts["created"] == len(sim.rows("Ticket")) and counts["quarantined"] == 0
        assert store_state(hub) == store_state(reference)  # the same tickets and comments, private ones too

        names = task_run_names(state.state_details.flow_run_id)
        written = [name for name in names if "-tickets-written-" in name]
        assert len(set(written)) == len(written) >= len(sim.rows("Ticket")) // 10  # a task run per page (of ≤ 10)
        assert not [name for name in names if "-tickets-page-" in name]  # none written in the flow's process
        started = sorted(name for name in names if name.startswith(f"{SOURCE}-writer-"))
        assert started == [f"{SOURCE}-writer-1-started", f"{SOURCE}-writer-2-started"]  # before the first page
        assert "pages written by 2 processes at once" in read_artifact(f"sync-{SOURCE}")

        # The watermark was committed: the next run goes on from it, in the flow's process, and re-lands nothing
        sim.add_followup(chatty, "<p>one more</p>")
        again = sync_source(SOURCE, config_path=str(tmp_path / "itsm.yaml"), return_state=True)
        assert again.result()["created"] == 0 and again.result()["updated"] == 1
        later = task_run_names(again.state_details.flow_run_id)
        assert not [name for name in later if "-written-" in name] and any("-tickets-page-" in n for n in later)
        assert "processes at once" not in read_artifact(f"sync-{SOURCE}")


def test_sqlite_refuses_several_writers_naming_the_key(tmp_path):
    text = (
        f"database_url: sqlite:///{tmp_path / 'store.db'}\n"
        "sources: [{name: glpi, kind: glpi, url: 'http://127.0.0.1:9/apirest.php', user_token: t, "
        "first_load_writers: 2}]\n"
    )
    with pytest.raises(ConfigError, match=r"sources\[0\]\.first_load_writers: .*PostgreSQL"):
        parse_config(text)


def glpi_config(database_url: str, writers: str) -> HubConfig:
    return parse_config(
        f"database_url: '{database_url}'\n"
        "sources: [{name: glpi, kind: glpi, url: 'http://127.0.0.1:9/apirest.php', user_token: t, "
        f"first_load_writers: {writers}}}]\n"
    )


@pytest.mark.parametrize(("cpus", "writers"), [(1, 1), (3, 3), (64, 8)])
def test_auto_writers_are_one_per_usable_cpu_up_to_eight_on_postgresql(monkeypatch, cpus, writers):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    source = glpi_config("postgresql://hub@db.example/itsm", "auto").sources[0]
    assert source.first_load_processes(postgresql=True) == writers

    first_load = SimpleNamespace(reads_whole=lambda watermark, entity: watermark is None)
    runtime = SimpleNamespace(source=source, connector=first_load, store=SimpleNamespace(dialect="postgresql"))
    assert writer_count(runtime, TICKETS, None) == writers
    assert writer_count(runtime, TICKETS, '{"tickets": "2026-12-07 10:00:00"}') == 1  # a later run: the flow's own


def test_auto_writers_on_sqlite_are_the_flows_own_process(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    source = glpi_config(f"sqlite:///{tmp_path / 'store.db'}", "auto").sources[0]  # accepted: auto means "can"
    runtime = SimpleNamespace(
        source=source, connector=SimpleNamespace(reads_whole=lambda w, e: True), store=SimpleNamespace(dialect="sqlite")
    )
    assert writer_count(runtime, TICKETS, None) == 1


@pytest.mark.parametrize("writers", ["many", "0", "33", "true"])
def test_a_writer_count_neither_a_number_nor_auto_is_refused_by_name(writers):
    with pytest.raises(ConfigError, match=r"sources\[0\]\.first_load_writers: .*give 1 to 32, or auto"):
        glpi_config("postgresql://hub@db.example/itsm", writers)


TOKEN = "glpi-user-token-5be01d77"


@flow(name="writer-secrets-probe")
def writer_probe(config: HubConfig) -> str:
    from prefect.runtime import flow_run

    with ProcessPoolTaskRunner(max_workers=1, initializer=start_writer, initargs=(config, SOURCE)) as runner:
        runner.submit(say_the_token, {"source": SOURCE}).result()
    return flow_run.id


@task
def say_the_token(source: str) -> None:
    logging.getLogger("itsm.connectors.glpi").warning("GLPI answered 401 for user_token %s; check it", TOKEN)


def test_a_secret_quoted_in_a_writer_process_log_line_reaches_prefect_as_stars(postgres_url, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    monkeypatch.setenv("PREFECT_LOGGING_EXTRA_LOGGERS", "itsm")  # as a worker's runs have it (prefect.yaml)
    config = parse_config(
        f"database_url: '{postgres_url}'\nsources: [{{name: {SOURCE}, kind: glpi, "
        f"url: 'https://glpi.example/apirest.php', user_token: {TOKEN}, first_load_writers: 2}}]\n"
    )
    run_id = writer_probe(config)
    APILogHandler().flush()

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
            return [line.message for line in logs]

    deadline = time.monotonic() + 15  # the writer's lines come through the parent's log worker, in batches
    messages = asyncio.run(read())
    while not any("GLPI answered 401" in m for m in messages) and time.monotonic() < deadline:
        time.sleep(0.5)
        messages = asyncio.run(read())
    assert any("GLPI answered 401 for user_token ***" in m for m in messages), messages
    assert not any(TOKEN in m for m in messages)


def writer_pids() -> list[int]:
    """This process's children started by multiprocessing's spawn: the writer processes."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = next(line for line in status.read_text().splitlines() if line.startswith("PPid:"))
            cmdline = (status.parent / "cmdline").read_bytes()
        except (OSError, StopIteration):
            continue
        if int(ppid.split()[1]) == os.getpid() and b"multiprocessing.spawn" in cmdline:
            found.append(int(status.parent.name))
    return found


def test_a_writer_process_killed_mid_load_fails_the_run_clearly_and_the_next_run_completes_it(postgres_url, tmp_path):
    with GlpiSimulator(tickets=400, seed=8, assets=0) as sim:
        (tmp_path / "one").mkdir()
        reference = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'one' / 'store.db'}", tmp_path / "one", assets=[])
        reference.sync()
        hub = GlpiHub.start(sim, postgres_url, tmp_path, assets=[], first_load_writers=2)
        killed: list[int] = []

        def kill_a_writer_once_pages_land() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if hub.count(TicketRow.__table__) >= 50 and (pids := writer_pids()):
                    os.kill(pids[0], signal.SIGKILL)  # as the kernel's OOM killer would
                    killed.append(pids[0])
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_a_writer_once_pages_land)
        killer.start()
        state = sync_source(SOURCE, config_path=str(tmp_path / "itsm.yaml"), return_state=True)
        killer.join()
        assert killed, "no writer process to kill"
        assert state.is_failed()
        assert hub.count(TicketRow.__table__) < len(sim.rows("Ticket"))  # it did stop part-way
        with hub.store.connect() as conn:
            run = get_state(conn, SOURCE, "tickets")
        assert "writer process" in run["details"]["last_error"] and "next run" in run["details"]["last_error"]

        again = sync_source(SOURCE, config_path=str(tmp_path / "itsm.yaml"))
        assert again["quarantined"] == 0
        assert "pages written by 2 processes at once" in read_artifact(f"sync-{SOURCE}")  # the rest of a first load
        assert store_state(hub) == store_state(reference)  # nothing lost, nothing twice


def test_itsm_sync_run_by_hand_has_its_writers_report_to_its_own_temporary_prefect_server(postgres_url, tmp_path):
    with GlpiSimulator(tickets=60, seed=4, assets=0) as sim:
        hub = GlpiHub.start(sim, postgres_url, tmp_path, assets=[], first_load_writers=2)
        env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_API")}
        command = [sys.executable, "-c", "from flows.cli import main; main()", "sync", SOURCE, "--config", "itsm.yaml"]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        said = result.stdout + result.stderr
        assert "-tickets-written-1" in said  # the writers' task runs were reported
        # to the server `itsm sync` started for its run, not to one each of their own
        assert len(re.findall(r"Starting temporary server", said)) == 1, said
        assert hub.count(TicketRow.__table__) == len(sim.rows("Ticket"))
