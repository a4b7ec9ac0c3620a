"""A private OpenLDAP server (slapd) on a loopback port, in a temp folder, for one test session.

Debian's `slapd` (installed by .ci/run), run in the foreground as whoever runs the tests, with an MDB database
under `folder` and the ppolicy overlay (password lockout: `pwdAccountLockedTime`). In CI a missing slapd fails the
tests, never skips them.

The tree, seeded as the rootdn:

    dc=example,dc=org
      ou=people          people added by `LdapServer.add_person` (inetOrgPerson, with mail)
      ou=policies        cn=default: the ppolicy default policy (lockout after 3 failed binds; a password
                         marked `pwdReset` must be changed before anything else)
      ou=services        cn=itsm-hub: the account the hub binds as — NOT the rootdn, so the tests prove the
                         rights `connectors/ldap/directory.py` says it needs are enough (see ACL below)

`certificate=(cert, key)` (from `tests.support.net.self_signed_certificate`) also serves StartTLS on `url` and
implicit TLS on `ldaps_url`; clients trust it by pointing SSL_CERT_FILE at the cert.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldap3 import BASE, MODIFY_REPLACE, Connection, Server
from ldap3.core.exceptions import LDAPException

from tests.support.net import free_port

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
#: where the distribution keeps slapd's modules (back_mdb, ppolicy): Debian/Ubuntu, then Fedora/RHEL-likes.
MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib64/openldap"), Path("/usr/libexec/openldap"))

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
SERVICE_DN = f"cn=itsm-hub,ou=services,{SUFFIX}"
PEOPLE_DN = f"ou=people,{SUFFIX}"
POLICY_DN = f"cn=default,ou=policies,{SUFFIX}"
#: `pwdAccountLockedTime` with this value is a lock that never expires (only an administrator lifts it).
PERMANENT_LOCK = "000001010000Z"

# slapd 2.5's ppolicy overlay carries its own schema (pwdPolicy, pwdAccountLockedTime, ...): no ppolicy.schema.
# The hub's account gets exactly what the directory client needs, on the people only: search them (read), set
# their passwords (write on userPassword) and lift their ppolicy locks (write on its operational attributes).
CONFIG = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
modulepath {modules}
moduleload back_mdb.la
{ppolicy_module}
pidfile {base}/slapd.pid
argsfile {base}/slapd.args
{tls}
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin_dn}"
rootpw {admin_password}
directory {base}/data
access to dn.subtree="{people_dn}" attrs=userPassword
    by dn.exact="{service_dn}" write
    by self write
    by anonymous auth
    by * none
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
{ppolicy_access}access to dn.subtree="{people_dn}"
    by dn.exact="{service_dn}" read
    by self read
    by * none
access to *
    by self read
    by * none
{ppolicy_overlay}
"""
#: The default password policy: the 3rd wrong password in a row locks the account (for good: no
#: pwdLockoutDuration); a password someone else set and marked `pwdReset: TRUE` must be changed before anything else.
POLICY = {
    "cn": "default",
    "sn": "policy",
    "pwdAttribute": "userPassword",
    "pwdLockout": True,
    "pwdMaxFailure": 3,
    "pwdMustChange": True,
}
#: the ppolicy parts of CONFIG (its attributes are unknown to slapd without the module: not even an ACL may name them)
PPOLICY_MODULE = "moduleload ppolicy.la"
PPOLICY_ACCESS = """\
access to dn.subtree="{people_dn}" attrs=pwdAccountLockedTime,pwdFailureTime,pwdReset
    by dn.exact="{service_dn}" write
    by self read
    by * none
"""
PPOLICY_OVERLAY = """\
overlay ppolicy
ppolicy_default "{policy_dn}"
ppolicy_use_lockout
"""


