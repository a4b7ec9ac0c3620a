"""The README's "Operating it with Prefect" commands, run as written (taken from the README, so a drift fails
this test): a fresh HOME, a free port instead of 4200, nothing else changed. Then the cycle it starts completes
under the real worker, the scheduled deployments have upcoming runs, and the server logged no error."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from flows.serve import PrefectServer
from itsm_core.store import Store
from itsm_core.store.tickets import count_tickets
from tests.conftest import REPO
from tests.ops.test_scheduled_runs import CYCLE, RETRAIN, SLA, SQLITE_LOCKED, completed, failed, read_runs
from tests.support.net import free_port

pytestmark = pytest.mark.server


def readme_ops_block() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- ops-commands: begin -->\n```sh\n(.*?)```\n<!-- ops-commands: end -->", text, re.S)
    assert block, "the README lost its ops-commands block"
    return block.group(1)


def test_the_readme_ops_commands_work_as_written(tmp_path: Path):
    port = free_port()
    script = readme_ops_block().replace("4200", str(port))
    home = tmp_path / "home"
    (home / "itsm" / "inbox").mkdir(parents=True)
    (home / "itsm" / "inbox" / "first.eml").write_bytes(
        b"From: Ann <ann@example.org>\r\nSubject: Printer jams\r\nMessage-ID: <first@x>\r\n\r\nIt jams.\r\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ITSM_", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    transcript = (tmp_path / "transcript.log").open("wb")  # a file, as a terminal: the services keep writing
    shell = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO, env=env, stdout=transcript, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert shell.wait(timeout=300) == 0, (tmp_path / "transcript.log").read_text()
        server = PrefectServer(f"http://127.0.0.1:{port}/api", home / ".prefect", home / "itsm" / "server.log")
        deadline = time.monotonic() + 180
        while not completed((runs := read_runs(server))[CYCLE]):
            assert not failed(runs[CYCLE]), (home / "itsm" / "worker.log").read_text()[-4000:]
            assert time.monotonic() < deadline, (home / "itsm" / "worker.log").read_text()[-4000:]
            time.sleep(2)
        for name in (CYCLE, SLA, RETRAIN):
            assert any(r.auto_scheduled and r.state_name == "Scheduled" for r in runs[name]), f"{name}: no upcoming"
        store = Store(f"sqlite:///{home / 'itsm' / 'itsm.db'}")
        with store.connect() as conn:
            assert count_tickets(conn) == 1
        store.dispose()
        errors = server.errors(tolerate=SQLITE_LOCKED)  # the README's server is on SQLite
        assert errors == [], "\n".join(errors)[-6000:]
    finally:
        transcript.close()
        os.killpg(shell.pid, signal.SIGINT)  # the server and the worker the block left running
        time.sleep(3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
