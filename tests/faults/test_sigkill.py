"""Kill -9 at random points: a GLPI pull of a few thousand tickets (and their CIs) in a process of its own,
SIGKILLed at `--kills` random instants (seeded; the seed is in the failure message) and started again each time
until a run completes, ends with the same store as an uninterrupted pull of the same GLPI into a second database.

Compared by content, not counts: tickets, comments, external references, CI and CI links, attachments, audit rows,
watermarks and the outbox, each row keyed by the upstream's ids (the hub's own ids and clock differ from run to
run: a rolled-back page burns sequence values). Zero duplicates, zero losses. On PostgreSQL.

    pytest tests/faults/test_sigkill.py --kills 50 --runs 5 --fault-seed 7     # a longer soak
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from itsm_core.store import Store
from itsm_core.store.tables import Base
from simulators.glpi.simulator import GlpiSimulator
from tests.conftest import fresh_postgres_schema
from tests.support.glpi import glpi_config, pull

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
TICKETS = 1500


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        first, runs = metafunc.config.getoption("--fault-seed"), metafunc.config.getoption("--runs")
        metafunc.parametrize("seed", [first + n for n in range(runs)])


def test_a_pull_killed_at_random_points_ends_equal_to_an_uninterrupted_one(tmp_path, seed, request):
    kills_wanted = request.config.getoption("--kills")
    chance = random.Random(seed)
    with (
        GlpiSimulator(tickets=TICKETS, seed=seed % 1000) as sim,
        fresh_postgres_schema() as killed_url,
        fresh_postgres_schema() as reference_url,
    ):
        reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
        reference_dir.mkdir()
        killed_dir.mkdir()
        options = {"page_size": 50, "assets": ["Computer"]}
        reference = Store(reference_url)
        reference.upgrade()
        started = time.monotonic()
        pull(glpi_config(sim, reference_url, reference_dir, **options), reference)
        pull_seconds = time.monotonic() - started

        glpi_config(sim, killed_url, killed_dir, **options)
        killed = Store(killed_url)
        killed.upgrade()
        landed_at_kill: list[int] = []
        runs = 0
        while True:
            runs += 1
            assert runs < kills_wanted + 20, f"seed {seed}: the pull never completed"
            child = _start(killed_dir / "itsm.yaml")
            # Up to the uninterrupted pull's time, plus the interpreter's start: the first kills land mid-pull,
            # later ones (less and less is left) in the restarts' no-op tails, from the start of a run to its end.
            deadline = time.monotonic() + chance.uniform(0.2, 2.0 + pull_seconds)
            while child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            if child.poll() is None and len(landed_at_kill) < kills_wanted:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(30)
                landed_at_kill.append(_count(killed, "inbound_records"))
                continue
            code = child.wait(600)
            assert code == 0, f"seed {seed}: a run exited {code}: {child.stderr.read() if child.stderr else ''}"
            if len(landed_at_kill) >= kills_wanted:
                break
        mid_pull = sum(1 for landed in landed_at_kill if landed < _count(reference, "inbound_records"))
        print(f"seed {seed}: {len(landed_at_kill)} kills ({mid_pull} mid-pull), {runs} runs, records landed at "
              f"each kill: {landed_at_kill}")  # fmt: skip
        assert mid_pull >= kills_wanted // 4, f"seed {seed}: only {mid_pull} kills landed before the pull was done"

        expected, found = _snapshot(reference), _snapshot(killed)
        print(f"seed {seed}: rows compared: " + ", ".join(f"{t} {sum(rows.values())}" for t, rows in expected.items()))
        for table in expected:
            missing, extra = expected[table] - found[table], found[table] - expected[table]
            assert not missing and not extra, (
                f"seed {seed}: {table} differs after {len(landed_at_kill)} kills: lost {_first(missing)}, "
                f"extra (duplicated or wrong) {_first(extra)}"
            )
        assert sum(expected["tickets"].values()) == TICKETS  # the trashed ones included: every one of them, once
        reference.dispose()
        killed.dispose()


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.pull_child", str(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _count(store: Store, table: str) -> int:
    with store.connect() as conn:
        return conn.execute(select(func.count()).select_from(Base.metadata.tables[table])).scalar_one()


def _first(rows: Counter[Any]) -> list[Any]:
    return [str(row)[:300] for row in list(rows)[:3]]


def _snapshot(store: Store) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table the pull writes, as multisets of rows keyed by upstream ids, without the hub's own ids and
    clock (`created_at`/`updated_at` of hub rows, `at` of audit rows, `last_run_at` of the sync state)."""
    with store.connect() as conn:
        refs = _rows(conn, "external_refs")
        ticket = {r["ticket_id"]: r["external_id"] for r in refs if r["ticket_id"] is not None}
        ci = {r["ci_id"]: r["external_id"] for r in refs if r["ci_id"] is not None}
        comment = {r["comment_id"]: r["external_id"] for r in _rows(conn, "comment_refs")}
        hub_clock = {"id", "created_at", "updated_at"}

        def table(name: str, key: Any, *columns: str) -> Counter[tuple[Any, ...]]:
            return Counter((key(r), *(_plain(r[c]) for c in columns)) for r in _rows(conn, name))

        def whole(name: str, keys: dict[int, str]) -> Counter[tuple[Any, ...]]:
            """Every column but the hub's own, the row named by its upstream id."""
            return Counter(
                (keys.get(r["id"]), *(_plain(v) for k, v in sorted(r.items()) if k not in hub_clock))
                for r in _rows(conn, name)
            )

        def audited(r: dict[str, Any]) -> Any:
            return (ticket if r["entity"] == "ticket" else ci).get(r["entity_id"])

        return {
            "tickets": whole("tickets", ticket),
            "configuration_items": whole("configuration_items", ci),
            "comments": table(
                "comments", lambda r: ticket.get(r["ticket_id"]), "public", "author", "body", "origin", "created_at"
            ),
            "comment_refs": table("comment_refs", lambda r: r["system"], "external_id"),
            "external_refs": table(
                "external_refs",
                lambda r: (r["system"], r["external_id"]),
                "remote_version",
                "remote_updated_at",
                "landed_hash",
                "pushed_hash",
            ),
            "ticket_ci_links": table(
                "ticket_ci_links", lambda r: (ticket.get(r["ticket_id"]), ci.get(r["ci_id"])), "role"
            ),
            "attachments": table(
                "attachments",
                lambda r: (ticket.get(r["ticket_id"]), comment.get(r["comment_id"])),
                "name",
                "content_type",
                "size",
                "sha256",
            ),
            "audit_events": table(
                "audit_events", audited, "entity", "field", "old_value", "new_value", "actor", "source", "detail"
            ),
            "sync_state": table("sync_state", lambda r: (r["source"], r["entity"]), "watermark"),
            "outbox": table("outbox", lambda r: ticket.get(r["ticket_id"]), "target_system", "fields", "state"),
            "dead_letters": table("dead_letters", lambda r: (r["source"], r["external_id"]), "reason"),
            "inbound_records": table(
                "inbound_records", lambda r: (r["source"], r["external_id"]), "payload_hash", "outcome"
            ),
        }


def _rows(conn: Connection, table: str) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(select(Base.metadata.tables[table])).mappings()]


def _plain(value: Any) -> Any:
    """Hashable: JSON documents as sorted text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value
