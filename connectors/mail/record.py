"""A mail message as a landed record: its identity and its decoded form for the mapping.

Shared by every mail source (drop folder now, IMAP next) so a message means the same wherever it arrives.
"""

from __future__ import annotations

import hashlib
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from connectors.mail.noise import classify_noise
from connectors.mail.parse import bounded_message_id, parse_message
from connectors.mail.reply import reply_text
from itsm_core.errors import MailParseError, over_cap
from itsm_core.models import RawRecord, utcnow

PAYLOAD_FORMAT = "eml"
#: First header line of a header-only payload kept for a message over `max_message_bytes`.
OVERSIZE_HEADER = b"X-Itsm-Oversize: "
#: Of a message over `max_message_bytes`, the most kept (its header block): what a page plans for it.
OVERSIZE_HEADER_LIMIT = 256 * 1024


def message_identity(payload: bytes) -> str:
    """The message's Message-ID (a very long one by its hash, as the parsed mail names it), or `sha256:<hex>` of
    its bytes when it has none (or is not a message)."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(payload)
        message_id = str(headers.get("Message-ID", "") or "").strip().strip("<>").strip()
    except Exception:  # identity must never fail: a corrupt file is still landed, then quarantined
        message_id = ""
    if message_id:
        return bounded_message_id(message_id)
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def mail_record(payload: bytes, locator: str) -> RawRecord:
    """A fetched message as a raw record, identified by its Message-ID; `locator` says where it lies."""
    return RawRecord(message_identity(payload), payload, PAYLOAD_FORMAT, utcnow(), locator)


def oversize_payload(size: int, header: bytes) -> bytes:
    """The kept headers of a message too large to import, behind a first line `decode_mail` recognises."""
    return OVERSIZE_HEADER + str(size).encode() + b"\r\n" + header


def decode_mail(
    payload: bytes, *, max_message_bytes: int, max_text_chars: int, max_attachment_bytes: int | None = None
) -> dict[str, Any]:
    """`decode_message` as every mail source calls it, with the source's caps.

    A header-only oversize payload (`oversize_payload`) decodes to its headers plus ``oversize: {size, reason}``:
    the email intake quarantines such a message with the reason and tells its sender. A text longer than
    `max_text_chars` is cut, with a line saying so; an attachment over `max_attachment_bytes` is left out, with a
    line naming it (the landed record keeps the whole message either way).
    """
    if payload.startswith(OVERSIZE_HEADER):
        first, _, header = payload[len(OVERSIZE_HEADER) :].partition(b"\r\n")
        size = first.decode("ascii", "replace")
        reason = f"message of {size} bytes exceeds max_message_bytes ({max_message_bytes}); only its headers were kept"
        try:
            mail = decode_message(header + b"\r\n")
        except MailParseError:
            raise MailParseError(reason) from None
        mail["oversize"] = {"size": int(size) if size.isdigit() else None, "reason": reason}
        return mail
    mail = decode_message(payload)
    notes = []
    if max_attachment_bytes is not None:
        kept = []
        for attachment in mail["attachments"]:
            if len(attachment["content"]) <= max_attachment_bytes:
                kept.append(attachment)
            else:
                left_out = over_cap(
                    f"attachment {attachment['name']}",
                    len(attachment["content"]),
                    "max_attachment_bytes",
                    max_attachment_bytes,
                )
                notes.append(f"[{left_out}; the whole message is kept with the raw record]")
        mail["attachments"] = kept
    for key in ("text", "reply_text"):
        text = mail.get(key) or ""
        if len(text) > max_text_chars:
            mail[key] = text[:max_text_chars] + (
                f"\n\n[… cut at {max_text_chars} of {len(text)} characters (max_text_chars); the whole message "
                "is kept with the ticket's raw record]"
            )
        if notes:
            mail[key] = "\n\n".join([mail.get(key) or "", *notes]).strip()
    return mail


def decode_message(payload: bytes) -> dict[str, Any]:
    """The parsed message as the `email` mapping and intake read it; raises `MailParseError` if it is no message.

    Adds `noise` (auto-reply or bounce, or None) and `reply_text` (the new part of a reply); `requester_unknown`
    and `defects` are None unless the parser had to recover the sender or repair the mail.
    """
    message = parse_message(payload)
    record = message.model_dump()
    noise = classify_noise(payload)
    record["noise"] = noise.model_dump() if noise else None
    record["reply_text"] = reply_text(message.text)
    # only a mail that needed them carries these (the mapping keeps them in the ticket's custom fields)
    record["requester_unknown"] = message.requester_unknown or None
    record["defects"] = message.defects or None
    record["attachments"] = [
        {"name": a.filename, "content_type": a.content_type, "content": a.content, "content_id": a.content_id}
        for a in message.attachments
    ]
    return record
