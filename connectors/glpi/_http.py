"""Wire-level helpers of the GLPI client: query encoding, answers, error mapping, retry signals. Private.

Nothing here does I/O of its own (`cap_body` only wraps a response's stream); `client.py` composes these into
requests. Everything else is a pure function of what GLPI sent (or of what the caller asked), so each trap of the
legacy API is handled, and tested, in one place.
"""

from __future__ import annotations

import math
import re
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote_plus

import httpx

from itsm_core import jsondoc
from itsm_core.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)

QueryPairs = list[tuple[str, str]]

# --- requests -------------------------------------------------------------------------------------------------

#: What `encode_query` writes as is: GLPI's parameter names with their brackets, numbers, itemtypes.
_PLAIN = re.compile(r"[A-Za-z0-9_.~\[\]-]*")


def encode_query(pairs: QueryPairs) -> str:
    """`pairs` as a query string: `urllib.parse.urlencode`'s, except that brackets stay as they are
    (``items[0][itemtype]=Ticket``), as GLPI's API documentation writes them and PHP reads them.

    A `getMultipleItems` of a hundred ids is 200 pairs: encoded brackets made httpx check 800 escapes one by one,
    and that was most of the client's time per request.
    """
    return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in pairs)


def _quoted(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else quote_plus(text, safe="[]")


def php_query(name: str, value: Any) -> QueryPairs:
    """`value` as query pairs in PHP's array syntax, in order: ``criteria[0][field]=19``, ``forcedisplay[0]=2``.

    Mappings become ``name[key]``, lists and tuples ``name[i]``; None is left out. Booleans: top-level ones as
    ``true``/``false`` (GLPI converts exactly those strings, and only at the top level), nested ones as ``1``/``0``
    (inside an array GLPI sees the raw string, and PHP's ``"false"`` is truthy).
    """
    if isinstance(value, Mapping):
        pairs: QueryPairs = []
        for key, item in value.items():
            pairs += php_query(f"{name}[{key}]", item)
        return pairs
    if isinstance(value, list | tuple):
        pairs = []
        for index, item in enumerate(value):
            pairs += php_query(f"{name}[{index}]", item)
        return pairs
    if value is None:
        return []
    if isinstance(value, bool):
        nested = "[" in name
        return [(name, ("1" if value else "0") if nested else ("true" if value else "false"))]
    return [(name, str(value))]


def php_params(params: Mapping[str, Any] | None, *, reserved: Iterable[str] = ()) -> QueryPairs:
    """A caller's extra query parameters (``searchText``, ``expand_dropdowns``, ``with_logs`` …) as pairs.

    Raises ValueError for a parameter the client sets itself (`reserved`): two values of ``range`` would make
    GLPI pick one silently, and the client's paging relies on its own.
    """
    if not params:
        return []
    clash = sorted(set(params) & set(reserved))
    if clash:
        raise ValueError(f"parameter(s) {', '.join(clash)} are set by the client itself; use its arguments instead")
    pairs: QueryPairs = []
    for key, value in params.items():
        pairs += php_query(key, value)
    return pairs


def range_param(start: int, limit: int) -> tuple[str, str]:
    """GLPI's inclusive, zero-based ``range=start-end`` for `limit` rows from `start`."""
    if start < 0 or limit < 1:
        raise ValueError(f"need start >= 0 and limit >= 1 (got start={start}, limit={limit})")
    return ("range", f"{start}-{start + limit - 1}")


# --- answers --------------------------------------------------------------------------------------------------

_NOT_JSON = object()
_CONTENT_RANGE = re.compile(r"^\s*-?\d+\s*-\s*-?\d+\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, decoded once.

    `body` is the decoded JSON (None for an empty body); `is_json` is False when the body is not JSON at all (an
    HTML page). `code` and `message` are GLPI's ``[code, message]`` when the answer is an error (status ≥ 400, or
    207 for partial bulk results); `detail` is `message` as one clean line.
    """

    status: int
    headers: httpx.Headers
    body: Any
    is_json: bool
    code: str | None
    message: Any
    detail: str | None
    content: bytes = b""  # the body as sent (a document's file)

    @classmethod
    def of(cls, response: httpx.Response) -> Reply:
        body, is_json = decode_json(response)
        code = message = detail = None
        if is_json and (response.status_code >= 400 or response.status_code == 207):
            error = glpi_error(body)
            if error is not None:
                code, message = error
                detail = clean_message(message, code)
        return cls(response.status_code, response.headers, body, is_json, code, message, detail, response.content)

    @property
    def is_error(self) -> bool:
        return self.status >= 400 or self.code is not None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip() or "no content type"


def decode_json(response: httpx.Response) -> tuple[Any, bool]:
    """(decoded body, True), (None, True) when empty, or (sentinel, False) when not JSON.

    The content type is not trusted either way: PHP setups send JSON as text/html, and proxies send HTML pages
    with any type. Only whether the bytes parse decides.
    """
    if not response.content.strip():
        return None, True
    try:
        return jsondoc.loads(response.content), True
    except ValueError:
        return _NOT_JSON, False


def glpi_error(body: Any) -> tuple[str, Any] | None:
    """GLPI's error shape ``["ERROR_CODE", message]`` as (code, message); None for any other body."""
    if isinstance(body, list) and body and isinstance(body[0], str) and body[0].startswith("ERROR"):
        return body[0], body[1] if len(body) > 1 else None
    return None


def clean_message(message: Any, code: str) -> str:
    """GLPI's error message as one line: bulk lists joined, the "view documentation …" tail removed.

    The tail is ``"; <translated phrase> <api_url>/#<CODE>"``: it is matched by its shape (ending in ``#CODE``),
    not by its words, because GLPI translates it into the API account's language.
    """
    if message is None:
        return ""
    if isinstance(message, list):
        parts = (clean_message(item, code) for item in message)
        return "; ".join(part for part in parts if part)
    if isinstance(message, dict):
        return clean_message(message.get("message"), code)
    text = str(message)
    text = re.sub(r";\s*[^;]*#" + re.escape(code) + r"\s*$", "", text)
    return text.strip()


def content_range_total(headers: httpx.Headers) -> int | None:
    """The total of ``Content-Range: start-end/total``; None when absent or unreadable.

    Only the total is read: the `end` is off by one in GLPI 10.x when no range was sent, so rows are counted.
    """
    match = _CONTENT_RANGE.match(headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def content_length(headers: httpx.Headers) -> int | None:
    """``Content-Length`` as a number of bytes; None when absent or unreadable (then only reading tells)."""
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def cap_body(response: httpx.Response, limit: int) -> None:
    """Make a streamed `response` give up its body past `limit` bytes, so it is never held whole.

    Raises `BodyTooLarge` at once when ``Content-Length`` already says more (nothing is read); otherwise reading
    the body (`response.read()`) raises it as soon as more than `limit` bytes have come, holding at most `limit`
    plus one chunk. Bytes are counted as sent: the client asks for files uncompressed (``Accept-Encoding:
    identity``), so they are the file's.
    """
    declared = content_length(response.headers)
    if declared is not None and declared > limit:
        raise BodyTooLarge(declared)
    response.stream = _CappedStream(response.stream, limit)


class BodyTooLarge(Exception):
    """A response body passed the caller's cap (raised inside the exchange; never retried: it would not shrink).

    `size` is the body's declared size when the server sent ``Content-Length``, else None.
    """

    def __init__(self, size: int | None) -> None:
        super().__init__(f"body of {size if size is not None else 'unknown size'} bytes over the cap")
        self.size = size


class _CappedStream(httpx.SyncByteStream):
    """A body stream that raises `BodyTooLarge` once more than `limit` bytes have come through it."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, limit: int) -> None:
        if not isinstance(stream, httpx.SyncByteStream):
            raise TypeError("cap_body needs a response of a sync client")
        self._stream = stream
        self._limit = limit

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise BodyTooLarge(None)
            yield chunk

    def close(self) -> None:
        self._stream.close()


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``Retry-After`` as seconds to wait (delta-seconds or an HTTP-date); None when absent or unreadable.

    An HTTP-date is measured against the answer's own ``Date`` header when there is one, so a skewed local clock
    does not stretch or cancel the wait.
    """
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(headers.get("date", "")) or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def server_time(headers: httpx.Headers) -> datetime | None:
    """When GLPI answered, by its own clock: the ``Date`` header (UTC), None when absent or unreadable. PHP writes
    ``date_mod`` from the same host's clock, so the two compare without the hub's clock skew."""
    return _http_date(headers.get("date", ""))


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# --- failures -------------------------------------------------------------------------------------------------


class Retryable(Exception):
    """One attempt failed in a way that the same request may fix later (raised inside the retry loop only).

    `reason` names the failure for logs and the final `UpstreamUnavailable` ("HTTP 503", "ReadTimeout");
    `retry_after` is the server's requested wait in seconds, if it gave one.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


def tls_untrusted(exc: BaseException) -> bool:
    """Whether a connection failed because the server's certificate is not trusted (retrying cannot help)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


_BUG = "a bug in the hub's GLPI client: report it with this message"
_UNKNOWN_TYPE = (
    "this GLPI does not know the itemtype {itemtype!r}: check the itemtype names in the source config "
    "(a plugin's types need the plugin installed)"
)
_REFUSED = "GLPI's rules refused it: the record goes to the dead letters with GLPI's reason"

#: GLPI error code → (exception class, what the operator should do). Mapped by code: messages are translated.
ERRORS: dict[str, tuple[type[UpstreamError], str]] = {
    "ERROR_GLPI_LOGIN_USER_TOKEN": (
        UpstreamAuthError,
        "check user_token in the source config: it is the hub account's API token (GLPI: the account's "
        "preferences, Remote access keys) and changes whenever it is regenerated",
    ),
    "ERROR_GLPI_LOGIN": (
        UpstreamAuthError,
        "check login and password in the source config, and that the GLPI account is active",
    ),
    "ERROR_LOGIN_PARAMETERS_MISSING": (
        UpstreamAuthError,
        "GLPI received no credentials although the hub sent them: the web server in front of GLPI strips the "
        'Authorization header (Apache with PHP-FPM: SetEnvIf Authorization "(.*)" HTTP_AUTHORIZATION=$1)',
    ),
    "ERROR_LOGIN_WITH_CREDENTIALS_DISABLED": (
        UpstreamAuthError,
        "use user_token in the source config, or enable login with credentials in GLPI Setup > General > API",
    ),
    "ERROR_APP_TOKEN_PARAMETERS_MISSING": (
        UpstreamAuthError,
        "the GLPI API client that matches the hub's IP address has an application token: set app_token in the "
        "source config (GLPI Setup > General > API > API clients)",
    ),
    "ERROR_WRONG_APP_TOKEN_PARAMETER": (
        UpstreamAuthError,
        "check app_token in the source config against the API client in GLPI Setup > General > API "
        "(leave it out if that client has none)",
    ),
    "ERROR_NOT_ALLOWED_IP": (
        UpstreamAuthError,
        "no active API client in GLPI Setup > General > API allows the hub's IP address: add or activate one",
    ),
    "ERROR_SESSION_TOKEN_MISSING": (
        UpstreamAuthError,
        "GLPI did not receive the Session-Token header the hub sends: a proxy in front of GLPI drops it; "
        "let it pass the Session-Token and App-Token headers",
    ),
    "ERROR_SESSION_TOKEN_INVALID": (
        UpstreamAuthError,
        "GLPI rejected a session it had just opened: check that its PHP sessions persist between requests "
        "(session.save_path writable; one shared session store behind a load balancer)",
    ),
    "ERROR_RIGHT_MISSING": (
        UpstreamForbidden,
        "give the hub's GLPI account a profile with the right on {itemtype} in the record's entity (READ, and "
        "READALL for tickets; CREATE, UPDATE or DELETE for changes the hub pushes), then replay the record",
    ),
    "ERROR_ITEM_NOT_FOUND": (
        UpstreamNotFound,
        "the {itemtype} was purged in GLPI, or is outside the hub account's active entities",
    ),
    "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM": (UpstreamError, _UNKNOWN_TYPE),
    "ERROR_ITEMTYPE_NOT_FOUND_NOR_COMMONDBTM": (UpstreamError, _UNKNOWN_TYPE),
    "ERROR_RESOURCE_MISSING": (UpstreamError, _BUG),
    "ERROR_METHOD_NOT_ALLOWED": (UpstreamError, _BUG),
    "ERROR_BAD_ARRAY": (UpstreamError, _BUG),
    "ERROR_JSON_PAYLOAD_FORBIDDEN": (UpstreamError, _BUG),
    "ERROR_JSON_PAYLOAD_INVALID": (UpstreamError, _BUG),
    "ERROR_UPLOAD_FILE_TOO_BIG_POST_MAX_SIZE": (
        UpstreamRejected,
        "the file is larger than GLPI's PHP limits: raise post_max_size and upload_max_filesize on the GLPI "
        "server, or leave the file out",
    ),
    "ERROR_RANGE_EXCEED_TOTAL": (UpstreamRejected, "the requested range starts past the last row"),
    "ERROR_FIELD_NOT_FOUND": (UpstreamRejected, "a searchText column does not exist on {itemtype}: fix the filter"),
    "ERROR_GLPI_ADD": (UpstreamRejected, _REFUSED),
    "ERROR_GLPI_UPDATE": (UpstreamRejected, _REFUSED),
    "ERROR_GLPI_DELETE": (UpstreamRejected, _REFUSED),
    "ERROR_GLPI_PARTIAL_ADD": (UpstreamRejected, _REFUSED),
    "ERROR_GLPI_PARTIAL_UPDATE": (UpstreamRejected, _REFUSED),
    "ERROR_GLPI_PARTIAL_DELETE": (UpstreamRejected, _REFUSED),
    "ERROR": (
        UpstreamRejected,
        "GLPI refused the request's parameters (range, sort, order or search criteria): fix the request",
    ),
}

#: The generic ``ERROR`` at login means the API is off (GLPI checks that before anything else).
LOGIN_ERROR = (
    UpstreamAuthError,
    "check that GLPI's REST API is enabled (GLPI Setup > General > API, Enable Rest API)",
)

NOT_AN_API = (
    "this URL does not look like GLPI's REST API: check base_url in the source config (it ends in "
    "apirest.php) and that no SSO or proxy login page sits in front of it"
)


def error_class(reply: Reply, *, login: bool) -> tuple[type[UpstreamError], str]:
    """The exception class and the operator's next step for an error answer, by GLPI code, else by status."""
    if reply.code == "ERROR" and login:
        return LOGIN_ERROR
    if reply.code in ERRORS:
        return ERRORS[reply.code]
    status = reply.status
    if status == 401:
        return UpstreamAuthError, "check the credentials in the source config"
    if status == 403:
        return ERRORS["ERROR_RIGHT_MISSING"]
    if status == 404 and reply.code is not None:
        return ERRORS["ERROR_ITEM_NOT_FOUND"]
    if status == 413:
        return UpstreamRejected, (
            "the web server in front of GLPI refused the request's size: raise its body size limit "
            "(nginx client_max_body_size, PHP post_max_size) or send less"
        )
    if status >= 500 or status == 429:
        return UpstreamUnavailable, "the next run tries again; if it persists, check the GLPI server"
    if reply.code is not None:
        return UpstreamRejected, "GLPI refused the request"
    return UpstreamError, NOT_AN_API
