"""One hostile mail never costs its page: values longer than their column, on PostgreSQL (which enforces the
lengths SQLite ignores), through a drop folder and through IMAP on a real Dovecot."""

from __future__ import annotations

import hashlib
import json
import os
import time
import tracemalloc
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.base import TICKETS
from flows.runtime import build_runtime
from itsm_core.config import load_config
from itsm_core.store import Store
from itsm_core.store.quarantine import count_dead_letters
from itsm_core.store.sync_state import get_state, save_watermark
from itsm_core.store.tables import MailMessageRow, OutboxRow, TicketWatcherRow
from itsm_core.store.tickets import count_tickets, get_ticket, list_tickets
from itsm_core.sync.batch import BatchReport
from itsm_core.sync.ingest import ingest_batch
from tests.support.dovecot import deliver, running_dovecot, source_settings

pytestmark = pytest.mark.postgres

LONG_ID = "x" * 690 + "@evil.example"  # 703 characters: mail_messages.message_id is String(500)
LONG_CC = "a" * 390 + "@evil.example"  # 403 characters: addresses are String(320)


def eml(number: int, *, message_id: str | None = None, cc: str | None = None, subject: str | None = None) -> bytes:
    headers = [
        f"From: Requester {number} <user{number}@example.org>",
        "To: helpdesk@example.org",
        f"Subject: {subject or f'Printer {number} is broken'}",
        f"Message-ID: <{message_id or f'good-{number}@example.org'}>",
        "Date: Fri, 04 Dec 2026 09:00:00 +0000",
    ]
    if cc:
        headers.append(f"Cc: {cc}")
    return ("\r\n".join(headers) + f"\r\n\r\nIt does not print ({number}).\r\n").encode()


def page_of_seven() -> list[bytes]:
    good = [eml(n) for n in range(1, 6)]
    return [*good[:3], eml(6, message_id=LONG_ID), *good[3:], eml(7, cc=f"Long <{LONG_CC}>, colleague@example.org")]


def pull(config: Path, source: str) -> BatchReport:
    """The sync's page loop (flows/sync.py) without Prefect: fetch, then land, apply and move the watermark in
    one transaction per page."""
    hub = load_config(str(config))
    runtime = build_runtime(hub, hub.source(source))
    report = BatchReport()
    try:
        with runtime.store.connect() as conn:
            watermark = (get_state(conn, source, TICKETS) or {}).get("watermark")
        for page in runtime.connector.plan_pages(watermark, TICKETS):
            records = runtime.connector.fetch_page(page)
            watermark = runtime.connector.page_watermark(page, watermark)
            with runtime.store.transaction() as conn:
                report += ingest_batch(conn, runtime.pipeline, records)
                if watermark is not None:
                    save_watermark(conn, source, TICKETS, watermark)
            runtime.connector.acknowledge(records)
    finally:
        runtime.connector.close()
        runtime.store.dispose()
    return report


def check_store(url: str) -> None:
    store = Store(url)
    with store.connect() as conn:
        assert count_tickets(conn) == 7
        assert count_dead_letters(conn) == 0
        ids = set(conn.execute(select(MailMessageRow.message_id)).scalars())
        assert max(len(i) for i in ids) <= 400 and any(i.startswith("sha256:") for i in ids)
        watchers = set(conn.execute(select(TicketWatcherRow.address)).scalars())
        assert watchers == {"colleague@example.org"}  # 403 characters name no mailbox
        assert conn.execute(select(func.max(func.length(MailMessageRow.address)))).scalar_one() <= 320
    store.dispose()


def test_a_drop_folder_page_with_a_700_character_message_id_and_a_400_character_cc(tmp_path, postgres_url):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for number, payload in enumerate(page_of_seven(), start=1):
        (inbox / f"{number:02}.eml").write_bytes(payload)
    config = tmp_path / "itsm.yaml"
    config.write_text(f"database_url: {postgres_url}\nsources:\n  - {{name: drop, kind: maildir, path: {inbox}}}\n")
    Store(postgres_url).upgrade()

    report = pull(config, "drop")
    assert (report.fetched, report.created, report.quarantined) == (7, 7, 0)
    check_store(postgres_url)
    assert pull(config, "drop").created == 0  # and the folder does not stall: a second run finds it all done


