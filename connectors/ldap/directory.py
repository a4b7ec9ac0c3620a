"""The LDAP directory the bundled account workflows act on (`automation.directories.<name>`, `LdapDirectory`).

```python
with Directory(settings, "corp") as directory:
    dn = directory.find_by_mail("alice@example.org")
    password = directory.reset_password(dn)   # a new one-time password; also lifts a lockout
    directory.unlock(dn)                      # True: it was locked; False: it was not
```

What the bind account (`bind_dn`) needs, and nothing more — the hub never binds as the directory's rootdn:

- read (search) on `base_dn`'s subtree: the entries, `objectClass` and the mail attribute;
- write on `userPassword` of the people: the password is set with the Password Modify extended operation
  (RFC 3062), so the server hashes it by its own policy (OpenLDAP: `password-hash`);
- write on `pwdAccountLockedTime` (and `pwdReset`), the operational attributes of OpenLDAP's ppolicy overlay:
  deleting `pwdAccountLockedTime` lifts a lockout (ppolicy then drops `pwdFailureTime` itself; that attribute
  cannot be changed by a client), `pwdReset: TRUE` makes the person change the password at next login when the
  policy has `pwdMustChange: TRUE`.

In slapd.conf terms (tests/support/slapd.py runs exactly this)::

    access to attrs=userPassword by dn.exact="cn=itsm-hub,ou=services,..." write by self write by anonymous auth
    access to attrs=pwdAccountLockedTime,pwdFailureTime,pwdReset by dn.exact="cn=itsm-hub,ou=services,..." write
    access to dn.subtree="ou=people,..." by dn.exact="cn=itsm-hub,ou=services,..." read

Errors are the hub's own (`itsm_core/errors.py`), each saying what to check next: `UpstreamUnavailable` (no
answer, timeout, busy), `UpstreamAuthError` (the bind is refused: bind_dn / bind_password, or TLS is required),
`UpstreamForbidden` (the account lacks a right above), `UpstreamNotFound` (the DN is gone), `NotFound` (no entry
has the address), `UpstreamRejected` (several entries have it; the server refuses the password), `UpstreamError`
(TLS failure, a base_dn or filter the server does not know). No password — the bind password nor a generated
one — ever appears in an exception, a log line or a repr: messages are scrubbed, ldap3's exceptions are not
chained (its `Connection` repr shows the password, so the connection forgets it once bound).

TLS (ldaps:// or `start_tls`) checks the server's certificate against the system's trust store (SSL_CERT_FILE
works) and the host name in `url` — ldap3 checks nothing by default. Name the host by DNS name: on Python 3.12+
ldap3 cannot match an IP address against a certificate. Referrals are not followed (they would take the bind
password to another server).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import secrets
import ssl
import string
from types import TracebackType
from typing import Any, NoReturn, Self

from ldap3 import BASE, MODIFY_DELETE, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPInvalidFilterError,
    LDAPPasswordIsMandatoryError,
    LDAPSocketOpenError,
    LDAPSocketReceiveError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars

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

log = logging.getLogger("itsm.connectors.ldap")

LOCK_ATTRIBUTE = "pwdAccountLockedTime"
RESET_ATTRIBUTE = "pwdReset"

#: Letters and digits that read unambiguously (no 0/O, 1/l/I), for passwords read from a mail or a phone.
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
_GROUPS, _GROUP_LENGTH = 4, 5

# LDAP result codes (RFC 4511) the client tells apart
_TIME_LIMIT, _SIZE_LIMIT, _STRONGER_AUTH, _ADMIN_LIMIT, _CONFIDENTIALITY = 3, 4, 8, 11, 13
_NO_SUCH_ATTRIBUTE, _UNDEFINED_TYPE, _NO_SUCH_OBJECT = 16, 17, 32
_INAPPROPRIATE_AUTH, _INVALID_CREDENTIALS, _INSUFFICIENT_ACCESS, _BUSY, _UNAVAILABLE = 48, 49, 50, 51, 52
_TRANSIENT = {_TIME_LIMIT, _ADMIN_LIMIT, _BUSY, _UNAVAILABLE}


def new_password() -> str:
    """A one-time password: four groups of five letters and digits joined by dashes (``Kq7xD-m3Rtp-...``): 20 random
    symbols from 57, about 116 bits. It always holds a capital, a small letter, a digit and a dash, so the usual
    complexity rules accept it."""
    while True:
        symbols = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LENGTH))
        if all(any(test(c) for c in symbols) for test in (str.isupper, str.islower, str.isdigit)):
            groups = [symbols[i : i + _GROUP_LENGTH] for i in range(0, len(symbols), _GROUP_LENGTH)]
            return "-".join(groups)


def _describe(exc: BaseException) -> str:
    """ldap3's message without the layers of tuple reprs it wraps around a socket or TLS error; one part per
    address when it tried several."""
    if len(exc.args) == 2 and isinstance(exc.args[1], list):
        return "; ".join(f"{address[0]}: {_describe(error)}" for error, address in exc.args[1])
    text = str(exc)
    while unwrapped := re.fullmatch(r"""\(\s*(['"])(.*)\1,?\s*\)""", text, re.DOTALL):
        text = unwrapped.group(2)
    return text


def _quietly_unbind(conn: Connection) -> None:
    with contextlib.suppress(LDAPException, OSError):  # already gone: nothing left to release
        conn.unbind()


class Directory:
    """A bound connection to the directory `name` (its key under `automation.directories`); use it in a `with`
    block: entering connects (StartTLS first when set) and binds as `bind_dn`, leaving unbinds."""

    def __init__(self, settings: LdapDirectory, name: str) -> None:
        self.settings = settings
        self.name = name
        self._conn: Connection | None = None
        self._secrets = {settings.bind_password.get_secret_value()} - {""}

    def __repr__(self) -> str:
        return f"Directory({self.name!r}, url={self.settings.url!r}, bind_dn={self.settings.bind_dn!r})"

    # --- connection ---------------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        settings = self.settings
        if settings.start_tls and settings.url.lower().startswith("ldaps://"):
            raise ConfigError(
                f"directory {self.name}: start_tls upgrades an ldap:// connection, and {settings.url} is already "
                f"TLS; drop {self._key('start_tls')} or use an ldap:// url",
                key=self._key("start_tls"),
            )
        server = Server(
            settings.url.rstrip("/"),
            connect_timeout=settings.timeout_seconds,
            get_info=NONE,
            tls=Tls(validate=ssl.CERT_REQUIRED),
        )
        conn = Connection(
            server,
            user=settings.bind_dn,
            password=settings.bind_password.get_secret_value(),
            receive_timeout=math.ceil(settings.timeout_seconds),  # ldap3 packs it as whole seconds
            auto_referrals=False,
            raise_exceptions=False,
            return_empty_attributes=False,
        )
        try:
            conn.open()
            if settings.start_tls:
                conn.start_tls()
            bound = conn.bind()
        except LDAPPasswordIsMandatoryError:
            _quietly_unbind(conn)
            raise UpstreamAuthError(
                f"directory {self.name}: {self._key('bind_password')} is empty (an empty password would bind "
                "anonymously); set the bind account's password",
                system=self.name,
            ) from None
        except LDAPException as exc:
            _quietly_unbind(conn)
            self._unreachable(exc, "connect and bind")
        finally:
            conn.password = None  # its repr would show it; a synchronous connection never binds again
        if not bound:
            result = conn.result
            _quietly_unbind(conn)
            self._refused(result, "bind")
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            _quietly_unbind(self._conn)
            self._conn = None

    # --- the operations -----------------------------------------------------------------------------------------

    def find_by_mail(self, address: str) -> str:
        """The DN of the one entry under `base_dn` matching `user_filter` whose mail attribute is `address` (the
        server compares without case: `mail` has caseIgnoreIA5Match). `NotFound` when none has it,
        `UpstreamRejected` (naming them) when several do."""
        settings = self.settings
        address = address.strip()
        if not address:
            raise NotFound(f"no mail address to look up in directory {self.name}")
        user_filter = settings.user_filter.strip()
        if not user_filter.startswith("("):
            user_filter = f"({user_filter})"
        search_filter = f"(&{user_filter}({settings.mail_attribute}={escape_filter_chars(address)}))"
        conn = self._connection()
        try:
            conn.search(
                settings.base_dn, search_filter, SUBTREE, attributes=["1.1"], time_limit=int(settings.timeout_seconds)
            )
        except LDAPInvalidFilterError as exc:
            raise UpstreamError(
                f"directory {self.name}: the search filter {search_filter} is not valid LDAP ({self._scrub(exc)}); "
                f"check {self._key('user_filter')} and {self._key('mail_attribute')}",
                system=self.name,
            ) from None
        except LDAPException as exc:
            self._unreachable(exc, "search")
        result = conn.result
        if result["result"] not in (0, _SIZE_LIMIT):
            if result["result"] == _NO_SUCH_OBJECT:
                raise UpstreamError(
                    f"directory {self.name} has no entry {settings.base_dn}; check {self._key('base_dn')}",
                    system=self.name,
                    code="noSuchObject",
                    detail=self._scrub(result.get("message")) or None,
                )
            self._refused(result, f"search {settings.base_dn}")
        found = [entry["dn"] for entry in conn.response or [] if entry.get("type") == "searchResEntry"]
        if not found:
            raise NotFound(
                f"no entry with {settings.mail_attribute}={address} under {settings.base_dn} in directory "
                f"{self.name} (filter {search_filter}); check the address, or {self._key('base_dn')} and "
                f"{self._key('user_filter')}"
            )
        if len(found) > 1:
            many = f"more than {len(found)}" if result["result"] == _SIZE_LIMIT else str(len(found))
            raise UpstreamRejected(
                f"{many} entries have {settings.mail_attribute}={address} under {settings.base_dn} in directory "
                f"{self.name}: {'; '.join(found)}. The hub acts only on one person: fix the entries, or narrow "
                f"{self._key('user_filter')}",
                system=self.name,
                code="ambiguous",
            )
        return found[0]

    def reset_password(self, dn: str) -> str:
        """Give `dn` a new one-time password (`new_password`) and return it; lift a ppolicy lockout first, so a
        locked-out person who forgot the password gets in. Then, where the ppolicy overlay runs, mark the password
        as reset (`pwdReset: TRUE`: a change is forced at next login if the policy has `pwdMustChange`) — best
        effort: the password is set by then, so a failure there is logged, not raised."""
        self._delete_lock(dn, tolerate_no_ppolicy=True)
        password = new_password()
        self._secrets.add(password)
        conn = self._connection()
        try:
            changed = conn.extend.standard.modify_password(dn, new_password=password)
        except LDAPException as exc:
            self._unreachable(exc, f"set the password of {dn}", write=True)
        if not changed:
            right = f"write access to userPassword of {dn}"
            self._refused(conn.result, f"set the password of {dn}", dn=dn, right=right)
        # after the change: ppolicy drops pwdReset when anyone but the rootdn changes a password
        try:
            marked = conn.modify(dn, {RESET_ATTRIBUTE: [(MODIFY_REPLACE, ["TRUE"])]})
            result = conn.result
        except LDAPException as exc:
            marked, result = False, {"result": None, "description": type(exc).__name__, "message": str(exc)}
        if not marked:
            if result["result"] == _UNDEFINED_TYPE:
                log.debug("directory %s has no ppolicy overlay (no %s): nothing forces a change", self.name, dn)
            else:
                log.warning(
                    "directory %s: the new password of %s is set, but not marked as reset (%s: %s): "
                    "the person is not forced to change it; give %s write access to %s",
                    self.name, dn, result["description"], self._scrub(result.get("message")),
                    self.settings.bind_dn, RESET_ATTRIBUTE,
                )  # fmt: skip
        return password

    def unlock(self, dn: str) -> bool:
        """Lift the ppolicy lockout of `dn` (delete `pwdAccountLockedTime`; ppolicy drops `pwdFailureTime` with it):
        True when it was locked, False when it was not. `UpstreamRejected` when the directory has no ppolicy."""
        return self._delete_lock(dn, tolerate_no_ppolicy=False)

    def is_locked(self, dn: str) -> bool:
        """Whether `dn` carries `pwdAccountLockedTime` (an operational attribute: returned only when asked for).

        A lock whose `pwdLockoutDuration` has passed still counts until the next bind removes it."""
        conn = self._connection()
        try:
            conn.search(dn, "(objectClass=*)", BASE, attributes=[LOCK_ATTRIBUTE])
        except LDAPException as exc:
            self._unreachable(exc, f"read {dn}")
        if conn.result["result"] != 0:
            self._refused(conn.result, f"read {dn}", dn=dn, right=f"read access to {dn}")
        entries = [entry for entry in conn.response or [] if entry.get("type") == "searchResEntry"]
        return bool(entries and entries[0]["raw_attributes"].get(LOCK_ATTRIBUTE))

    # --- helpers ------------------------------------------------------------------------------------------------

    def _delete_lock(self, dn: str, *, tolerate_no_ppolicy: bool) -> bool:
        conn = self._connection()
        try:
            deleted = conn.modify(dn, {LOCK_ATTRIBUTE: [(MODIFY_DELETE, [])]})
        except LDAPException as exc:
            self._unreachable(exc, f"unlock {dn}", write=True)
        if deleted:
            log.info("directory %s: %s unlocked", self.name, dn)
            return True
        result = conn.result
        if result["result"] == _NO_SUCH_ATTRIBUTE:
            return False
        if result["result"] == _UNDEFINED_TYPE:
            if tolerate_no_ppolicy:
                return False
            raise UpstreamRejected(
                f"directory {self.name} does not know {LOCK_ATTRIBUTE}: it runs no ppolicy overlay (OpenLDAP's "
                f"password policy), so the hub has no lockout to lift on {dn}",
                system=self.name,
                code="undefinedAttributeType",
            )
        self._refused(result, f"unlock {dn}", dn=dn, right=f"write access to {LOCK_ATTRIBUTE} of {dn}")

    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("Directory is not open: use it in a `with` block")
        return self._conn

    def _key(self, field: str) -> str:
        return f"automation.directories.{self.name}.{field}"

    def _scrub(self, text: object) -> str:
        cleaned = str(text or "")
        for secret in self._secrets:
            cleaned = cleaned.replace(secret, "***")
        return cleaned

    def _unreachable(self, exc: LDAPException, doing: str, *, write: bool = False) -> NoReturn:
        """An ldap3 exception (no LDAP result): the network, a timeout, TLS. Never chained: see the docstring."""
        url, text = self.settings.url, self._scrub(_describe(exc))
        tls = isinstance(exc, LDAPStartTLSError | LDAPCertificateError | ssl.SSLError | ssl.CertificateError) or (
            isinstance(exc, LDAPSocketOpenError) and ("ssl" in text.lower() or "certificate" in text.lower())
        )
        if isinstance(exc, TimeoutError) or "timed out" in text:
            tls = False  # a server that does not answer the TLS handshake either: down or overloaded, not misconfigured
        if tls:
            raise UpstreamError(
                f"TLS with directory {self.name} ({url}) failed: {text}. The server's certificate must be trusted by "
                f"this machine (system store or SSL_CERT_FILE) and name the host of {self._key('url')}"
                + ("; does the server offer StartTLS?" if self.settings.start_tls else ""),
                system=self.name,
                detail=text,
            ) from None
        if isinstance(exc, LDAPCommunicationError):
            raise UpstreamUnavailable(
                f"directory {self.name} ({url}) did not answer while trying to {doing}: {text}; check "
                f"{self._key('url')} and that the server is up (timeout {self.settings.timeout_seconds:g} s)",
                system=self.name,
                detail=text,
                maybe_applied=write and isinstance(exc, LDAPSocketReceiveError),
            ) from None
        raise UpstreamError(
            f"directory {self.name} ({url}): cannot {doing}: {type(exc).__name__}: {text}",
            system=self.name,
            detail=text,
        ) from None

    def _refused(self, result: dict[str, Any], doing: str, *, dn: str | None = None, right: str = "") -> NoReturn:
        """An LDAP result other than success, as the hub's error."""
        code, name = result.get("result"), str(result.get("description") or "error")
        detail = self._scrub(result.get("message")) or None
        said = f"{name}: {detail}" if detail else name
        bind_dn, kwargs = self.settings.bind_dn, {"system": self.name, "code": name, "detail": detail}
        if code in (_INVALID_CREDENTIALS, _INAPPROPRIATE_AUTH):
            raise UpstreamAuthError(
                f"directory {self.name} refused the bind as {bind_dn} ({said}); check "
                f"{self._key('bind_dn')} / {self._key('bind_password')}",
                **kwargs,
            )
        if code in (_CONFIDENTIALITY, _STRONGER_AUTH):
            raise UpstreamAuthError(
                f"directory {self.name} wants TLS before a bind ({said}); use an ldaps:// {self._key('url')} or set "
                f"{self._key('start_tls')}: true",
                **kwargs,
            )
        if code == _INSUFFICIENT_ACCESS:
            raise UpstreamForbidden(
                f"directory {self.name}: {bind_dn} may not {doing} ({said}); give it {right or 'that right'} "
                f"(connectors/ldap/directory.py lists the rights it needs)",
                **kwargs,
            )
        if code == _NO_SUCH_OBJECT and dn:
            raise UpstreamNotFound(f"directory {self.name} has no entry {dn} (cannot {doing})", **kwargs)
        if code in _TRANSIENT:
            raise UpstreamUnavailable(
                f"directory {self.name} could not {doing} for now ({said}); it is tried again later", **kwargs
            )
        raise UpstreamRejected(f"directory {self.name} refused to {doing} ({said})", **kwargs)
