"""`GlpiClient`: GLPI's legacy REST API (`apirest.php`, GLPI 9.5 / 10 / 11), protocol only.

What it guarantees, so the connector above it can stay simple:

- Sessions: opened lazily (`initSession` with the user token or login/password, plus the App-Token), scoped to
  the configured active entities, re-opened once and the request replayed when GLPI says the session expired
  (one re-login however many threads notice together), killed by `close()`.
- Bounded load: at most `max_concurrency` requests in flight per client, whatever the number of threads.
- Retries: reads retry 429, 5xx, timeouts and network failures with exponential backoff and jitter, honouring
  ``Retry-After``; writes retry only when the request surely was not applied (429, 503, no connection), otherwise
  they fail with ``maybe_applied=True`` so the caller can look before sending again.
- Values untouched: no ``X-GLPI-Sanitized-Content`` header, so text comes back exactly as GLPI stores it (entity
  encoded in GLPI ≤ 10; the decode step unescapes it exactly once); writes send raw text, never pre-encoded.
  Dates stay GLPI's zone-less strings. Templates (``is_template = 1``) are returned like any row.
- Errors: typed by GLPI's error code (`itsm_core.errors`: `UpstreamAuthError`, `UpstreamForbidden`,
  `UpstreamNotFound`, `UpstreamRejected`, `UpstreamUnavailable`, and `UpstreamError` for answers that are not the
  API at all); messages name the source, the request and what to do next, never a token or password.

Thread-safe: one client serves the worker threads of a run. No Prefect, no database.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import unquote

import httpx
import tenacity

from connectors.glpi._http import (
    NOT_AN_API,
    BodyTooLarge,
    QueryPairs,
    Reply,
    Retryable,
    cap_body,
    content_range_total,
    encode_query,
    error_class,
    php_params,
    php_query,
    range_param,
    retry_after_seconds,
    server_time,
    tls_untrusted,
)
from itsm_core.errors import (
    FileTooLarge,
    UpstreamAuthError,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
    over_cap,
)

log = logging.getLogger("itsm.connectors.glpi")

#: Rows per page when the caller does not say. GLPI has no server-side maximum; its default is the API user's
#: "results per page" preference (often 15), which is why the client always sends an explicit range.
DEFAULT_PAGE_SIZE = 500
#: Ticket search option of `date_mod` (the same id for most itemtypes).
DATE_MOD_FIELD = 19
#: Items per `getMultipleItems` call: two query variables each, well under PHP's max_input_vars (1000) and
#: common URL length limits (~8 KB).
MULTIPLE_ITEMS_CHUNK = 100

Order = Literal["ASC", "DESC"]
_GLPI_DATE = "%Y-%m-%d %H:%M:%S"
#: Statuses a write may retry: the server said it did not process the request.
_NOT_APPLIED = frozenset({429, 503})


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a listing (`GET /:itemtype`, sub-items) or of a search.

    `rows` are the JSON objects GLPI returned, in its order. `skipped` counts entries that were not objects
    (GLPI's search sometimes returns ``false`` in `data`): the caller logs them. `total` is GLPI's count of
    matching rows (``Content-Range`` or ``totalcount``), None when GLPI did not say; it is informational only,
    because it has disagreed with the rows actually returned. `more` is True when the page came back full, so a
    next page may exist; paging stops at the first short or empty page, never on `total` alone.
    """

    rows: list[dict[str, Any]]
    total: int | None
    start: int
    limit: int
    skipped: int = 0
    server_time: datetime | None = None  # GLPI's clock when it answered (its Date header, UTC)

    @property
    def returned(self) -> int:
        """Entries GLPI returned for this page, objects or not."""
        return len(self.rows) + self.skipped

    @property
    def more(self) -> bool:
        return self.returned >= self.limit

    @property
    def next_start(self) -> int:
        return self.start + self.returned


@dataclass(frozen=True)
class SearchPage(Page):
    """A page of `GET /search/:itemtype`: rows keyed by search-option id as strings (``"2"``, ``"19"``).

    Values are what the search engine displays (dropdowns as names, several actors as a list): use search to find
    ids, then fetch the rows themselves.
    """


@dataclass(frozen=True)
class WriteResult:
    """One element of a bulk write: `id` of the item (None when GLPI refused it), `ok`, and GLPI's message."""

    id: int | None
    ok: bool
    message: str


@dataclass(frozen=True)
class FetchedItems:
    """What `get_many` found: the items in request order, and the ids GLPI no longer shows.

    `missing`: 404 (purged, or outside the active entities): tombstone candidates. `forbidden`: 403 (the hub's
    account may not read them): to log, with the right to grant.
    """

    items: list[dict[str, Any]]
    missing: list[int]
    forbidden: list[int]


@dataclass(frozen=True)
class Download:
    """A document's file: its bytes, GLPI's content type, and the file name GLPI sent (None if it sent none)."""

    content: bytes
    content_type: str
    filename: str | None


