"""The hub's own mail: acknowledgements rendered from jinja2 templates (and reports, with their files attached),
sent with smtplib.

Every message carries `Auto-Submitted: auto-replied` (RFC 3834; `auto-generated` for reports) and
`X-Auto-Response-Suppress: All`, so well-behaved auto-responders do not answer it, and In-Reply-To / References,
so the requester's client threads it under the original mail and replies come back to the right ticket.
`Precedence: bulk` is deliberately absent: it is not a standard, and some filters treat it as a mark of spam.

Header values are checked for CR/LF (header injection): a model or header that contains one is refused with
`ValueError`. Neither errors nor logs ever contain the SMTP password.
"""

from __future__ import annotations

import email.errors
import logging
import re
import smtplib
import ssl
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound, select_autoescape
from pydantic import BaseModel, Field, field_validator

from itsm_core.config import SmtpConfig
from itsm_core.errors import ConfigError, SmtpUnavailable

log = logging.getLogger("itsm.connectors.mail.outbound")

#: What the mail is about: a ticket opened, resolved or closed, a message refused (no ticket; e.g. too large), an
#: automation's question (`text`), or credentials a workflow set (`text`; sent at once, never through the outbox).
Kind = Literal["created", "resolved", "closed", "refused", "question", "credentials"]

