"""The IMAP source against a real Dovecot on loopback (fails in CI, never skips, when Dovecot is missing)."""

import json
import re
import socket
import ssl
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from connectors.mail.config import ImapSource
from connectors.mail.imap import LOGIN_ATTEMPTS, ImapConnector
from connectors.registry import build_connector
from itsm_core.errors import ImapUnavailable
from tests.support.dovecot import (
    ImapServer,
    auth_unavailable,
    auth_unavailable_left,
    logged_in,
    running_dovecot,
    source_settings,
)
from tests.support.net import free_port, self_signed_certificate
from tests.support.oauth2 import IntrospectionServer

PASSWORD = "s3cret-imap-pw"
#: Users whose post-login CAPABILITY lacks MOVE: `uidplus` keeps UIDPLUS, `bare` offers nothing optional.
#: Dovecot still obeys the commands; only what it advertises changes, which is what the connector reads.
LIMITED_USERS = {"uidplus": "UIDPLUS", "bare": "IMAP4rev1"}


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory):
    with running_dovecot(tmp_path_factory.mktemp("dovecot"), {"helpdesk": PASSWORD, "other": PASSWORD}) as server:
        # passwd-file extra fields override settings per user; Dovecot re-reads the file when it changes.
        with (server.base / "users").open("a") as users:
            for user, capability in LIMITED_USERS.items():
                users.write(f"{user}:{{PLAIN}}{PASSWORD}::::::userdb_imap_capability={capability}\n")
        yield server


def imap(dovecot: ImapServer, user: str = "helpdesk") -> IMAPClient:
    return logged_in(dovecot.host, dovecot.port, user, PASSWORD)


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
    values = {"name": "imap", "folders": [folder], "page_size": 3} | extra
    return ImapSource.model_validate(source_settings(dovecot, **values))


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


def test_a_page_holds_at_most_max_page_bytes_of_mail(dovecot, mailbox):
    """200 messages of 25 MB would be 5 GB in one page: pages end before max_page_bytes (here 1 MiB)."""
    append(dovecot, mailbox, 5, body="x" * 400_000)  # ≈ 400 KB each
    connector = ImapConnector(settings(dovecot, mailbox, page_size=200, max_page_bytes=1024 * 1024))
    pages = list(connector.plan_pages(None))
    assert [len(p["uids"]) for p in pages] == [2, 2, 1]
    assert [r.external_id for p in pages for r in connector.fetch_page(p)] == ids(mailbox, range(5))
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


@pytest.fixture
def auth_down(dovecot):
    """`auth_down(n)`: the next n logins get NO [UNAVAILABLE]; back to normal after the test, whatever happened."""
    yield lambda logins: auth_unavailable(dovecot, logins)
    auth_unavailable(dovecot, 0)


def test_a_login_the_server_cannot_check_just_now_is_tried_again(dovecot, mailbox, auth_down):
    append(dovecot, mailbox, 1)
    connector = ImapConnector(settings(dovecot, mailbox))
    connector.login_retry_wait = 0.01
    auth_down(LOGIN_ATTEMPTS - 1)  # its password database hiccups
    (page,) = connector.plan_pages(None)
    assert [r.external_id for r in connector.fetch_page(page)] == ids(mailbox, [0])
    assert auth_unavailable_left(dovecot) == 0
    connector.close()


def test_a_login_still_unavailable_says_so_not_check_the_password(dovecot, mailbox, auth_down):
    connector = ImapConnector(settings(dovecot, mailbox))
    connector.login_retry_wait = 0.01
    auth_down(10)
    with pytest.raises(ImapUnavailable) as caught:
        list(connector.plan_pages(None))
    assert auth_unavailable_left(dovecot) == 10 - LOGIN_ATTEMPTS  # tried, then gave up: no endless loop
    auth_down(0)
    message = str(caught.value)
    assert "could not check the login just now (IMAP [UNAVAILABLE], 3 attempts)" in message
    assert "check username" not in message and PASSWORD not in message and "Temporary" not in message
    wrong = ImapConnector(settings(dovecot, mailbox, password="wrong-pw"))
    wrong.login_retry_wait = 0.01
    with pytest.raises(ImapUnavailable, match="login refused"):
        list(wrong.plan_pages(None))
    assert auth_unavailable_left(dovecot) == 0  # a refused login is not tried again (the gate saw one, no more)


