"""Webhook intake: deliveries accepted per second and the latency of their 202, on loopback, landing in PostgreSQL.

    .venv/bin/python bench/webhooks.py --database-url postgresql://postgres@127.0.0.1:5432/itsm_bench

The receiver (`itsm webhooks serve`, as shipped: access log on, its worker applying deliveries; `--no-apply`:
landing only) runs in its own process; the load generator in another (raw asyncio HTTP/1.1 keep-alive; bodies
signed in the `hmac` scheme before the clock starts). Two loads: saturation (`--concurrency` requests in flight,
for `--seconds`) gives accepted/s; a paced open-loop load (`--rate` requests a second) gives the latency people
see. The reference, in the same run: the same loads against a bare uvicorn app that reads the body and answers
202 (no auth, no database), the HTTP floor of this machine; `ratio_accepted_to_floor` = receiver ÷ floor.
Figures go to stdout as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import quantiles
from typing import Any
from urllib.parse import urlsplit

import yaml
from sqlalchemy import func, select

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._support import Schema, log, process_peak_rss_mb  # noqa: E402
from connectors.webhook.auth import signed_headers  # noqa: E402
from itsm_core.store import Store  # noqa: E402
from itsm_core.store.tables import TicketRow, WebhookDeliveryRow  # noqa: E402
from tests.support.net import free_port, wait_for_port  # noqa: E402

SECRET = "bench-secret-5d1e"


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The reference: read the body, answer 202 — what any receiver on this machine pays for HTTP alone."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"status":"accepted"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def deliveries(run: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    signed = []
    for number in range(count):
        body = json.dumps({
            "event": "handoff", "conversation_id": f"{run}-{number}", "summary": f"Printer {number} is jammed",
            "user": {"email": f"user{number % 500}@example.org", "name": f"User {number % 500}"},
            "transcript": [{"from": "user", "at": "2026-12-05T09:00:00Z", "text": f"Printer {number} jams again"}],
        }).encode()  # fmt: skip
        signed.append((body, signed_headers(SECRET, body, f"{run}-{number}")))
    return signed


def load(url: str, run: str, seconds: float, concurrency: int, rate: float | None) -> dict[str, Any]:
    """In its own process: send deliveries for `seconds`, `concurrency` at a time, or paced at `rate` a second."""
    return asyncio.run(_load(url, run, seconds, concurrency, rate))


async def _load(url: str, run: str, seconds: float, concurrency: int, rate: float | None) -> dict[str, Any]:
    # A raw HTTP/1.1 keep-alive client: httpx's own cost (~2.5 ms of CPU a request) made the generator, not the
    # server, the bottleneck on 2 cores. Requests are built (and signed) before the clock starts.
    parts = urlsplit(url)
    budget = int((rate or 12000) * seconds * 1.2) + concurrency
    requests = [_request(parts.path, parts.netloc, body, headers) for body, headers in deliveries(run, budget)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(concurrency):
        pool.put_nowait(await asyncio.open_connection(parts.hostname, parts.port))
    started = time.perf_counter()
    deadline = started + seconds
    cursor = iter(range(budget))

    async def one(index: int) -> None:
        reader, writer = await pool.get()
        sent = time.perf_counter()
        try:
            writer.write(requests[index])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            status = 0
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        latencies.append(time.perf_counter() - sent)
        statuses[status] = statuses.get(status, 0) + 1
        pool.put_nowait((reader, writer))

    if rate is None:  # closed loop: each connection sends its next request as soon as the last is answered

        async def worker() -> None:
            while time.perf_counter() < deadline:
                index = next(cursor, None)
                if index is None:
                    return
                await one(index)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:  # open loop: one request every 1/rate s, whatever the answers do (waiting for a free connection counts)
        tasks = []
        for index in range(int(rate * seconds)):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait()[1].close()
    cuts = quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    accepted = statuses.get(202, 0)
    return {
        "requests": len(latencies), "accepted": accepted, "statuses": statuses, "seconds": round(elapsed, 2),
        "accepted_per_s": round(accepted / elapsed, 1), "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
    }  # fmt: skip


def _request(path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run_load(url: str, run: str, seconds: float, concurrency: int, rate: float | None) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(load, (url, run, seconds, concurrency, rate))


def start(command: list[str], port: int, what: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, what, seconds=60)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="PostgreSQL; a fresh schema is made in it and dropped")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200, help="requests a second of the paced load")
    parser.add_argument(
        "--no-apply", action="store_true", help="the receiver only lands (its worker off): the intake's own cost"
    )
    args = parser.parse_args()

    schema = Schema(args.database_url, "bench_webhooks")
    store = Store(schema.url)
    folder = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        store.upgrade()
        config = folder / "itsm.yaml"
        source = {"name": "chatbot", "kind": "webhook", "auth": {"scheme": "hmac", "secret": SECRET},
                  "mapping": "webhook_chatbot", "page_size": 500}  # fmt: skip
        config.write_text(yaml.safe_dump({"database_url": schema.url, "sources": [source]}))
        results: dict[str, Any] = {}
        for label, module in (("floor", None), ("receiver", "flows.cli")):
            port = free_port()
            if module is None:
                command = [sys.executable, "-m", "uvicorn", "bench.webhooks:floor_app", "--port", str(port),
                           "--log-level", "warning"]  # fmt: skip
            else:
                command = [sys.executable, "-c", "from flows.cli import main; main()", "webhooks", "serve", "-c",
                           str(config), "--port", str(port), *(["--no-apply"] if args.no_apply else [])]  # fmt: skip
            process = start(command, port, label)
            processes.append(process)
            url = f"http://127.0.0.1:{port}/webhooks/chatbot"
            log(f"{label}: saturation, {args.concurrency} in flight for {args.seconds:g} s ...")
            saturated = run_load(url, f"{label}-s", args.seconds, args.concurrency, None)
            log(f"  {json.dumps(saturated)}")
            log(f"{label}: paced at {args.rate:g}/s for {args.seconds:g} s ...")
            paced = run_load(url, f"{label}-p", args.seconds, args.concurrency, args.rate)
            log(f"  {json.dumps(paced)}")
            results[label] = {"saturated": saturated, "paced": paced, "peak_rss_mb": process_peak_rss_mb(process.pid)}
        # the receiver's worker applies what it landed: wait for it, to report how long that takes
        with store.connect() as conn:
            landed = conn.execute(select(func.count()).select_from(WebhookDeliveryRow.__table__)).scalar_one()
        waited = time.perf_counter()
        tickets = 0
        while not args.no_apply and time.perf_counter() - waited < 120:
            with store.connect() as conn:
                tickets = conn.execute(select(func.count()).select_from(TicketRow.__table__)).scalar_one()
            if tickets >= landed:
                break
            time.sleep(0.5)
        receiver, floor = results["receiver"], results["floor"]
        figures = {
            "accepted_per_s": receiver["saturated"]["accepted_per_s"],
            "p50_ms_saturated": receiver["saturated"]["p50_ms"],
            "p99_ms_saturated": receiver["saturated"]["p99_ms"],
            "paced_rate": args.rate,
            "p50_ms_paced": receiver["paced"]["p50_ms"],
            "p99_ms_paced": receiver["paced"]["p99_ms"],
            "floor_accepted_per_s": floor["saturated"]["accepted_per_s"],
            "ratio_accepted_to_floor": round(
                receiver["saturated"]["accepted_per_s"] / floor["saturated"]["accepted_per_s"], 3
            ),
            "floor_p99_ms_paced": floor["paced"]["p99_ms"],
            "landed": landed,
            "tickets_applied": tickets,
            "applied_within_s_after_load": round(time.perf_counter() - waited, 1),
            "receiver_peak_rss_mb": receiver["peak_rss_mb"],
            "concurrency": args.concurrency,
            "details": results,
        }
        print(json.dumps(figures))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        store.dispose()
        schema.drop()


if __name__ == "__main__":
    main()