@dataclass(frozen=True)
class ServerTime:
    """GLPI's clock as its session reports it, for diagnostics (zone-less dates are in GLPI's zone).

    `current_time` is ``glpi_currenttime`` ("YYYY-MM-DD HH:MM:SS", GLPI's zone), `timezone` is ``glpi_tz`` when
    the instance reports one (time zones enabled in its database), else None.
    """

    current_time: str | None
    timezone: str | None


# --- search criteria ------------------------------------------------------------------------------------------


def criterion(field: int, searchtype: str, value: Any, *, link: str | None = None) -> dict[str, Any]:
    """One search criterion, ``{"field", "searchtype", "value"}`` (+ ``"link"``: AND, OR, AND NOT, OR NOT).

    `field` is a search-option id (`listSearchOptions`), not a column name.
    """
    item: dict[str, Any] = {"field": field, "searchtype": searchtype, "value": value}
    if link is not None:
        item = {"link": link, **item}
    return item


def modified_since(when: datetime | str, *, field: int = DATE_MOD_FIELD, link: str | None = None) -> dict[str, Any]:
    """The criterion "modified after `when`": `field` (default 19, date_mod) ``morethan`` "YYYY-MM-DD HH:MM:SS".

    GLPI compares strictly (``>``) in its own time zone: pass `when` as a naive datetime (or a string) already in
    GLPI's zone, and subtract an overlap so records sharing the boundary second are re-read. An aware datetime is
    refused, because converting it needs GLPI's zone, which the decode step owns. Sub-second parts are dropped.
    """
    if isinstance(when, datetime):
        if when.tzinfo is not None:
            raise ValueError("pass `when` as a naive datetime in GLPI's time zone (GLPI dates carry no zone)")
        when = when.strftime(_GLPI_DATE)
    return criterion(field, "morethan", when, link=link)


# --- the client -----------------------------------------------------------------------------------------------


