"""OData v2 on SAP Gateway: the mechanics every Solution Manager service shares. Private to `connectors/solman/`.

What a Gateway service does that a generic OData client gets wrong (each handled here, once):

- every URL carries ``sap-client`` and ``sap-language``; JSON is asked for (``$format=json``), and answers come
  wrapped: ``{"d": {...}}`` for an entity, ``{"d": {"results": [...]}}`` for a collection (`unwrap`);
- dates travel as ``/Date(ms)/`` in JSON and ``datetime'…'`` in URIs, always UTC (`parse_datetime`,
  `datetime_literal`); GUIDs with dashes in URIs, 32 upper-case hex digits in SAP's tables (`guid_literal`,
  `guid_compact`); strings quote ``'`` as ``''`` (`string_literal`);
- writes need a CSRF token fetched with ``X-CSRF-Token: Fetch`` and sent back with every cookie of the same jar;
  a token that expired answers ``403`` with ``x-csrf-token: Required``: fetched again once, then the write is
  retried once;
- an expired single sign-on answers ``200`` with an HTML login page where JSON was expected: an authentication
  failure, not a parse error;
- paging: ``__next`` (with ``$skiptoken``) when the server pages, else ``$top``/``$skip``; services ignore
  ``$skip`` (page 1 again) or cap ``$top`` — a page seen before stops the read with an error instead of looping or
  duplicating (`ODataService.iter_collection`);
- function imports report failure inside a ``200`` (``Type: "E"`` in a BAPI return): raised as a rejection with
  SAP's message;
- errors come as JSON (``{"error": {"code", "message": {"value"}}}``) or XML (``<error><code/><message/>``); a
  locked document (``CRM_ORDER/013``) is retried with backoff, never in parallel.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import httpx

from connectors.solman._sap import check, unanswered
from itsm_core.errors import UpstreamError, UpstreamRejected

#: SAP's code for "the document is being processed by another user": retried, the lock is someone's editing.
LOCKED = "CRM_ORDER/013"
WRITE_METHODS = frozenset({"POST", "PUT", "MERGE", "PATCH", "DELETE"})

# --- literals -----------------------------------------------------------------------------------------------------

_JSON_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_datetime(value: Any) -> datetime | None:
    """An ``Edm.DateTime`` as Gateway writes it in JSON (``/Date(1700000000000)/``, with an optional offset in
    minutes, ``/Date(…+0060)/``), or an ISO 8601 string, as an aware UTC datetime; None for null or empty.
    Raises ValueError for anything else."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not an OData date: {value!r}")
    match = _JSON_DATE.match(value)
    if match:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
        if match.group(2):  # v2 JSON: the offset, in minutes, of the local time the milliseconds are counted in
            moment -= timedelta(minutes=int(match.group(2)))
        return moment
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def datetime_literal(moment: datetime) -> str:
    """``datetime'2026-12-06T09:30:00'`` for a `$filter`: Gateway reads Edm.DateTime as UTC."""
    if moment.tzinfo is None:
        raise ValueError("an OData datetime literal needs an aware datetime (Gateway reads it as UTC)")
    return f"datetime'{moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')}'"


def guid_compact(value: str) -> str:
    """A GUID as SAP's tables store it: 32 upper-case hex digits, no dashes. Raises ValueError if not a GUID."""
    return uuid.UUID(value.strip().strip("{}")).hex.upper()


def guid_literal(value: str) -> str:
    """``guid'0050568f-…'`` for a key or filter: Gateway wants the dashes, whatever form `value` came in."""
    return f"guid'{uuid.UUID(value.strip().strip('{}'))}'"


def string_literal(value: str) -> str:
    """``'O''Brien'``: an OData string literal, quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


# --- answers ------------------------------------------------------------------------------------------------------


def unwrap(body: Any) -> Any:
    """The payload inside OData v2's ``d`` wrapper: a collection's ``results`` list, or the entity."""
    if not isinstance(body, dict) or "d" not in body:
        raise ValueError("not an OData v2 answer (no 'd' wrapper)")
    inner = body["d"]
    if isinstance(inner, dict) and isinstance(inner.get("results"), list):
        return inner["results"]
    return inner


def sap_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of a Gateway error body, JSON or XML; (None, None) when the body says neither."""
    text = response.text
    try:
        error = json.loads(text).get("error") or {}
        message = error.get("message")
        return error.get("code"), message.get("value") if isinstance(message, dict) else message
    except (ValueError, AttributeError):
        pass
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None, None
    found = {element.tag.rsplit("}", 1)[-1]: (element.text or "").strip() for element in root.iter()}
    return found.get("code") or None, found.get("message") or None