# 7bit: non-ASCII bodies go out quoted-printable or base64, so servers without 8BITMIME take them unchanged.
_POLICY = policy.default.clone(cte_type="7bit")
# Reply prefixes of common clients (Re, German AW, Nordic SV), with an optional counter: "Re[2]:".
_REPLY_PREFIX = re.compile(r"^(?:(?:re|aw|sv)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_MAX_REFERENCES = 20
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Attachment(BaseModel):
    """A file sent with a mail: its name, its bytes and its media type (``text/csv``)."""

    filename: str
    content: bytes
    media_type: str = Field(pattern=r"^[\w.+-]+/[\w.+-]+$")

    @field_validator("filename")
    @classmethod
    def _filename_one_line(cls, value: str) -> str:
        return _require_one_line(value, "filename")


class OutgoingMail(BaseModel):
    """One message the hub sends. Message IDs are stored without angle brackets (given ones are stripped).

    Construction refuses CR/LF in any header value with a `ValueError` (pydantic's `ValidationError`).
    `auto_submitted` (RFC 3834): ``auto-replied`` for answers to a requester's mail, ``auto-generated`` for mail the
    hub sends of itself (reports).
    """

    to: list[str] = Field(min_length=1)
    subject: str
    text: str
    html: str | None = None
    message_id: str
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    auto_submitted: Literal["auto-replied", "auto-generated"] = "auto-replied"

    @field_validator("to")
    @classmethod
    def _addresses_one_line(cls, values: list[str]) -> list[str]:
        for value in values:
            _require_one_line(value, "to")
        return values

    @field_validator("subject")
    @classmethod
    def _subject_one_line(cls, value: str) -> str:
        return _require_one_line(value, "subject")

    @field_validator("message_id", "in_reply_to")
    @classmethod
    def _bare_id(cls, value: str | None) -> str | None:
        return None if value is None else _bare_message_id(value)

    @field_validator("references")
    @classmethod
    def _bare_ids(cls, values: list[str]) -> list[str]:
        return [_bare_message_id(value) for value in values]


@dataclass(frozen=True)
class SendResult:
    """What became of one mail: `ok` when the server accepted it; otherwise `error` says why (no secrets)."""

    message_id: str
    ok: bool
    error: str | None = None


def make_message_id(domain: str) -> str:
    """A globally unique Message-ID (without <>) under `domain`, e.g. ``itsm.<uuid4 hex>@helpdesk.example``.

    A non-ASCII domain is IDNA-encoded; an empty one, or one with spaces, brackets or CR/LF, is a `ValueError`.
    """
    domain = domain.strip()
    if not domain or re.search(r"[\s<>@]", domain):
        raise ValueError(f"not a usable Message-ID domain: {domain!r}")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"itsm.{uuid.uuid4().hex}@{domain}"


def render_acknowledgement(
    kind: Kind,
    *,
    ticket_number: str | None,
    title: str,
    requester_name: str | None,
    requester: str,
    token: str,
    from_domain: str,
    in_reply_to: str | None,
    references: list[str],
    solution: str | None = None,
    reason: str | None = None,
    text: str | None = None,
    signature: str = "IT Service Desk",
    with_html: bool = False,
) -> OutgoingMail:
    """The acknowledgement of `kind` to `requester`, threaded under `in_reply_to`.

    Subject: ``<token> Re: <title>`` (an existing reply prefix in the title is not stacked). References:
    `references` then `in_reply_to`, without duplicates, capped as RFC 5322 threads usually are. `with_html`
    adds the HTML variant (autoescaped) as an alternative to the plain text.
    """
    context = {
        "ticket_number": ticket_number,
        "title": title,
        "requester_name": requester_name,
        "requester": requester,
        "token": token,
        "solution": solution,
        "reason": reason,
        "text": text,
        "signature": signature,
    }
    return OutgoingMail(
        to=[requester],
        subject=acknowledgement_subject(token, title),
        text=_render(f"acknowledgement_{kind}.txt.j2", context),
        html=_render(f"acknowledgement_{kind}.html.j2", context) if with_html else None,
        message_id=make_message_id(from_domain),
        in_reply_to=in_reply_to,
        references=thread_references(references, in_reply_to),
    )


def acknowledgement_subject(token: str, title: str) -> str:
    """``<token> Re: <title>``, on one line, with no second reply prefix and no second copy of the token."""
    bare = " ".join(title.replace(token, " ").split()) if token else " ".join(title.split())  # line breaks
    bare = _REPLY_PREFIX.sub("", bare) or "(no subject)"
    return f"{token} Re: {bare}" if token else f"Re: {bare}"


def thread_references(references: Iterable[str], in_reply_to: str | None) -> list[str]:
    """`references` followed by `in_reply_to`, blanks and duplicates dropped (first occurrence kept).

    Long threads keep the first (the thread's root) and the latest ids, as RFC 5322 §3.6.4 suggests trimming.
    """
    ids: list[str] = []
    for value in [*references, in_reply_to or ""]:
        bare = value.strip().strip("<>")
        if bare and bare not in ids:
            ids.append(bare)
    if len(ids) > _MAX_REFERENCES:
        ids = [ids[0], *ids[-(_MAX_REFERENCES - 1) :]]
    return ids


def to_email_message(mail: OutgoingMail, settings: SmtpConfig) -> EmailMessage:
    """The RFC 5322 message for `mail`, From `settings`' name and address, dated now (UTC).

    Raises `ValueError` for an address that is not a plain addr-spec or for CR/LF in any header value.
    """
    message = EmailMessage(policy=_POLICY)
    message["From"] = _address(settings.from_address, display_name=settings.from_name)
    message["To"] = tuple(_address(addr) for addr in mail.to)
    message["Subject"] = _require_one_line(mail.subject, "subject")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{_bare_message_id(mail.message_id)}>"
    if mail.in_reply_to:
        message["In-Reply-To"] = f"<{_bare_message_id(mail.in_reply_to)}>"
    if mail.references:
        message["References"] = " ".join(f"<{_bare_message_id(r)}>" for r in mail.references)
    message["Auto-Submitted"] = mail.auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Loop"] = settings.from_address  # a mail that comes back carrying it is the hub's own, looping
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    for attachment in mail.attachments:
        main, sub = attachment.media_type.split("/")
        message.add_attachment(attachment.content, maintype=main, subtype=sub, filename=attachment.filename)
    return message


def send_mail(settings: SmtpConfig, mails: Sequence[OutgoingMail]) -> list[SendResult]:
    """Send `mails` over one SMTP connection; one `SendResult` per mail, in order.

    A mail the server refuses (recipient, sender or data) fails alone and the batch goes on; so does one that
    cannot be built (bad address). If the connection drops mid-batch, that mail and the rest fail and the
    results of those already sent are still returned. A mail accepted for some recipients only is `ok`, with
    the refused ones in `error` (sending it again would duplicate it for the others).

    Raises `SmtpUnavailable` when the server cannot be reached, TLS fails or the login is refused, and
    `ConfigError` when a username has no password or would be sent in clear off loopback.
    """
    if not mails:
        return []
    server = _connect(settings)
    results: list[SendResult] = []
    try:
        for mail in mails:
            results.append(_send_one(server, settings, mail))
    except _ConnectionLost as lost:
        results += [SendResult(m.message_id, False, str(lost)) for m in mails[len(results) :]]
    finally:
        _close(server)
    return results


class _ConnectionLost(Exception):
    """The session died mid-batch: the mail in flight and all after it are not sent (at least, not knowingly)."""


def _send_one(server: smtplib.SMTP, settings: SmtpConfig, mail: OutgoingMail) -> SendResult:
    """Send one mail; a refusal is a failed result, a dead connection raises `_ConnectionLost`."""
    try:
        message = to_email_message(mail, settings)
    except ValueError as exc:
        return SendResult(mail.message_id, False, f"not sent: {exc}")
    try:
        refused = server.send_message(message, from_addr=settings.from_address, to_addrs=mail.to)
    except smtplib.SMTPRecipientsRefused as exc:
        return SendResult(mail.message_id, False, f"recipient refused ({_describe_refused(exc.recipients)})")
    except smtplib.SMTPResponseException as exc:  # sender or data refused; smtplib has reset the transaction
        return SendResult(mail.message_id, False, f"refused by the server: {exc.smtp_code}")
    except smtplib.SMTPNotSupportedError as exc:  # e.g. a non-ASCII address and no SMTPUTF8
        return SendResult(mail.message_id, False, f"not sent: {exc}")
    except OSError as exc:  # includes SMTPServerDisconnected and timeouts
        raise _ConnectionLost(f"connection lost: {_describe_error(exc)}") from None
    if refused:
        log.info("mail %s accepted, but some recipients refused: %s", mail.message_id, _describe_refused(refused))
        return SendResult(mail.message_id, True, f"some recipients refused ({_describe_refused(refused)})")
    return SendResult(mail.message_id, True)


def _connect(settings: SmtpConfig) -> smtplib.SMTP:
    """An open, logged-in SMTP session, or `SmtpUnavailable` (never with the password in its message)."""
    password = _login_password(settings)
    where = f"{settings.host}:{settings.effective_port} ({settings.security})"
    server: smtplib.SMTP | None = None
    step = "connect to"
    try:
        server = _open(settings)
        if password is not None:
            step = f"log in as {settings.username!r} at"
            server.login(settings.username or "", password)
        return server
    except (OSError, ValueError) as exc:  # SMTPException and ssl.SSLError are OSErrors
        if server is not None:
            _close(server)
        detail = _redact(_describe_error(exc), password)
        raise SmtpUnavailable(
            f"cannot {step} the SMTP server {where}: {detail}; check email.smtp host, port, security and credentials"
        ) from None


def _open(settings: SmtpConfig) -> smtplib.SMTP:
    context = ssl.create_default_context()
    port, timeout = settings.effective_port, settings.timeout_seconds
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(settings.host, port, timeout=timeout, context=context)
    server = smtplib.SMTP(settings.host, port, timeout=timeout)
    if settings.security == "starttls":
        try:
            server.starttls(context=context)
        except BaseException:
            _close(server)
            raise
    return server


def _login_password(settings: SmtpConfig) -> str | None:
    """The password to log in with, or None when no login is configured; refuses unsafe configurations."""
    if not settings.username:
        return None
    if settings.password is None:
        raise ConfigError("email.smtp.username is set but email.smtp.password is not", key="email.smtp.password")
    if settings.security == "plain" and settings.host not in _LOOPBACK:
        raise ConfigError(
            "email.smtp: security plain would send the password in clear; use ssl or starttls (plain only on loopback)",
            key="email.smtp.security",
        )
    return settings.password.get_secret_value()


def _close(server: smtplib.SMTP) -> None:
    try:
        server.quit()
    except OSError:
        server.close()


def _describe_error(exc: BaseException) -> str:
    # The server's reply text is left out: it is not ours to vouch for, and the code says enough.
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def _describe_refused(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code}" for rcpt, (code, _) in recipients.items())


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("connectors.mail", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(name: str, context: dict[str, object]) -> str:
    try:
        return _templates().get_template(name).render(context)
    except TemplateNotFound:
        raise ValueError(f"no mail template {name} in connectors/mail/templates") from None


def _require_one_line(value: str, field: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{field}: header values must be one line (CR/LF would inject headers)")
    return value


def _bare_message_id(value: str) -> str:
    """`value` without surrounding <> and blanks; a `ValueError` if what is left is not one msg-id."""
    bare = value.strip().removeprefix("<").removesuffix(">")
    if not bare or re.search(r"[\s<>]", bare):
        raise ValueError(f"not a Message-ID (one line, no blanks or brackets): {value!r}")
    return bare


def _address(addr_spec: str, display_name: str = "") -> Address:
    """A header address for a plain addr-spec (``ann@example.com``); anything else is a `ValueError`."""
    _require_one_line(addr_spec, "address")
    _require_one_line(display_name, "display name")
    local, _, domain = addr_spec.strip().rpartition("@")
    if not local or not domain:
        raise ValueError(f"not an e-mail address: {addr_spec!r}")
    try:
        return Address(display_name=display_name, addr_spec=addr_spec.strip())
    except (ValueError, IndexError, email.errors.MessageError):
        raise ValueError(f"not an e-mail address: {addr_spec!r}") from None
