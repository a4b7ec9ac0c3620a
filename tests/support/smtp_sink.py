"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests.

    with SmtpSink(refuse={"gone@example.com"}, credentials=("hub", "pw")) as sink:
        ...  # send to 127.0.0.1:sink.port
    sink.received[0].rcpt_tos, sink.messages[0]["Subject"]

With `credentials`, AUTH (PLAIN, LOGIN) is offered over plaintext (loopback only) and required before MAIL.
With `tls` ("starttls" or "ssl") and `certificate` (cert, key) from `tests.support.net.self_signed_certificate`,
the sink requires STARTTLS or speaks implicit TLS; clients trust it by pointing SSL_CERT_FILE at the certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.net import free_port


@dataclass(frozen=True)
class Received:
    """One message as the sink got it: the SMTP envelope, the parsed message, who logged in (if anyone) and
    the client's (host, port): messages with the same `peer` came over one connection."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    peer: tuple[str, int]


class _Handler:
    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.received: list[Received] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        login = session.auth_data.login.decode() if session.authenticated else None
        peer = tuple(session.peer[:2])
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, login, peer))
        return "250 Message accepted"


class _Authenticator:
    """Accepts exactly one user/password pair."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.user,
            self.password,
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 and a free port; `refuse` lists recipients answered with 550."""

    def __init__(
        self,
        refuse: set[str] | None = None,
        credentials: tuple[str, str] | None = None,
        tls: Literal["starttls", "ssl"] | None = None,
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.port = free_port()
        self.handler = _Handler({a.lower() for a in refuse or set()})
        options: dict[str, Any] = {}
        if credentials is not None:
            options |= {"authenticator": _Authenticator(*credentials), "auth_required": True}
            options["auth_require_tls"] = False  # loopback: the tests may log in over plaintext
        if tls is not None:
            assert certificate is not None, "tls needs a certificate: self_signed_certificate(folder)"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            options |= {"tls_context": context, "require_starttls": True} if tls == "starttls" else {}
            options |= {"ssl_context": context} if tls == "ssl" else {}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.handler.received]

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