def test_nothing_listening_is_reported_with_what_to_check(dovecot, mailbox):
    closed_port = free_port()  # bound and released: nothing listens there
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
    """Dovecot offering STARTTLS on its port and implicit TLS on `ssl_port`; `cert` trusts its certificate."""
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("imap-tls"))
    base = tmp_path_factory.mktemp("dovecot-tls")
    with running_dovecot(base, {"helpdesk": PASSWORD}, certificate=(cert, key)) as server:
        yield server, cert


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_a_trusted_certificate(tls_dovecot, security):
    server, cert = tls_dovecot
    with imap(server) as client:
        client.create_folder(f"TLS-{security}")
    append(server, f"TLS-{security}", 1)
    port = server.ssl_port if security == "ssl" else server.port
    source = settings(server, f"TLS-{security}", security=security, port=port)
    connector = ImapConnector(source, ssl_context=ssl.create_default_context(cafile=str(cert)))
    (page,) = connector.plan_pages(None)
    assert [r.external_id for r in connector.fetch_page(page)] == ids(f"TLS-{security}", [0])
    connector.close()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(tls_dovecot, security):
    server, _cert = tls_dovecot
    port = server.ssl_port if security == "ssl" else server.port
    connector = ImapConnector(settings(server, "INBOX", security=security, port=port))  # system trust store only
    with pytest.raises(ImapUnavailable, match="TLS certificate not trusted \\(self-signed certificate\\)"):
        list(connector.plan_pages(None))


def test_ssl_against_the_plain_port_says_to_check_security(tls_dovecot):
    server, cert = tls_dovecot
    source = settings(server, "INBOX", security="ssl", port=server.port, timeout_seconds=5)
    connector = ImapConnector(source, ssl_context=ssl.create_default_context(cafile=str(cert)))
    with pytest.raises(ImapUnavailable, match="TLS handshake failed; check `security`"):
        list(connector.plan_pages(None))


# --- XOAUTH2: a third Dovecot whose oauth2 passdb asks a loopback introspection endpoint -----------------

TOKEN = "ya29.helpdesk-bearer-7f3c9d"  # the endpoint's only active token, for the user helpdesk


@pytest.fixture(scope="module")
def oauth2_server(tmp_path_factory):
    """Dovecot taking XOAUTH2 / OAUTHBEARER tokens, each checked with the `IntrospectionServer` (the identity
    provider); passwords still log in, so the tests can put mail in place."""
    with IntrospectionServer({TOKEN: "helpdesk"}) as provider:
        base = tmp_path_factory.mktemp("dovecot-oauth2")
        with running_dovecot(base, {"helpdesk": PASSWORD}, oauth2_introspection_url=provider.url) as server:
            yield server, provider


@pytest.fixture
def oauth2_dovecot(oauth2_server):
    server, provider = oauth2_server
    provider.seen.clear()  # each test sees only the tokens it sent
    return server, provider


def test_an_oauth2_token_logs_in_with_xoauth2_and_reads_mail(oauth2_dovecot):
    server, provider = oauth2_dovecot
    with imap(server) as client:
        client.create_folder("OAUTH2")
    append(server, "OAUTH2", 2)
    connector = ImapConnector(settings(server, "OAUTH2", password=None, oauth2_token=TOKEN))
    (page,) = connector.plan_pages(None)
    assert [r.external_id for r in connector.fetch_page(page)] == ids("OAUTH2", (0, 1))
    assert provider.seen == [TOKEN]  # Dovecot really asked about the token: the login went through the oauth2 passdb
    connector.close()


def test_a_refused_oauth2_token_names_the_account_not_the_token(oauth2_dovecot):
    server, provider = oauth2_dovecot
    wrong = "ya29.revoked-token-51ab"
    connector = ImapConnector(settings(server, "INBOX", password=None, oauth2_token=wrong))
    with pytest.raises(ImapUnavailable) as caught:
        list(connector.plan_pages(None))
    message = str(caught.value)
    assert f"helpdesk@127.0.0.1:{server.port}" in message
    assert "login refused; check username and oauth2_token" in message
    assert wrong not in message and TOKEN not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no server text chained in
    assert provider.seen == [wrong]  # refused by the identity provider, not for want of the mechanism


def test_the_token_must_belong_to_the_user_that_logs_in(oauth2_dovecot):
    # Guards the tests above: Dovecot compares the endpoint's `username` with the login name.
    server, provider = oauth2_dovecot
    with IMAPClient(server.host, port=server.port, ssl=False) as client:
        assert {b"AUTH=XOAUTH2", b"AUTH=OAUTHBEARER"} <= set(client.capabilities())
        with pytest.raises(LoginError):
            client.oauth2_login("other", TOKEN)
    with IMAPClient(server.host, port=server.port, ssl=False) as client:
        client.oauthbearer_login("helpdesk", TOKEN)  # the other bearer mechanism is offered too
        assert client.select_folder("INBOX")
    assert provider.seen == [TOKEN, TOKEN]
