"""SAP Solution Manager pull over real HTTP into PostgreSQL: full sync, 1 % incremental, no-change sync, against
a plain loop of the same reads.

    .venv/bin/python bench/solman_sync.py --incidents 10000 --database-url postgresql://postgres@127.0.0.1/DB
        [--backend ict|odata [--delta]] [--page-size 200] [--latency-ms 0] [--seed 1] [--keep-schema]

The Solman simulator runs as a separate process (`python -m simulators.solman.simulator --control`, its own GIL)
and makes N incidents with `populate` (not timed): a description each, 40 % in process with a processor's reply,
10 % waiting for the reporter. The hub side is `sync-source`'s own code without Prefect (`bench._support.run_sync`:
pages planned and fetched ahead on a thread, each written by `ingest_page.fn`). Three timed runs:

1. full sync of every incident from an empty store;
2. incremental sync after `advance 600` (ten minutes pass in Solman) and `touch 0.01` (1 % of the open incidents
   get a processor's note, a third of those also move to Customer Action);
3. a sync with nothing changed.

Neither channel has a "changed since" query (reference §0), so every run reads every incident the channel lists
(ICT: ``ListUnclosedIncidents`` once, then ``ReadCompleteIncident`` per incident; OData: ``MessageResultSet``
pages of 100, then the incident and its ``TextSet``), in parallel up to the profile's `max_connections` (4); the
landing's content hash makes the unchanged ones no-ops. With `--delta` (odata only), the profile names a customer's
delta service (the simulator's ``ZITSM_INCIDENT_DELTA_SRV``): runs after the first read only what changed since
their watermark. Requests are counted on the simulator's side.

Reference in the same run: a plain loop of the same reads — the same requests, as prebuilt bodies through a bare
httpx client on as many threads, answers read and dropped: no zeep, no decode, no store.
`ratio_hub_to_loop` = full_incidents_per_s / loop_incidents_per_s. `--latency-ms` makes the simulator answer
each request that much later (an ABAP stack answers in 50-300 ms).
Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import REPO, ChildSimulator, Schema, SyncStats, log, peak_rss_mb, run_sync
from connectors.solman._ict import system_guid
from connectors.solman.config import ICT_PATH, ODATA_ROOT
from itsm_core.config import HubConfig, parse_config
from itsm_core.store import Store
from simulators.solman.ict import NS, SOAP_ENV
from simulators.solman.simulator import DELTA, MYMESSAGE

SOURCE = "solman"
USER, PASSWORD, CLIENT = "HUBUSER", "hub-secret", "100"
CONNECTIONS = 4  # the bundled profile's limits.max_connections


def hub_config(origin: str, database_url: str, backend: str, page_size: int, profile: Path | None) -> HubConfig:
    source = {"name": SOURCE, "kind": "solman", "backend": backend, "url": origin, "user": USER,
              "password": PASSWORD, "sap_client": CLIENT, "page_size": page_size}  # fmt: skip
    if profile is not None:
        source["profile"] = str(profile)
    return parse_config(json.dumps({"database_url": database_url, "sources": [source]}))


def delta_profile(folder: Path) -> Path:
    """The bundled profile, with the simulator's delta service."""
    bundled = yaml.safe_load((REPO / "mappings" / "solman_smin.yaml").read_text())
    path = folder / "solman_delta.yaml"
    path.write_text(yaml.safe_dump({**bundled, "delta": {"service": DELTA}}))
    return path


def timed(config: HubConfig, store: Store, sim: ChildSimulator, label: str) -> tuple[SyncStats, dict[str, Any]]:
    sim.command("requests")  # start counting afresh
    stats = run_sync(config, store, SOURCE, None, label)
    served = sim.command("requests")
    stats.requests.update(served["by_kind"])
    log(f"{label}: {stats.report.fetched} fetched in {stats.seconds:.2f} s: {json.dumps(stats.summary())}")
    return stats, served


