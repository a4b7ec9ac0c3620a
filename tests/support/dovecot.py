"""A private Dovecot IMAP server on a loopback port, in a temp folder, for one test session.

Debian's `dovecot-imapd` (installed by .ci/run). The settings that let it run unprivileged in a temp folder
are in ../shared/reference/dovecot-test-server.md. In CI a missing Dovecot fails the tests, never skips them.

Options of `start_dovecot`:
- `certificate=(cert, key)` (from `tests.support.net.self_signed_certificate`): STARTTLS on `port` and
  implicit TLS on `ssl_port`; plaintext login stays allowed on loopback.
- every server can answer the next N logins with ``NO [UNAVAILABLE] Temporary authentication failure``, as
  when its password database is down for a moment: `auth_unavailable(server, N)`.
- `oauth2_introspection_url` (from `tests.support.oauth2.IntrospectionServer`): XOAUTH2 and OAUTHBEARER,
  each token checked by POSTing it to that URL; passwords still log in with PLAIN and LOGIN.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support.net import free_port, wait_for_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
listen = 127.0.0.1
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
auth_failure_delay = 0
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 100
mail_location = maildir:{base}/mail/%u
# first a gate that can make the password database "unavailable" for the next N logins (`auth_unavailable`)
passdb {{
  driver = checkpassword
  mechanisms = plain login
  args = {base}/auth-gate
  result_internalfail = return-fail
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {base}/users
}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={base}/home/%u
}}
# no growing anvil penalty per failed login: tests that fail a login on purpose don't slow the next ones
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {ssl_port}
  }}
}}
"""

#: Tokens go to an RFC 7662 introspection endpoint; `username` in its answer names the mailbox.
OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/oauth2.conf.ext
}}
"""
OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""


AUTH_GATE = """\
#!/bin/sh
n=$(cat {counter} 2>/dev/null || echo 0)
if [ "$n" -gt 0 ]; then echo $((n - 1)) > {counter}; exit 111; fi
exit 1
"""


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    users: dict[str, str]
    base: Path
    ssl_port: int | None = None  # implicit TLS, with `certificate`


def start_dovecot(
    base: Path,
    users: dict[str, str],
    *,
    certificate: tuple[Path, Path] | None = None,
    oauth2_introspection_url: str | None = None,
) -> ImapServer:
    """Dovecot serving `users` (name → password) on a free loopback port; see the module docstring for options."""
    if not Path(DOVECOT).exists():
        message = "Dovecot is not installed: apt-get install dovecot-imapd (.ci/run does this)"
        if os.environ.get("CI"):
            raise RuntimeError(message)  # in CI the mail tests must run, never skip
        import pytest

        pytest.skip(message)
    # Dovecot's own users must traverse to its folders. pytest's temp root is private (0700) and another pytest
    # session starting meanwhile makes it private again, so the server lives in a /tmp folder of its own, and
    # `base` (what the test sees) links to it.
    base.parent.mkdir(parents=True, exist_ok=True)
    if base.is_dir() and not base.is_symlink():
        base.rmdir()  # an empty folder made for it (tmp_path_factory.mktemp): the link takes its place
    home = Path(tempfile.mkdtemp(prefix="itsm-dovecot-"))
    home.chmod(0o755)
    base.symlink_to(home, target_is_directory=True)
    base = home
    for folder in (base / "run", base / "state", base / "mail", base / "home"):
        folder.mkdir()
    port, ssl_port = free_port(), free_port() if certificate else None
    gate = base / "auth-gate"  # checkpassword: exit 111 is "temporary failure", 1 is "not me, ask the next passdb"
    gate.write_text(AUTH_GATE.format(counter=base / "auth-unavailable"))
    gate.chmod(0o755)
    (base / "users").write_text("".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users.items()))
    if oauth2_introspection_url:
        (base / "oauth2.conf.ext").write_text(OAUTH2_CONFIG.format(url=oauth2_introspection_url))
    config = base / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            base=base,
            port=port,
            ssl_port=ssl_port or 0,  # 0: no imaps listener
            ssl=f"ssl = yes\nssl_cert = <{certificate[0]}\nssl_key = <{certificate[1]}" if certificate else "ssl = no",
            oauth2_mechanisms=" xoauth2 oauthbearer" if oauth2_introspection_url else "",
            oauth2_passdb=OAUTH2_PASSDB.format(base=base) if oauth2_introspection_url else "",
        )
    )
    shutil.chown(base / "mail", "dovecot", "dovecot")
    shutil.chown(base / "home", "dovecot", "dovecot")
    # Dovecot daemonises: its children must not inherit pipes we would wait on
    subprocess.run([DOVECOT, "-c", str(config)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for listening in (port, ssl_port):
        if listening:
            wait_for_port(listening, str(base / "dovecot.log"))
    return ImapServer("127.0.0.1", port, users, base, ssl_port)


def stop_dovecot(server: ImapServer) -> None:
    """Stop the server and remove its folder (the test's `base` link is left dangling)."""
    pid_file = server.base / "run" / "master.pid"
    if pid_file.exists():
        os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    shutil.rmtree(server.base, ignore_errors=True)


@contextmanager
def running_dovecot(
    base: Path,
    users: dict[str, str],
    *,
    certificate: tuple[Path, Path] | None = None,
    oauth2_introspection_url: str | None = None,
) -> Iterator[ImapServer]:
    """`start_dovecot`, stopped on leaving the block (also when the test fails)."""
    server = start_dovecot(base, users, certificate=certificate, oauth2_introspection_url=oauth2_introspection_url)
    try:
        yield server
    finally:
        stop_dovecot(server)


def auth_unavailable(server: ImapServer, logins: int) -> None:
    """The next `logins` password logins get ``NO [UNAVAILABLE]`` (RFC 5530), whatever the password."""
    counter = server.base / "auth-unavailable"
    counter.write_text(f"{logins}\n")
    shutil.chown(counter, "dovecot", "dovecot")  # the gate runs as Dovecot's internal user and counts down


def auth_unavailable_left(server: ImapServer) -> int:
    counter = server.base / "auth-unavailable"
    return int(counter.read_text()) if counter.exists() else 0


def logged_in(host: str, port: int, user: str, password: str) -> IMAPClient:
    """A plain IMAP client logged in as `user`. The password check runs a small script per login: on a loaded
    machine Dovecot may answer [UNAVAILABLE] (temporary) — the hub's connector retries that, and so does this."""
    client = IMAPClient(host, port=port, ssl=False)
    for attempt in range(5):
        try:
            client.login(user, password)
            return client
        except LoginError as exc:
            if "UNAVAILABLE" not in str(exc) or attempt == 4:
                client.shutdown()
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def deliver(server: ImapServer, *messages: bytes, user: str = "helpdesk", folder: str = "INBOX") -> None:
    """APPEND `messages` (raw RFC 5322 bytes) to `user`'s `folder`, logging in with the user's password."""
    with logged_in(server.host, server.port, user, server.users[user]) as client:
        for raw in messages:
            client.append(folder, raw)


def source_settings(server: ImapServer, user: str = "helpdesk", **changes: Any) -> dict[str, Any]:
    """An `imap` source (as written in itsm.yaml) reading `user`'s mailbox on `server` in plain IMAP on loopback,
    logging in with the user's password; `changes` override or add settings (`password=None` drops it)."""
    values = {
        "name": "helpdesk", "kind": "imap", "host": server.host, "port": server.port, "security": "plain",
        "username": user, "password": server.users.get(user), **changes,
    }  # fmt: skip
    return {key: value for key, value in values.items() if value is not None}