class _Credentials:
    """The login secrets, and `scrub` to keep them out of text; its repr never shows them."""

    __slots__ = ("_secrets", "app_token", "authorization")

    def __init__(self, authorization: str, app_token: str | None, password: str | None) -> None:
        self.authorization = authorization
        self.app_token = app_token
        token = authorization.split(" ", 1)[1]  # the user token, or login:password in base64
        self._secrets = [value for value in (token, app_token, password) if value]

    def __repr__(self) -> str:
        return "_Credentials(***)"

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class GlpiClient:
    """A client for one GLPI instance, shared by the worker threads of a run.

    Construct it from explicit values (the config layer reads the file):

    - `base_url`: the API's URL, ending in ``apirest.php``;
    - `system`: the configured source name, used in every error message and log line;
    - credentials: `user_token` (the hub account's API token), or `login` + `password` (HTTP Basic; GLPI must
      allow it), plus `app_token` when GLPI's API client has one. They are never logged, shown or raised;
    - `timeout` (seconds or an `httpx.Timeout`), `verify` (True, False, a CA bundle path or an `ssl.SSLContext`);
    - `max_concurrency`: requests in flight at once from this client (default 4);
    - `retry_attempts`: tries per request, the first included (default 5); `backoff_base` / `backoff_cap`: the
      exponential wait before retry n is about ``backoff_base * 2**(n-1)`` plus up to `backoff_base` of jitter,
      at most `backoff_cap` seconds; a ``Retry-After`` from the server replaces it, capped at `retry_after_cap`;
    - `active_entity`: the entity id (or ``"all"``) made active right after each login, recursively unless
      `entity_recursive` is False; None keeps GLPI's default. GLPI silently hides records outside the active
      entities, so the default is the root entity (0), recursive;
    - `transport` and `sleep`: for tests (an `httpx.MockTransport`, a sleep that records instead of waiting).
    """

    def __init__(
        self,
        base_url: str,
        *,
        system: str = "glpi",
        user_token: str | None = None,
        login: str | None = None,
        password: str | None = None,
        app_token: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        max_concurrency: int = 4,
        retry_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 120.0,
        active_entity: int | Literal["all"] | None = 0,
        entity_recursive: bool = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (user_token is None) == (login is None):
            raise ValueError("give exactly one of user_token or login (with password)")
        if login is not None and password is None:
            raise ValueError("login needs a password")
        if max_concurrency < 1 or retry_attempts < 1:
            raise ValueError("max_concurrency and retry_attempts must be at least 1")
        if user_token is not None:
            authorization = f"user_token {user_token}"
        else:
            basic = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
            authorization = f"Basic {basic}"
        self.system = system
        self._credentials = _Credentials(authorization, app_token, password)
        url = httpx.URL(base_url)
        port = f":{url.port}" if url.port else ""
        #: The URL as messages show it: no user info, no query.
        self.base_url = f"{url.scheme}://{url.host}{port}{url.path}".rstrip("/")
        self._attempts = retry_attempts
        self._backoff = tenacity.wait_exponential_jitter(initial=backoff_base, max=backoff_cap, jitter=backoff_base)
        self._retry_after_cap = retry_after_cap
        self._entities: tuple[int | str, bool] | None = (
            None if active_entity is None else (active_entity, entity_recursive)
        )
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._session_lock = threading.Lock()
        self._token: str | None = None
        self._closed = False
        if isinstance(verify, str | os.PathLike):
            try:
                verify = ssl.create_default_context(cafile=os.fspath(verify))
            except (OSError, ssl.SSLError) as exc:
                raise UpstreamError(
                    f"{system}: cannot load the CA certificate {os.fspath(verify)!r} ({exc}); fix ca_file in the "
                    "source config",
                    system=system,
                ) from None
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            verify=verify,
            transport=transport,
            follow_redirects=False,  # a redirect means a wrong base_url or a login page: said, not followed
            # Idle connections are dropped before Apache's default 5 s keep-alive ends: a write sent on a connection
            # the server is closing gets no answer, and would have to be reported as maybe applied.
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency, keepalive_expiry=4.0
            ),
            headers={"Accept": "application/json", "User-Agent": "itsm-hub GLPI client"},
        )

    def __repr__(self) -> str:
        return f"GlpiClient(system={self.system!r}, base_url={self.base_url!r})"

    def __enter__(self) -> GlpiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- session ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Kill the GLPI session (if one is open) and release connections. Failures are ignored; idempotent."""
        with self._session_lock:
            token, self._token = self._token, None
            already, self._closed = self._closed, True
        if already:
            return
        if token is not None:
            # One attempt, no retry: the session expires on its own anyway.
            try:
                self._attempt("GET", "/killSession", self._query([]), None, self._headers(token), idempotent=True)
            except (Retryable, UpstreamError, httpx.HTTPError) as exc:
                log.debug("%s: killSession failed (%s); the session will expire on its own", self.system, exc)
        self._http.close()

    def change_active_entities(self, entities_id: int | Literal["all"] = 0, recursive: bool = True) -> None:
        """Make `entities_id` (recursively) the session's active entities, now and after every re-login.

        Raises `UpstreamAuthError` when GLPI refuses (the entity does not exist or the account has no access).
        """
        with self._session_lock:
            self._entities = (entities_id, recursive)
            opened = self._token is not None
        if not opened:
            self._session_token()  # the login applies it
            return
        reply = self._call("POST", "/changeActiveEntities", body=self._entities_body(), itemtype="Entity")
        self._check_entities(reply)

    def server_time(self) -> ServerTime:
        """GLPI's current time and time zone from `getFullSession`, to check the configured zone against."""
        reply = self._call("GET", "/getFullSession", itemtype="Session")
        session = reply.body.get("session") if isinstance(reply.body, dict) else None
        if not isinstance(session, dict):
            raise self._unexpected(reply, "GET /getFullSession", "an object with a 'session' key")
        current, zone = session.get("glpi_currenttime"), session.get("glpi_tz")
        return ServerTime(
            current_time=str(current) if current else None,
            timezone=str(zone) if zone else None,
        )

    def _session_token(self) -> str:
        """The open session's token, logging in first if there is none (one login for all waiting threads)."""
        with self._session_lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if self._token is None:
                self._token = self._open_session()
            return self._token

    def _drop_session(self, stale: str) -> None:
        """Forget `stale` unless another thread already replaced it: then its new session is used as is."""
        with self._session_lock:
            if self._token == stale:
                self._token = None

    def _open_session(self) -> str:
        # Called under the session lock: other threads wait for this login rather than starting their own.
        headers = self._headers(None)
        headers["Authorization"] = self._credentials.authorization
        reply = self._call("GET", "/initSession", headers=headers, session=False, login=True, itemtype="Session")
        token = reply.body.get("session_token") if isinstance(reply.body, dict) else None
        if not isinstance(token, str) or not token:
            raise self._unexpected(reply, "GET /initSession", "an object with a 'session_token'")
        if self._entities is not None:
            try:
                reply = self._call(
                    "POST",
                    "/changeActiveEntities",
                    body=self._entities_body(),
                    headers=self._headers(token),
                    session=False,
                    itemtype="Entity",
                )
                self._check_entities(reply)
            except Exception:
                with contextlib.suppress(Retryable, UpstreamError, httpx.HTTPError):
                    self._attempt("GET", "/killSession", self._query([]), None, self._headers(token), idempotent=True)
                raise
        log.info("%s: opened a GLPI session at %s", self.system, self.base_url)
        return token

    def _entities_body(self) -> dict[str, Any]:
        assert self._entities is not None
        entities_id, recursive = self._entities
        return {"entities_id": entities_id, "is_recursive": recursive}

    def _check_entities(self, reply: Reply) -> None:
        if reply.body is not True:
            assert self._entities is not None
            raise UpstreamAuthError(
                f"{self.system}: GLPI refused to make entity {self._entities[0]!r} active for the hub's account; "
                "check that the entity exists and that the account's profile covers it (recursively), or change "
                "the active entity in the source config",
                system=self.system,
                status=reply.status,
            )

    # --- reading ------------------------------------------------------------------------------------------

    def list_items(
        self,
        itemtype: str,
        *,
        start: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        sort: str = "id",
        order: Order = "ASC",
        is_deleted: bool = False,
        only_id: bool = False,
        params: Mapping[str, Any] | None = None,
    ) -> Page:
        """One page of `GET /:itemtype`: up to `limit` rows from offset `start`, sorted by column `sort`.

        `is_deleted=True` lists the trash only (never both). `params` adds GLPI parameters such as
        ``{"searchText": {"name": "vpn"}}`` or ``{"add_keys_names": ["users_id"]}``. A start past the end gives an
        empty page. Offsets over a set that changes while it is walked may skip or repeat rows: callers re-read an
        overlap.
        """
        query = [
            ("sort", sort),
            ("order", order),
            *php_query("is_deleted", is_deleted),
            *php_query("only_id", only_id),
            range_param(start, limit),
        ]
        return self._page(Page, f"/{itemtype}", _with_params(query, params), start, limit, itemtype)

    def iter_pages(
        self,
        itemtype: str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        start: int = 0,
        sort: str = "id",
        order: Order = "ASC",
        is_deleted: bool = False,
        only_id: bool = False,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[Page]:
        """`list_items` page after page until a short or empty page (GLPI's totals are not trusted). Lazy."""
        while True:
            page = self.list_items(
                itemtype,
                start=start,
                limit=page_size,
                sort=sort,
                order=order,
                is_deleted=is_deleted,
                only_id=only_id,
                params=params,
            )
            if page.returned:
                yield page
            if not page.more:
                return
            start = page.next_start

    def iter_items(self, itemtype: str, **options: Any) -> Iterator[dict[str, Any]]:
        """Every row of `iter_pages(itemtype, **options)`, one at a time; memory stays one page."""
        for page in self.iter_pages(itemtype, **options):
            yield from page.rows

    def list_sub_items(
        self,
        itemtype: str,
        item_id: int,
        sub_itemtype: str,
        *,
        start: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        sort: str = "id",
        order: Order = "ASC",
        params: Mapping[str, Any] | None = None,
    ) -> Page:
        """One page of `GET /:itemtype/:id/:sub_itemtype` (e.g. a ticket's ITILFollowup).

        Sub-item lists are paginated like any list (by default with the account's page size, often 15), so the
        range is always sent. A parent that does not exist raises `UpstreamNotFound`.
        """
        query = [
            ("sort", sort),
            ("order", order),
            range_param(start, limit),
        ]
        path = f"/{itemtype}/{item_id}/{sub_itemtype}"
        return self._page(Page, path, _with_params(query, params), start, limit, itemtype)

    def all_sub_items(
        self,
        itemtype: str,
        item_id: int,
        sub_itemtype: str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        sort: str = "id",
        params: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Every sub-item of one item, all pages walked (until a short or empty page), in `sort` order."""
        rows: list[dict[str, Any]] = []
        start = 0
        while True:
            page = self.list_sub_items(
                itemtype, item_id, sub_itemtype, start=start, limit=page_size, sort=sort, params=params
            )
            rows += page.rows
            if not page.more:
                return rows
            start = page.next_start

    def search(
        self,
        itemtype: str,
        criteria: Sequence[Mapping[str, Any]],
        *,
        forcedisplay: Sequence[int] = (),
        sort: int = 1,
        order: Order = "ASC",
        start: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        is_deleted: bool = False,
        params: Mapping[str, Any] | None = None,
    ) -> SearchPage:
        """One page of `GET /search/:itemtype`: `criteria` (see `criterion`, `modified_since`), sorted by the
        search-option id `sort`, with the `forcedisplay` option ids as extra columns.

        Empty results (GLPI omits `data`), ``totalcount: null`` and non-object rows (counted in `skipped`) are
        tolerated. `is_deleted=True` searches the trash only.
        """
        query = [
            *php_query("criteria", list(criteria)),
            *php_query("forcedisplay", list(forcedisplay)),
            ("sort", str(sort)),
            ("order", order),
            range_param(start, limit),
            *php_query("is_deleted", is_deleted),
        ]
        page = self._page(SearchPage, f"/search/{itemtype}", _with_params(query, params), start, limit, itemtype)
        assert isinstance(page, SearchPage)
        return page

    def iter_search(
        self,
        itemtype: str,
        criteria: Sequence[Mapping[str, Any]],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        start: int = 0,
        **options: Any,
    ) -> Iterator[SearchPage]:
        """`search` page after page until a short or empty page. Lazy; options as for `search`."""
        while True:
            page = self.search(itemtype, criteria, start=start, limit=page_size, **options)
            if page.returned:
                yield page
            if not page.more:
                return
            start = page.next_start

    def get_item(self, itemtype: str, item_id: int, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`GET /:itemtype/:id`; `params` for extras such as ``{"with_logs": True}``.

        Raises `UpstreamNotFound` (purged, or outside the active entities) or `UpstreamForbidden`.
        """
        path = f"/{itemtype}/{item_id}"
        reply = self._call("GET", path, query=_with_params([], params), itemtype=itemtype)
        if not isinstance(reply.body, dict):
            raise self._unexpected(reply, f"GET {path}", "a JSON object")
        return reply.body

    def get_many(
        self,
        itemtype: str,
        ids: Sequence[int],
        *,
        chunk_size: int = MULTIPLE_ITEMS_CHUNK,
        parallel: Executor | None = None,
    ) -> FetchedItems:
        """Items of one type by id, through `getMultipleItems` (`chunk_size` ids per call; the calls on `parallel`'s
        threads when given, never from one of them: a bounded pool would wait on itself).

        GLPI aborts a whole batch when one item is missing (404) or forbidden (403): that batch is then split in
        halves until each refused id stands alone (about two requests per refused id and halving, not one per id
        of the batch), and the ids GLPI no longer shows are reported in `missing` / `forbidden` instead of
        raising. `items` keeps the request order.
        """
        chunks = [list(ids[first : first + chunk_size]) for first in range(0, len(ids), chunk_size)]

        def fetch(chunk: list[int]) -> FetchedItems:
            found = FetchedItems(items=[], missing=[], forbidden=[])
            self._get_batch(itemtype, chunk, found)
            return found

        fetched = FetchedItems(items=[], missing=[], forbidden=[])
        for found in (parallel.map if parallel is not None and len(chunks) > 1 else map)(fetch, chunks):
            fetched.items.extend(found.items)
            fetched.missing.extend(found.missing)
            fetched.forbidden.extend(found.forbidden)
        return fetched

    def _get_batch(self, itemtype: str, batch: list[int], fetched: FetchedItems) -> None:
        if len(batch) == 1:
            try:
                fetched.items.append(self.get_item(itemtype, batch[0]))
            except UpstreamNotFound:
                fetched.missing.append(batch[0])
            except UpstreamForbidden:
                fetched.forbidden.append(batch[0])
            return
        wanted = [{"itemtype": itemtype, "items_id": item_id} for item_id in batch]
        reply = self._call(
            "GET", "/getMultipleItems", query=php_query("items", wanted), itemtype=itemtype, passthrough=_ITEM_GONE
        )
        if reply.code in _ITEM_GONE:
            log.info(
                "%s: getMultipleItems refused a batch of %d %s (%s); halving it",
                self.system,
                len(batch),
                itemtype,
                reply.code,
            )
            half = len(batch) // 2
            self._get_batch(itemtype, batch[:half], fetched)
            self._get_batch(itemtype, batch[half:], fetched)
            return
        if not isinstance(reply.body, list) or not all(isinstance(row, dict) for row in reply.body):
            raise self._unexpected(reply, "GET /getMultipleItems", "a JSON list of objects")
        fetched.items.extend(reply.body)

    def download(self, document_id: int, max_bytes: int | None = None) -> Download:
        """A document's file: `GET /Document/:id` with ``Accept: application/octet-stream``.

        With `max_bytes` (the source's `max_document_bytes`) the body is streamed, and a larger file raises
        `FileTooLarge` without being held: before reading anything when GLPI's ``Content-Length`` already says
        so, else as soon as the body passes the cap (at most `max_bytes` plus one chunk is read). Raises
        `UpstreamNotFound` (purged) or `UpstreamForbidden` (the account may not read documents) like `get_item`.
        """
        try:
            reply = self._call("GET", f"/Document/{document_id}", itemtype="Document", binary=True, max_bytes=max_bytes)
            if max_bytes is not None and len(reply.content) > max_bytes:  # sent compressed after all, larger unpacked
                raise BodyTooLarge(len(reply.content))
        except BodyTooLarge as over:
            assert max_bytes is not None  # only a cap raises it
            reason = over_cap(f"document {document_id}", over.size, "max_document_bytes", max_bytes)
            raise FileTooLarge(
                f"{self.system}: {reason}; raise max_document_bytes in the source config to import it",
                size=over.size,
                limit=max_bytes,
            ) from None
        disposition = reply.headers.get("content-disposition", "")
        marker = "filename*=UTF-8''"
        filename = unquote(disposition.split(marker, 1)[1]) if marker in disposition else None
        return Download(reply.content, reply.headers.get("content-type", "application/octet-stream"), filename)

    # --- writing ------------------------------------------------------------------------------------------

    def add(self, itemtype: str, input: Mapping[str, Any]) -> int:
        """`POST /:itemtype` one item; its new id. Values are sent raw (GLPI encodes them itself).

        Raises `UpstreamRejected` with GLPI's reason (``ERROR_GLPI_ADD``, e.g. a solution on a solved ticket), and
        `UpstreamUnavailable` with ``maybe_applied=True`` when no answer came back after the request was sent.
        """
        reply = self._call("POST", f"/{itemtype}", body={"input": dict(input)}, idempotent=False, itemtype=itemtype)
        body = reply.body[0] if isinstance(reply.body, list) and len(reply.body) == 1 else reply.body
        new_id = body.get("id") if isinstance(body, dict) else None
        if not _is_id(new_id):
            raise self._unexpected(reply, f"POST /{itemtype}", 'an object {"id": N}')
        return int(new_id)

    def add_many(self, itemtype: str, inputs: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """`POST /:itemtype` several items; one `WriteResult` per input, in order.

        GLPI processes each element on its own (not a transaction). Business refusals do not raise: all-added
        (201), partly added (207 ``ERROR_GLPI_PARTIAL_ADD``) and none added (400 ``ERROR_GLPI_ADD`` with
        per-element messages) all come back as results. Other errors raise as for `add`.
        """
        if not inputs:
            return []
        reply = self._call(
            "POST",
            f"/{itemtype}",
            body={"input": [dict(item) for item in inputs]},
            idempotent=False,
            itemtype=itemtype,
            passthrough=_BULK_ADD,
        )
        elements = reply.message if reply.code is not None else reply.body
        if reply.code is not None and not isinstance(elements, list):
            raise self._error(reply, f"POST /{itemtype}", itemtype=itemtype, login=False)
        if not isinstance(elements, list) or len(elements) != len(inputs):
            raise self._unexpected(reply, f"POST /{itemtype}", f"a list of {len(inputs)} results")
        results = []
        for element in elements:
            element = element if isinstance(element, dict) else {}
            new_id = element.get("id")
            message = element.get("message")
            ok = _is_id(new_id)
            results.append(WriteResult(int(new_id) if ok else None, ok, "" if message is None else str(message)))
        return results

    def update(self, itemtype: str, item_id: int, input: Mapping[str, Any]) -> None:
        """`PUT /:itemtype/:id` with `input`; values sent raw. An update that changes nothing still succeeds.

        Raises `UpstreamRejected` with GLPI's message when GLPI refuses it (``false`` for this id, or 400
        ``ERROR_GLPI_UPDATE``), `UpstreamNotFound` when GLPI does not report the id at all (purged).
        """
        path = f"/{itemtype}/{item_id}"
        reply = self._call("PUT", path, body={"input": dict(input)}, idempotent=False, itemtype=itemtype)
        self._check_item_result(reply, f"PUT {path}", item_id, "ERROR_GLPI_UPDATE", itemtype)

    def delete(self, itemtype: str, item_id: int, *, force_purge: bool = False) -> None:
        """`DELETE /:itemtype/:id`: to the trash, or purged for good with `force_purge` (no tombstone left).

        Raises like `update` (``ERROR_GLPI_DELETE``).
        """
        path = f"/{itemtype}/{item_id}"
        query = php_query("force_purge", force_purge)
        reply = self._call("DELETE", path, query=query, idempotent=False, itemtype=itemtype)
        if reply.status == 204 and reply.body is None:
            return  # the documented answer; 10.x actually sends 200 with a list
        self._check_item_result(reply, f"DELETE {path}", item_id, "ERROR_GLPI_DELETE", itemtype)

    def _check_item_result(self, reply: Reply, what: str, item_id: int, code: str, itemtype: str) -> None:
        """A PUT/DELETE answer ``[{"<id>": true|false, "message": …}]``: raise unless our id is true."""
        if not isinstance(reply.body, list):
            raise self._unexpected(reply, what, 'a list [{"<id>": true, "message": ""}]')
        for element in reply.body:
            if isinstance(element, dict) and str(item_id) in element:
                if element[str(item_id)] is True:
                    return
                detail = str(element.get("message") or "GLPI gave no reason")
                raise UpstreamRejected(
                    f"{self.system}: GLPI refused {what} ({reply.status} {code}: {self._scrub(detail)}); "
                    f"GLPI's rules refused it: the record goes to the dead letters with GLPI's reason",
                    system=self.system,
                    code=code,
                    status=reply.status,
                    detail=self._scrub(detail),
                )
        raise UpstreamNotFound(
            f"{self.system}: GLPI did not report {itemtype} {item_id} in its answer to {what}; "
            "it was probably purged in GLPI",
            system=self.system,
            code="ERROR_ITEM_NOT_FOUND",
            status=reply.status,
        )

    # --- one request ----------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: QueryPairs | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
        session: bool = True,
        login: bool = False,
        itemtype: str | None = None,
        passthrough: frozenset[str] = frozenset(),
        binary: bool = False,
        max_bytes: int | None = None,
    ) -> Reply:
        """One logical request: retried, replayed once on an expired session, its errors raised as typed ones.

        Error answers whose GLPI code is in `passthrough` are returned instead of raised (the caller handles
        them). `session=False` sends `headers` as given (login, and calls on a session being opened). With
        `max_bytes`, a successful answer's body is streamed and `BodyTooLarge` raised once it passes the cap.
        """
        what = f"{method} {path}"
        itemtype = itemtype or path.strip("/").split("/")[0]
        replayed = False
        while True:
            token = self._session_token() if session else None
            send_headers = headers if headers is not None else self._headers(token)
            if binary:  # a document's file instead of its JSON row, uncompressed: Content-Length is its size
                send_headers = {**send_headers, "Accept": "application/octet-stream", "Accept-Encoding": "identity"}
            response = self._send(method, path, self._query(query or []), body, send_headers, idempotent, max_bytes)
            reply = Reply.of(response)
            if token is not None and reply.code == "ERROR_SESSION_TOKEN_INVALID" and not replayed:
                # Expired or killed (PHP's session lifetime): log in again and replay; safe even for writes, GLPI
                # refused the request before doing anything.
                log.info("%s: the GLPI session expired; opening a new one and replaying %s", self.system, what)
                self._drop_session(token)
                replayed = True
                continue
            if 300 <= reply.status < 400:
                raise self._redirected(reply, what)
            if binary and reply.status < 300:
                return reply
            if not reply.is_json:
                raise UpstreamError(
                    f"{self.system}: {what} at {self.base_url} answered {reply.status} with {reply.content_type} "
                    f"instead of JSON; {NOT_AN_API}",
                    system=self.system,
                    status=reply.status,
                )
            if reply.is_error and reply.code not in passthrough:
                raise self._error(reply, what, itemtype=itemtype, login=login)
            return reply

    def _send(
        self,
        method: str,
        path: str,
        query: QueryPairs,
        body: Any,
        headers: dict[str, str],
        idempotent: bool,
        max_bytes: int | None = None,
    ) -> httpx.Response:
        """The exchange with retries (see the module docstring for which failures are retried)."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(Retryable),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(method, path, state),
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, path, query, body, headers, idempotent, max_bytes)
        except Retryable as last:
            raise UpstreamUnavailable(
                f"{self.system}: GLPI gave no usable answer to {method} {path} after {self._attempts} attempts "
                f"(last: {last.reason}); the next run tries again — if it persists, check that GLPI and any proxy "
                f"in front of it are up",
                system=self.system,
                code=last.code,
                status=last.status,
                detail=last.detail,
            ) from None

    def _attempt(
        self,
        method: str,
        path: str,
        query: QueryPairs,
        body: Any,
        headers: dict[str, str],
        idempotent: bool,
        max_bytes: int | None = None,
    ) -> httpx.Response:
        """One HTTP exchange inside a concurrency slot; raises `Retryable` for what a retry may fix.

        With `max_bytes`, a successful answer's body is streamed through `cap_body` (`BodyTooLarge` past the cap),
        read inside the slot and this error handling like any other: a download counts against the concurrency
        bound until it is done, and a connection lost mid-file is retried.
        """
        try:
            # One URL parse per request: httpx would parse a long query three times (see `encode_query`). Every
            # query holds at least `_query`'s get_hateoas.
            url = httpx.URL(f"{self._http.base_url}{path.lstrip('/')}?{encode_query(query)}")
            with self._slots:
                if max_bytes is None:
                    response = self._http.request(method, url, json=body, headers=headers)
                else:
                    request = self._http.build_request(method, url, json=body, headers=headers)
                    response = self._http.send(request, stream=True)
                    try:
                        if response.is_success:
                            cap_body(response, max_bytes)
                        response.read()
                    finally:
                        response.close()  # over the cap: the connection is dropped rather than drained
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            if tls_untrusted(exc):
                raise UpstreamError(
                    f"{self.system}: the TLS certificate of {self.base_url} is not trusted; give the private CA's "
                    "certificate in the source config (ca_file)",
                    system=self.system,
                ) from None
            # Nothing reached GLPI: safe to retry, writes included.
            raise Retryable(self._scrub(f"{type(exc).__name__}: {exc}")) from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            reason = self._scrub(f"{type(exc).__name__}: {exc}")
            if idempotent:
                raise Retryable(reason) from exc
            raise self._maybe_applied(method, path, reason, status=None) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"{self.system}: cannot send {method} {path} to {self.base_url} ({type(exc).__name__}); "
                "check base_url in the source config",
                system=self.system,
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            reply = Reply.of(response)
            reason = f"HTTP {status}" + (f" {reply.code}" if reply.code else "")
            if idempotent or status in _NOT_APPLIED:
                raise Retryable(
                    reason,
                    status=status,
                    code=reply.code,
                    detail=self._scrub(reply.detail) if reply.detail else None,
                    retry_after=retry_after_seconds(response.headers),
                )
            raise self._maybe_applied(method, path, reason, status=status, code=reply.code, detail=reply.detail)
        return response

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Seconds before the next try: the server's Retry-After (capped) if it gave one, else backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self._retry_after_cap)
        return float(self._backoff(state))

    def _log_retry(self, method: str, path: str, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        reason = exc.reason if isinstance(exc, Retryable) else type(exc).__name__
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s: %s %s failed (%s); retry %d of %d in %.1f s",
            self.system,
            method,
            path,
            reason,
            state.attempt_number,
            self._attempts - 1,
            wait,
        )

    # --- helpers --------------------------------------------------------------------------------------------

    def _headers(self, session_token: str | None) -> dict[str, str]:
        headers = {}
        if self._credentials.app_token:
            headers["App-Token"] = self._credentials.app_token
        if session_token is not None:
            headers["Session-Token"] = session_token
        return headers

    @staticmethod
    def _query(pairs: QueryPairs) -> QueryPairs:
        # HATEOAS links double the size of every row and are never used.
        return [*pairs, ("get_hateoas", "false")]

    def _page(self, kind: type[Page], path: str, query: QueryPairs, start: int, limit: int, itemtype: str) -> Page:
        reply = self._call("GET", path, query=query, itemtype=itemtype, passthrough=_RANGE_PAST_END)
        answered = server_time(reply.headers)
        if reply.code in _RANGE_PAST_END:
            return kind(rows=[], total=None, start=start, limit=limit, server_time=answered)
        total = content_range_total(reply.headers)
        if kind is SearchPage:
            if not isinstance(reply.body, dict):
                raise self._unexpected(reply, f"GET {path}", "a JSON object")
            entries = reply.body.get("data") or []  # no `data` at all when nothing matches
            if isinstance(entries, dict):
                entries = list(entries.values())
            count = reply.body.get("totalcount")
            if isinstance(count, int) and not isinstance(count, bool):
                total = count
        else:
            entries = reply.body
        if not isinstance(entries, list):
            raise self._unexpected(reply, f"GET {path}", "a JSON list of rows")
        if len(entries) > limit:
            raise UpstreamError(
                f"{self.system}: GLPI returned {len(entries)} rows to GET {path} for a range of {limit}: something "
                "between the hub and GLPI drops the query string; check the proxy in front of GLPI",
                system=self.system,
                status=reply.status,
            )
        rows = [row for row in entries if isinstance(row, dict)]
        if total is None and not entries:
            total = 0  # GLPI sends no Content-Range for an empty collection
        return kind(
            rows=rows, total=total, start=start, limit=limit, skipped=len(entries) - len(rows), server_time=answered
        )

    def _error(self, reply: Reply, what: str, *, itemtype: str, login: bool) -> UpstreamError:
        cls, hint = error_class(reply, login=login)
        detail = self._scrub(reply.detail) if reply.detail else None
        said = f"{reply.status} {reply.code}: {detail}" if reply.code else f"{reply.status}"
        if login:
            message = f"{self.system}: GLPI refused the hub's login at {self.base_url} ({said}); "
        else:
            message = f"{self.system}: GLPI refused {what} ({said}); "
        message += hint.format(itemtype=itemtype)
        return cls(message, system=self.system, code=reply.code, status=reply.status, detail=detail)

    def _maybe_applied(
        self,
        method: str,
        path: str,
        reason: str,
        *,
        status: int | None,
        code: str | None = None,
        detail: str | None = None,
    ) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            f"{self.system}: no usable answer to {method} {path} ({reason}); GLPI may have applied it, so it is "
            "not retried: check the record in GLPI before sending it again",
            system=self.system,
            code=code,
            status=status,
            detail=self._scrub(detail) if detail else None,
            maybe_applied=True,
        )

    def _redirected(self, reply: Reply, what: str) -> UpstreamError:
        target = httpx.URL(reply.headers.get("location", ""))
        where = f"{target.scheme}://{target.host}{target.path}" if target.host else target.path or "elsewhere"
        return UpstreamError(
            f"{self.system}: {what} at {self.base_url} was redirected ({reply.status}) to {self._scrub(where)}; "
            f"set base_url in the source config to GLPI's final API address — {NOT_AN_API}",
            system=self.system,
            status=reply.status,
        )

    def _unexpected(self, reply: Reply, what: str, expected: str) -> UpstreamError:
        return UpstreamError(
            f"{self.system}: GLPI answered {what} with {reply.status} but not {expected}; {NOT_AN_API}",
            system=self.system,
            status=reply.status,
        )

    def _scrub(self, text: str) -> str:
        """`text` without any secret of this client (GLPI or a proxy might echo what it was sent)."""
        return self._credentials.scrub(text)


_RANGE_PAST_END = frozenset({"ERROR_RANGE_EXCEED_TOTAL"})
_ITEM_GONE = frozenset({"ERROR_ITEM_NOT_FOUND", "ERROR_RIGHT_MISSING"})
_BULK_ADD = frozenset({"ERROR_GLPI_PARTIAL_ADD", "ERROR_GLPI_ADD"})


def _with_params(query: QueryPairs, params: Mapping[str, Any] | None) -> QueryPairs:
    """`query` plus the caller's extra `params`, which may not repeat what the client sends itself."""
    sent = {name.split("[")[0] for name, _ in query} | {"get_hateoas"}
    return [*query, *php_params(params, reserved=sent)]


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
