"""What the benchmarks share: a fresh PostgreSQL schema per run, a simulator in a child process, progress on
stderr, peak RSS."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from flows.page_writers import committed_in_order, start_writer, write_records, writer_started
from flows.runtime import SourceRuntime, build_runtime
from flows.sync import ENTITY, fetched_pages, ingest_page, writer_count
from itsm_core.config import HubConfig
from itsm_core.models import RawRecord
from itsm_core.store import Store
from itsm_core.store.sync_state import get_state
from itsm_core.sync.batch import BatchReport

REPO = Path(__file__).resolve().parent.parent
#: A page as `fetched_pages` hands it over: the connector's page and its records.
Fetched = tuple[Any, list[RawRecord]]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def process_peak_rss_mb(pid: int) -> float | None:
    """Another process's peak RSS (Linux: VmHWM), read while it runs."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Schema:
    """A schema made for one run in the given PostgreSQL database (`url` searches it first), dropped by `drop`."""

    def __init__(self, database_url: str, prefix: str) -> None:
        base = make_url(database_url)
        if base.drivername == "postgresql":
            base = base.set(drivername="postgresql+psycopg")
        if base.get_backend_name() != "postgresql":
            raise SystemExit("--database-url must be a PostgreSQL URL")
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(base)
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        url = base.update_query_dict({"options": f"-csearch_path={self.name}"})
        self.url = url.render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.admin.dispose()

    def close(self, *, keep: bool) -> None:
        """Drop the schema, or (`keep`, for inspection) say where it stays."""
        if keep:
            log(f"schema {self.name} kept")
        else:
            self.drop()


class ChildSimulator:
    """``python -m MODULE ARGS --control`` in its own process (its own GIL, so the simulator's work does not slow
    the hub's): the URL on its stdout, commands on its stdin, one JSON line answered per command."""

    def __init__(self, module: str, args: list[str]) -> None:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--control"],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.generation_s: float | None = None
        threading.Thread(target=self._relay_stderr, daemon=True).start()
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.process.kill()
            raise RuntimeError(f"{module} did not start (exit {self.process.wait()})")
        self.startup_s = time.perf_counter() - started

    def _relay_stderr(self) -> None:
        for line in self.process.stderr:
            match = re.match(r"generated \d+ \w+ in ([\d.]+) s", line)
            if match:
                self.generation_s = float(match.group(1))
            log(f"[simulator] {line.rstrip()}")

    def command(self, line: str) -> dict[str, Any]:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"simulator: {reply['error']}")
        return reply

    def stop(self) -> int:
        """End of input stops it (SIGTERM if it does not); returns the exit code."""
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            return self.process.wait(timeout=30)


# --- where the machine's CPU went ----------------------------------------------------------------------------------


