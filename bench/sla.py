"""Recomputing every SLA clock from history: N tickets with about ten tracked changes each.

    .venv/bin/python bench/sla.py [--tickets 100000] [--seed 1] [--store-tickets N] [--database-url URL] [--batch 1000]

Tickets are generated (seeded) over 2026: created with a status, a priority and a group, then assigned, in progress,
often pending and back, often a priority change and a detour through the network group (the OLA's), resolved,
sometimes reopened and resolved again, half of them closed; a first reply from an agent for most. One in five is
opened in the last week before "now" (2026-12-31 16:00 in Paris) and keeps only the changes made by then, so clocks
are running and paused as well as met and breached. Policies: four by priority (first response and resolution
targets) and one OLA, all in a Europe/Paris business calendar (09:00-12:30, 13:30-17:00 on weekdays, French
holidays); the calendar's years are built before the clock starts (printed apart).

Measured, in memory (`SlaRules.compute`, pure): every ticket's clocks as of now (µs per ticket, tickets/s, clocks
produced by state). Reference in the same run: a plain loop that only walks each ticket's changes summing the
calendar-time differences (b - a) — the least any replay must do; the ratio of the two.

With --store-tickets N (0: skip): N of the tickets, their audit events and first replies are inserted (bulk INSERT,
not timed) into a migrated store, SQLite in a temp folder or --database-url; then `check_batch` (read tickets,
histories and replies, compute, upsert the clocks, fire the levels reached) runs over them in batches of --batch,
one transaction each: tickets/s including reads and writes. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from itsm_core.calendars import Calendar
from itsm_core.rules.sla import Change, SlaConfig, SlaRules

NOW = datetime(2026, 12, 31, 15, 0, tzinfo=UTC)  # Thursday 16:00 in Paris
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
CATEGORIES = ["access", "email", "hardware", "network", "printing", "software"]
SECTION: dict[str, Any] = {
    "policies": [
        {"name": "p1", "when": {"field": "priority", "equals": 1}, "calendar": "paris",
         "targets": {"first_response": "30m", "resolution": "4h"}},
        {"name": "p2", "when": {"field": "priority", "equals": 2}, "calendar": "paris",
         "targets": {"first_response": "1h", "resolution": "8h"}},
        {"name": "p3", "when": {"field": "priority", "equals": 3}, "calendar": "paris",
         "targets": {"first_response": "4h", "resolution": "3d"}},
        {"name": "standard", "calendar": "paris", "targets": {"first_response": "8h", "resolution": "5d"}},
    ],
    "olas": [{"name": "network-ola", "group": "network", "calendar": "paris", "resolution": "8h"}],
    "escalations": [{"name": "lead", "at": "-1h", "actions": [{"notify": "service-desk-lead"}]}],
}  # fmt: skip
Ticket = tuple[dict[str, Any], list[Change], datetime | None]


def generate(count: int, seed: int) -> list[Ticket]:
    """`count` tickets: (row with current values, audit trail of tracked fields in order, first reply or None)."""
    rng = random.Random(seed)
    gap = rng.expovariate
    year = int((datetime(2026, 12, 1, tzinfo=UTC) - YEAR_START).total_seconds())
    tickets: list[Ticket] = []
    for number in range(1, count + 1):
        recent = rng.random() < 0.2
        if recent:  # opened in the last week: still open, its later changes not made yet
            created = NOW - timedelta(seconds=rng.randrange(7 * 86400))
        else:
            created = YEAR_START + timedelta(seconds=rng.randrange(year))
        priority = rng.choices((1, 2, 3, 4), weights=(5, 15, 50, 30))[0]
        row: dict[str, Any] = {
            "id": number, "created_at": created, "kind": "incident", "title": f"ticket {number}", "description": "",
            "requester": f"user{number % 977}@example.org", "status": "new", "priority": priority,
            "impact": None, "urgency": None, "category": rng.choice(CATEGORIES),
            "assignment_group": "service-desk", "assignee": None,
        }  # fmt: skip
        changes = [Change(created, name, None, row[name]) for name in ("status", "priority", "assignment_group")]
        plan: list[tuple[str, Any]] = [("status", "assigned"), ("status", "in_progress")]
        if rng.random() < 0.5:
            plan += [("assignment_group", "network")]
        if rng.random() < 0.7:
            plan += [("status", "pending"), ("status", "in_progress")]
        if rng.random() < 0.6:
            raised = max(1, min(4, priority + rng.choice((-2, -1, 1))))
            plan.insert(rng.randrange(1, len(plan) + 1), ("priority", raised))
        if ("assignment_group", "network") in plan:
            plan += [("assignment_group", "service-desk")]
        plan += [("status", "resolved")]
        if rng.random() < 0.2:
            plan += [("status", "in_progress"), ("status", "resolved")]
        if rng.random() < 0.5:
            plan += [("status", "closed")]
        at = created
        for name, value in plan:
            at += timedelta(seconds=round(gap(1 / (5 * 3600)), 3) + 1)  # hours apart, any hour of the day
            if at > NOW:
                break
            if row[name] != value:
                changes.append(Change(at, name, row[name], value))
                row[name] = value
        replied = created + timedelta(seconds=round(gap(1 / (2 * 3600)), 3)) if rng.random() < 0.6 else None
        tickets.append((row, changes, replied if replied is not None and replied <= NOW else None))
    return tickets


def time_compute(sla: SlaRules, tickets: list[Ticket]) -> tuple[float, dict[str, int], dict[str, int]]:
    states: dict[str, int] = {}
    metrics: dict[str, int] = {}
    compute = sla.compute
    elapsed = 0.0
    for start in range(0, len(tickets), 1000):  # a batch's clocks at a time, as the check keeps them, then dropped
        started = time.perf_counter()
        results = [compute(row, changes, NOW, replied) for row, changes, replied in tickets[start : start + 1000]]
        elapsed += time.perf_counter() - started
        for clocks in results:
            for clock in clocks:
                states[clock.state] = states.get(clock.state, 0) + 1
                metrics[clock.metric] = metrics.get(clock.metric, 0) + 1
    return elapsed, states, metrics


def time_reference(tickets: list[Ticket]) -> tuple[float, float]:
    """Walk each ticket's changes summing (b - a): the least any replay of a history does."""
    started = time.perf_counter()
    grand = 0.0
    for row, changes, _ in tickets:
        previous, total = row["created_at"], 0.0
        for change in changes:
            total += (change.at - previous).total_seconds()
            previous = change.at
        grand += total
    return time.perf_counter() - started, grand


