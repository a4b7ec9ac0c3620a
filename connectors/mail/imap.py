"""An IMAP mailbox as a source: each message of each configured folder, read exactly once.

Incremental contract, per folder: messages with UID > the last committed UID, under the same UIDVALIDITY
(half-open: > last_uid). A changed UIDVALIDITY restarts the folder from UID 1; the store's landing key
(Message-ID + sha256) and the email intake's Message-ID check make that re-read create nothing twice.
Messages are fetched with BODY.PEEK (never marked \\Seen by reading) and flagged / moved only in
`acknowledge`, which the flow calls after the page is committed.

Watermark: JSON ``{"<folder>": {"uidvalidity": int, "last_uid": int, "highestmodseq": int | null}}``.
`highestmodseq` is the folder's HIGHESTMODSEQ when the page was planned (CONDSTORE servers only, else null);
it is recorded for later flag-change sync and not used to plan.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import tenacity
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientAbortError, IMAPClientError, LoginError

from connectors.base import TICKETS, SourceConnector, pages_within
from connectors.mail.config import ImapSource
from connectors.mail.record import (
    OVERSIZE_HEADER_LIMIT,
    PAYLOAD_FORMAT,
    decode_mail,
    mail_record,
    oversize_payload,
)
from itsm_core.errors import ImapUnavailable
from itsm_core.models import RawRecord

log = logging.getLogger("itsm.connectors.imap")

SEEN = b"\\Seen"
#: Logins tried when the server answers [UNAVAILABLE] (its authentication backend is down for a moment).
LOGIN_ATTEMPTS = 3
DELETED = b"\\Deleted"


@dataclass(frozen=True)
class FolderState:
    """What a SELECT says about a folder."""

    uidvalidity: int
    highestmodseq: int | None


class ImapConnector(SourceConnector):
    """The `imap` source kind; see the module docstring for the incremental contract.

    One connection per run: opened on first use, reused across folders and pages, logged out by `close()`.
    A connection lost mid-run is dropped, so the flow's page retry reconnects. `ssl_context` (default: the
    system's trust store, hostname checked) is for servers with a private CA, and for tests.
    """

    payload_format = PAYLOAD_FORMAT

    def __init__(self, settings: ImapSource, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._client: IMAPClient | None = None
        self._selected: str | None = None
        self.login_retry_wait = 1.0  # seconds before the second login attempt, doubling; tests shorten it

    # --- connection -----------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """The account as errors name it: never a secret."""
        return f"{self.settings.username}@{self.settings.host}:{self.settings.effective_port}"

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> IMAPClient:
        """A logged-in client, or `ImapUnavailable` saying what failed and what to check.

        A login the server could not check just now (RFC 5530 ``[UNAVAILABLE]``: its password database did not
        answer) is tried again, on a new connection, up to `LOGIN_ATTEMPTS` times; a refused one is not.
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(LOGIN_ATTEMPTS),
            wait=tenacity.wait_exponential(multiplier=self.login_retry_wait),
            retry=tenacity.retry_if_exception(_temporary_login_failure),
            reraise=True,
        )
        try:
            return retrying(self._open)
        except (OSError, IMAPClientError) as exc:
            # `from None`: the server's words may echo what we sent; name only the account and the failure.
            raise ImapUnavailable(
                f"cannot open IMAP mailbox {self.where}: {_connect_failure(exc, self.settings)}"
            ) from None

    def _open(self) -> IMAPClient:
        s = self.settings
        client = IMAPClient(
            s.host,
            port=s.effective_port,
            ssl=s.security == "ssl",
            ssl_context=self.ssl_context,
            timeout=s.timeout_seconds,
        )
        try:
            if s.security == "starttls":
                client.starttls(self.ssl_context)
            self._login(client)
            if client.has_capability("CONDSTORE") and client.has_capability("ENABLE"):
                client.enable("CONDSTORE")  # only so SELECT reports HIGHESTMODSEQ for the watermark
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def _login(self, client: IMAPClient) -> None:
        s = self.settings
        if s.oauth2_token is not None:
            client.oauth2_login(s.username, s.oauth2_token.get_secret_value())
        else:
            assert s.password is not None  # the config requires one of them
            client.login(s.username, s.password.get_secret_value())

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, IMAPClientError):  # closing a dead connection is not news
                self._client.logout()
            self._client, self._selected = None, None

    @contextlib.contextmanager
    def _session(self, doing: str) -> Iterator[None]:
        """Turn a lost connection into `ImapUnavailable` and forget the client, so a retry reconnects."""
        try:
            yield
        except (OSError, IMAPClientAbortError) as exc:
            self._client, self._selected = None, None
            raise ImapUnavailable(
                f"lost the connection to IMAP mailbox {self.where} while {doing} ({type(exc).__name__}); "
                "nothing was acknowledged, a retry resumes from the last committed page"
            ) from exc

    def _select(self, folder: str) -> FolderState:
        """SELECT `folder` read-write (acknowledge sets flags there); a missing folder names the ones that exist."""
        try:
            info = self.client.select_folder(folder)
        except IMAPClientAbortError:
            raise
        except IMAPClientError:
            if self.client.folder_exists(folder):
                raise
            raise ImapUnavailable(
                f"IMAP folder {folder!r} does not exist in mailbox {self.where}; fix `folders` "
                f"(existing: {', '.join(self._folder_names())})"
            ) from None
        self._selected = folder
        modseq = info.get(b"HIGHESTMODSEQ")
        return FolderState(int(info[b"UIDVALIDITY"]), int(modseq) if modseq is not None else None)

    def _folder_names(self) -> list[str]:
        return sorted(str(name) for _flags, _delimiter, name in self.client.list_folders())

    def _check_move_target(self) -> None:
        """Fail before importing anything if `move_to` is missing: a commit without its move would leave mail behind."""
        target = self.settings.move_to
        if self.settings.after_import == "move" and target and not self.client.folder_exists(target):
            raise ImapUnavailable(
                f"IMAP folder {target!r} (move_to) does not exist in mailbox {self.where}; create it or fix `move_to`"
            )

    # --- pages ----------------------------------------------------------------------------------------

    def plan_pages(self, watermark: str | None, entity: str = TICKETS) -> Iterator[dict[str, Any]]:
        """Per configured folder, in order: pages ``{"folder", "uidvalidity", "highestmodseq", "uids"}``.

        `uids` ascending, at most `page_size` and `max_page_bytes` (by the messages' RFC822.SIZE; one over
        `max_message_bytes` counts as its headers), all > the folder's committed last_uid (or from 1 when the
        folder's UIDVALIDITY differs from the watermark's). A folder's UIDs are listed when the plan reaches
        it, so pages stay valid while earlier ones are acknowledged (moved) in between.
        """
        state = _load(watermark)
        with self._session("checking move_to"):
            self._check_move_target()
        for folder in self.settings.folders:
            with self._session(f"listing folder {folder!r}"):
                selected = self._select(folder)
                uids = self._new_uids(folder, self._last_uid(folder, selected, state.get(folder)))
                sizes = self._planned_sizes(uids)
            for page in pages_within(sizes, self.settings.page_size, self.settings.max_page_bytes):
                yield {
                    "folder": folder,
                    "uidvalidity": selected.uidvalidity,
                    "highestmodseq": selected.highestmodseq,
                    "uids": page,
                }

    def _planned_sizes(self, uids: list[int]) -> list[tuple[int, int]]:
        """(uid, bytes its page will hold) for every uid, one FETCH of sizes per 5,000 (a UID expunged meanwhile
        counts as nothing: `fetch_page` skips it)."""
        limit, found = self.settings.max_message_bytes, []
        for start in range(0, len(uids), 5000):
            chunk = uids[start : start + 5000]
            sizes = self._sizes(chunk)
            found += [(uid, s if (s := sizes.get(uid, 0)) <= limit else OVERSIZE_HEADER_LIMIT) for uid in chunk]
        return found

    def _last_uid(self, folder: str, selected: FolderState, known: dict[str, Any] | None) -> int:
        """The committed last UID, or 0 (read all) on a first run or a changed UIDVALIDITY."""
        if not known:
            return 0
        if known.get("uidvalidity") != selected.uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed (%s → %s); re-reading the folder from UID 1 "
                "(messages landed before are recognised and create nothing)",
                folder,
                known.get("uidvalidity"),
                selected.uidvalidity,
            )
            return 0
        return int(known.get("last_uid", 0))

    def _new_uids(self, folder: str, last_uid: int) -> list[int]:
        # `N:*` always matches the highest UID, even one below N (RFC 3501 6.4.8): filter.
        return sorted(uid for uid in self.client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)

    def page_watermark(self, page: dict[str, Any], watermark: str | None) -> str:
        """`watermark` with the page's folder advanced to the page's highest UID; other folders untouched."""
        state = _load(watermark)
        state[page["folder"]] = {
            "uidvalidity": page["uidvalidity"],
            "last_uid": max(page["uids"]),
            "highestmodseq": page.get("highestmodseq"),
        }
        return json.dumps(state, sort_keys=True)

    def watermark_positions(self, watermark: str | None) -> dict[str, tuple[Any, ...]]:
        """Per folder and UIDVALIDITY (an epoch), the last committed UID."""
        return {f"{folder}@{known['uidvalidity']}": (known["last_uid"],) for folder, known in _load(watermark).items()}

    def fetch_page(self, page: dict[str, Any]) -> list[RawRecord]:
        """The page's messages in UID order, verbatim; over `max_message_bytes`, only their headers.

        Two FETCHes per page (sizes, then bodies), never a \\Seen flag. A UID expunged since the plan is skipped.
        """
        folder, uids = page["folder"], page["uids"]
        with self._session(f"fetching from folder {folder!r}"):
            if self._selected != folder:
                self._select(folder)
            sizes = self._sizes(uids)
            payloads = self._payloads(sizes)
        records = []
        for uid in uids:
            if uid not in payloads:
                log.info("%s UID %s vanished between SEARCH and FETCH (expunged elsewhere); skipped", folder, uid)
                continue
            records.append(mail_record(payloads[uid], locator=f"{folder}\t{page['uidvalidity']}\t{uid}"))
        return records

    def _sizes(self, uids: list[int]) -> dict[int, int]:
        # Filtered: a FETCH also returns unsolicited updates (another client's flag change) for other messages.
        fetched = self.client.fetch(uids, ["RFC822.SIZE"])
        return {uid: int(fetched[uid][b"RFC822.SIZE"]) for uid in uids if b"RFC822.SIZE" in fetched.get(uid, {})}

    def _payloads(self, sizes: dict[int, int]) -> dict[int, bytes]:
        limit = self.settings.max_message_bytes
        small = [uid for uid, size in sizes.items() if size <= limit]
        large = [uid for uid, size in sizes.items() if size > limit]
        payloads: dict[int, bytes] = {}
        if small:
            for uid, data in self.client.fetch(small, ["BODY.PEEK[]"]).items():
                if uid in sizes and b"BODY[]" in data:
                    payloads[uid] = data[b"BODY[]"]
        if large:
            for uid, data in self.client.fetch(large, ["BODY.PEEK[HEADER]"]).items():
                if uid in sizes and b"BODY[HEADER]" in data:
                    payloads[uid] = oversize_payload(sizes[uid], data[b"BODY[HEADER]"])
        return payloads

    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        """`decode_mail` with this source's caps (an oversize message decodes to its headers and the reason)."""
        caps = self.settings
        return decode_mail(
            payload,
            max_message_bytes=caps.max_message_bytes,
            max_text_chars=caps.max_text_chars,
            max_attachment_bytes=caps.max_attachment_bytes,
        )

    # --- after the commit -----------------------------------------------------------------------------

    def acknowledge(self, records: Sequence[RawRecord]) -> None:
        """`after_import`: seen → flag \\Seen, move → to `move_to`, leave → nothing.

        Skips a folder whose UIDVALIDITY changed since the fetch: its UIDs would name other messages now.
        """
        if self.settings.after_import == "leave":
            return
        for (folder, uidvalidity), uids in _by_folder(records).items():
            with self._session(f"acknowledging in folder {folder!r}"):
                if self._select(folder).uidvalidity != uidvalidity:
                    log.warning(
                        "%s: UIDVALIDITY changed since the fetch; leaving %d message(s) as they are", folder, len(uids)
                    )
                    continue
                if self.settings.after_import == "seen":
                    self.client.add_flags(uids, [SEEN])
                else:
                    self._move(folder, uids)

    def _move(self, folder: str, uids: list[int]) -> None:
        """MOVE if offered, else COPY + \\Deleted + UID EXPUNGE (UIDPLUS), expunging only our own messages."""
        assert self.settings.move_to is not None  # the config requires it
        target = self.settings.move_to
        if self.client.has_capability("MOVE"):
            self.client.move(uids, target)
            return
        self.client.copy(uids, target)
        self.client.add_flags(uids, [DELETED])
        if self.client.has_capability("UIDPLUS"):
            self.client.uid_expunge(uids)
        else:
            # A plain EXPUNGE would also purge what other clients marked \Deleted: leave ours for them.
            log.info("%s: no UIDPLUS; %d copied message(s) left flagged \\Deleted, not expunged", folder, len(uids))