def plain_loop(origin: str, backend: str, guids: list[str]) -> float:
    """The same reads as a sync, from prebuilt requests on `CONNECTIONS` threads; the seconds it took."""
    auth = (USER, PASSWORD)
    started = time.perf_counter()
    with httpx.Client(auth=auth, limits=httpx.Limits(max_connections=CONNECTIONS), timeout=60) as http:
        if backend == "ict":
            endpoint = origin + ICT_PATH.format(client=CLIENT)
            headers = {"content-type": "text/xml; charset=utf-8"}

            def body(inner: str) -> bytes:
                return (f'<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><n:{inner}</e:Body></e:Envelope>').encode()

            http.post(endpoint, content=body(f'ListUnclosedIncidents xmlns:n="{NS}"><SystemGuid>'
                                             f"{system_guid(SOURCE)}</SystemGuid></n:ListUnclosedIncidents>"),
                      headers=headers).raise_for_status()  # fmt: skip

            def read(guid: str) -> None:
                inner = (
                    f'ReadCompleteIncident xmlns:n="{NS}"><IncidentGuid>{guid}</IncidentGuid></n:ReadCompleteIncident>'
                )
                http.post(endpoint, content=body(inner), headers=headers).raise_for_status()
        else:
            service = f"{origin}{ODATA_ROOT}/{MYMESSAGE}"
            params = {"sap-client": CLIENT, "sap-language": "EN", "$format": "json"}
            for skip in range(0, len(guids), 100):
                http.get(f"{service}/MessageResultSet", params={**params, "$top": "100", "$skip": str(skip)})

            def read(guid: str) -> None:
                key = f"MessageResultSet(guid'{guid[:8]}-{guid[8:12]}-{guid[12:16]}-{guid[16:20]}-{guid[20:]}')"
                http.get(f"{service}/{key}", params=params).raise_for_status()
                http.get(f"{service}/{key}/TextSet", params=params).raise_for_status()

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            list(pool.map(read, guids))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--database-url", required=True, help="PostgreSQL; a fresh schema is made in it and dropped")
    parser.add_argument("--backend", choices=["ict", "odata"], default="ict")
    parser.add_argument("--delta", action="store_true", help="odata: read through the simulator's delta service")
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0, help="the simulator's delay per request")
    parser.add_argument("--keep-schema", action="store_true", help="leave the schema for inspection")
    args = parser.parse_args()

    log(f"starting the Solman simulator with {args.incidents} incidents ({args.backend}, {args.latency_ms} ms) ...")
    options = {"--incidents": args.incidents, "--seed": args.seed, "--forward-to": system_guid(SOURCE),
               "--latency-ms": args.latency_ms}  # fmt: skip
    sim = ChildSimulator("simulators.solman.simulator", [str(word) for pair in options.items() for word in pair])
    schema = Schema(args.database_url, "bench_solman")
    store = Store(schema.url)
    try:
        store.upgrade()
        folder = Path(tempfile.mkdtemp(prefix="solman-bench-"))
        profile = delta_profile(folder) if args.delta else None
        config = hub_config(sim.url, schema.url, args.backend, args.page_size, profile)
        full, full_requests = timed(config, store, sim, "full")
        assert full.report.created == args.incidents and full.report.quarantined == 0, full.report.counts()
        sim.command("advance 600")  # ten minutes between scheduled runs: past a delta service's overlap
        touched = sim.command(f"touch 0.01 {args.seed}")["touched"]
        incremental, incremental_requests = timed(config, store, sim, "incremental")
        assert incremental.report.updated == touched, (touched, incremental.report.counts())
        nochange, nochange_requests = timed(config, store, sim, "nochange")
        assert nochange.report.updated == nochange.report.created == 0, nochange.report.counts()
        hub_peak = peak_rss_mb()
        with store.connect() as conn:
            guids = [row[0] for row in conn.exec_driver_sql("SELECT external_id FROM external_refs")]
        loop_s = plain_loop(sim.url, args.backend, guids)
        log(f"plain loop of the same reads: {len(guids)} in {loop_s:.1f} s")
    finally:
        store.dispose()
        schema.close(keep=args.keep_schema)
        exit_code = sim.stop()

    full_rate, loop_rate = args.incidents / full.seconds, len(guids) / loop_s
    print(json.dumps({
        "incidents": args.incidents,
        "backend": args.backend + ("+delta" if args.delta else ""),
        "page_size": args.page_size,
        "latency_ms": args.latency_ms,
        "full_incidents_per_s": round(full_rate, 1),
        "full_s": round(full.seconds, 2),
        "requests_per_incident": round(full_requests["total"] / args.incidents, 3),
        "incremental_1pct_s": round(incremental.seconds, 2),
        "incremental_requests": incremental_requests["total"],
        "touched": touched,
        "nochange_s": round(nochange.seconds, 2),
        "nochange_requests": nochange_requests["total"],
        "loop_incidents_per_s": round(loop_rate, 1),
        "ratio_hub_to_loop": round(full_rate / loop_rate, 3),
        "peak_rss_mb": hub_peak,
        "simulator_startup_s": round(sim.startup_s, 2),
        "simulator_exit": exit_code,
        "full": full.summary(),
        "incremental": incremental.summary(),
        "nochange": nochange.summary(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