def test_the_same_page_through_imap_on_dovecot(tmp_path, postgres_url):
    with running_dovecot(tmp_path / "dovecot", {"helpdesk": "imap-pw"}) as server:
        deliver(server, *page_of_seven())
        config = tmp_path / "itsm.yaml"
        source = json.dumps(source_settings(server))
        config.write_text(f"database_url: {postgres_url}\nsources:\n  - {source}\n")
        Store(postgres_url).upgrade()
        report = pull(config, "helpdesk")
        assert (report.fetched, report.created, report.quarantined) == (7, 7, 0)
        check_store(postgres_url)
        assert pull(config, "helpdesk").fetched == 0  # the watermark passed the page


def test_cosmetic_lengths_are_cut_not_quarantined(tmp_path, postgres_url):
    """A 300-character display name, a 600-character subject and attachment name: a ticket, shortened."""
    name = "N" * 300
    filename = "f" * 600 + ".pdf"
    raw = (
        f'From: "{name}" <long@example.org>\r\nTo: helpdesk@example.org\r\nSubject: {"S" * 600}\r\n'
        "Message-ID: <cosmetic@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        f'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
    ).encode()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "long.eml").write_bytes(raw)
    config = tmp_path / "itsm.yaml"
    config.write_text(f"database_url: {postgres_url}\nsources:\n  - {{name: drop, kind: maildir, path: {inbox}}}\n")
    Store(postgres_url).upgrade()
    assert (pull(config, "drop").created, pull(config, "drop").quarantined) == (1, 0)
    store = Store(postgres_url)
    with store.connect() as conn:
        (ticket,) = list_tickets(conn)
        full = get_ticket(conn, ticket["id"])
    store.dispose()
    assert len(full["title"]) == 500 and full["title"].endswith("…")
    assert len(full["requester_name"]) == 200
    (attachment,) = full["attachments"]
    assert len(attachment["name"]) == 500 and attachment["name"].endswith("….pdf")


FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def fifty_mb_mail() -> tuple[bytes, str]:
    """A mail with a 50 MB attachment of random bytes (68 MB once base64-encoded), and the attachment's sha256."""
    content = os.urandom(FIFTY_MB)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Ann <ann@example.org>", "helpdesk@example.org", "The disk image"
    mail["Message-ID"] = "<fifty@example.org>"
    mail.set_content("The image of the broken laptop is attached.\n")
    mail.add_attachment(content, "application", "octet-stream", filename="laptop.img")
    return bytes(mail), hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    ("caps", "outcome"),
    [
        ({}, "refused"),  # the defaults: max_message_bytes 25 MB
        ({"max_message_bytes": 100 * 1024 * 1024}, "ticket without the file"),  # max_attachment_bytes 20 MB
        ({"max_message_bytes": 100 * 1024 * 1024, "max_attachment_bytes": 60 * 1024 * 1024}, "ticket with the file"),
    ],
)
def test_a_50_mb_attachment_within_the_caps_or_refused_with_the_reason(
    tmp_path, postgres_url, fifty_mb_mail, caps, outcome
):
    """Bounds, through the drop folder's whole page (read, parse, land, store the blob on PostgreSQL): 60 s (about
    20 s measured), and a Python heap peak of 12 × the message when it is parsed (9.5 × measured: the standard
    library's email parser holds the message line by line), 1 × the attachment when the caps refuse it unread."""
    raw, digest = fifty_mb_mail
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "big.eml").write_bytes(raw)
    config = tmp_path / "itsm.yaml"
    source = json.dumps({"name": "drop", "kind": "maildir", "path": str(inbox), **caps})
    config.write_text(f"database_url: {postgres_url}\nsources:\n  - {source}\n")
    Store(postgres_url).upgrade()

    tracemalloc.start()
    started = time.perf_counter()
    try:
        report = pull(config, "drop")
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    seconds = time.perf_counter() - started
    print(f"{outcome}: {seconds:.1f} s, Python heap peak {peak / 2**20:.0f} MB")
    assert seconds < 60
    assert peak < (FIFTY_MB if outcome == "refused" else 12 * len(raw))

    store = Store(postgres_url)
    with store.connect() as conn:
        if outcome == "refused":
            assert (report.created, report.quarantined) == (0, 1)
            (note,) = report.notes
            assert "max_message_bytes" in note.reason, note.reason
        else:
            assert (report.created, report.quarantined) == (1, 0)
            (ticket,) = list_tickets(conn)
            full = get_ticket(conn, ticket["id"])
            if outcome == "ticket with the file":
                (attachment,) = full["attachments"]
                assert (attachment["name"], attachment["size"], attachment["sha256"]) == (
                    "laptop.img",
                    FIFTY_MB,
                    digest,
                )
            else:
                assert full["attachments"] == []
                assert "laptop.img" in full["description"] and "max_attachment_bytes" in full["description"]
    store.dispose()


