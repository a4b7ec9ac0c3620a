"""Kill -9 at random points: a pull in a process of its own — a GLPI of a few thousand tickets (and their CIs), and
a Dovecot mailbox of a few hundred mails — SIGKILLed at `--kills` random instants (seeded; the seed is in the
failure message) and started again each time until a run completes, ends with the same store as an uninterrupted
pull of the same upstream into a second database.

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
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from itsm_core.config import HubConfig, parse_config
from itsm_core.store import Store
from itsm_core.store.tables import Base
from simulators.glpi.simulator import GlpiSimulator
from tests.conftest import fresh_postgres_schema
from tests.support.dovecot import ImapServer, deliver, running_dovecot, source_settings
from tests.support.glpi import glpi_config, pull

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
TICKETS = 1500


def test_a_glpi_pull_killed_at_random_points_ends_equal_to_an_uninterrupted_one(tmp_path, seed, request):
    kills_wanted = request.config.getoption("--kills")
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
        _kill_until_done(killed_dir / "itsm.yaml", "glpi", killed, reference, pull_seconds, seed, kills_wanted)

        _assert_same(_snapshot(reference), _snapshot(killed), seed)
        # the trashed ones included: every one of them, once
        assert sum(_snapshot(reference)["tickets"].values()) == TICKETS
        reference.dispose()
        killed.dispose()


def test_a_mail_import_killed_at_random_points_ends_equal_to_an_uninterrupted_one(tmp_path, seed, request):
    """The same, for an IMAP source: two Dovecot users hold the same mails in the same order (so the same UIDs);
    one is pulled without a break, the other killed and restarted. Pages of 2 mails, so kills land mid-page,
    between a page's commit and its \\Seen flags, and between pages."""
    kills_wanted = request.config.getoption("--kills")
    mails = _mail_corpus(random.Random(seed))
    with (
        running_dovecot(tmp_path / "dovecot", {"reference": "pw-r", "killed": "pw-k"}) as server,
        fresh_postgres_schema() as killed_url,
        fresh_postgres_schema() as reference_url,
    ):
        for user in ("reference", "killed"):
            deliver(server, *mails, user=user)
        reference, killed = Store(reference_url), Store(killed_url)
        for store in (reference, killed):
            store.upgrade()
        started = time.monotonic()
        pull(_mail_config(server, "reference", reference_url, tmp_path / "reference"), reference, source="helpdesk")
        pull_seconds = time.monotonic() - started
        _mail_config(server, "killed", killed_url, tmp_path / "killed")
        _kill_until_done(
            tmp_path / "killed" / "itsm.yaml", "helpdesk", killed, reference, pull_seconds, seed, kills_wanted
        )

        expected = _snapshot(reference)
        _assert_same(expected, _snapshot(killed), seed)
        assert sum(expected["inbound_records"].values()) == len(mails)  # every mail landed, once
        assert sum(expected["comments"].values()) >= 40  # the replies threaded onto their tickets
        reference.dispose()
        killed.dispose()


def _mail_corpus(chance: random.Random) -> list[bytes]:
    """160 requests (one in five with a PDF) and 10 auto-replies in a random order, and 40 replies by In-Reply-To,
    each somewhere after the request it answers."""

    def mail(i: int, subject: str, attach: bool = False, **headers: str) -> bytes:
        m = EmailMessage()
        m["From"] = f"Person {i % 23} <person{i % 23}@northwind.example>"
        m["To"] = "helpdesk@northwind.example"
        m["Subject"] = subject
        m["Message-ID"] = f"<crash{i}@northwind.example>"
        m["Date"] = f"Mon, 02 Nov 2026 {8 + i // 60 % 10:02d}:{i % 60:02d}:00 +0100"
        for name, value in headers.items():
            m[name.replace("_", "-")] = value
        m.set_content(f"Mail {i}: the printer on floor {i % 7} jams.\n")
        if attach:
            m.add_attachment(b"%PDF-1.4 " + bytes([i % 256]) * 2000, "application", "pdf", filename=f"scan-{i}.pdf")
        return bytes(m)

    requests = [mail(i, f"Printer {i} jams", attach=i % 5 == 0) for i in range(160)]
    mails = requests + [mail(300 + i, "Out of office", Auto_Submitted="auto-replied") for i in range(10)]
    chance.shuffle(mails)
    for i in range(40):
        after = mails.index(requests[i])
        reply = mail(200 + i, f"Re: Printer {i} jams", In_Reply_To=f"<crash{i}@northwind.example>")
        mails.insert(chance.randint(after + 1, len(mails)), reply)
    return mails


