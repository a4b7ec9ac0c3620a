"""GLPI pull over real HTTP into PostgreSQL: full sync, 1 % incremental, no-change sync, against raw COPY.

    .venv/bin/python bench/glpi_sync.py --tickets 100000 --database-url postgresql://postgres@127.0.0.1/DB
        [--page-size 200] [--concurrency 4] [--first-load-writers 1] [--latency-ms 0] [--seed 1] [--keep-schema]

The GLPI simulator runs as a separate process (`python -m simulators.glpi.simulator --control`, its own GIL) and
generates N tickets with their followups, solutions, tasks, actors and linked assets (not timed). The hub side
is the page task's own code, without Prefect: `ingest_page.fn(runtime, ENTITY, page, watermark)` for each page of
`plan_pages(watermark)`, as `sync-source` runs it (see tests/support/glpi.py). The timed runs:

1. full sync of every ticket from an empty store;
2. incremental sync after `touch 0.01` in the simulator (1 % of the live tickets get a followup, an urgency
   change or a status step, each moving date_mod to now);
3. a sync with nothing changed, right after: it still re-reads the `overlap_seconds` window before the cursor
   (the touched tickets), since its read starts within the overlap of their `date_mod`;
4. `advance 121` moves the simulator's clock past the overlap (what two minutes between scheduled runs do), then
   a sync that re-reads the window one last time and settles the cursor (`settling_s`), and a sync with nothing
   changed after it (`nochange_settled_s`: the steady state of a quiet schedule);
5. the same 1 % change again on that schedule (`touch 0.01` with the next seed, after `advance 121`): the
   incremental sync (`incremental_steady_s`) and the sync with nothing changed right after it (`nochange_steady_s`).
   Run 2 is the first incremental after a first load, the first time GLPI is asked for its sub-items by date;
   run 5 is one of the runs every schedule makes from then on.

Reference in the same run: PostgreSQL COPY FROM STDIN (psycopg 3 `cursor.copy`, `write_row`) of the canonical
ticket rows the full sync wrote, read back from `tickets` (not timed) into a temporary unindexed table of the
same columns: `ratio_hub_to_copy` = full_tickets_per_s / copy_rows_per_s. And the floor of this design: the same
pages fetched again by the same connector (same requests) and their payloads written raw with COPY, no landing,
mapping or rules: `floor_tickets_per_s`, and `hub_to_floor` = full_tickets_per_s / floor_tickets_per_s.
`--latency-ms` makes the simulator answer each request that much later (a real GLPI takes 30-100 ms).

Database: the benchmark creates a fresh schema `bench_glpi_<random>` in the given database, migrates it (reached
through `options=-csearch_path=...` in the URL) and drops it at the end, unless --keep-schema. The database
itself is never emptied; any database the role may create schemas in will do.

Only the ticket walk is measured (no assets).

Timings per run: pages are planned and fetched on a thread of their own, up to two pages ahead of the one being
written (`flows.sync.fetched_pages`, as `sync-source` runs it), so the wall time is `ingest` (land, map, write
and commit: `ingest_batch` plus the watermark) plus `waiting_for_fetch` (the writer idle, waiting for a page) plus
`other`. With `--first-load-writers N` above 1, the full sync's pages are written by N processes at once, as
`sync-source` writes a first load (`flows/page_writers.py`; here a plain process pool of the same set-up and page
function, without Prefect), and committed in plan order by this process: `writing` is then the time this process
waited for them and committed watermarks, `ingest_in_writers` the pages' time in the writers (summed: they
overlap), and the writers' CPU (start-up included) counts in `hub`'s, shown apart as `writers`. On the fetching
thread, overlapping them: `search` (planning: the sub-item walks before the first page,
then the keyset /search calls), `fetch_page`, and within it `get_tickets` (getMultipleItems of the page's
tickets), `sub_items` (the page's sub-items: from the first load's stage, or the walked changes laid over the
last landed documents with the batched re-reads of changed tickets' rows, in parallel over `--concurrency`
connections; and the documents' files), `names` (users, groups, categories, entities not yet cached),
`documents` (building the JSON payloads). HTTP requests are counted on the hub's side, and `hub_cpu_s` is the
benchmark process's CPU time (all threads) during a run.
Where the machine's CPU went (Linux): `cpu_s` per run and `cpu_ms_per_ticket` for the full sync and the floor,
split into `hub` (this process), `simulator`, `other` (PostgreSQL, the kernel, the rest) and `machine` (every core,
from /proc/stat); `steal` is what the hypervisor gave other guests meanwhile, the mark of a noisy neighbour.
`cpu_bound_tickets_per_s` (and `floor_cpu_bound_tickets_per_s`) = `cores` ÷ machine CPU per ticket: the rate that
work could reach on this machine with every core busy. On a machine shared with the simulator it bounds any
target: a real GLPI's CPU is not the hub's machine's.
`peak_rss_mb` is this process's peak RSS after the timed syncs, before the COPY reference loads the rows
(`peak_rss_with_copy_mb` after it); `simulator_peak_rss_mb` and `simulator_cpu_s` are the child's, once it exited.
Progress goes to stderr; the last stdout line is one JSON object with full_tickets_per_s, incremental_1pct_s,
nochange_s, settling_s, nochange_settled_s, incremental_steady_s, nochange_steady_s, requests_per_ticket,
floor_tickets_per_s, hub_to_floor, copy_rows_per_s, ratio_hub_to_copy, the CPU budget, peak_rss_mb and the details.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import ChildSimulator, CpuMeter, Schema, SyncStats, log, peak_rss_mb, run_sync
from flows.runtime import SourceRuntime, build_runtime
from flows.sync import ENTITY, fetched_pages
from itsm_core.config import HubConfig, parse_config
from itsm_core.store import Store
from itsm_core.store.tables import CommentRow, TicketRow
from simulators.glpi.simulator import HUB_USER_TOKEN

SOURCE = "glpi"
TIMEZONE = "Europe/Paris"


# --- the simulator, as a child process ------------------------------------------------------------------------


def start_simulator(tickets: int, seed: int, latency_ms: float = 0) -> ChildSimulator:
    """`python -m simulators.glpi.simulator --control` in its own process."""
    args = ["--tickets", str(tickets), "--seed", str(seed), "--timezone", TIMEZONE, "--latency-ms", str(latency_ms)]
    return ChildSimulator("simulators.glpi.simulator", args)


# --- a fresh schema in the given database -----------------------------------------------------------------------


# --- one sync, instrumented ------------------------------------------------------------------------------------


def _request_kind(path: str) -> str:
    rest = path.split("apirest.php", 1)[-1].strip("/").split("/")
    if rest[0] in ("search", "getMultipleItems", "initSession", "killSession"):
        return rest[0] if rest[0] != "search" else f"search/{rest[1] if len(rest) > 1 else ''}"
    if len(rest) >= 3:
        return f"{rest[0]}/:id/{rest[2]}"
    return "/".join(rest[:1]) + ("/:id" if len(rest) > 1 else "")


def _timed(split: Counter[str], key: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            split[key] += time.perf_counter() - started

    return wrapper


def instrument(runtime: SourceRuntime, stats: SyncStats) -> None:
    """Count requests (httpx hook, every thread) and time the parts of `fetch_page` (main thread only)."""
    connector: Any = runtime.connector
    lock = threading.Lock()

    def count(request: Any) -> None:
        kind = _request_kind(request.url.path)
        with lock:
            stats.requests[kind] += 1

    connector.client._http.event_hooks = {"request": [count], "response": []}
    split, marks = stats.split, {}
    get_many, names_load, fetch_page = connector.client.get_many, connector.names.load, connector.fetch_page
    plan_pages = connector.plan_pages

    def timed_plan(watermark: str | None, entity: str = ENTITY) -> Any:
        pages = plan_pages(watermark, entity)
        while True:
            started = time.perf_counter()
            page = next(pages, None)
            split["search"] += time.perf_counter() - started
            if page is None:
                return
            yield page

    def timed_get_many(itemtype: str, ids: Any, **kwargs: Any) -> Any:
        # the page's own tickets, on the fetching thread (`fetched_pages`); not the pool's reads
        if itemtype != "Ticket" or not threading.current_thread().name.startswith("fetch-"):
            return get_many(itemtype, ids, **kwargs)
        result = _timed(split, "get_tickets", get_many)(itemtype, ids, **kwargs)
        marks["tickets_done"] = time.perf_counter()
        return result

    def timed_names(documents: Any) -> None:
        marks["names_start"] = time.perf_counter()
        names_load(documents)
        marks["names_done"] = time.perf_counter()

    def timed_fetch(page: Any) -> Any:
        marks.clear()
        started = time.perf_counter()
        records = fetch_page(page)
        done = time.perf_counter()
        split["fetch_page"] += done - started
        if {"tickets_done", "names_start", "names_done"} <= marks.keys():
            split["sub_items"] += marks["names_start"] - marks["tickets_done"]
            split["names"] += marks["names_done"] - marks["names_start"]
            split["documents"] += done - marks["names_done"]
        return records

    connector.client.get_many = timed_get_many
    connector.names.load = timed_names
    connector.fetch_page = timed_fetch
    connector.plan_pages = timed_plan


# --- the references: COPY of the same ticket rows; the same pages fetched and written raw ---------------------------


def floor_reference(config: HubConfig, store: Store, simulator_pid: int) -> tuple[int, float, dict[str, float]]:
    """The floor of this design: every page fetched as the full sync fetched it (same connector, same requests,
    fetched ahead of the writer the same way) and its payloads written raw with COPY into an unindexed temporary
    table — no landing, mapping or rules."""
    runtime = build_runtime(config, config.source(SOURCE), store=store)
    connector = runtime.connector
    written = 0
    started, meter = time.perf_counter(), CpuMeter(simulator_pid)
    try:
        with store.engine.begin() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cursor:
                cursor.execute("CREATE TEMP TABLE floor_ref (external_id text, payload bytea) ON COMMIT DROP")
                for _, records in fetched_pages(connector, None, ENTITY):  # fetched ahead, as the hub does
                    with cursor.copy("COPY floor_ref (external_id, payload) FROM STDIN") as copy:
                        for record in records:
                            copy.write_row((record.external_id, record.payload))
                    written += len(records)
    finally:
        connector.close()
    return written, time.perf_counter() - started, meter.spent()


def copy_reference(store: Store) -> tuple[int, float]:
    """COPY FROM STDIN of every `tickets` row (read back first, not timed) into an unindexed temporary table."""
    tickets = TicketRow.__table__
    with store.engine.begin() as conn:
        rows = conn.execute(select(tickets)).all()
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE copy_ref (LIKE tickets) ON COMMIT DROP")
            cursor.execute(
                "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = 'copy_ref'::regclass AND attnum > 0 "
                "AND NOT attisdropped"
            )
            # in the model's column order, as the rows are: migrations append columns, so the table's may differ
            oid_of = dict(cursor.fetchall())
            oids = [oid_of[c.name] for c in tickets.columns]
            columns = ", ".join(f'"{c.name}"' for c in tickets.columns)
            started = time.perf_counter()
            with cursor.copy(f"COPY copy_ref ({columns}) FROM STDIN") as copy:
                copy.set_types(oids)
                for row in rows:
                    copy.write_row(row)
            elapsed = time.perf_counter() - started
            cursor.execute("SELECT count(*) FROM copy_ref")
            copied = cursor.fetchone()[0]
    assert copied == len(rows), (copied, len(rows))
    return len(rows), elapsed


# --- main ----------------------------------------------------------------------------------------------------------


def cpu_budget(full: dict[str, float], tickets: int, floor: dict[str, float], floor_tickets: int) -> dict[str, Any]:
    """The full sync's and the floor's CPU per ticket, machine-wide and by process, and what each would reach with
    every core of this machine busy (`cpu_bound_*`: cores ÷ machine CPU per ticket), so a target can be read
    against what the machine itself allows."""
    figures: dict[str, Any] = {"cores": CpuMeter.cores}
    for prefix, spent, count in (("", full, tickets), ("floor_", floor, floor_tickets)):
        per_ticket = {who: round(1000 * seconds / max(1, count), 3) for who, seconds in spent.items()}
        figures[f"{prefix}cpu_ms_per_ticket"] = per_ticket
        if per_ticket.get("machine"):
            figures[f"{prefix}cpu_bound_tickets_per_s"] = round(1000 * CpuMeter.cores / per_ticket["machine"], 1)
    return figures


def hub_config(url: str, database_url: str, page_size: int, concurrency: int, writers: int | str = 1) -> HubConfig:
    source = {"name": SOURCE, "kind": "glpi", "url": url, "user_token": HUB_USER_TOKEN, "timezone": TIMEZONE,
              "page_size": page_size, "overlap_seconds": 120, "max_concurrent_requests": concurrency,
              "first_load_writers": writers}  # fmt: skip
    return parse_config(json.dumps({"database_url": database_url, "sources": [source]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--database-url", required=True, help="PostgreSQL; a fresh schema is made in it and dropped")
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4, help="the GLPI source's max_concurrent_requests")
    parser.add_argument(
        "--first-load-writers",
        type=lambda value: value if value == "auto" else int(value),
        default=1,
        help="the source's first_load_writers (processes writing at once, or auto: one per CPU)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-schema", action="store_true", help="leave the schema for inspection")
    parser.add_argument(
        "--latency-ms", type=float, default=0, help="the simulator's delay per request (a real GLPI: 30-100 ms)"
    )
    args = parser.parse_args()

    log(f"starting the GLPI simulator with {args.tickets} tickets (seed {args.seed}, {args.latency_ms} ms) ...")
    sim = start_simulator(args.tickets, args.seed, args.latency_ms)
    log(f"simulator ready at {sim.url} after {sim.startup_s:.1f} s")
    schema = Schema(args.database_url, "bench_glpi")
    store = Store(schema.url)
    try:
        store.upgrade()
        log(f"schema {schema.name} migrated")
        config = hub_config(sim.url, schema.url, args.page_size, args.concurrency, args.first_load_writers)

        full = run_sync(config, store, SOURCE, instrument, "full", sim.process.pid)
        log(f"full sync: {full.report.fetched} tickets in {full.seconds:.1f} s "
            f"({full.report.fetched / full.seconds:.0f}/s): {json.dumps(full.summary())}")  # fmt: skip
        with store.connect() as conn:
            ticket_rows = conn.execute(select(func.count()).select_from(TicketRow.__table__)).scalar_one()
            comment_rows = conn.execute(select(func.count()).select_from(CommentRow.__table__)).scalar_one()
        assert full.report.quarantined == 0, full.report.counts()
        assert ticket_rows == full.report.created, (ticket_rows, full.report.counts())
        peak_after_full = peak_rss_mb()

        started = time.perf_counter()
        touched = sim.command(f"touch 0.01 {args.seed}")["touched"]
        touch_s = time.perf_counter() - started
        log(f"touched {touched} tickets in GLPI in {touch_s:.2f} s")
        incremental = run_sync(config, store, SOURCE, instrument, "incremental", sim.process.pid)
        log(f"incremental sync: {incremental.seconds:.2f} s: {json.dumps(incremental.summary())}")
        assert incremental.report.fetched >= touched, (touched, incremental.report.counts())

        nochange = run_sync(config, store, SOURCE, instrument, "nochange", sim.process.pid)
        log(f"no-change sync: {nochange.seconds:.2f} s: {json.dumps(nochange.summary())}")
        sim.command("advance 121")
        settling = run_sync(config, store, SOURCE, instrument, "settling", sim.process.pid)
        log(f"settling sync (the overlap elapsed): {settling.seconds:.2f} s: {json.dumps(settling.summary())}")
        settled = run_sync(config, store, SOURCE, instrument, "nochange_settled", sim.process.pid)
        log(f"no-change sync, settled: {settled.seconds:.3f} s: {json.dumps(settled.summary())}")
        sim.command("advance 121")
        touched_again = sim.command(f"touch 0.01 {args.seed + 1}")["touched"]
        steady = run_sync(config, store, SOURCE, instrument, "incremental_steady", sim.process.pid)
        log(f"incremental sync on a schedule ({touched_again} touched): {steady.seconds:.2f} s: "
            f"{json.dumps(steady.summary())}")  # fmt: skip
        assert steady.report.fetched >= touched_again, (touched_again, steady.report.counts())
        nochange_steady = run_sync(config, store, SOURCE, instrument, "nochange_steady", sim.process.pid)
        log(f"no-change sync right after it: {nochange_steady.seconds:.2f} s: {json.dumps(nochange_steady.summary())}")
        hub_peak = peak_rss_mb()

        copied, copy_s = copy_reference(store)
        log(f"COPY of {copied} ticket rows: {copy_s:.2f} s ({copied / copy_s:.0f} rows/s)")
        floor_rows, floor_s, floor_cpu = floor_reference(config, store, sim.process.pid)
        log(f"floor: the same pages fetched and COPY'd raw: {floor_rows} in {floor_s:.1f} s (CPU s: {floor_cpu})")
    finally:
        store.dispose()
        schema.close(keep=args.keep_schema)
        exit_code = sim.stop()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    simulator_peak = round(children.ru_maxrss / 1024, 1)

    full_rate = full.report.fetched / full.seconds
    copy_rate = copied / copy_s
    floor_rate = floor_rows / floor_s
    print(json.dumps({
        "tickets": args.tickets,
        "page_size": args.page_size,
        "concurrency": args.concurrency,
        "first_load_writers": args.first_load_writers,
        "latency_ms": args.latency_ms,
        "full_tickets_per_s": round(full_rate, 1),
        "requests_per_ticket": round(sum(full.requests.values()) / max(1, full.report.fetched), 3),
        "incremental_1pct_s": round(incremental.seconds, 3),
        "nochange_s": round(nochange.seconds, 3),
        "settling_s": round(settling.seconds, 3),
        "nochange_settled_s": round(settled.seconds, 3),
        "incremental_steady_s": round(steady.seconds, 3),
        "nochange_steady_s": round(nochange_steady.seconds, 3),
        "floor_tickets_per_s": round(floor_rate, 1),
        "hub_to_floor": round(full_rate / floor_rate, 3),
        "copy_rows_per_s": round(copy_rate, 1),
        "ratio_hub_to_copy": round(full_rate / copy_rate, 4),
        **cpu_budget(full.cpu, full.report.fetched, floor_cpu, floor_rows),
        "peak_rss_mb": hub_peak,
        "peak_rss_after_full_mb": peak_after_full,
        "writer_peak_rss_mb": full.writer_peak_rss_mb,  # each writer process's, the largest (None: no writers)
        "peak_rss_with_copy_mb": peak_rss_mb(),
        "simulator_peak_rss_mb": simulator_peak,
        "simulator_cpu_s": round(children.ru_utime + children.ru_stime, 1),
        "simulator_generation_s": sim.generation_s,
        "simulator_startup_s": round(sim.startup_s, 2),
        "simulator_exit": exit_code,
        "full_s": round(full.seconds, 3),
        "ticket_rows": ticket_rows,
        "comments": comment_rows,
        "touched": touched,
        "copy_rows": copied,
        "copy_s": round(copy_s, 3),
        "full": full.summary(),
        "incremental": incremental.summary(),
        "nochange": nochange.summary(),
        "settling": settling.summary(),
        "nochange_settled": settled.summary(),
        "incremental_steady": steady.summary(),
        "nochange_steady": nochange_steady.summary(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
