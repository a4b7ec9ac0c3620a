"""`itsm serve --demo` (`make serve`): the ops path on the demo's data — a simulated GLPI, a Prefect server, the
work pool, the project's deployments and a worker, on loopback, until Ctrl-C.

The pieces are the ones the README's "Operating it with Prefect" starts by hand: `prefect_server` is `prefect
server start` in a subprocess with its own PREFECT_HOME (its scheduler and other loop services, a log file);
`prefect_worker` is `prefect worker start` of a process pool. Either database works for the server: SQLite in
PREFECT_HOME by default, PostgreSQL through `database_url` (as docker-compose configures it). The end-to-end
operations tests use them too.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from itsm_core.errors import ConfigError, HubError

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

    def errors(self, *, tolerate: str | None = None) -> list[str]:
        """The errors of the server's log, each with its traceback; without those whose text holds `tolerate`."""
        entries = re.split(r"\n(?=\d\d:\d\d:\d\d\.\d{3} \| )", self.log.read_text(errors="replace"))
        found = [entry for entry in entries if re.match(r"\d\d:\d\d:\d\d\.\d{3} \| ERROR", entry)]
        return [entry for entry in found if not (tolerate and tolerate in entry)]


@contextmanager
def _process(command: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A background process in its own session, logging to `log`; SIGINT (then SIGKILL) to its group at exit —
    SIGINT, because an idle Prefect process worker ignores a first SIGTERM."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            for sig, grace in ((signal.SIGINT, 15), (signal.SIGKILL, 5)):
                if proc.poll() is not None:
                    break
                os.killpg(proc.pid, sig)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    continue


@contextmanager
def prefect_server(
    home: Path, *, port: int | None = None, database_url: str | None = None, **settings: str
) -> Iterator[PrefectServer]:
    """`prefect server start` on loopback (`port`, else a free one); returns once `/api/health` answers (fails
    after 120 s, with the log's tail). `settings` are extra PREFECT_* variables of the server."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prefect_worker(server: PrefectServer, pool: str, *, cwd: Path, log: Path, **env: str) -> Iterator[None]:
    """`prefect worker start --pool POOL` against `server`, with `env` added (the hub's ITSM_CONFIG …)."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
    with _process(command, env=server.env(**env), cwd=cwd, log=log):
        yield


def project_home() -> Path:
    """The checkout (or installation) that holds prefect.yaml and the flows: $ITSM_HOME, else this package's."""
    home = Path(os.environ.get("ITSM_HOME") or Path(__file__).resolve().parents[1])
    if not (home / "prefect.yaml").is_file():
        raise ConfigError(f"no prefect.yaml in {home}: run from a checkout of itsm-hub, or set ITSM_HOME to one")
    return home


def serve_demo(directory: Path, port: int, console: Console, *, stop: threading.Event | None = None) -> None:
    """The demo's data under a real Prefect server until `stop` is set (Ctrl-C from the CLI): the simulated GLPI and
    Solman, the server on `port`, the `itsm-process` pool, `prefect deploy --all` of the project, a worker, and one
    cycle started at once (the next ones come on the deployments' schedules)."""
    from flows.demo import copy_samples, demo_upstreams
    from itsm_core.store import Store

    home = project_home()
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    copy_samples(directory / "inbox")
    stop = stop or threading.Event()
    config = directory / "itsm.yaml"
    with demo_upstreams(config) as (glpi, solman):
        store = Store(f"sqlite:///{directory / 'itsm.db'}")
        store.upgrade()
        store.dispose()
        console.print(f"simulated GLPI on {glpi.url}, Solman on {solman.origin}; config {config}", highlight=False)
        console.print(f"starting a Prefect server on 127.0.0.1:{port} (its data in {directory / 'prefect'})…")
        with prefect_server(directory / "prefect", port=port) as server:
            for step in (
                ("work-pool", "create", "itsm-process", "--type", "process", "--overwrite"),
                ("deploy", "--all"),
                ("deployment", "run", "hub-cycle/cycle-5min"),
            ):
                done = server.cli(*step, cwd=home, ITSM_HOME=str(home))
                if done.returncode != 0:
                    raise HubError(f"`prefect {' '.join(step)}` failed:\n{done.stdout}{done.stderr}")
            env = {"ITSM_CONFIG": str(config), "PREFECT_LOGGING_EXTRA_LOGGERS": "itsm"}
            with prefect_worker(server, "itsm-process", cwd=directory, log=directory / "worker.log", **env):
                ui = server.api_url.removesuffix("/api")
                console.print(
                    f"\n[bold]Prefect UI: {ui}[/bold]  — Deployments: hub-cycle/cycle-5min (a first cycle is running "
                    "now), sla-check/sla-5min, classify-retrain/retrain-weekly, replay-dead-letters/replay-on-demand."
                    f"\nThe hub's CLI on the same data: itsm -c {config} tickets list"
                    f"\nLogs: {server.log} (server), {directory / 'worker.log'} (worker).  Ctrl-C stops everything.",
                    highlight=False,
                )
                stop.wait()
        console.print("stopped: worker, Prefect server, simulated GLPI and Solman", highlight=False)