def _mail_config(server: ImapServer, user: str, database_url: str, base_dir: Path) -> HubConfig:
    """A hub with one IMAP source named ``helpdesk`` reading `user`'s INBOX, 2 mails a page."""
    base_dir.mkdir()
    source = json.dumps(source_settings(server, user=user, page_size=2))
    text = f"database_url: '{database_url}'\nsources: [{source}]\n"
    (base_dir / "itsm.yaml").write_text(text, encoding="utf-8")
    return parse_config(text, base_dir=base_dir)


def _kill_until_done(
    config: Path,
    source: str,
    killed: Store,
    reference: Store,
    pull_seconds: float,
    seed: int,
    kills_wanted: int,
) -> None:
    """Start the pull of `source` in a child; SIGKILL it at a random instant after it says ``pulling``, within half
    the time the work left should take (the uninterrupted pull's time × the share of records not landed yet), but
    at least 2/`kills_wanted` of the pull and half a second (once all is landed, kills fall in the restarts' no-op
    tails); again until `kills_wanted` kills are done and a run then completes. At least 5 kills (a quarter of 20)
    must land before everything is landed."""
    chance = random.Random(seed)
    total = _count(reference, "inbound_records")
    landed_at_kill: list[int] = []
    runs = 0
    while True:
        runs += 1
        assert runs < 3 * kills_wanted + 20, f"seed {seed}: the pull never completed"
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.pull_child", str(config), source],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        child.stdout.readline()  # "pulling", or "" if it died first (its exit code tells)
        left = 1 - _count(killed, "inbound_records") / total
        deadline = time.monotonic() + chance.uniform(0, max(0.5, pull_seconds * max(left / 2, 2 / kills_wanted)))
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if child.poll() is None and len(landed_at_kill) < kills_wanted:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
            landed_at_kill.append(_count(killed, "inbound_records"))
            continue
        code = child.wait(600)
        assert code == 0, f"seed {seed}: a run exited {code}: {child.stderr.read() if child.stderr else ''}"
        if len(landed_at_kill) >= kills_wanted:
            break
    mid_pull = sum(1 for landed in landed_at_kill if landed < total)
    print(f"seed {seed}: {len(landed_at_kill)} kills ({mid_pull} mid-pull), {runs} runs, records landed at "
          f"each kill: {landed_at_kill}")  # fmt: skip
    assert mid_pull >= min(kills_wanted, 20) // 4, f"seed {seed}: only {mid_pull} kills landed before the pull was done"


def _assert_same(expected: dict[str, Counter[tuple[Any, ...]]], found: dict[str, Counter[tuple[Any, ...]]], seed: int):
    print(f"seed {seed}: rows compared: " + ", ".join(f"{t} {sum(rows.values())}" for t, rows in expected.items()))
    for table in expected:
        missing, extra = expected[table] - found[table], found[table] - expected[table]
        assert not missing and not extra, (
            f"seed {seed}: {table} differs: lost {_first(missing)}, extra (duplicated or wrong) {_first(extra)}"
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
            # a comment's time is the upstream's where it has an upstream id (a followup), else the hub's clock
            "comments": Counter(
                (
                    ticket.get(r["ticket_id"]),
                    r["public"],
                    r["author"],
                    r["body"],
                    r["origin"],
                    r["created_at"] if r["id"] in comment else None,
                )
                for r in _rows(conn, "comments")
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
            "sync_state": Counter(
                (r["source"], r["entity"], _position(r["watermark"])) for r in _rows(conn, "sync_state")
            ),
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


def _position(watermark: str | None) -> Any:
    """A mailbox watermark without what differs between two mailboxes of equal content (their UIDVALIDITY, and
    the HIGHESTMODSEQ their \\Seen flags moved); a GLPI one without its sub-item cursor's `since` (GLPI's clock
    when that run walked); any other watermark as it is."""
    try:
        folders = json.loads(watermark or "")
    except ValueError:
        return watermark
    if isinstance(folders, dict) and all(isinstance(f, dict) and "last_uid" in f for f in folders.values()):
        return tuple(sorted((name, f["last_uid"]) for name, f in folders.items()))
    if isinstance(folders, dict) and isinstance(folders.get("sub"), dict):
        return json.dumps({**folders, "sub": {**folders["sub"], "since": "(GLPI's clock)"}}, sort_keys=True)
    return watermark
