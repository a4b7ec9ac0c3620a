"""A real Prefect server and worker on loopback, started as the README's "Operating it with Prefect" says.

Unlike `prefect_test_harness` (an in-process API without the scheduler's timing), this is `prefect server
start` in a subprocess with its own PREFECT_HOME, its loop services (scheduler, late runs, concurrency) and
a log file the test can read; `worker` is `prefect worker start` of a process pool. Either database works:
SQLite in PREFECT_HOME by default, PostgreSQL through `database_url` (as docker-compose configures it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.net import free_port

#: The settings the README puts in every shell: offline and private.
OFFLINE = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_V2_ENABLED": "false"}


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    home: Path
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a client of this server (CLI, worker): this process's, less any other Prefect
        profile or API, plus `extra`."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        return {**base, **OFFLINE, "PREFECT_HOME": str(self.home), "PREFECT_API_URL": self.api_url, **extra}

    def cli(self, *args: str, cwd: Path, timeout: float = 180, **extra: str) -> subprocess.CompletedProcess[str]:
        """`prefect --no-prompt ARGS` against this server."""
        command = [sys.executable, "-m", "prefect", "--no-prompt", *args]
        return subprocess.run(command, cwd=cwd, env=self.env(**extra), capture_output=True, text=True, timeout=timeout)

    def error_lines(self) -> list[str]:
        """Lines of the server's log that report an error (a service's traceback starts with one)."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if "| ERROR" in line]


@contextmanager
def _process(command: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A background process in its own session, logging to `log`; SIGTERM (then SIGKILL) to its group at exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, sig)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    continue


@contextmanager
def prefect_server(home: Path, *, database_url: str | None = None, **settings: str) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port; returns once `/api/health` answers (fails after 120 s,
    with the log's tail). `settings` are extra PREFECT_* variables of the server (e.g. a shorter loop)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, home / "server.log")
    if database_url:
        settings["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with _process(command, env=server.env(**settings), cwd=home, log=server.log) as proc:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = server.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"prefect server did not start (exit {proc.poll()}); its log ends:\n{tail}")
            try:
                if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield server


@contextmanager
def prefect_worker(server: PrefectServer, pool: str, *, cwd: Path, log: Path, **env: str) -> Iterator[None]:
    """`prefect worker start --pool POOL` against `server`, with `env` added (the hub's ITSM_CONFIG …)."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
    with _process(command, env=server.env(**env), cwd=cwd, log=log):
        yield
