"""An IMAP mailbox as a source: each message of each configured folder, read exactly once.

Incremental contract, per folder: messages with UID > the last committed UID, under the same UIDVALIDITY
(half-open: > last_uid). A changed UIDVALIDITY restarts the folder from UID 1; the store's landing key
(Message-ID + sha256) and the email intake's Message-ID check make that re-read create nothing twice.
Messages are fetched with BODY.PEEK (never marked \\Seen by reading) and flagged / moved only in
`acknowledge`, which the flow calls after the page is committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import Iterator, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from connectors.mail.record import PAYLOAD_FORMAT, decode_message, mail_record
from itsm_core.config import ImapSource
from itsm_core.errors import ImapUnavailable, MailParseError
from itsm_core.models import RawRecord

log = logging.getLogger("itsm.connectors.imap")
OVERSIZE_HEADER = b"X-Itsm-Oversize: "


class ImapConnector:
    payload_format = PAYLOAD_FORMAT
    default_mapping = "email"

    def __init__(self, settings: ImapSource, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._client: IMAPClient | None = None
        self._selected: str | None = None

    # --- connection -----------------------------------------------------------------------------------

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> IMAPClient:
        s = self.settings
        where = f"{s.username}@{s.host}:{s.effective_port}"
        try:
            client = IMAPClient(
                s.host,
                port=s.effective_port,
                ssl=s.security == "ssl",
                ssl_context=self.ssl_context,
                timeout=s.timeout_seconds,
            )
            if s.security == "starttls":
                client.starttls(self.ssl_context)
            if s.oauth2_token is not None:
                client.oauth2_login(s.username, s.oauth2_token.get_secret_value())
            else:
                assert s.password is not None  # the config requires one of them
                client.login(s.username, s.password.get_secret_value())
        except (OSError, IMAPClientError) as exc:
            # The server's words may echo what we sent; name only the account and the kind of failure.
            kind = "login refused" if isinstance(exc, IMAPClientError) else type(exc).__name__
            raise ImapUnavailable(
                f"cannot open IMAP mailbox {where}: {kind}; check host, port, security and the credentials"
            ) from None
        return client

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, IMAPClientError):  # closing a dead connection is not news
                self._client.logout()
            self._client, self._selected = None, None

    def _select(self, folder: str) -> dict[bytes, Any]:
        info = self.client.select_folder(folder)
        self._selected = folder
        return info

    # --- pages ----------------------------------------------------------------------------------------

    def plan_pages(self, watermark: str | None) -> Iterator[dict[str, Any]]:
        state = json.loads(watermark) if watermark else {}
        for folder in self.settings.folders:
            info = self._select(folder)
            uidvalidity = int(info[b"UIDVALIDITY"])
            last_uid = 0
            known = state.get(folder)
            if known and known.get("uidvalidity") == uidvalidity:
                last_uid = int(known.get("last_uid", 0))
            elif known:
                log.warning(
                    "%s: UIDVALIDITY changed (%s → %s); re-reading the folder",
                    folder,
                    known.get("uidvalidity"),
                    uidvalidity,
                )
            # `N:*` always matches the highest UID, even below N: filter.
            uids = sorted(uid for uid in self.client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)
            for start in range(0, len(uids), self.settings.page_size):
                yield {
                    "folder": folder,
                    "uidvalidity": uidvalidity,
                    "uids": uids[start : start + self.settings.page_size],
                }

    def page_watermark(self, page: dict[str, Any], watermark: str | None) -> str:
        state = json.loads(watermark) if watermark else {}
        state[page["folder"]] = {"uidvalidity": page["uidvalidity"], "last_uid": max(page["uids"])}
        return json.dumps(state, sort_keys=True)

    def fetch_page(self, page: dict[str, Any]) -> list[RawRecord]:
        folder, uids = page["folder"], page["uids"]
        if self._selected != folder:
            self._select(folder)
        sizes = {uid: data.get(b"RFC822.SIZE", 0) for uid, data in self.client.fetch(uids, ["RFC822.SIZE"]).items()}
        limit = self.settings.max_message_bytes
        small = [uid for uid in uids if uid in sizes and sizes[uid] <= limit]
        large = [uid for uid in uids if uid in sizes and sizes[uid] > limit]
        bodies = (
            {uid: data[b"BODY[]"] for uid, data in self.client.fetch(small, ["BODY.PEEK[]"]).items()} if small else {}
        )
        if large:
            headers = self.client.fetch(large, ["BODY.PEEK[HEADER]"])
            for uid in large:
                if uid in headers:
                    bodies[uid] = OVERSIZE_HEADER + str(sizes[uid]).encode() + b"\r\n" + headers[uid][b"BODY[HEADER]"]
        records = []
        for uid in uids:
            if uid not in bodies:
                log.info("%s UID %s vanished between SEARCH and FETCH; skipped", folder, uid)
                continue
            records.append(mail_record(bodies[uid], locator=f"{folder}\t{page['uidvalidity']}\t{uid}"))
        return records

    def decode(self, payload: bytes) -> dict[str, Any]:
        if payload.startswith(OVERSIZE_HEADER):
            size = payload[len(OVERSIZE_HEADER) :].split(b"\r\n", 1)[0].decode()
            raise MailParseError(
                f"message of {size} bytes exceeds max_message_bytes ({self.settings.max_message_bytes}); "
                "only its headers were kept"
            )
        return decode_message(payload)

    def acknowledge(self, records: Sequence[RawRecord]) -> None:
        if self.settings.after_import == "leave":
            return
        by_folder: dict[tuple[str, int], list[int]] = {}
        for record in records:
            folder, uidvalidity, uid = (record.locator or "").split("\t")
            by_folder.setdefault((folder, int(uidvalidity)), []).append(int(uid))
        for (folder, uidvalidity), uids in by_folder.items():
            info = self._select(folder)
            if int(info[b"UIDVALIDITY"]) != uidvalidity:
                log.warning("%s: UIDVALIDITY changed since the fetch; leaving the messages as they are", folder)
                continue
            if self.settings.after_import == "seen":
                self.client.add_flags(uids, [b"\\Seen"])
            else:
                assert self.settings.move_to is not None  # the config requires it
                self.client.move(uids, self.settings.move_to)