def _load(watermark: str | None) -> dict[str, Any]:
    return json.loads(watermark) if watermark else {}


def _by_folder(records: Sequence[RawRecord]) -> dict[tuple[str, int], list[int]]:
    """UIDs grouped by (folder, uidvalidity) from the locators `fetch_page` wrote."""
    groups: dict[tuple[str, int], list[int]] = {}
    for record in records:
        if not record.locator:
            continue
        folder, uidvalidity, uid = record.locator.rsplit("\t", 2)  # rsplit: a folder name may hold anything
        groups.setdefault((folder, int(uidvalidity)), []).append(int(uid))
    return groups


def _temporary_login_failure(exc: BaseException) -> bool:
    # The response code alone is read (RFC 5530); the server's other words are never repeated.
    return isinstance(exc, LoginError) and "[UNAVAILABLE]" in str(exc).upper()


def _connect_failure(exc: BaseException, settings: ImapSource) -> str:
    """What went wrong opening the mailbox and what to check; never the server's words after LOGIN."""
    if _temporary_login_failure(exc):
        return (
            f"the server could not check the login just now (IMAP [UNAVAILABLE], {LOGIN_ATTEMPTS} attempts); "
            "the next run tries again — if it lasts, check the mail server's password database"
        )
    if isinstance(exc, LoginError):
        secret = "oauth2_token" if settings.oauth2_token is not None else "password"
        return f"login refused; check username and {secret}"
    if isinstance(exc, CapabilityError):
        return "the server offers no STARTTLS; check `security` (ssl on port 993, or plain on loopback)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); check `host` matches the server's certificate"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed; check `security` matches the port (ssl: 993, starttls: 143)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {settings.timeout_seconds:g} s; check host, port and firewalls"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused; check host and port"
    if isinstance(exc, socket.gaierror):
        return "host name not found; check `host`"
    if isinstance(exc, OSError):
        return f"network error ({type(exc).__name__}); check host and port"
    return f"the server broke off the session ({type(exc).__name__}); check `security` and the server's log"
