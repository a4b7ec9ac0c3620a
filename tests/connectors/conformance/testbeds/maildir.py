"""`kind: maildir`: a plain drop folder of `.eml` files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.connectors.conformance.testbed import SOURCE, Testbed
from tests.connectors.conformance.testbeds._mail import message, unreadable_message


class MaildirTestbed(Testbed):
    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.inbox = base / "inbox"
        self.inbox.mkdir()

    def source(self, page_size: int) -> dict[str, Any]:
        return {"name": SOURCE, "kind": "maildir", "path": str(self.inbox), "page_size": page_size}

    def add_tickets(self, count: int) -> None:
        start = len(list(self.inbox.iterdir()))
        for number in range(start, start + count):
            (self.inbox / f"{number:05d}.eml").write_bytes(message(number))

    def add_unreadable(self) -> None:
        (self.inbox / "99999-corrupt.eml").write_bytes(unreadable_message())


TESTBED = MaildirTestbed
