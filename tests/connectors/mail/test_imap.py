"""The IMAP source against a real Dovecot on loopback (fails in CI, never skips, when Dovecot is missing)."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient

from connectors.mail.imap import ImapConnector
from connectors.registry import build_connector
from itsm_core.config import ImapSource
from itsm_core.errors import ImapUnavailable
from tests.support.dovecot import ImapServer, start_dovecot, stop_dovecot

PASSWORD = "s3cret-imap-pw"
#: Users whose post-login CAPABILITY lacks MOVE: `uidplus` keeps UIDPLUS, `bare` offers nothing optional.
#: Dovecot still obeys the commands; only what it advertises changes, which is what the connector reads.
LIMITED_USERS = {"uidplus": "UIDPLUS", "bare": "IMAP4rev1"}


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    server = start_dovecot(tmp_path_factory.mktemp("dovecot"), {"helpdesk": PASSWORD, "other": PASSWORD})
    # passwd-file extra fields override settings per user; Dovecot re-reads the file when it changes.
    with (server.base / "users").open("a") as users:
        for user, capability in LIMITED_USERS.items():
            users.write(f"{user}:{{PLAIN}}{PASSWORD}::::::userdb_imap_capability={capability}\n")
    yield server
    stop_dovecot(server)


def imap(dovecot: ImapServer, user: str = "helpdesk") -> IMAPClient:
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False)
    client.login(user, PASSWORD)
    return client


@pytest.fixture
def mailbox(dovecot, request):
    """A fresh folder (and `<folder>-done`) per test for every user, so tests don't see each other's mail."""
    folder = f"T{abs(hash(request.node.name)) % 10**8}"
    for user in ("helpdesk", *LIMITED_USERS):
        with imap(dovecot, user) as client:
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


def message(i: int, folder: str, body: str = "It broke.") -> bytes:
    mail = EmailMessage()
    mail["From"] = f"User {i} <user{i}@northwind.example>"
    mail["To"] = "helpdesk@northwind.example"
    mail["Subject"] = f"Problem {i}"
    mail["Message-ID"] = f"<m{i}.{folder}@northwind.example>"
    mail.set_content(body)
    return bytes(mail)


def append(dovecot, folder: str, count: int, start: int = 0, body: str = "It broke.", user: str = "helpdesk") -> None:
    with imap(dovecot, user) as client:
        for i in range(start, start + count):
            client.append(folder, message(i, folder, body))


def ids(folder: str, numbers) -> list[str]:
    return [f"m{i}.{folder}@northwind.example" for i in numbers]


def flags(dovecot, folder: str, user: str = "helpdesk") -> dict[int, tuple]:
    with imap(dovecot, user) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}


def recreate(dovecot, folder: str) -> None:
    """Delete and create the folder again: Dovecot gives it a new UIDVALIDITY and restarts UIDs at 1."""
    with imap(dovecot) as client:
        client.delete_folder(folder)
        client.create_folder(folder)


def commit(connector: ImapConnector, pages, watermark=None) -> str | None:
    for page in pages:
        watermark = connector.page_watermark(page, watermark)
    return watermark


# --- incremental reading --------------------------------------------------------------------------


def test_pages_in_uid_order_then_only_new_mail(dovecot, mailbox):
    append(dovecot, mailbox, 7)
    connector = ImapConnector(settings(dovecot, mailbox))
    pages = list(connector.plan_pages(None))
    assert [len(p["uids"]) for p in pages] == [3, 3, 1]
    uids = [uid for p in pages for uid in p["uids"]]
    assert uids == sorted(uids)
    records = [r for p in pages for r in connector.fetch_page(p)]
    assert [r.external_id for r in records] == ids(mailbox, range(7))
    assert records[0].locator == f"{mailbox}\t{pages[0]['uidvalidity']}\t{uids[0]}"
    assert connector.decode(records[0].payload)["subject"] == "Problem 0"

    watermark = commit(connector, pages)
    state = json.loads(watermark)[mailbox]
    assert state["last_uid"] == max(uids) and state["uidvalidity"] == pages[0]["uidvalidity"]
    assert isinstance(state["highestmodseq"], int)  # Dovecot offers CONDSTORE
    assert list(connector.plan_pages(watermark)) == []  # nothing new: the `N:*` quirk is filtered
    append(dovecot, mailbox, 2, start=7)
    (page,) = connector.plan_pages(watermark)
    assert [r.external_id for r in connector.fetch_page(page)] == ids(mailbox, (7, 8))
    connector.close()


def test_several_folders_are_read_in_order_each_with_its_own_watermark(dovecot, mailbox):
    second = f"{mailbox}-done"  # any second folder will do
    append(dovecot, mailbox, 2)
    append(dovecot, second, 4, start=10)
    connector = ImapConnector(settings(dovecot, mailbox, folders=[mailbox, second]))
    pages = list(connector.plan_pages(None))
    assert [(p["folder"], len(p["uids"])) for p in pages] == [(mailbox, 2), (second, 3), (second, 1)]
    assert [r.external_id for p in pages for r in connector.fetch_page(p)] == ids(mailbox, (0, 1)) + ids(
        second, range(10, 14)
    )
    watermark = commit(connector, pages)
    assert set(json.loads(watermark)) == {mailbox, second}

    append(dovecot, second, 1, start=20)
    (page,) = connector.plan_pages(watermark)
    assert page["folder"] == second and [r.external_id for r in connector.fetch_page(page)] == ids(second, [20])
    connector.close()


def test_a_forged_uidvalidity_rereads_the_folder(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = ImapConnector(settings(dovecot, mailbox))
    (page,) = connector.plan_pages(None)
    stale = json.dumps({mailbox: {"uidvalidity": page["uidvalidity"] - 1, "last_uid": 99, "highestmodseq": None}})
    (again,) = connector.plan_pages(stale)
    assert again["uids"] == page["uids"]
    connector.close()


def test_a_recreated_folder_is_read_again_from_uid_1(dovecot, mailbox):
    append(dovecot, mailbox, 3)
    connector = ImapConnector(settings(dovecot, mailbox))
    watermark = commit(connector, connector.plan_pages(None))
    recreate(dovecot, mailbox)
    append(dovecot, mailbox, 1, start=5)  # gets UID 1, far below the watermark's last_uid 3
    (page,) = connector.plan_pages(watermark)
    assert page["uids"] == [1] and page["uidvalidity"] != json.loads(watermark)[mailbox]["uidvalidity"]
    assert [r.external_id for r in connector.fetch_page(page)] == ids(mailbox, [5])
    connector.close()


def test_a_message_expunged_after_the_plan_is_skipped(dovecot, mailbox):
    append(dovecot, mailbox, 3)
    connector = ImapConnector(settings(dovecot, mailbox))
    (page,) = connector.plan_pages(None)
    with imap(dovecot) as other:
        other.select_folder(mailbox)
        other.delete_messages([page["uids"][1]])
        other.expunge()
    assert [r.external_id for r in connector.fetch_page(page)] == ids(mailbox, (0, 2))
    connector.close()


def test_oversize_mail_keeps_headers_and_is_refused_with_its_size(dovecot, mailbox):
    append(dovecot, mailbox, 1, body="x" * 5000)
    append(dovecot, mailbox, 1, start=1)
    connector = ImapConnector(settings(dovecot, mailbox, max_message_bytes=2048))
    (page,) = connector.plan_pages(None)
    big, small = connector.fetch_page(page)
    assert big.external_id == ids(mailbox, [0])[0]
    assert b"Subject: Problem 0" in big.payload and b"xxxx" not in big.payload
    refused = connector.decode(big.payload)  # headers only, flagged: the intake quarantines it and tells the sender
    assert refused["subject"] == "Problem 0" and refused["from_address"] == "user0@northwind.example"
    assert refused["oversize"]["size"] > 5000
    assert re.fullmatch(r"message of \d{4,} bytes exceeds max_message_bytes \(2048\).*", refused["oversize"]["reason"])
    assert connector.decode(small.payload)["subject"] == "Problem 1"  # the rest of the page is whole
    connector.close()


# --- acknowledging after the commit ---------------------------------------------------------------


def test_reading_does_not_mark_seen_but_acknowledging_does(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = build_connector(settings(dovecot, mailbox))  # the registry serves kind: imap
    assert isinstance(connector, ImapConnector)
    (page,) = connector.plan_pages(None)
    records = connector.fetch_page(page)
    assert all(b"\\Seen" not in f for f in flags(dovecot, mailbox).values())
    connector.acknowledge(records)
    assert len(flags(dovecot, mailbox)) == 2
    assert all(b"\\Seen" in f for f in flags(dovecot, mailbox).values())
    connector.close()


def test_leave_changes_nothing(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = ImapConnector(settings(dovecot, mailbox, after_import="leave"))
    (page,) = connector.plan_pages(None)
    connector.acknowledge(connector.fetch_page(page))
    assert all(b"\\Seen" not in f for f in flags(dovecot, mailbox).values()) and len(flags(dovecot, mailbox)) == 2
    connector.close()


def test_move_after_import(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = ImapConnector(settings(dovecot, mailbox, after_import="move", move_to=f"{mailbox}-done"))
    (page,) = connector.plan_pages(None)
    connector.acknowledge(connector.fetch_page(page))
    assert flags(dovecot, mailbox) == {}
    assert len(flags(dovecot, f"{mailbox}-done")) == 2
    connector.close()


def test_move_without_MOVE_copies_then_expunges_only_its_own_messages(dovecot, mailbox):
    append(dovecot, mailbox, 3, user="uidplus")
    connector = ImapConnector(
        settings(dovecot, mailbox, username="uidplus", after_import="move", move_to=f"{mailbox}-done")
    )
    (page,) = connector.plan_pages(None)
    with imap(dovecot, "uidplus") as other:  # another client's message, marked \Deleted but not expunged
        other.select_folder(mailbox)
        other.add_flags([page["uids"][2]], [b"\\Deleted"])
    connector.acknowledge(connector.fetch_page({**page, "uids": page["uids"][:2]}))
    assert list(flags(dovecot, mailbox, "uidplus")) == [page["uids"][2]]  # UID EXPUNGE spared it
    assert len(flags(dovecot, f"{mailbox}-done", "uidplus")) == 2
    connector.close()


def test_move_without_UIDPLUS_copies_and_leaves_the_originals_deleted(dovecot, mailbox):
    append(dovecot, mailbox, 2, user="bare")
    connector = ImapConnector(
        settings(dovecot, mailbox, username="bare", after_import="move", move_to=f"{mailbox}-done")
    )
    (page,) = connector.plan_pages(None)
    assert page["highestmodseq"] is None  # no CONDSTORE offered
    connector.acknowledge(connector.fetch_page(page))
    assert len(flags(dovecot, f"{mailbox}-done", "bare")) == 2
    originals = flags(dovecot, mailbox, "bare")
    assert len(originals) == 2 and all(b"\\Deleted" in f for f in originals.values())
    connector.close()


def test_a_missing_move_to_folder_fails_before_anything_is_read(dovecot, mailbox):
    append(dovecot, mailbox, 1)
    connector = ImapConnector(settings(dovecot, mailbox, after_import="move", move_to="NoSuchFolder"))
    with pytest.raises(ImapUnavailable, match="'NoSuchFolder' \\(move_to\\) does not exist"):
        list(connector.plan_pages(None))
    connector.close()


def test_acknowledge_leaves_a_folder_whose_uidvalidity_changed(dovecot, mailbox):
    append(dovecot, mailbox, 2)
    connector = ImapConnector(settings(dovecot, mailbox))
    (page,) = connector.plan_pages(None)
    records = connector.fetch_page(page)
    recreate(dovecot, mailbox)
    append(dovecot, mailbox, 2, start=5)  # same UIDs 1 and 2, other messages
    connector.acknowledge(records)
    assert len(flags(dovecot, mailbox)) == 2
    assert all(b"\\Seen" not in f for f in flags(dovecot, mailbox).values())
    connector.close()


# --- connection -----------------------------------------------------------------------------------


def test_a_refused_login_names_the_account_not_the_password(dovecot, mailbox):
    connector = ImapConnector(settings(dovecot, mailbox, password="wrong-pw"))  # lazily connected: no error yet
    with pytest.raises(ImapUnavailable) as caught:
        list(connector.plan_pages(None))
    message = str(caught.value)
    assert f"helpdesk@127.0.0.1:{dovecot.port}" in message and "login refused; check username and password" in message
    assert "wrong-pw" not in message and PASSWORD not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no server text chained in


def test_nothing_listening_is_reported_with_what_to_check(dovecot, mailbox):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    connector = ImapConnector(settings(dovecot, mailbox, port=closed_port))
    with pytest.raises(ImapUnavailable, match=f"127.0.0.1:{closed_port}: connection refused; check host and port"):
        list(connector.plan_pages(None))


def test_a_missing_folder_names_the_existing_ones(dovecot, mailbox):
    connector = ImapConnector(settings(dovecot, mailbox, folders=["Nope"]))
    with pytest.raises(ImapUnavailable, match=f"'Nope' does not exist.*existing: .*INBOX.*{mailbox}"):
        list(connector.plan_pages(None))
    connector.close()


def test_a_lost_connection_is_typed_and_the_next_call_reconnects(dovecot, mailbox):
    append(dovecot, mailbox, 1)
    connector = ImapConnector(settings(dovecot, mailbox))
    (page,) = connector.plan_pages(None)
    connector.client.socket().shutdown(socket.SHUT_RDWR)  # the server or network dropped us
    with pytest.raises(ImapUnavailable, match=r"lost the connection .* while fetching"):
        connector.fetch_page(page)
    assert [r.external_id for r in connector.fetch_page(page)] == ids(mailbox, [0])  # a task retry works
    connector.close()


def test_starttls_against_a_server_without_it_is_refused(dovecot, mailbox):
    connector = ImapConnector(settings(dovecot, mailbox, security="starttls"))
    with pytest.raises(ImapUnavailable, match="offers no STARTTLS"):
        list(connector.plan_pages(None))


# --- TLS: a second Dovecot with a throwaway self-signed certificate --------------------------------


@pytest.fixture(scope="module")
def tls_dovecot(tmp_path_factory):
    """Dovecot offering STARTTLS on its port and implicit TLS on `ssl_port`; `cafile` trusts its certificate."""
    server = start_dovecot(tmp_path_factory.mktemp("dovecot-tls"), {"helpdesk": PASSWORD})
    try:
        cert, key = server.base / "cert.pem", server.base / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        ssl_port = _free_port()
        config = server.base / "dovecot.conf"
        text = config.read_text().replace("ssl = no", f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}")
        config.write_text(text.replace("port = 0", f"port = {ssl_port}"))  # the imaps listener, off until now
        os.kill(int((server.base / "run" / "master.pid").read_text()), signal.SIGHUP)  # reload the config
        _wait_for_port(ssl_port)
        yield server, ssl_port, cert
    finally:
        stop_dovecot(server)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Dovecot did not listen on port {port} after the reload")


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_a_trusted_certificate(tls_dovecot, security):
    server, ssl_port, cert = tls_dovecot
    with imap(server) as client:
        client.create_folder(f"TLS-{security}")
    append(server, f"TLS-{security}", 1)
    port = ssl_port if security == "ssl" else server.port
    source = settings(server, f"TLS-{security}", security=security, port=port)
    connector = ImapConnector(source, ssl_context=ssl.create_default_context(cafile=str(cert)))
    (page,) = connector.plan_pages(None)
    assert [r.external_id for r in connector.fetch_page(page)] == ids(f"TLS-{security}", [0])
    connector.close()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(tls_dovecot, security):
    server, ssl_port, _cert = tls_dovecot
    port = ssl_port if security == "ssl" else server.port
    connector = ImapConnector(settings(server, "INBOX", security=security, port=port))  # system trust store only
    with pytest.raises(ImapUnavailable, match="TLS certificate not trusted \\(self-signed certificate\\)"):
        list(connector.plan_pages(None))


def test_ssl_against_the_plain_port_says_to_check_security(tls_dovecot):
    server, _ssl_port, cert = tls_dovecot
    source = settings(server, "INBOX", security="ssl", port=server.port, timeout_seconds=5)
    connector = ImapConnector(source, ssl_context=ssl.create_default_context(cafile=str(cert)))
    with pytest.raises(ImapUnavailable, match="TLS handshake failed; check `security`"):
        list(connector.plan_pages(None))
