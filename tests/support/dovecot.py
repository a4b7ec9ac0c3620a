"""A private Dovecot IMAP server on a loopback port, in a temp folder, for one test session.

Debian's `dovecot-imapd` (installed by .ci/run). The settings that let it run unprivileged in a temp folder
are in ../shared/reference/dovecot-test-server.md. In CI a missing Dovecot fails the tests, never skips them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 100
mail_location = maildir:{base}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {base}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    users: dict[str, str]
    base: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dovecot(base: Path, users: dict[str, str]) -> ImapServer:
    if not Path(DOVECOT).exists():
        message = "Dovecot is not installed: apt-get install dovecot-imapd (.ci/run does this)"
        if os.environ.get("CI"):
            raise RuntimeError(message)  # in CI the mail tests must run, never skip
        import pytest

        pytest.skip(message)
    for folder in (base, base / "run", base / "state", base / "mail", base / "home"):
        folder.mkdir(parents=True, exist_ok=True)
    # every parent must be traversable by the dovecot user; mail folders must be its own
    node = base
    while node != node.parent:
        if node.exists():
            os.chmod(node, os.stat(node).st_mode | 0o755)
        node = node.parent
    port = _free_port()
    (base / "users").write_text("".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users.items()))
    config = base / "dovecot.conf"
    config.write_text(CONFIG.format(base=base, port=port))
    shutil.chown(base / "mail", "dovecot", "dovecot")
    shutil.chown(base / "home", "dovecot", "dovecot")
    # Dovecot daemonises: its children must not inherit pipes we would wait on
    subprocess.run([DOVECOT, "-c", str(config)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return ImapServer("127.0.0.1", port, users, base)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Dovecot did not listen on port {port}; see {base / 'dovecot.log'}")


def stop_dovecot(server: ImapServer) -> None:
    pid_file = server.base / "run" / "master.pid"
    if pid_file.exists():
        os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
