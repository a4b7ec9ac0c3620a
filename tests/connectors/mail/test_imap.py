"""The IMAP source against a real Dovecot on loopback (fails, never skips, when Dovecot is missing)."""

import json
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient

from connectors.mail.imap import ImapConnector
from itsm_core.config import ImapSource
from itsm_core.errors import ImapUnavailable, MailParseError
from tests.support.dovecot import start_dovecot, stop_dovecot

PASSWORD = "s3cret-imap-pw"


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    server = start_dovecot(tmp_path_factory.mktemp("dovecot"), {"helpdesk": PASSWORD, "other": PASSWORD})
    yield server
    stop_dovecot(server)


@pytest.fixture
def mailbox(dovecot, request):
    """A fresh folder per test, so tests don't see each other's mail."""
    folder = f"T{abs(hash(request.node.name)) % 10**8}"
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False) as client:
        client.login("helpdesk", PASSWORD)
        for name in (folder, f"{folder}-done"):
            if client.folder_exists(name):
                client.delete_folder(name)
            client.create_folder(name)
    return folder


def settings(dovecot, folder, **extra) -> ImapSource:
    values = {
        "name": "imap", "kind": "imap", "host": dovecot.host, "port": dovecot.port, "security": "plain",
        "username": "helpdesk", "password": PASSWORD, "folders": [folder], "page_size": 3, **extra,
    }  # fmt: skip
    return ImapSource.model_validate(values)


def append(dovecot, folder: str, count: int, start: int = 0, body: str = "It broke.") -> None:
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False) as client:
        client.login("helpdesk", PASSWORD)
        for i in range(start, start + count):
            message = EmailMessage()
            message["From"] = f"User {i} <user{i}@northwind.example>"
            message["To"] = "helpdesk@northwind.example"
            message["Subject"] = f"Problem {i}"
            message["Message-ID"] = f"<m{i}.{folder}@northwind.example>"
            message.set_content(body)
            client.append(folder, bytes(message))


def flags(dovecot, folder: str) -> dict[int, tuple]:
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False) as client:
        client.login("helpdesk", PASSWORD)
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}


def test_pages_in_uid_order_then_only_new_mail(dovecot, mailbox):
    append(dovecot, mailbox, 7)
    connector = ImapConnector(settings(dovecot, mailbox))
    pages = list(connector.plan_pages(None))
    assert [len(p["uids"]) for p in pages] == [3, 3, 1]
    records = [r for p in pages for r in connector.fetch_page(p)]
    assert [r.external_id for r in records] == [f"m{i}.{mailbox}@northwind.example" for i in range(7)]
    assert connector.decode(records[0].payload)["subject"] == "Problem 0"

    watermark = None
    for page in pages:
        watermark = connector.page_watermark(page, watermark)
    assert json.loads(watermark)[mailbox]["last_uid"] == max(pages[-1]["uids"])
    assert list(connector.plan_pages(watermark)) == []  # nothing new: `N:*` quirk filtered
    append(dovecot, mailbox, 2, start=7)
    (page,) = connector.plan_pages(watermark)
    assert [r.external_id for r in connector.fetch_page(page)] == [f"m{i}.{mailbox}@northwind.example" for i in (7, 8)]
    connector.close()


def test_reading_does_not_mark_seen_but_acknowledging_does(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = ImapConnector(settings(dovecot, mailbox))
    (page,) = connector.plan_pages(None)
    records = connector.fetch_page(page)
    assert all(b"\\Seen" not in f for f in flags(dovecot, mailbox).values())
    connector.acknowledge(records)
    assert all(b"\\Seen" in f for f in flags(dovecot, mailbox).values())
    connector.close()


def test_move_after_import(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = ImapConnector(settings(dovecot, mailbox, after_import="move", move_to=f"{mailbox}-done"))
    (page,) = connector.plan_pages(None)
    connector.acknowledge(connector.fetch_page(page))
    assert flags(dovecot, mailbox) == {}
    assert len(flags(dovecot, f"{mailbox}-done")) == 2
    connector.close()


def test_a_new_uidvalidity_rereads_the_folder(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = ImapConnector(settings(dovecot, mailbox))
    (page,) = connector.plan_pages(None)
    stale = json.dumps({mailbox: {"uidvalidity": page["uidvalidity"] - 1, "last_uid": 99}})
    (again,) = connector.plan_pages(stale)
    assert again["uids"] == page["uids"]
    connector.close()


def test_oversize_mail_keeps_headers_and_is_refused_with_its_size(dovecot, mailbox):
    append(dovecot, mailbox, 1, body="x" * 5000)
    connector = ImapConnector(settings(dovecot, mailbox, max_message_bytes=2048))
    (page,) = connector.plan_pages(None)
    (record,) = connector.fetch_page(page)
    assert b"Subject: Problem 0" in record.payload and b"xxxx" not in record.payload
    with pytest.raises(MailParseError, match=r"message of \d+ bytes exceeds max_message_bytes \(2048\)"):
        connector.decode(record.payload)
    connector.close()


def test_a_refused_login_names_the_account_not_the_password(dovecot, mailbox):
    bad = settings(dovecot, mailbox).model_copy(
        update={"password": type(settings(dovecot, mailbox).password)("wrong-pw")}
    )
    with pytest.raises(ImapUnavailable) as caught:
        list(ImapConnector(bad).plan_pages(None))
    assert "helpdesk@127.0.0.1" in str(caught.value) and "login refused" in str(caught.value)
    assert "wrong-pw" not in str(caught.value) and PASSWORD not in str(caught.value)
