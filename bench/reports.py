"""Reports at scale: every standard report of one month, and every format, from a large PostgreSQL store.

    .venv/bin/python bench/reports.py --tickets 1000000 --database-url postgresql://postgres@127.0.0.1:5432/itsm_bench

A store of `--tickets` tickets spread over twelve months (two SLA clocks each, one landed record each) is made with
COPY in a fresh schema (not timed); then each report of the last month is timed (its query, in the database), and
each format of the whole run; last, the row-level export (`ticket_export`) of the month and of the whole store, per
format, with the peak RSS after each. The reference, in the same run: `SELECT count(*)` of the month's tickets —
one pass over what every report must at least touch; `ratio_reports_to_count` = all reports ÷ that count. Peak RSS
is the process's. Figures go to stdout as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import Schema, log, peak_rss_mb
from itsm_core.reports.export import export_tickets
from itsm_core.reports.files import write_tables
from itsm_core.reports.period import Period, between
from itsm_core.reports.queries import REPORTS, tickets
from itsm_core.reports.spec import ReportFilters
from itsm_core.store import Store

STATUSES = ["new", "assigned", "in_progress", "pending", "resolved", "closed", "cancelled"]
GROUPS = ["service-desk", "network-team", "workplace", "apps", "security", "facilities"]
CATEGORIES = ["network", "printing", "access", "hardware", "software", "email", None]
SOURCES = ["email", "glpi", "webhook", "csv"]
#: Titles, so that kb_trends has themes to find (and reads real text).
THEMES = ["VPN connection drops from home", "Printer jammed with paper", "Password expired, cannot log in",
          "Outlook does not sync mail", "Laptop battery does not charge", "Request access to the shared drive",
          "Teams calls drop audio", "New employee needs an account"]  # fmt: skip
START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def generate(store: Store, count: int, seed: int) -> None:
    """COPY `count` tickets over 2026, their clocks and landed records (not timed)."""
    rng = random.Random(seed)
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        ticket_columns = ("id, kind, title, description, status, priority, category, assignment_group, source_type, "
                          "tenant, created_at, updated_at, resolved_at, custom_fields")  # fmt: skip
        clock_columns = ("ticket_id, metric, policy, calendar, target_seconds, used_seconds, state, started_at, "
                         "stopped_at, computed_at")  # fmt: skip
        with cursor.copy(f"COPY tickets ({ticket_columns}) FROM STDIN") as ticket_copy:
            for n in range(1, count + 1):
                created = START + YEAR * rng.random()
                status = rng.choices(STATUSES, weights=[5, 5, 5, 3, 20, 60, 2])[0]
                resolved = (
                    created + timedelta(hours=rng.expovariate(1 / 20)) if status in ("resolved", "closed") else None
                )
                title = f"{THEMES[n % len(THEMES)]} (ticket {n})"
                ticket_copy.write_row((n, "incident", title, "", status, rng.randint(1, 5),
                                       rng.choice(CATEGORIES), rng.choice(GROUPS), rng.choice(SOURCES), None,
                                       created, resolved or created, resolved, "{}"))  # fmt: skip
        rng = random.Random(seed)  # the same created/resolved times again, for the clocks
        with cursor.copy(f"COPY sla_clocks ({clock_columns}) FROM STDIN") as clock_copy:
            for n in range(1, count + 1):
                created = START + YEAR * rng.random()
                status = rng.choices(STATUSES, weights=[5, 5, 5, 3, 20, 60, 2])[0]
                hours = rng.expovariate(1 / 20) if status in ("resolved", "closed") else None
                for metric, target in (("first_response", 4 * 3600), ("resolution", 24 * 3600)):
                    used = (hours if metric == "resolution" and hours else rng.expovariate(1 / 2)) * 3600 * 0.4
                    stopped = created + timedelta(hours=hours) if hours and metric == "resolution" else (
                        created + timedelta(hours=1) if metric == "first_response" else None)  # fmt: skip
                    state = ("met" if used <= target else "breached") if stopped else "running"
                    clock_copy.write_row((n, metric, "standard", "office", target, used, state, created, stopped,
                                          created))  # fmt: skip
        with cursor.copy("COPY audit_events (at, entity, entity_id, field, old_value, new_value, actor) FROM STDIN"
                         ) as history:  # fmt: skip
            rng = random.Random(seed)  # the same tickets again: their first status, resolution, 1 in 10 reopened
            for n in range(1, count + 1):
                created = START + YEAR * rng.random()
                status = rng.choices(STATUSES, weights=[5, 5, 5, 3, 20, 60, 2])[0]
                hours = rng.expovariate(1 / 20) if status in ("resolved", "closed") else None
                history.write_row((created, "ticket", n, "status", "null", '"new"', "bench"))
                if hours is not None:
                    resolved = created + timedelta(hours=hours)
                    history.write_row((resolved, "ticket", n, "status", '"new"', '"resolved"', "bench"))
                    if n % 10 == 0:
                        history.write_row((resolved + timedelta(days=2), "ticket", n, "status", '"resolved"',
                                           '"assigned"', "bench"))  # fmt: skip
        with cursor.copy("COPY inbound_records (source, external_id, payload, payload_format, payload_hash, "
                         "received_at, outcome) FROM STDIN") as landed:  # fmt: skip
            rng = random.Random(seed + 1)
            for n in range(1, count + 1):
                outcome = rng.choice(["created", "updated", "unchanged"])
                source = rng.choice(["glpi-prod", "helpdesk"])
                landed.write_row((source, str(n), b"{}", "json", f"h{n}", START + YEAR * rng.random(), outcome))
        cursor.execute(
            "INSERT INTO sync_state (source, entity, last_run_at, last_success_at, details) VALUES "
            "('glpi-prod', 'tickets', now(), now(), '{}'), ('helpdesk', 'tickets', now(), now(), '{}')"
        )
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def time_exports(store: Store, periods: dict[str, Period]) -> dict[str, dict[str, dict[str, float]]]:
    """The row-level export of each period in each format, written to a temporary folder: seconds, the file's MB
    and the process's peak RSS after it (a high-water mark: it only grows)."""
    figures: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder, store.connect() as conn:
        for name, period in periods.items():
            for fmt in ("csv", "parquet", "xlsx"):
                began = time.perf_counter()
                (path,) = export_tickets(conn, period, ReportFilters(), Path(folder), f"bench_{name}", [fmt])
                seconds = round(time.perf_counter() - began, 2)
                figures.setdefault(name, {})[fmt] = {"seconds": seconds, "mb": round(path.stat().st_size / 2**20, 1),
                                                     "peak_rss_mb": peak_rss_mb()}  # fmt: skip
                log(f"  export {name} {fmt}: {figures[name][fmt]}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--database-url", required=True, help="PostgreSQL; a fresh schema is made in it and dropped")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    schema = Schema(args.database_url, "bench_reports")
    store = Store(schema.url)
    try:
        store.upgrade()
        started = time.perf_counter()
        generate(store, args.tickets, args.seed)
        log(f"{args.tickets} tickets generated in {time.perf_counter() - started:.0f} s (not timed)")
        period = between(date(2026, 11, 1), date(2026, 11, 30), "Europe/Paris")
        now = datetime(2026, 12, 5, 6, tzinfo=UTC)
        timings: dict[str, float] = {}
        tables = {}
        with store.connect() as conn:
            began = time.perf_counter()
            month = conn.execute(select(func.count()).select_from(tickets).where(
                tickets.c.created_at >= period.start, tickets.c.created_at < period.end)).scalar_one()  # fmt: skip
            count_s = time.perf_counter() - began
            for name, report in REPORTS.items():
                began = time.perf_counter()
                tables[name] = report(conn, period, ReportFilters(), now)
                timings[name] = round(time.perf_counter() - began, 3)
                log(f"  {name}: {timings[name]} s, {len(tables[name])} rows")
        formats: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as folder:
            for fmt in ("csv", "xlsx", "parquet"):
                began = time.perf_counter()
                write_tables(tables, Path(folder), f"bench_@_{period.label}", [fmt])
                formats[fmt] = round(time.perf_counter() - began, 3)
        total = sum(timings.values()) + sum(formats.values())
        rss_before_export = peak_rss_mb()
        exports = time_exports(store, {"month": period, "store": between(date(2025, 12, 31), date(2027, 1, 1), "UTC")})
        print(json.dumps({
            "tickets": args.tickets, "tickets_in_month": month, "report_seconds": timings,
            "format_seconds": formats, "total_seconds": round(total, 2),
            "peak_rss_mb_before_export": rss_before_export, "export": exports,
            "count_reference_s": round(count_s, 3),
            "ratio_reports_to_count": round(sum(timings.values()) / count_s, 1) if count_s else None,
            "peak_rss_mb": peak_rss_mb(),
        }))  # fmt: skip
    finally:
        store.dispose()
        schema.drop()


if __name__ == "__main__":
    main()
