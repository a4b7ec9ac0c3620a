"""`kind: imap`: a real Dovecot on loopback (tests/support/dovecot.py), one mailbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.connectors.conformance.testbed import SOURCE, Testbed
from tests.connectors.conformance.testbeds._mail import message, unreadable_message
from tests.support.dovecot import deliver, source_settings, start_dovecot, stop_dovecot


class ImapTestbed(Testbed):
    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.server = start_dovecot(base / "dovecot", {"helpdesk": "s3cret-imap"})
        self.delivered = 0

    def source(self, page_size: int) -> dict[str, Any]:
        return source_settings(self.server, name=SOURCE, page_size=page_size)

    def add_tickets(self, count: int) -> None:
        deliver(self.server, *(message(self.delivered + n) for n in range(count)))
        self.delivered += count

    def add_unreadable(self) -> None:
        deliver(self.server, unreadable_message())

    def close(self) -> None:
        stop_dovecot(self.server)


TESTBED = ImapTestbed