@dataclass(frozen=True)
class LdapServer:
    url: str  # ldap://127.0.0.1:<port> (StartTLS too, with a certificate)
    base_dn: str
    people_dn: str
    admin_dn: str
    admin_password: str
    service_dn: str
    service_password: str
    folder: Path
    ldaps_url: str | None = None  # implicit TLS, with a certificate

    def admin(self) -> Connection:
        """A connection bound as the rootdn (ACLs do not apply to it); use it in a `with` block."""
        return Connection(Server(self.url, connect_timeout=5), self.admin_dn, self.admin_password, auto_bind=True)

    def add_person(self, uid: str, mail: str, password: str, *, locked: bool = False, policy: str | None = None) -> str:
        """An inetOrgPerson under `people_dn` (cn, sn, uid, mail, userPassword); its DN. `locked`: see `lock`;
        `policy`: the DN of a password policy (`add_policy`) instead of the default one."""
        dn = f"uid={uid},{self.people_dn}"
        with self.admin() as conn:
            attributes = {"cn": uid, "sn": uid, "uid": uid, "mail": mail, "userPassword": password}
            if policy:
                attributes["pwdPolicySubentry"] = policy
            if not conn.add(dn, ["inetOrgPerson"], attributes):
                raise RuntimeError(f"cannot add {dn}: {conn.result}")
        if locked:
            self.lock(dn)
        return dn

    def add_policy(self, name: str, **settings: Any) -> str:
        """A ppolicy password policy `cn=<name>,ou=policies` (the default one's settings, then `settings`); its DN."""
        dn = f"cn={name},ou=policies,{self.base_dn}"
        with self.admin() as conn:
            if not conn.add(dn, ["person", "pwdPolicy"], {**POLICY, "cn": name, **settings}):
                raise RuntimeError(f"cannot add {dn}: {conn.result}")
        return dn

    def lock(self, dn: str) -> None:
        """Lock the account for good (`pwdAccountLockedTime: 000001010000Z`), as ppolicy does by hand."""
        with self.admin() as conn:
            if not conn.modify(dn, {"pwdAccountLockedTime": [(MODIFY_REPLACE, [PERMANENT_LOCK])]}):
                raise RuntimeError(f"cannot lock {dn}: {conn.result}")

    def operational(self, dn: str, *names: str) -> dict[str, list[str]]:
        """The values of the ppolicy attributes `names` of `dn`, as read by the rootdn (operational attributes are
        only returned when asked for by name)."""
        with self.admin() as conn:
            conn.search(dn, "(objectClass=*)", BASE, attributes=list(names))
            entry = conn.response[0]["raw_attributes"]
            return {name: [value.decode() for value in entry.get(name) or []] for name in names}

    def is_locked(self, dn: str) -> bool:
        return bool(self.operational(dn, "pwdAccountLockedTime")["pwdAccountLockedTime"])

    def can_bind(self, dn: str, password: str) -> bool:
        """Whether a simple bind as `dn` with `password` succeeds (a locked account's does not)."""
        conn = Connection(Server(self.url, connect_timeout=5), dn, password)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    def directory_settings(self, **changes: Any) -> dict[str, Any]:
        """An `automation.directories.<name>` entry (as written in itsm.yaml) binding as the hub's service account
        and searching the people; `changes` override or add settings."""
        return {
            "url": self.url,
            "bind_dn": self.service_dn,
            "bind_password": self.service_password,
            "base_dn": self.people_dn,
            **changes,
        }


def _module_dir() -> Path:
    return next((d for d in MODULE_DIRS if (d / "back_mdb.la").exists()), MODULE_DIRS[0])


