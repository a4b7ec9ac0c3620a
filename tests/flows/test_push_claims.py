"""Two pushers at once (the scheduled cycle and a manual `itsm push`, or two workers) never send a row twice:
outbox rows are claimed. On PostgreSQL, with real concurrent sessions and a real SMTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.outbound import deliver_email
from itsm_core.config import EmailConfig, SmtpConfig
from itsm_core.email.intake import EmailIntake
from itsm_core.mapping import load_mapping
from itsm_core.models import RawRecord
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store import Store
from itsm_core.store.outbox import depth
from itsm_core.sync.ingest import SourcePipeline, ingest_batch
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.postgres
PENDING = 40
ROUNDS = 8  # without claims, both pushers sent all 40 rows (80 mails) in the first round


def queue_acknowledgements(store: Store, email: EmailConfig, first: int) -> None:
    """PENDING new tickets by mail, each with its acknowledgement waiting in the outbox."""
    pipeline = SourcePipeline(
        "mailbox", json.loads, load_mapping("email"), Rules(RulesConfig()), intake=EmailIntake(email, "mailbox")
    )
    records = []
    for n in range(first, first + PENDING):
        mail = {
            "message_id": f"m{n}@example.org", "subject": f"Printer {n}", "from_address": f"user{n}@example.org",
            "from_name": None, "text": "broken", "reply_text": "broken", "to": [], "cc": [], "reply_to": [],
            "references": [], "in_reply_to": None, "attachments": [], "noise": None,
        }  # fmt: skip
        records.append(RawRecord(mail["message_id"], json.dumps(mail).encode(), "eml", datetime.now(UTC)))
    with store.transaction() as conn:
        assert ingest_batch(conn, pipeline, records).created == PENDING


def recipients(sink: SmtpSink) -> Counter[str]:
    return Counter(rcpt for received in sink.received for rcpt in received.rcpt_tos)


def push_at_once(store: Store, email: EmailConfig) -> list[int]:
    """Two pushers released at the same instant; how many mails each sent."""
    start = threading.Barrier(2)
    sent: list[int] = []

    def push() -> None:
        start.wait()
        sent.append(deliver_email(store, email, limit=PENDING).sent)

    pushers = [threading.Thread(target=push) for _ in range(2)]
    for pusher in pushers:
        pusher.start()
    for pusher in pushers:
        pusher.join(60)
    return sent


def test_two_pushers_at_the_same_instant_send_each_mail_once(postgres_url):
    store = Store(postgres_url)
    store.upgrade()
    with SmtpSink() as sink:
        smtp = SmtpConfig(host="127.0.0.1", port=sink.port, security="plain", from_address="hd@x.org")
        email = EmailConfig(smtp=smtp)
        for round_ in range(ROUNDS):
            queue_acknowledgements(store, email, first=round_ * PENDING)
            sent = push_at_once(store, email)
            assert sum(sent) == PENDING, f"round {round_}: the two pushers sent {sent}"
        counts = recipients(sink)
        assert len(counts) == PENDING * ROUNDS and set(counts.values()) == {1}
    with store.connect() as conn:
        assert depth(conn) == 0
    store.dispose()


def test_two_itsm_push_commands_at_once_send_exactly_the_pending_mail(tmp_path: Path, postgres_url):
    store = Store(postgres_url)
    store.upgrade()
    with SmtpSink() as sink:
        smtp = {"host": "127.0.0.1", "port": sink.port, "security": "plain", "from_address": "hd@x.org"}
        queue_acknowledgements(store, EmailConfig(smtp=SmtpConfig(**smtp)), first=0)
        config = tmp_path / "itsm.yaml"
        config.write_text(f"database_url: {postgres_url}\nemail:\n  smtp: {json.dumps(smtp)}\n")
        env = {**os.environ, "ITSM_CONFIG": str(config)}
        command = [sys.executable, "-c", "from flows.cli import main; main()", "push"]
        pushers = [subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True) for _ in "ab"]
        outputs = [p.communicate(timeout=120)[0] for p in pushers]
        assert [p.returncode for p in pushers] == [0, 0], outputs
        counts = recipients(sink)
    assert len(counts) == PENDING and set(counts.values()) == {1}, counts.most_common(3)
    with store.connect() as conn:
        assert depth(conn) == 0
    store.dispose()
