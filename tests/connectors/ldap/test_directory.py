"""The LDAP directory client against a real OpenLDAP (slapd with ppolicy) on loopback, bound as a service account
with only the rights `connectors/ldap/directory.py` lists — never as the rootdn. Fails in CI, never skips, when
slapd is missing."""

from __future__ import annotations

import itertools
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE, Connection, Server

from connectors.ldap import Directory, new_password
from connectors.ldap import directory as directory_module
from itsm_core.automation.spec import LdapDirectory
from itsm_core.errors import (
    ConfigError,
    NotFound,
    UpstreamAuthError,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from tests.support.net import free_port, self_signed_certificate
from tests.support.slapd import LdapServer, running_slapd

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture
def person(slapd: LdapServer) -> dict[str, str]:
    """A person of their own for each test (the server is shared by the module): uid, mail, password, dn."""
    number = next(_numbers)
    values = {"uid": f"user{number}", "mail": f"user{number}@example.org", "password": f"Old-Pass-{number}-x9"}
    values["dn"] = slapd.add_person(values["uid"], values["mail"], values["password"])
    return values


def directory(server: LdapServer, **changes: Any) -> Directory:
    return Directory(LdapDirectory(**server.directory_settings(**changes)), "corp")


def everything_said(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """All the text an error can reach an operator through: its message, repr, attributes, causes and the logs."""
    parts = [str(exc), repr(exc), *(str(value) for value in vars(exc).values())]
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    while cause is not None:
        parts.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts + [record.getMessage() for record in caplog.records])


# --- find_by_mail -------------------------------------------------------------------------------------------------


def test_find_by_mail_returns_the_dn_of_the_person(slapd: LdapServer, person: dict[str, str]) -> None:
    with directory(slapd) as ldap:
        assert ldap.find_by_mail(person["mail"]) == person["dn"]


def test_find_by_mail_leaves_case_to_the_server(slapd: LdapServer, person: dict[str, str]) -> None:
    with directory(slapd) as ldap:
        assert ldap.find_by_mail(f"  {person['mail'].upper()} ") == person["dn"]


def test_no_entry_with_the_address_is_not_found_and_says_where_it_looked(slapd: LdapServer) -> None:
    with directory(slapd) as ldap, pytest.raises(NotFound) as caught:
        ldap.find_by_mail("nobody@example.org")
    assert "no entry with mail=nobody@example.org under ou=people,dc=example,dc=org" in str(caught.value)
    assert "automation.directories.corp.base_dn" in str(caught.value)


@pytest.mark.parametrize("address", ["*", "user*", "x)(mail=*", "x\\2a", "*)(|(objectClass=*"])
def test_the_address_is_escaped_not_read_as_a_filter(slapd: LdapServer, person: dict[str, str], address: str) -> None:
    with directory(slapd) as ldap, pytest.raises(NotFound):
        ldap.find_by_mail(address)


def test_two_entries_with_one_address_is_an_error_naming_both(slapd: LdapServer) -> None:
    first = slapd.add_person("twin-a", "twins@example.org", "Twin-Pass-1")
    second = slapd.add_person("twin-b", "Twins@Example.org", "Twin-Pass-2")
    with directory(slapd) as ldap, pytest.raises(UpstreamRejected) as caught:
        ldap.find_by_mail("twins@example.org")
    message = str(caught.value)
    assert "2 entries have mail=twins@example.org" in message
    assert first in message and second in message
    assert "automation.directories.corp.user_filter" in message


def test_user_filter_narrows_the_search(slapd: LdapServer) -> None:
    slapd.add_person("shared-a", "shared@example.org", "Shared-Pass-1")
    wanted = slapd.add_person("shared-b", "shared@example.org", "Shared-Pass-2")
    with directory(slapd, user_filter="(&(objectClass=inetOrgPerson)(uid=shared-b))") as ldap:
        assert ldap.find_by_mail("shared@example.org") == wanted


def test_a_base_dn_the_server_does_not_have_names_the_key(slapd: LdapServer) -> None:
    with directory(slapd, base_dn="ou=nobody,dc=example,dc=org") as ldap, pytest.raises(UpstreamError) as caught:
        ldap.find_by_mail("user1@example.org")
    assert "automation.directories.corp.base_dn" in str(caught.value)


def test_a_broken_user_filter_names_the_key(slapd: LdapServer) -> None:
    with directory(slapd, user_filter="(objectClass=inetOrgPerson") as ldap, pytest.raises(UpstreamError) as caught:
        ldap.find_by_mail("user1@example.org")
    assert "automation.directories.corp.user_filter" in str(caught.value)


# --- reset_password -----------------------------------------------------------------------------------------------


def test_reset_password_sets_a_new_one_the_old_one_stops_working(slapd: LdapServer, person: dict[str, str]) -> None:
    with directory(slapd) as ldap:
        password = ldap.reset_password(ldap.find_by_mail(person["mail"]))
    assert password != person["password"] and len(password) >= 16
    assert slapd.can_bind(person["dn"], password)
    assert not slapd.can_bind(person["dn"], person["password"])


def test_reset_password_marks_it_for_a_change_at_next_login(slapd: LdapServer, person: dict[str, str]) -> None:
    with directory(slapd) as ldap:
        password = ldap.reset_password(person["dn"])
    assert slapd.operational(person["dn"], "pwdReset")["pwdReset"] == ["TRUE"]
    # ppolicy (pwdMustChange) lets the person bind, then do nothing but change the password
    conn = Connection(Server(slapd.url), person["dn"], password, auto_bind=True)
    with conn:
        assert not conn.search(person["dn"], "(objectClass=*)", BASE)
        assert conn.result["description"] == "insufficientAccessRights"
        assert conn.extend.standard.modify_password(person["dn"], password, "Chosen-By-Me-42")
        assert conn.search(person["dn"], "(objectClass=*)", BASE)
    assert slapd.operational(person["dn"], "pwdReset")["pwdReset"] == []


def test_reset_password_lets_a_locked_out_person_in(slapd: LdapServer, person: dict[str, str]) -> None:
    slapd.lock(person["dn"])
    assert slapd.is_locked(person["dn"]) and not slapd.can_bind(person["dn"], person["password"])
    with directory(slapd) as ldap:
        password = ldap.reset_password(person["dn"])
        assert not ldap.is_locked(person["dn"])
    assert slapd.can_bind(person["dn"], password)


def test_each_reset_gives_another_password(slapd: LdapServer, person: dict[str, str]) -> None:
    with directory(slapd) as ldap:
        first, second = ldap.reset_password(person["dn"]), ldap.reset_password(person["dn"])
    assert first != second
    assert slapd.can_bind(person["dn"], second) and not slapd.can_bind(person["dn"], first)


def test_a_password_the_server_refuses_is_not_in_the_error(
    slapd: LdapServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    strict = slapd.add_policy("strict", pwdCheckQuality=2, pwdMinLength=64)
    dn = slapd.add_person("picky", "picky@example.org", "Picky-Pass-1", policy=strict)
    generated = new_password()
    monkeypatch.setattr(directory_module, "new_password", lambda: generated)  # to know what must not show
    caplog.set_level(logging.DEBUG)
    with directory(slapd) as ldap, pytest.raises(UpstreamRejected) as caught:
        ldap.reset_password(dn)
    assert "Password fails quality checking policy" in str(caught.value)
    said = everything_said(caught.value, caplog)
    assert generated not in said and slapd.service_password not in said
    assert slapd.can_bind(dn, "Picky-Pass-1")


def test_reset_password_of_an_entry_that_is_gone(slapd: LdapServer) -> None:
    with directory(slapd) as ldap, pytest.raises(UpstreamNotFound):
        ldap.reset_password(f"uid=gone,{slapd.people_dn}")


def test_no_password_in_the_logs_of_a_reset(
    slapd: LdapServer, person: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    slapd.lock(person["dn"])
    caplog.set_level(logging.DEBUG)
    with directory(slapd) as ldap:
        password = ldap.reset_password(person["dn"])
    said = "\n".join(record.getMessage() for record in caplog.records)
    assert "unlocked" in said
    assert password not in said and slapd.service_password not in said


def test_new_passwords_are_long_varied_and_readable() -> None:
    passwords = {new_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) >= 16
        assert any(c.isupper() for c in password) and any(c.islower() for c in password)
        assert any(c.isdigit() for c in password) and "-" in password
        assert not set(password) & set("0O1lI")


# --- unlock -------------------------------------------------------------------------------------------------------


def test_unlock_lifts_a_lock_and_says_so(slapd: LdapServer, person: dict[str, str]) -> None:
    slapd.lock(person["dn"])
    with directory(slapd) as ldap:
        assert ldap.is_locked(person["dn"])
        assert ldap.unlock(person["dn"]) is True
        assert not ldap.is_locked(person["dn"])
    assert slapd.can_bind(person["dn"], person["password"])


def test_unlock_of_an_account_that_is_not_locked_is_false(slapd: LdapServer, person: dict[str, str]) -> None:
    with directory(slapd) as ldap:
        assert ldap.unlock(person["dn"]) is False
    assert slapd.can_bind(person["dn"], person["password"])


def test_unlock_after_ppolicy_locked_the_account_for_wrong_passwords(slapd: LdapServer, person: dict[str, str]) -> None:
    for _ in range(3):
        assert not slapd.can_bind(person["dn"], "wrong")
    assert slapd.is_locked(person["dn"]) and not slapd.can_bind(person["dn"], person["password"])
    with directory(slapd) as ldap:
        assert ldap.unlock(person["dn"]) is True
    # ppolicy dropped the failure count with the lock: one more wrong password does not lock again
    assert slapd.operational(person["dn"], "pwdFailureTime")["pwdFailureTime"] == []
    assert not slapd.can_bind(person["dn"], "wrong")
    assert slapd.can_bind(person["dn"], person["password"])


def test_unlock_outside_the_accounts_rights_is_forbidden(slapd: LdapServer) -> None:
    with directory(slapd) as ldap, pytest.raises(UpstreamForbidden) as caught:
        ldap.unlock(slapd.service_dn)  # outside ou=people: the service account has no right there
    assert "cn=itsm-hub,ou=services,dc=example,dc=org may not unlock" in str(caught.value)
    assert "pwdAccountLockedTime" in str(caught.value)


def test_a_directory_without_ppolicy(tmp_path: Path) -> None:
    """No ppolicy overlay: a reset still works (nothing to unlock or mark), an unlock is an error that says why."""
    with running_slapd(tmp_path / "slapd", ppolicy=False) as server:
        dn = server.add_person("plain", "plain@example.org", "Plain-Pass-1")
        with directory(server) as ldap:
            password = ldap.reset_password(dn)
            assert not ldap.is_locked(dn)
            with pytest.raises(UpstreamRejected, match="no ppolicy overlay"):
                ldap.unlock(dn)
        assert server.can_bind(dn, password) and not server.can_bind(dn, "Plain-Pass-1")


# --- connecting and binding ---------------------------------------------------------------------------------------


def test_a_wrong_bind_password_names_the_keys_and_not_the_password(
    slapd: LdapServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Not-The-Password-7"
    with pytest.raises(UpstreamAuthError) as caught, directory(slapd, bind_password=wrong):
        pass
    assert "automation.directories.corp.bind_dn / automation.directories.corp.bind_password" in str(caught.value)
    assert caught.value.code == "invalidCredentials" and not caught.value.transient
    said = everything_said(caught.value, caplog)
    assert wrong not in said and slapd.service_password not in said


def test_an_empty_bind_password_is_refused_before_an_anonymous_bind(slapd: LdapServer) -> None:
    with pytest.raises(UpstreamAuthError, match="bind_password is empty"), directory(slapd, bind_password=""):
        pass


def test_no_password_in_a_repr(slapd: LdapServer) -> None:
    with directory(slapd) as ldap:
        assert slapd.service_password not in repr(ldap)
        assert slapd.service_password not in repr(ldap._conn)  # ldap3's own repr would show it


def test_a_closed_port_is_unavailable_at_once(slapd: LdapServer) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as caught, directory(slapd, url=f"ldap://127.0.0.1:{free_port()}"):
        pass
    assert time.monotonic() - started < 2
    assert caught.value.transient and "automation.directories.corp.url" in str(caught.value)


def test_a_server_that_never_answers_is_unavailable_after_the_timeout(slapd: LdapServer) -> None:
    with socket.socket() as silent:  # accepts the TCP connection (the kernel does), never answers the bind
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable, match="did not answer"), directory(slapd, url=url, timeout_seconds=1):
            pass
    assert 0.9 < time.monotonic() - started < 5


def test_used_outside_a_with_block(slapd: LdapServer) -> None:
    with pytest.raises(RuntimeError, match="with"):
        directory(slapd).find_by_mail("user1@example.org")


# --- TLS ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LdapServer, Path]]:
    folder = tmp_path_factory.mktemp("slapd-tls")
    cert, key = self_signed_certificate(folder)
    with running_slapd(folder / "server", certificate=(cert, key)) as server:
        server.add_person("tls", "tls@example.org", "Tls-Pass-1")
        yield server, cert


def _by_name(url: str) -> str:
    """The same URL with the host named `localhost` (the certificate names it; ldap3 matches names, not IPs)."""
    return url.replace("127.0.0.1", "localhost")


def test_start_tls_and_ldaps_with_a_trusted_certificate(
    tls_slapd: tuple[LdapServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_slapd
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert server.ldaps_url
    for changes in ({"url": _by_name(server.url), "start_tls": True}, {"url": _by_name(server.ldaps_url)}):
        with directory(server, **changes) as ldap:
            assert ldap.find_by_mail("tls@example.org") == f"uid=tls,{server.people_dn}"


@pytest.mark.parametrize("mode", ["start_tls", "ldaps"])
def test_an_untrusted_certificate_is_refused(tls_slapd: tuple[LdapServer, Path], mode: str) -> None:
    server, _ = tls_slapd
    assert server.ldaps_url
    changes = {"url": server.url, "start_tls": True} if mode == "start_tls" else {"url": server.ldaps_url}
    with pytest.raises(UpstreamError) as caught, directory(server, **changes):
        pass
    assert type(caught.value) is UpstreamError  # not transient: someone must fix the trust or the URL
    assert "certificate verify failed" in str(caught.value) and "SSL_CERT_FILE" in str(caught.value)


def test_a_certificate_for_another_host_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "other.pem", tmp_path / "other.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other.example",
         "-addext", "subjectAltName=DNS:other.example", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with running_slapd(tmp_path / "other", certificate=(cert, key)) as other:
        assert other.ldaps_url
        with pytest.raises(UpstreamError, match="doesn't match") as caught, directory(other, url=other.ldaps_url):
            pass
    assert type(caught.value) is UpstreamError


def test_start_tls_on_an_ldaps_url_is_a_config_error(tls_slapd: tuple[LdapServer, Path]) -> None:
    server, _ = tls_slapd
    with pytest.raises(ConfigError) as caught, directory(server, url=server.ldaps_url, start_tls=True):
        pass
    assert caught.value.key == "automation.directories.corp.start_tls"