FIDELITY = Path(__file__).resolve().parents[1] / "connectors" / "mail" / "fixtures" / "fidelity"
#: Issue 23: mail a mature helpdesk turns into tickets, each with the requester it must get.
RECOVERED = {
    "empty-from-reply-to.eml": "Kenji.Sato@example.jp",  # From: "Helpdesk user" <>, the sender from Reply-To
    "no-from-sender.eml": "ops-robot@example.org",  # no From, the sender from Sender
    "trailing-dot-domain.eml": "Ann.Lee@example.com",  # ann's domain written absolute (example.com.)
    "junk-first-line.eml": "ann@example.com",  # an exporter's banner before the headers
    "unknown-requester.eml": "unknown-requester@unknown.invalid",  # no address anywhere: for an agent
    "iso-2022-jp-nec.eml": "Taro.Yamada@yamada.example.jp",  # ①, ㈱ under ESC $ B
}


@pytest.mark.parametrize("transport", ["maildir", "imap"])
def test_mail_without_a_usable_from_becomes_a_ticket_with_the_right_requester(tmp_path, postgres_url, transport):
    """Through the real page loop: every mail a ticket with its recovered requester, the one without any flagged
    for an agent and not acknowledged (its address is a placeholder), a bare MAILER-DAEMON still a bounce."""
    payloads = {name: (FIDELITY / name).read_bytes() for name in [*RECOVERED, "bare-mailer-daemon.eml"]}
    email = (  # acknowledgements are only queued here: no SMTP server is needed
        "email: {hub_addresses: [helpdesk@northwind.example], smtp: {host: 127.0.0.1, port: 2525, "
        "security: plain, from_address: helpdesk@northwind.example}}\n"
    )
    config = tmp_path / "itsm.yaml"
    Store(postgres_url).upgrade()
    if transport == "maildir":
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        for name, payload in payloads.items():
            (inbox / name).write_bytes(payload)
        drop = f"{{name: drop, kind: maildir, path: {inbox}}}"
        config.write_text(f"database_url: {postgres_url}\n{email}sources:\n  - {drop}\n")
        report = pull(config, "drop")
    else:
        with running_dovecot(tmp_path / "dovecot", {"helpdesk": "imap-pw"}) as server:
            deliver(server, *payloads.values())
            source = json.dumps(source_settings(server))
            config.write_text(f"database_url: {postgres_url}\n{email}sources:\n  - {source}\n")
            report = pull(config, "helpdesk")
    assert (report.fetched, report.created, report.ignored, report.quarantined) == (7, 6, 1, 0)
    store = Store(postgres_url)
    with store.connect() as conn:
        assert count_dead_letters(conn) == 0
        tickets = {t["custom_fields"]["message_id"]: get_ticket(conn, t["id"]) for t in list_tickets(conn)}
        acknowledged = set(conn.execute(select(OutboxRow.ticket_id)).scalars())
    store.dispose()
    by_file = {name: tickets[_message_id(payloads[name])] for name in RECOVERED}
    assert {name: ticket["requester"] for name, ticket in by_file.items()} == RECOVERED
    unknown = by_file["unknown-requester.eml"]
    assert unknown["custom_fields"]["requester_unknown"] is True and unknown["requester_name"] == "Someone"
    assert unknown["title"] == "Who am I" and unknown["description"] == "No address anywhere."
    assert unknown["id"] not in acknowledged
    assert acknowledged == {t["id"] for name, t in by_file.items() if name != "unknown-requester.eml"}
    recovered = by_file["empty-from-reply-to.eml"]
    assert "requester_unknown" not in recovered["custom_fields"]
    assert recovered["custom_fields"]["mail_defects"] == [
        "the From header names no address: '\"Helpdesk user\" <>'; the sender was taken from Reply-To"
    ]
    japanese = by_file["iso-2022-jp-nec.eml"]
    assert (
        japanese["title"] == "㈱山田商事\u3000サーバー障害①" and "①サーバーが起動しません。" in japanese["description"]
    )


def _message_id(payload: bytes) -> str:
    return payload.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()
