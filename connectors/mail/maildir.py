"""A drop folder of messages: a Maildir (`new/` and `cur/`) or a plain folder of message files.

Files are mail by their content, not their name: `.eml`, `.box`, `.msg.txt` or no extension at all, as mail
archives and other helpdesks export them (`pattern`, default every file, narrows it). Hidden files (a leading dot:
`.DS_Store`, a copy still being written as `.name.tmp`) are skipped. A file that is not an RFC 5322 message is
quarantined with the reason, like any unreadable record.

Incremental contract: every file present is offered on every run, in name order; the store's landing key
(source, Message-ID, sha256 of the bytes) makes a message seen before a no-op. With `after_import: move` a
file leaves the folder once its page is committed, so runs stay short on busy folders.

Memory is bounded by the caps: a file over `max_message_bytes` is never read whole (its headers only, and the
intake refuses it with the reason), and a page ends before its files add up to `max_page_bytes`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from connectors.base import TICKETS, SourceConnector, pages_within
from connectors.mail.config import MaildirSource
from connectors.mail.record import (
    OVERSIZE_HEADER_LIMIT,
    PAYLOAD_FORMAT,
    decode_mail,
    mail_record,
    oversize_payload,
)
from itsm_core.models import RawRecord

log = logging.getLogger("itsm.connectors.maildir")


class MaildirConnector(SourceConnector):
    incremental = False  # the landing key dedupes; `after_import: move` keeps runs short
    payload_format = PAYLOAD_FORMAT

    def __init__(
        self,
        path: Path,
        *,
        pattern: str = "*",
        page_size: int = 200,
        move_to: Path | None = None,
        max_message_bytes: int = 25 * 1024 * 1024,
        max_text_chars: int = 200_000,
        max_attachment_bytes: int | None = None,
        max_page_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.path = path
        self.pattern = pattern
        self.page_size = page_size
        self.move_to = move_to
        self.max_message_bytes = max_message_bytes
        self.max_text_chars = max_text_chars
        self.max_attachment_bytes = max_attachment_bytes
        self.max_page_bytes = max_page_bytes

    @classmethod
    def configured(cls, source: MaildirSource) -> MaildirConnector:
        return cls(
            source.path,
            pattern=source.pattern,
            page_size=source.page_size,
            move_to=source.move_to if source.after_import == "move" else None,
            max_message_bytes=source.max_message_bytes,
            max_text_chars=source.max_text_chars,
            max_attachment_bytes=source.max_attachment_bytes,
            max_page_bytes=source.max_page_bytes,
        )

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
            found = [p for p in self.path.glob(self.pattern) if p.is_file() and not p.name.startswith(".")]
        return sorted(str(p.relative_to(self.path)) for p in found)

    def plan_pages(self, watermark: str | None = None, entity: str = TICKETS) -> Iterator[list[str]]:
        """Every file present, by name, `page_size` files or `max_page_bytes` at most per page; a drop folder keeps
        no watermark (the landing key dedupes)."""
        names = self._files()
        log.info("%s: %d message file(s) to read", self.path, len(names))
        return pages_within(self._sizes(names), self.page_size, self.max_page_bytes)

    def _sizes(self, names: list[str]) -> Iterator[tuple[str, int]]:
        """(name, bytes a page will hold for it): an oversize file counts as its headers only."""
        for name in names:
            try:
                size = (self.path / name).stat().st_size
            except FileNotFoundError:  # gone since the listing
                continue
            yield name, size if size <= self.max_message_bytes else OVERSIZE_HEADER_LIMIT

    def page_watermark(self, page: list[str], watermark: str | None) -> str | None:
        return None

    def fetch_page(self, page: list[str]) -> list[RawRecord]:
        records = []
        for name in page:
            try:
                payload = self._read(self.path / name)
            except FileNotFoundError:  # moved or deleted since the listing: someone else took it
                log.info("skipping %s: gone since the folder was listed", name)
                continue
            records.append(mail_record(payload, locator=name))
        return records

    def _read(self, path: Path) -> bytes:
        """The file's bytes; over `max_message_bytes`, its header block only (read up to the first blank line)."""
        size = path.stat().st_size
        if size <= self.max_message_bytes:
            return path.read_bytes()
        with path.open("rb") as file:
            head = file.read(OVERSIZE_HEADER_LIMIT)
        end = min((i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0), default=len(head))
        return oversize_payload(size, head[:end] + b"\r\n")

    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        return decode_mail(
            payload,
            max_message_bytes=self.max_message_bytes,
            max_text_chars=self.max_text_chars,
            max_attachment_bytes=self.max_attachment_bytes,
        )

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
