"""The rules engine per ticket: classification rules, a trained model, the priority matrix and routing.

    .venv/bin/python bench/rules.py --tickets 100000 [--batch 500] [--store-tickets 20000] [--database-url URL]

Tickets are the labelled data set's texts (bench/data/it_tickets.csv) cycled to --tickets rows. The rules are the
data set's keyword rules (bench/data/keyword_rules.yaml, 25 rules) plus urgency cues, one routing rule per
category to a group of four agents with skills, working hours (Europe/Paris calendar with French holidays) and an
absence, and a category model trained on the data set (training timed apart, not in the per-ticket figure).

Measured, in batches of --batch as the cycle runs them (`Rules.decide`, pure, in memory):
- the reference: a plain loop that only builds each ticket's record view (the least any rule must do);
- rules without the model, and rules with the model loaded (µs per ticket, tickets/s, ratio to the reference);
- the model predicting every ticket (no keyword rules before it): its cost when rules decide nothing;
- with --store-tickets N: the whole rules step on a real store (`apply_rules`: read, decide, write with audit
  events), SQLite in a temp folder or --database-url.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from itsm_core.calendars import Calendar
from itsm_core.rules import Rules, RulesConfig
from itsm_core.rules.conditions import record_view
from itsm_core.rules.model import TextModel, read_labelled_csv

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, office hours in Paris
CATEGORIES = ["access", "email", "hardware", "network", "printing", "security", "software", "storage", "telephony"]


def section(model_path: Path | None, *, keywords: bool = True) -> dict[str, Any]:
    keyword = yaml.safe_load((DATA / "keyword_rules.yaml").read_text())["classification"] if keywords else []
    cues = [
        {
            "name": "outage",
            "when": {"field": "text", "regex": r"\b(down|outage|all users|everyone|production|ausfall|panne)\b"},
            "set": {"urgency": 1, "impact": 1},
        },
        {
            "name": "blocked",
            "when": {"field": "text", "contains_any": ["cannot work", "blocked", "urgent"]},
            "set": {"urgency": 2},
        },
    ]
    routes = [
        {"name": f"to-{c}", "when": {"field": "category", "equals": c}, "group": f"{c}-team", "skills": [c]}
        for c in CATEGORIES
    ]
    groups = {
        f"{c}-team": {
            "agents": [
                {"name": f"{c}-{n}@example.org", "skills": [c] if n % 2 else [], "calendar": "paris"} for n in range(4)
            ]
            + [{"name": f"{c}-away@example.org", "absences": [{"start": "2026-11-20", "end": "2026-11-30"}]}]
        }
        for c in CATEGORIES
    }
    rules: dict[str, Any] = {
        "classification": cues + keyword,
        "routing": routes,
        "fallback_group": "service-desk",
        "triage_group": "triage",
        "groups": groups,
    }
    if model_path is not None:
        rules["models"] = [{"target": "category", "path": str(model_path), "min_confidence": 0.6}]
    return rules


def tickets(texts: list[str], count: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        title, _, body = texts[i % len(texts)].partition("\n")
        rows.append(
            {
                "id": i + 1,
                "title": title,
                "description": body,
                "status": "new",
                "requester": f"user{i % 977}@example.org",
                "source_type": "email",
                "decided_by": None,
                "classified_by": None,
                "classification_confidence": None,
                "ci_classes": [],
                **dict.fromkeys(
                    (
                        "category",
                        "subcategory",
                        "intent",
                        "impact",
                        "urgency",
                        "priority",
                        "assignment_group",
                        "assignee",
                    )
                ),
            }
        )
    return rows


def time_decide(engine: Rules, rows: list[dict[str, Any]], batch: int) -> tuple[float, dict[str, int]]:
    workload = engine.new_workload()
    decided: dict[str, int] = {}
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        for decisions in engine.decide(rows[start : start + batch], workload, NOW).values():
            for d in decisions:
                decided[d.field] = decided.get(d.field, 0) + 1
    return time.perf_counter() - started, decided


def time_reference(rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for row in rows:
        record_view(row)
    return time.perf_counter() - started


def time_store(
    config: RulesConfig, calendars: dict[str, Any], rows: list[dict[str, Any]], url: str, batch: int
) -> dict[str, Any]:
    """The rules step as the cycle runs it, on tickets already in a store (inserted first, not timed)."""
    from sqlalchemy import insert

    from itsm_core.store import Store
    from itsm_core.store.tables import TicketRow
    from itsm_core.sync.decide import apply_rules

    store = Store(url)
    store.upgrade()
    engine = Rules(config, calendars)
    stored = [
        {k: v for k, v in row.items() if k not in ("id", "ci_classes")}
        | {"kind": "incident", "created_at": NOW, "updated_at": NOW, "custom_fields": {}}
        for row in rows
    ]
    with store.transaction() as conn:
        first = conn.execute(insert(TicketRow.__table__).returning(TicketRow.id), stored[:1]).scalar_one()
        conn.execute(insert(TicketRow.__table__), stored[1:])
    ids = list(range(first, first + len(rows)))
    started = time.perf_counter()
    for start in range(0, len(ids), batch):
        with store.transaction() as conn:
            apply_rules(conn, engine, dict.fromkeys(ids[start : start + batch], ()), now=NOW)
    elapsed = time.perf_counter() - started
    dialect = store.dialect
    store.dispose()
    return {
        "dialect": dialect,
        "tickets": len(ids),
        "seconds": round(elapsed, 2),
        "us_per_ticket": round(elapsed / len(ids) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--store-tickets", type=int, default=0, help="also time apply_rules on a store (0: skip)")
    parser.add_argument("--database-url", help="for --store-tickets; default: a SQLite file in a temp folder")
    args = parser.parse_args()

    texts, labels = read_labelled_csv(DATA / "it_tickets.csv", "title+body", "category")
    calendars = {
        "paris": Calendar.model_validate(
            {"timezone": "Europe/Paris", "hours": {"mon-fri": ["08:00-18:00"]}, "holidays": [{"country": "FR"}]}
        ).compile()
    }
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model = TextModel.train(texts, labels, target="category", folds=2)
        training = time.perf_counter() - started
        model_path = Path(tmp) / "category.joblib"
        model.save(model_path)
        rows = tickets(texts, args.tickets)
        plain = Rules(RulesConfig.model_validate(section(None)), calendars)
        with_model = Rules(RulesConfig.model_validate(section(model_path)), calendars)
        reference = time_reference(rows)
        rules_only, decided_plain = time_decide(plain, rows, args.batch)
        full, decided = time_decide(with_model, rows, args.batch)
        model_only = Rules(RulesConfig.model_validate(section(model_path, keywords=False)), calendars)
        every, _ = time_decide(model_only, rows, args.batch)  # no keyword rules: the model sees every ticket
        store = None
        if args.store_tickets:
            url = args.database_url or f"sqlite:///{Path(tmp) / 'rules.db'}"
            store = time_store(with_model.config, calendars, rows[: args.store_tickets], url, args.batch)
    n = len(rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{n} tickets in batches of {args.batch}; model trained on {len(texts)} texts in {training:.1f} s (not below)"
    )
    print(f"reference: record view only  {reference / n * 1e6:8.1f} µs/ticket")
    print(f"rules, no model              {rules_only / n * 1e6:8.1f} µs/ticket  {n / rules_only:9.0f} tickets/s")
    print(
        f"rules + model                {full / n * 1e6:8.1f} µs/ticket  {n / full:9.0f} tickets/s  "
        f"({full / reference:.0f}x the reference loop)"
    )
    print(
        f"model for every ticket       {every / n * 1e6:8.1f} µs/ticket  {n / every:9.0f} tickets/s  (no keyword rules)"
    )
    print(f"decided (with model): {decided}")
    if store:
        print(f"apply_rules on {store['dialect']}: {store['us_per_ticket']} µs/ticket (read, decide, write, audit)")
    print(f"peak RSS {peak:.0f} MB")
    print(
        json.dumps(
            {
                "tickets": n,
                "batch": args.batch,
                "reference_us_per_ticket": round(reference / n * 1e6, 2),
                "rules_us_per_ticket": round(rules_only / n * 1e6, 1),
                "rules_with_model_us_per_ticket": round(full / n * 1e6, 1),
                "ratio_to_reference": round(full / reference, 1),
                "model_for_every_ticket_us_per_ticket": round(every / n * 1e6, 1),
                "training_s": round(training, 1),
                "decided": decided,
                "decided_without_model": decided_plain,
                "store": store,
                "peak_rss_mb": round(peak),
            }
        )
    )


if __name__ == "__main__":
    main()
