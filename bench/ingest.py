"""Throughput of the ingest path (land → parse → map → rules → bulk write), against PostgreSQL COPY.

    .venv/bin/python bench/ingest.py --mails 20000 [--page 500] [--postgres URL]

Mails are generated in memory per page (constant memory), parsed by the real RFC 5322 parser and written
through `ingest_batch`, one transaction per page, exactly as a `ingest-page` task does. The reference is
the floor for the same data: PostgreSQL COPY of the same ticket rows into an unindexed table. Prints
mails/s, µs per mail, the ratio to COPY and the peak RSS. On PostgreSQL the run writes into a schema of its own
(`bench_ingest_<random>`), dropped at the end, so it can run again on the same database.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import Schema
from connectors.mail.record import decode_message, message_identity
from itsm_core.mapping import load_mapping, map_ticket
from itsm_core.models import RawRecord, utcnow
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store import Store
from itsm_core.sync.ingest import SourcePipeline, ingest_batch

SUBJECTS = [
    "VPN drops every 10 minutes",
    "Drucker im 2. OG druckt nicht",
    "Imprimante bloquée au 3e étage",
    "Outlook asks for my password again",
    "New laptop for a starter on Monday",
    "SAP GUI crashes on login",
    "Wi-Fi in meeting room Oslo is down",
    "Zugang zum Laufwerk S: fehlt",
    "Écran noir après mise à jour",
]
WORDS = [
    "the",
    "user",
    "cannot",
    "open",
    "since",
    "this",
    "morning",
    "error",
    "message",
    "shows",
    "when",
    "I",
    "try",
    "to",
    "connect",
    "again",
    "please",
    "help",
    "Outlook",
    "VPN",
    "printer",
    "after",
    "update",
]


def generate(count: int, page: int, seed: int = 7) -> Iterator[list[RawRecord]]:
    rng = random.Random(seed)
    now = utcnow()
    for start in range(0, count, page):
        records = []
        for i in range(start, min(start + page, count)):
            message = EmailMessage()
            message["From"] = f"User {i} <user{i % 5000}@northwind.example>"
            message["To"] = "helpdesk@northwind.example"
            message["Subject"] = f"{rng.choice(SUBJECTS)} (#{i})"
            message["Date"] = format_datetime(now)
            message["Message-ID"] = f"<{uuid.UUID(int=rng.getrandbits(128))}@northwind.example>"
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 120)))
            message.set_content(f"Hello,\n\n{body}\n\nRegards,\nUser {i}\n")
            payload = bytes(message)
            records.append(RawRecord(message_identity(payload), payload, "eml", now))
        yield records


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_store(url: str, mails: int, page: int) -> float:
    store = Store(url)
    store.upgrade()
    pipeline = SourcePipeline("bench", decode_message, load_mapping("email"), Rules(RulesConfig()))
    started = time.perf_counter()
    created = 0
    for records in generate(mails, page):
        with store.transaction() as conn:
            created += ingest_batch(conn, pipeline, records).created
    elapsed = time.perf_counter() - started
    assert created == mails, (created, mails)
    store.dispose()
    return elapsed


def run_parse_only(mails: int, page: int) -> float:
    mapping = load_mapping("email")
    started = time.perf_counter()
    for records in generate(mails, page):
        for r in records:
            map_ticket(decode_message(r.payload), mapping, received_at=r.received_at)
    return time.perf_counter() - started


def run_generate_only(mails: int, page: int) -> float:
    started = time.perf_counter()
    for _ in generate(mails, page):
        pass
    return time.perf_counter() - started


def run_copy_reference(url: str, mails: int, page: int) -> float:
    """COPY the same ticket rows (already parsed and mapped, so only the write is timed) into a bare table."""
    mapping = load_mapping("email")
    rows = []
    for records in generate(mails, page):
        for r in records:
            t = map_ticket(decode_message(r.payload), mapping, received_at=r.received_at)
            rows.append((t.title, t.description, t.requester, t.status.value, t.created_at, r.payload))
    store = Store(url)
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TEMP TABLE copy_ref (title text, description text, requester text, status text, "
                "created_at timestamptz, payload bytea)"
            )
        )
        cursor = conn.connection.driver_connection.cursor()
        started = time.perf_counter()
        with cursor.copy("COPY copy_ref FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
    store.dispose()
    return elapsed


def report(label: str, mails: int, seconds: float, baseline: float = 0.0) -> None:
    net = max(seconds - baseline, 1e-9)
    print(f"{label:<42} {seconds:7.2f} s  {mails / net:9.0f} mails/s  {net / mails * 1e6:8.1f} µs/mail")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--postgres", help="PostgreSQL URL of a database the benchmark may write to")
    args = parser.parse_args()

    print(f"{args.mails} generated mails, pages of {args.page}")
    gen = run_generate_only(args.mails, args.page)
    report("generate (excluded from the figures below)", args.mails, gen)
    parse = run_parse_only(args.mails, args.page)
    report("parse + map only, no store", args.mails, parse, gen)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = run_store(f"sqlite:///{tmp}/bench.db", args.mails, args.page)
    report("ingest_batch on SQLite", args.mails, sqlite, gen)
    report("  of which the store (minus parse + map)", args.mails, sqlite - gen, parse - gen)
    if args.postgres:
        schema = Schema(args.postgres, "bench_ingest")
        try:
            pg = run_store(schema.url, args.mails, args.page)
            report("ingest_batch on PostgreSQL", args.mails, pg, gen)
            report("  of which the store (minus parse + map)", args.mails, pg - gen, parse - gen)
            copy = run_copy_reference(schema.url, args.mails, args.page)
        finally:
            schema.drop()
        report("reference: COPY of the same rows", args.mails, copy)
        print(f"ratio store part / COPY on PostgreSQL: {(pg - parse) / copy:.1f}x")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