def _machine_cpu_s() -> tuple[float, float] | None:
    """CPU seconds this machine's cores have spent busy since boot, and those the hypervisor gave to other guests
    while this one had work (steal) (Linux: /proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick  # guest time is already in user time


def _process_cpu_s(pid: int) -> float | None:
    """Another process's CPU seconds so far (Linux: utime + stime in /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Where the machine's CPU went over a stretch of time: this process (the hub), the simulator's, and the rest
    (PostgreSQL, the kernel, anything else running). With every core busy, no design on this machine can go faster
    than `cores` ÷ (machine CPU per ticket): the budget the figures are measured against."""

    cores = os.cpu_count() or 1

    def __init__(self, simulator_pid: int | None = None) -> None:
        self.simulator_pid = simulator_pid
        self.started = self._read()

    def _read(self) -> tuple[tuple[float, float] | None, float, float | None]:
        simulator = _process_cpu_s(self.simulator_pid) if self.simulator_pid is not None else None
        return _machine_cpu_s(), time.process_time(), simulator

    def spent(self, extra_hub_s: float = 0.0) -> dict[str, float]:
        """CPU seconds since the meter was made: machine, hub, simulator, other (those known here), and steal (what
        the hypervisor took for other guests: a noisy neighbour, not this machine's work). `extra_hub_s` is the
        CPU of the hub's writer processes (`writers`), counted in the hub's."""
        (machine0, hub0, sim0), (machine1, hub1, sim1) = self.started, self._read()
        spent = {"hub": round(hub1 - hub0 + extra_hub_s, 3)}
        if extra_hub_s:
            spent["writers"] = round(extra_hub_s, 3)
        if sim0 is not None and sim1 is not None:
            spent["simulator"] = round(sim1 - sim0, 3)
        if machine0 is not None and machine1 is not None:
            spent["machine"] = round(machine1[0] - machine0[0], 3)
            spent["other"] = round(spent["machine"] - spent["hub"] - spent.get("simulator", 0), 3)
            spent["steal"] = round(machine1[1] - machine0[1], 3)
        return spent


# --- one sync, timed ----------------------------------------------------------------------------------------------


@dataclass
class SyncStats:
    label: str
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # `CpuMeter.spent`: the machine's, hub's, simulator's
    pages: int = 0
    report: BatchReport = field(default_factory=BatchReport)
    split: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    #: (tickets, seconds) of `ingest` per page, to see whether the store slows down as its tables grow
    ingest_pages: list[tuple[int, float]] = field(default_factory=list)
    writers: int = 1  # processes that wrote the pages (`first_load_writers` on a first load)
    writer_peak_rss_mb: float | None = None  # the largest writer process's peak RSS, when there were writers

    def ingest_ms_per_ticket_by_tenth(self) -> list[float]:
        """Mean ingest time per ticket over each tenth of the pages (fewer parts when there are fewer pages)."""
        pages, parts = self.ingest_pages, min(10, len(self.ingest_pages))
        if not pages:
            return []
        bounds = [round(k * len(pages) / parts) for k in range(parts + 1)]
        chunks = [pages[a:b] for a, b in pairwise(bounds)]
        return [round(1000 * sum(s for _, s in c) / max(1, sum(n for n, _ in c)), 2) for c in chunks]

    def summary(self) -> dict[str, Any]:
        counts = {k: v for k, v in self.report.counts().items() if v}
        return {
            "s": round(self.seconds, 3),
            "hub_cpu_s": self.cpu["hub"],  # this process's CPU time (every thread) during the run
            "cpu_s": self.cpu,
            "pages": self.pages,
            "writers": self.writers,
            **({"writer_peak_rss_mb": self.writer_peak_rss_mb} if self.writer_peak_rss_mb else {}),
            **counts,
            "requests": sum(self.requests.values()),
            "requests_by_kind": dict(self.requests.most_common()),
            "split_s": {k: round(v, 3) for k, v in self.split.items()},
            "ingest_ms_per_ticket_by_tenth": self.ingest_ms_per_ticket_by_tenth(),
        }


def run_sync(
    config: HubConfig,
    store: Store,
    source: str,
    instrument: Callable[[SourceRuntime, SyncStats], None] | None,
    label: str,
    simulator_pid: int | None = None,
) -> SyncStats:
    """One pull of every page of tickets from the committed watermark, as `sync-source` runs it: planned and
    fetched ahead on a thread of their own (`fetched_pages`), each page written by the flow's own page task.
    `instrument` may wrap the runtime's connector to time its parts and count its requests into the stats; with
    `simulator_pid`, the stats say where the machine's CPU went (`CpuMeter`)."""
    stats = SyncStats(label)
    runtime = build_runtime(config, config.source(source), store=store)
    if instrument is not None:
        instrument(runtime, stats)
    with store.connect() as conn:
        watermark = (get_state(conn, source, ENTITY) or {}).get("watermark")
    writers = writer_count(runtime, ENTITY, watermark)
    started, meter = time.perf_counter(), CpuMeter(simulator_pid)
    last_log = started

    def written(page_report: BatchReport) -> None:
        nonlocal last_log
        stats.report += page_report
        stats.pages += 1
        if time.perf_counter() - last_log > 30:
            last_log = time.perf_counter()
            done = stats.report.fetched
            log(f"  {label}: {done} tickets in {last_log - started:.0f} s ({done / (last_log - started):.0f}/s)")

    writers_cpu_s = 0.0
    try:
        pages = _waited_for(fetched_pages(runtime.connector, watermark, ENTITY), stats)
        if writers == 1:
            for page, records in pages:
                task_started = time.perf_counter()
                page_report, watermark = ingest_page.fn(runtime, ENTITY, page, watermark, records)
                task_s = time.perf_counter() - task_started
                stats.split["ingest"] += task_s
                stats.ingest_pages.append((page_report.fetched, task_s))
                written(page_report)
        else:
            # The flow's writer processes without Prefect (a plain process pool of the same set-up and page
            # function), the pages committed in order by the flow's own `committed_in_order`
            context = multiprocessing.get_context("spawn")  # as Prefect's ProcessPoolTaskRunner starts them
            with ProcessPoolExecutor(writers, context, initializer=start_writer, initargs=(config, source)) as pool:
                for _ in range(writers):  # started now, as `writer_processes` starts them
                    pool.submit(writer_started)

                def submit(records: list[RawRecord]) -> _TimedWrite:
                    return _TimedWrite(pool.submit(timed_write_records, source, ENTITY, records), stats)

                for page_report in committed_in_order(runtime, ENTITY, watermark, pages, submit, writers):
                    written(page_report)
                # their CPU, start-up included, is the hub's
                writers_cpu_s = sum(_process_cpu_s(pid) or 0.0 for pid in list(pool._processes))
                stats.writer_peak_rss_mb = max(process_peak_rss_mb(pid) or 0.0 for pid in list(pool._processes))
            stats.split["writing"] = time.perf_counter() - started - stats.split["waiting_for_fetch"]
    finally:
        runtime.connector.close()
    stats.seconds = time.perf_counter() - started
    stats.cpu = meter.spent(extra_hub_s=writers_cpu_s)
    stats.split["other"] = stats.seconds - stats.split["waiting_for_fetch"] - stats.split["ingest"]
    if writers > 1:
        stats.split["other"] -= stats.split["writing"]
    stats.writers = writers
    return stats


def _waited_for(pages: Iterator[Fetched], stats: SyncStats) -> Iterator[Fetched]:
    """`pages`, the time spent waiting for each one counted as `waiting_for_fetch`."""
    while True:
        waiting = time.perf_counter()
        item = next(pages, None)
        stats.split["waiting_for_fetch"] += time.perf_counter() - waiting
        if item is None:
            return
        yield item


def timed_write_records(source: str, entity: str, records: list[RawRecord]) -> tuple[BatchReport, float]:
    """`write_records` in a writer process, with how long it took there."""
    started = time.perf_counter()
    report = write_records(source, entity, records)
    return report, time.perf_counter() - started


@dataclass
class _TimedWrite:
    """A page handed to a writer process; its write time goes to the stats as the flow takes its report, in plan
    order."""

    future: Future[tuple[BatchReport, float]]
    stats: SyncStats

    def result(self) -> BatchReport:
        report, seconds = self.future.result()
        self.stats.ingest_pages.append((report.fetched, seconds))
        self.stats.split["ingest_in_writers"] += seconds
        return report