def start_slapd(
    folder: Path,
    *,
    certificate: tuple[Path, Path] | None = None,
    ppolicy: bool = True,
    admin_password: str = "admin-secret-Xq7",
    service_password: str = "service-secret-Kp4",
) -> tuple[LdapServer, subprocess.Popen[bytes]]:
    """slapd on a free loopback port, its database, config and log (`slapd.log`) in `folder`, seeded (see above).

    `ppolicy=False`: no password policy overlay (a directory where `pwdAccountLockedTime` does not exist)."""
    if not Path(SLAPD).exists():
        message = "OpenLDAP's slapd is not installed: apt-get install slapd ldap-utils (.ci/run does this)"
        if os.environ.get("CI"):
            raise RuntimeError(message)  # in CI the directory tests must run, never skip
        import pytest

        pytest.skip(message)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir()
    port = free_port()
    ldaps_port = free_port() if certificate else None
    tls = f"TLSCertificateFile {certificate[0]}\nTLSCertificateKeyFile {certificate[1]}" if certificate else ""
    config = folder / "slapd.conf"
    names = {"service_dn": SERVICE_DN, "people_dn": PEOPLE_DN, "policy_dn": POLICY_DN}
    config.write_text(
        CONFIG.format(
            schema=SCHEMA_DIR, modules=_module_dir(), base=folder, tls=tls, suffix=SUFFIX, admin_dn=ADMIN_DN,
            admin_password=admin_password, **names,
            ppolicy_module=PPOLICY_MODULE if ppolicy else "",
            ppolicy_access=PPOLICY_ACCESS.format(**names) if ppolicy else "",
            ppolicy_overlay=PPOLICY_OVERLAY.format(**names) if ppolicy else "",
        )
    )  # fmt: skip
    urls = f"ldap://127.0.0.1:{port}/" + (f" ldaps://127.0.0.1:{ldaps_port}/" if ldaps_port else "")
    log = folder / "slapd.log"
    with log.open("wb") as out:  # -d: stay in the foreground (and log to stderr); 0: no debug output beyond errors
        process = subprocess.Popen([SLAPD, "-f", str(config), "-h", urls, "-d", "0"], stdout=out, stderr=out)
    server = LdapServer(
        url=f"ldap://127.0.0.1:{port}",
        base_dn=SUFFIX,
        people_dn=PEOPLE_DN,
        admin_dn=ADMIN_DN,
        admin_password=admin_password,
        service_dn=SERVICE_DN,
        service_password=service_password,
        folder=folder,
        ldaps_url=f"ldaps://127.0.0.1:{ldaps_port}" if ldaps_port else None,
    )
    try:
        _wait_until_ready(server, process)
        _seed(server, ppolicy=ppolicy)
    except BaseException:
        _stop(process)
        raise
    return server, process


def _wait_until_ready(server: LdapServer, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    """Until an anonymous bind works; else RuntimeError with the end of slapd's log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            conn = Connection(Server(server.url, connect_timeout=0.5), receive_timeout=2)
            if conn.bind():
                conn.unbind()
                return
        except LDAPException:
            pass
        time.sleep(0.05)
    exited = f"exited with status {process.returncode}" if process.poll() is not None else "did not answer"
    tail = "\n".join((server.folder / "slapd.log").read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"slapd on {server.url} {exited} within {seconds:g} s; its log ends:\n{tail}")


def _seed(server: LdapServer, *, ppolicy: bool) -> None:
    entries: list[tuple[str, list[str], dict[str, Any]]] = [
        (SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"}),
        (PEOPLE_DN, ["organizationalUnit"], {"ou": "people"}),
        (f"ou=policies,{SUFFIX}", ["organizationalUnit"], {"ou": "policies"}),
        (f"ou=services,{SUFFIX}", ["organizationalUnit"], {"ou": "services"}),
        (POLICY_DN, ["person", "pwdPolicy"], POLICY),
        (SERVICE_DN, ["person"], {"cn": "itsm-hub", "sn": "itsm-hub", "userPassword": server.service_password}),
    ]
    if not ppolicy:
        entries = [entry for entry in entries if entry[0] != POLICY_DN]
    with server.admin() as conn:
        for dn, classes, attributes in entries:
            if not conn.add(dn, classes, attributes):
                raise RuntimeError(f"cannot seed {dn}: {conn.result}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # slapd shuts down cleanly (flushes MDB) on TERM
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_slapd(
    folder: Path, *, certificate: tuple[Path, Path] | None = None, ppolicy: bool = True
) -> Iterator[LdapServer]:
    """`start_slapd`, stopped on leaving the block (also when the test fails); `folder` is left for its log."""
    server, process = start_slapd(folder, certificate=certificate, ppolicy=ppolicy)
    try:
        yield server
    finally:
        _stop(process)
