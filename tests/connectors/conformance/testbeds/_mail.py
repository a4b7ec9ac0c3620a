"""Messages for the mail kinds' testbeds: each a new ticket, and one that is no message at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

EPOCH = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def message(number: int) -> bytes:
    """A new request from its own sender (the mail intake would thread or rate-limit mail from one sender)."""
    mail = EmailMessage()
    mail["From"] = f"user{number}@example.org"
    mail["To"] = "helpdesk@example.org"
    mail["Subject"] = f"Printer {number} is jammed"
    mail["Date"] = format_datetime(EPOCH + timedelta(minutes=number))
    mail["Message-ID"] = make_msgid(idstring=f"conformance-{number}", domain="example.org")
    mail.set_content(f"Printer {number} on floor {number % 7} shows a paper jam.")
    return mail.as_bytes()


def unreadable_message() -> bytes:
    """Binary data saved as a message: NUL bytes in what would be its header block."""
    return b"\x00\x01PK\x03\x04 not a message\x00\r\n\r\nbody"
