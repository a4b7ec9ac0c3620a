"""The hub's own mail: acknowledgements rendered from jinja2 templates and sent with smtplib.

Every message carries `Auto-Submitted: auto-replied` (RFC 3834) and `X-Auto-Response-Suppress: All`, so
well-behaved auto-responders do not answer it, and In-Reply-To / References, so the requester's client
threads it under the original mail and replies come back to the right ticket.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, Field, field_validator

from itsm_core.config import SmtpConfig
from itsm_core.errors import SmtpUnavailable
from itsm_core.models import utcnow

Kind = Literal["created", "resolved", "closed"]


class OutgoingMail(BaseModel):
    to: list[str]
    subject: str
    text: str
    message_id: str  # without <>
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)

    @field_validator("subject", "in_reply_to")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("header values must be one line (header injection)")
        return value

    @field_validator("to", "references")
    @classmethod
    def _one_line_each(cls, values: list[str]) -> list[str]:
        for value in values:
            cls._one_line(value)
        return values


@dataclass(frozen=True)
class SendResult:
    message_id: str
    ok: bool
    error: str | None = None


def make_message_id(domain: str) -> str:
    return f"itsm.{uuid.uuid4().hex}@{domain}"


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("connectors.mail", "templates"), undefined=StrictUndefined, keep_trailing_newline=True
    )


def render_acknowledgement(
    kind: Kind,
    *,
    ticket_number: str,
    title: str,
    requester_name: str | None,
    requester: str,
    token: str,
    from_domain: str,
    in_reply_to: str | None,
    references: list[str],
    solution: str | None = None,
) -> OutgoingMail:
    text = (
        _templates()
        .get_template(f"acknowledgement_{kind}.txt.j2")
        .render(
            ticket_number=ticket_number,
            title=title,
            requester_name=requester_name,
            requester=requester,
            token=token,
            solution=solution,
        )
    )
    bare = title if not title.lower().startswith(("re:", "aw:")) else title[3:].lstrip()
    return OutgoingMail(
        to=[requester],
        subject=f"{token} Re: {bare}",
        text=text,
        message_id=make_message_id(from_domain),
        in_reply_to=in_reply_to,
        references=[r for r in references if r],
    )


def to_email_message(mail: OutgoingMail, settings: SmtpConfig) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(settings.from_name, addr_spec=settings.from_address)
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{mail.message_id}>"
    if mail.in_reply_to:
        message["In-Reply-To"] = f"<{mail.in_reply_to}>"
    if mail.references:
        message["References"] = " ".join(f"<{r}>" for r in mail.references)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(mail.text)
    return message


def send_mail(settings: SmtpConfig, mails: Sequence[OutgoingMail]) -> list[SendResult]:
    """Send `mails` over one SMTP connection. A refused recipient fails that mail only.

    Raises `SmtpUnavailable` when the server cannot be reached or refuses the login.
    """
    if not mails:
        return []
    where = f"{settings.host}:{settings.effective_port}"
    try:
        server = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpUnavailable(
            f"cannot send mail through {where}: {type(exc).__name__}; check host, port, security and credentials"
        ) from None
    results = []
    try:
        for mail in mails:
            try:
                server.send_message(to_email_message(mail, settings))
                results.append(SendResult(mail.message_id, True))
            except smtplib.SMTPRecipientsRefused as exc:
                codes = "; ".join(f"{rcpt}: {code}" for rcpt, (code, _) in exc.recipients.items())
                results.append(SendResult(mail.message_id, False, f"recipient refused ({codes})"))
            except smtplib.SMTPResponseException as exc:
                results.append(SendResult(mail.message_id, False, f"refused: {exc.smtp_code}"))
    finally:
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            server.close()
    return results


def _connect(settings: SmtpConfig) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if settings.security == "ssl":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.effective_port, timeout=settings.timeout_seconds, context=context
        )
    else:
        server = smtplib.SMTP(settings.host, settings.effective_port, timeout=settings.timeout_seconds)
        if settings.security == "starttls":
            server.starttls(context=context)
    if settings.username:
        assert settings.password is not None, "smtp.username needs smtp.password"
        server.login(settings.username, settings.password.get_secret_value())
    return server
