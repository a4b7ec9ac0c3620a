"""Mail that must never make a ticket or get an answer: auto-replies and bounces (RFC 3834, RFC 3464).

`classify_noise` reads headers (and, for delivery reports, the returned headers) only; it never raises.
Bounces are recognised before auto-replies, since a bounce often also carries an empty Return-Path.
"""

from __future__ import annotations

import email
from email import policy
from email.message import Message
from email.utils import parseaddr
from typing import Literal

from pydantic import BaseModel

_DAEMONS = {"mailer-daemon", "postmaster"}
_BULK = {"bulk", "junk", "list"}


class Noise(BaseModel):
    kind: Literal["autoreply", "bounce"]
    reason: str  # names the header and value that decided
    original_message_id: str | None = None  # what it answers: the bounced mail, or In-Reply-To


def classify_noise(raw: bytes) -> Noise | None:
    try:
        message = email.message_from_bytes(raw, policy=policy.compat32)
    except Exception:  # garbage is the parser's business, not ours
        return None
    return _bounce(message) or _autoreply(message)


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _strip_id(value: str) -> str | None:
    value = value.strip().split()[0] if value.strip() else ""
    return value.strip("<>") or None


def _bounce(message: Message) -> Noise | None:
    content_type = message.get_content_type()
    report_type = (message.get_param("report-type") or "").lower() if content_type == "multipart/report" else ""
    if report_type == "disposition-notification":
        return Noise(
            kind="autoreply",
            reason="read receipt (disposition-notification report)",
            original_message_id=_strip_id(_header(message, "In-Reply-To")),
        )
    sender = parseaddr(_header(message, "From"))[1].lower()
    return_path = parseaddr(_header(message, "Return-Path"))[1].lower()
    daemon = next((a for a in (sender, return_path) if a.partition("@")[0] in _DAEMONS), None)
    if report_type == "delivery-status" or daemon:
        reason = "delivery status report" if report_type == "delivery-status" else f"sent by {daemon}"
        return Noise(kind="bounce", reason=reason, original_message_id=_returned_message_id(message))
    return None


def _returned_message_id(message: Message) -> str | None:
    """The Message-ID of the mail that bounced: from the returned message or headers, else In-Reply-To."""
    for part in message.walk():
        if part.get_content_type() in {"message/rfc822", "text/rfc822-headers"}:
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if inner is None and isinstance(payload, str):
                inner = email.message_from_string(payload, policy=policy.compat32)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return _strip_id(_header(inner, "Message-ID"))
    return _strip_id(_header(message, "In-Reply-To"))


def _autoreply(message: Message) -> Noise | None:
    def noise(reason: str) -> Noise:
        return Noise(kind="autoreply", reason=reason, original_message_id=_strip_id(_header(message, "In-Reply-To")))

    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return noise(f"Auto-Submitted: {auto_submitted}")
    for name in ("X-Autoreply", "X-Autorespond"):
        if _header(message, name):
            return noise(f"{name}: {_header(message, name)}")
    suppress = _header(message, "X-Auto-Response-Suppress")
    if suppress and suppress.lower() != "none":
        return noise(f"X-Auto-Response-Suppress: {suppress}")
    precedence = _header(message, "Precedence").lower()
    if precedence in _BULK:
        return noise(f"Precedence: {precedence}")
    for name in ("List-Id", "List-Unsubscribe"):
        if _header(message, name):
            return noise(f"mailing list ({name})")
    if "Return-Path" in message and parseaddr(_header(message, "Return-Path"))[1] == "":
        return noise("empty Return-Path (<>)")
    return None
