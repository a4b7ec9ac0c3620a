"""A drop folder of messages: a Maildir (`new/` and `cur/`) or a plain folder of `.eml` files.

Incremental contract: every file present is offered on every run, in name order; the store's landing key
(source, Message-ID, sha256 of the bytes) makes a message seen before a no-op. With `after_import: move` a
file leaves the folder once its page is committed, so runs stay short on busy folders.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from connectors.mail.record import PAYLOAD_FORMAT, decode_message, mail_record
from itsm_core.models import RawRecord

log = logging.getLogger("itsm.connectors.maildir")


class MaildirConnector:
    payload_format = PAYLOAD_FORMAT
    default_mapping = "email"

    def __init__(
        self, path: Path, *, pattern: str = "*.eml", page_size: int = 200, move_to: Path | None = None
    ) -> None:
        self.path = path
        self.pattern = pattern
        self.page_size = page_size
        self.move_to = move_to

    @property
    def is_maildir(self) -> bool:
        return (self.path / "new").is_dir() and (self.path / "cur").is_dir()

    def _files(self) -> list[str]:
        if not self.path.is_dir():
            raise FileNotFoundError(
                f"mail drop folder {self.path} does not exist; create it or fix `path` in the source's config"
            )
        if self.is_maildir:  # Maildir files have no extension; tmp/ holds deliveries still being written
            found = [p for sub in ("new", "cur") for p in (self.path / sub).iterdir() if p.is_file()]
        else:
            found = [p for p in self.path.glob(self.pattern) if p.is_file()]
        return sorted(str(p.relative_to(self.path)) for p in found)

    def plan_pages(self, watermark: str | None = None) -> Iterator[list[str]]:
        """Every file present, by name; a drop folder keeps no watermark (the landing key dedupes)."""
        names = self._files()
        for start in range(0, len(names), self.page_size):
            yield names[start : start + self.page_size]

    def page_watermark(self, page: list[str], watermark: str | None) -> str | None:
        return None

    def fetch_page(self, page: list[str]) -> list[RawRecord]:
        records = []
        for name in page:
            try:
                payload = (self.path / name).read_bytes()
            except FileNotFoundError:  # moved or deleted since the listing: someone else took it
                log.info("skipping %s: gone since the folder was listed", name)
                continue
            records.append(mail_record(payload, locator=name))
        return records

    def decode(self, payload: bytes) -> dict[str, Any]:
        return decode_message(payload)

    def acknowledge(self, records: Sequence[RawRecord]) -> None:
        if self.move_to is None:
            return
        self.move_to.mkdir(parents=True, exist_ok=True)
        for record in records:
            if record.locator is None:
                continue
            source = self.path / record.locator
            if source.exists():
                shutil.move(source, self.move_to / Path(record.locator).name)

    def close(self) -> None:
        """A folder holds no connection."""