def bapi_errors(result: Any) -> list[str]:
    """The messages of type E or A (error, abort) in a function import's BAPI return, wherever it sits in the
    answer: a row, a list of rows, or a ``Return``/``results`` inside them."""
    found: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            kind = value.get("Type") or value.get("TYPE")
            if isinstance(kind, str) and kind.upper() in ("E", "A"):
                found.append(str(value.get("Message") or value.get("MESSAGE") or value.get("Id") or "error"))
            for key, item in value.items():
                if key != "__metadata":
                    visit(item)

    visit(result)
    return found


# --- the service ---------------------------------------------------------------------------------------------------


class ODataService:
    """One Gateway service (``…/sap/opu/odata/sap/AI_CRM_GW_MYMESSAGE_SRV``) over one httpx client (its cookie
    jar holds the session and the CSRF cookie). `system` names the source in errors; no URL or secret does."""

    def __init__(
        self,
        http: httpx.Client,
        service_url: str,
        *,
        system: str,
        sap_client: str,
        language: str = "EN",
        lock_retries: int = 4,
        lock_backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.url = service_url.rstrip("/")
        self.system = system
        self.params = {"sap-client": sap_client, "sap-language": language}
        self.lock_retries, self.lock_backoff = lock_retries, lock_backoff_seconds
        self._sleep = sleep
        self._token: str | None = None

    # - reads

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """`GET` of an entity or collection, unwrapped (`unwrap`)."""
        return unwrap(self._json(self._send("GET", path, params=params), path))

    def iter_collection(
        self, entity_set: str, params: Mapping[str, str] | None = None, *, top: int = 100
    ) -> Iterator[Any]:
        """Every row of `entity_set`, page by page: by ``__next`` when the server pages, else ``$top``/``$skip``.

        `top` must not exceed what the service serves in one page (Gateway services cap it, often at 100): a page
        shorter than `top` ends the read. A page equal to one already returned means the service ignores
        ``$skip``: raised, never looped on or duplicated."""
        seen: set[str] = set()
        skip = 0
        path: str | None = entity_set
        query: dict[str, str] = {**(params or {}), "$top": str(top), "$skip": "0"}
        while path is not None:
            body = self._json(self._send("GET", path, params=query), path)
            rows = unwrap(body)
            if not isinstance(rows, list):
                raise self._error(f"GET {entity_set} answered an entity where a collection was expected", None)
            fingerprint = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
            if rows and fingerprint in seen:
                raise self._error(
                    f"GET {entity_set} returned a page it had already returned (at $skip={skip}): the service "
                    "ignores $skip; narrow the read with a filter instead (e.g. on the change date)",
                    None,
                )
            seen.add(fingerprint)
            yield from rows
            next_link = body["d"].get("__next") if isinstance(body.get("d"), dict) else None
            if next_link:
                path, query = self._relative(next_link)
            elif len(rows) >= top:
                skip += len(rows)
                query = {**(params or {}), "$top": str(top), "$skip": str(skip)}
            else:
                path = None

    def metadata_names(self) -> set[str]:
        """The entity sets and function imports the service's ``$metadata`` declares."""
        response = self._send("GET", "$metadata", params={"$format": "xml"})
        try:
            root = ElementTree.fromstring(response.content)
        except ElementTree.ParseError:
            raise self._error("SAP's $metadata is not XML", response) from None
        kinds = ("EntitySet", "FunctionImport")
        return {e.get("Name", "") for e in root.iter() if e.tag.rsplit("}", 1)[-1] in kinds}

    # - writes

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """`POST` (create, or a function import): the created entity, unwrapped; None for a 204."""
        response = self._send("POST", path, json=body)
        return unwrap(self._json(response, path)) if response.status_code != 204 else None

    def get_media(self, path: str) -> bytes:
        """A media resource's bytes (``…/$value``)."""
        return self._send("GET", path).content

    def post_media(self, path: str, data: bytes, *, filename: str, content_type: str) -> Any:
        """A media upload (an attachment): the body is the file, its name in ``slug`` and ``content-disposition``
        (quotes and line breaks dropped, non-ASCII percent-encoded, as HTTP headers need)."""
        safe = quote(filename.replace('"', "").replace("\r", "").replace("\n", ""), safe=" ._-()")
        headers = {"content-type": content_type, "slug": safe, "content-disposition": f'inline; filename="{safe}"'}
        response = self._send("POST", path, content=data, headers=headers)
        return unwrap(self._json(response, path)) if response.status_code != 204 else None

    def merge(self, path: str, body: Mapping[str, Any]) -> None:
        """A partial update (OData v2 ``MERGE``). Gateway answers 204 even when it changed nothing: re-read."""
        self._send("MERGE", path, json=body)

    def call(self, function: str, params: Mapping[str, str], *, method: str = "POST") -> Any:
        """A function import. Its answer is checked for BAPI messages of type E: a 200 that failed is raised."""
        response = self._send(method, function, params=params, write=True)
        result = unwrap(self._json(response, function)) if response.status_code != 204 else None
        errors = bapi_errors(result)
        if errors:
            raise UpstreamRejected(
                f"{self.system}: SAP refused {function}: {'; '.join(errors)}",
                system=self.system,
                status=response.status_code,
                detail="; ".join(errors),
            )
        return result

    # - transport

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        write: bool | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        write = method in WRITE_METHODS if write is None else write
        query = {**self.params, "$format": "json", **(params or {})} if method == "GET" or params else self.params
        if path.endswith("/$value"):  # a media resource: its own type, not JSON
            query = {key: value for key, value in query.items() if key != "$format"}
        url = path if path.startswith("http") else f"{self.url}/{path.lstrip('/')}"
        refreshed = False
        for attempt in range(self.lock_retries + 2):  # the lock's retries, and one for an expired CSRF token
            sent = {"Accept": "application/json", **(headers or {})}
            if write:
                sent["X-CSRF-Token"] = self._csrf_token()
            try:
                response = self.http.request(method, url, params=query, json=json, content=content, headers=sent)
            except httpx.TransportError as exc:
                raise unanswered(exc, system=self.system, what=f"{method} {_name(path)}", write=write) from None
            if write and response.status_code == 403 and _csrf_required(response) and not refreshed:
                self._token, refreshed = None, True  # expired with the session: fetch one again, retry once
                continue
            code, _ = sap_error(response) if response.status_code >= 400 else (None, None)
            if code == LOCKED and attempt < self.lock_retries + refreshed:
                self._sleep(self.lock_backoff * 2**attempt)
                continue
            self._check(response, method, path)
            return response
        raise AssertionError("unreachable")

    def _csrf_token(self) -> str:
        if self._token is None:
            response = self.http.get(
                f"{self.url}/", params=self.params, headers={"X-CSRF-Token": "Fetch", "Accept": "application/json"}
            )
            self._check(response, "GET", "(CSRF token)")
            token = response.headers.get("x-csrf-token")
            if not token or token.lower() == "required":
                raise self._error("Gateway sent no CSRF token: check that the service allows writes", response)
            self._token = token
        return self._token

    def _check(self, response: httpx.Response, method: str, path: str) -> None:
        code, message = sap_error(response) if response.status_code >= 400 else (None, None)
        check(response, system=self.system, what=f"{method} {_name(path)}", code=code, detail=message)

    def _json(self, response: httpx.Response, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._error(f"SAP answered {_name(path)} with something that is not JSON", response) from None

    def _relative(self, link: str) -> tuple[str, dict[str, str]]:
        """A ``__next`` link (absolute or relative) as a path under the service and its query (``$skiptoken``…),
        less the client, language and format every request sends anyway."""
        url = httpx.URL(link)
        path = link.split("?", 1)[0]
        path = path.split(self.url, 1)[1] if path.startswith(self.url) else path
        query = {key: value for key, value in url.params.items() if key not in (*self.params, "$format")}
        return path.lstrip("/"), query

    def _error(self, message: str, response: httpx.Response | None) -> UpstreamError:
        status = response.status_code if response is not None else None
        return UpstreamError(f"{self.system}: {message}", system=self.system, status=status)


def _csrf_required(response: httpx.Response) -> bool:
    return response.headers.get("x-csrf-token", "").lower() == "required"


def _name(path: str) -> str:
    """A request's path for messages: the entity set or function, without the query (it may carry ids)."""
    return path.split("?", 1)[0].rsplit("/sap/opu/odata/", 1)[-1]