def time_store(sla: SlaRules, tickets: list[Ticket], url: str, batch: int) -> dict[str, Any]:
    """`check_batch` over tickets inserted first (with their audit events and replies; not timed)."""
    from sqlalchemy import insert

    from itsm_core.store import Store
    from itsm_core.store.tables import AuditEventRow, CommentRow, TicketRow
    from itsm_core.sync.sla_check import SlaReport, check_batch

    store = Store(url)
    store.upgrade()
    table, audit, comments = TicketRow.__table__, AuditEventRow.__table__, CommentRow.__table__
    started = time.perf_counter()
    ids: list[int] = []
    for start in range(0, len(tickets), 5000):
        chunk = tickets[start : start + 5000]
        rows = []
        for row, changes, _ in chunk:
            last = changes[-1].at
            rows.append({
                **{k: row[k] for k in ("kind", "title", "description", "status", "priority", "impact", "urgency",
                                       "category", "requester", "assignment_group", "assignee")},
                "source_type": "email", "created_at": row["created_at"], "updated_at": last, "custom_fields": {},
                "resolved_at": last if row["status"] in ("resolved", "closed") else None,
                "closed_at": last if row["status"] == "closed" else None,
            })  # fmt: skip
        with store.transaction() as conn:
            query = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            chunk_ids = list(conn.execute(query, rows).scalars())
            events = [
                {"at": c.at, "entity": "ticket", "entity_id": tid, "field": c.field, "old_value": c.old,
                 "new_value": c.new, "actor": "bench", "source": None}
                for tid, (_, changes, _) in zip(chunk_ids, chunk, strict=True) for c in changes
            ]  # fmt: skip
            conn.execute(insert(audit), events)
            replies = [
                {"ticket_id": tid, "public": True, "author": "agent@example.org", "body": "On it.", "created_at": at}
                for tid, (_, _, at) in zip(chunk_ids, chunk, strict=True)
                if at is not None
            ]
            if replies:
                conn.execute(insert(comments), replies)
        ids += chunk_ids
    loading = time.perf_counter() - started
    report = SlaReport()
    started = time.perf_counter()
    for start in range(0, len(ids), batch):
        with store.transaction() as conn:
            part, _ = check_batch(conn, sla, ids[start : start + batch], NOW)
        report += part
    elapsed = time.perf_counter() - started
    dialect = store.dialect
    store.dispose()
    return {
        "dialect": dialect,
        "tickets": len(ids),
        "batch": batch,
        "load_s": round(loading, 1),
        "seconds": round(elapsed, 2),
        "us_per_ticket": round(elapsed / len(ids) * 1e6, 1),
        "tickets_per_s": round(len(ids) / elapsed),
        "clocks": report.clocks,
        "fired": len(report.fired),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store-tickets", type=int, default=0, help="also time check_batch on a store (0: skip)")
    parser.add_argument("--database-url", help="for --store-tickets; default: a SQLite file in a temp folder")
    parser.add_argument("--batch", type=int, default=1000, help="tickets per check_batch transaction")
    args = parser.parse_args()

    hours = {"mon-fri": ["09:00-12:30", "13:30-17:00"]}
    paris = Calendar.model_validate(
        {"timezone": "Europe/Paris", "hours": hours, "holidays": [{"country": "FR"}]}
    ).compile()
    started = time.perf_counter()
    for year in (2026, 2027):  # due times of late tickets fall in 2027
        paris.business_seconds(datetime(year, 6, 1, tzinfo=UTC), datetime(year, 6, 2, tzinfo=UTC))
    build_ms = (time.perf_counter() - started) * 1000 / 2
    sla = SlaRules(SlaConfig.model_validate(SECTION), {"paris": paris})

    started = time.perf_counter()
    tickets = generate(args.tickets, args.seed)
    generating = time.perf_counter() - started
    n = len(tickets)
    changes = sum(len(c) for _, c, _ in tickets)

    reference, _ = time_reference(tickets)
    elapsed, states, metrics = time_compute(sla, tickets)
    clocks = sum(states.values())
    store = None
    if args.store_tickets:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.database_url or f"sqlite:///{Path(tmp) / 'sla.db'}"
            store = time_store(sla, tickets[: args.store_tickets], url, args.batch)
        _, expected, _ = time_compute(sla, tickets[: args.store_tickets])
        assert store["clocks"] == expected, (store["clocks"], expected)  # the store's read path loses nothing
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"{n} tickets, {changes / n:.1f} tracked changes each on average (generated in {generating:.1f} s); "
          f"Paris calendar, year build {build_ms:.1f} ms")  # fmt: skip
    print(f"reference: walk the changes     {reference / n * 1e6:7.2f} µs/ticket  {n / reference:10.0f} tickets/s")
    print(
        f"SlaRules.compute, every clock   {elapsed / n * 1e6:7.2f} µs/ticket  {n / elapsed:10.0f} tickets/s  "
        f"({elapsed / reference:.0f}x the reference)"
    )
    print(f"clocks: {clocks} ({clocks / n:.2f} per ticket); by state {states}; by metric {metrics}")
    if store:
        print(
            f"check_batch on {store['dialect']}, {store['tickets']} tickets in batches of {store['batch']}: "
            f"{store['us_per_ticket']} µs/ticket, {store['tickets_per_s']} tickets/s (read, compute, upsert, fire; "
            f"load {store['load_s']} s apart); {store['fired']} levels fired; clocks as in memory"
        )
    print(f"peak RSS {peak:.0f} MB")
    print(json.dumps({
        "tickets": n,
        "changes_per_ticket": round(changes / n, 2),
        "reference_us_per_ticket": round(reference / n * 1e6, 3),
        "compute_us_per_ticket": round(elapsed / n * 1e6, 2),
        "tickets_per_s": round(n / elapsed),
        "ratio_to_reference": round(elapsed / reference, 1),
        "clocks": clocks,
        "clocks_by_state": states,
        "clocks_by_metric": metrics,
        "year_build_ms": round(build_ms, 2),
        "generate_s": round(generating, 1),
        "store": store,
        "peak_rss_mb": round(peak),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
