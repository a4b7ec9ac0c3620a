"""SAP's external service-desk SOAP interface, ``ICT_SERVICE_DESK_API``, through zeep. Private to `connectors/solman/`.

zeep reads the system's own WSDL (SOAMANAGER serves it; `IctService` fetches it through the same authenticated
connection) and builds and parses the messages; every request goes through the source's httpx client
(`_HttpxTransport`), so the one connection pool, its timeouts and the SAP error mapping (`_sap.check`) are those
of the OData side. What the interface does that a generic SOAP client gets wrong:

- a call that failed usually answers ``200`` with ``Errors`` rows (``ErrorCode``, ``Val1``…``Val4``), not a
  fault: `IctService.call` raises them as a rejection with SAP's words;
- a locked document (``CRM_ORDER/013`` in ``Errors``) is retried with backoff, never in parallel;
- tables are ``<Table><item>…</item></Table>``: `table` writes them, `rows` reads them;
- timestamps are ``decimal(15)`` ``yyyymmddhhmmss`` in a zone the profile names (`timestamp`, `parse_timestamp`);
- texts travel as lines of at most 132 characters (`text_lines`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import zeep
import zeep.exceptions
import zeep.helpers
import zeep.transports

from connectors.solman._sap import check, unanswered
from itsm_core.errors import UpstreamError, UpstreamRejected

NS = "urn:sap-com:document:sap:soap:functions:mc-style"
BINDING = f"{{{NS}}}ICT_SERVICE_DESK_API_BINDING"
#: SAP's code for "the document is being processed by another user" (as in OData: `_odata.LOCKED`).
LOCKED = "CRM_ORDER/013"
LINE = 132  # SAPscript line width (TDLINE)
#: The operations the connector calls: the self-check refuses a WSDL that lacks one.
OPERATIONS = (
    "ProcessIncident",
    "AddInfo",
    "VerifyIncidentSolution",
    "RejectIncidentSolution",
    "CloseIncident",
    "ListUnclosedIncidents",
    "ReadCompleteIncident",
)


def table(rows: Iterable[Any]) -> dict[str, list[Any]]:
    """A table parameter as zeep takes it: ``{"item": [...]}``."""
    return {"item": list(rows)}


def rows(value: Any) -> list[Any]:
    """The rows of a table in an answer (zeep gives ``{"item": [...]}``, or None for an empty one)."""
    if isinstance(value, Mapping):
        value = value.get("item")
    return list(value or [])


def text_lines(text: str) -> dict[str, list[str]]:
    """A text as SAPscript lines (a table of strings of at most `LINE` characters), paragraphs kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += [paragraph[start : start + LINE] for start in range(0, len(paragraph), LINE)] or [""]
    return table(lines)


def timestamp(moment: datetime, zone: str) -> Decimal:
    """``yyyymmddhhmmss`` in `zone` (the profile's ``ict_timestamps``), as the interface's decimal(15)."""
    return Decimal(moment.astimezone(ZoneInfo(zone)).strftime("%Y%m%d%H%M%S"))


def parse_timestamp(value: Any, zone: str) -> datetime | None:
    """A decimal(15) ``yyyymmddhhmmss`` read in `zone`, as aware UTC; None for 0 or empty."""
    if value in (None, "", 0) or str(value).strip("0. ") == "":
        return None
    text = f"{int(Decimal(str(value))):014d}"
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def system_guid(name: str) -> str:
    """A stable requester system GUID for the hub's source `name`: 32 upper-case hex digits (any stable value
    will do for a non-SAP system; the reference's OTRS uses a hash of its id)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"itsm-hub:{name}").hex.upper()


class _HttpxTransport(zeep.transports.Transport):
    """zeep's transport over the source's httpx client: the WSDL and every call go through it. Calls run in
    parallel (a page's reads): what one call sent and got back is kept per thread (`calling`)."""

    def __init__(self, http: httpx.Client, system: str) -> None:
        super().__init__()
        self.http, self.system = http, system
        self.calling = threading.local()

    @property
    def last_operation(self) -> str:
        return getattr(self.calling, "operation", "(WSDL)")

    @property
    def last_body(self) -> bytes:
        return getattr(self.calling, "body", b"")

    def _load_remote_data(self, url: str) -> bytes:
        try:
            response = self.http.get(url)
        except httpx.TransportError as exc:
            raise unanswered(exc, system=self.system, what="GET of the ICT WSDL", write=False) from None
        check(response, system=self.system, what="GET of the ICT WSDL")
        return response.content

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> httpx.Response:
        what, self.calling.body = f"ICT {self.last_operation}", b""
        try:
            response = self.http.post(address, content=message, headers=headers)
        except httpx.TransportError as exc:
            raise unanswered(exc, system=self.system, what=what, write=self.last_operation not in _READS) from None
        if response.status_code == 500 and b"Fault" in response.content:
            return response  # a SOAP fault: zeep reads it (`IctService.call` turns it into a rejection)
        check(response, system=self.system, what=what)
        self.calling.body = response.content
        return response


_READS = frozenset({"ListUnclosedIncidents", "ReadCompleteIncident", "RequestSystemGuid"})


class IctService:
    """One ICT endpoint (SOAMANAGER's binding URL) over one httpx client. `wsdl` is where its WSDL is (default:
    the endpoint's ``?wsdl``); `system` names the source in errors."""

    def __init__(
        self,
        http: httpx.Client,
        endpoint: str,
        *,
        system: str,
        wsdl: str | None = None,
        lock_retries: int = 4,
        lock_backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.system = system
        self.lock_retries, self.lock_backoff = lock_retries, lock_backoff_seconds
        self._sleep = sleep
        self._transport = _HttpxTransport(http, system)
        try:
            # huge trees: an attachment travels inline, base64, up to the profile's max_attachment_bytes
            settings = zeep.Settings(xml_huge_tree=True)
            client = zeep.Client(wsdl or f"{endpoint}?wsdl", transport=self._transport, settings=settings)
        except (zeep.exceptions.Error, ValueError) as exc:
            raise UpstreamError(f"{system}: the ICT WSDL cannot be read ({exc})", system=system) from None
        self.operations = frozenset(
            name for service in client.wsdl.services.values() for port in service.ports.values()
            for name in port.binding._operations
        )  # fmt: skip
        self._service = client.create_service(BINDING, endpoint) if BINDING in client.wsdl.bindings else None

    def missing_operations(self) -> list[str]:
        """The operations the connector calls that the system's WSDL does not offer."""
        return [name for name in OPERATIONS if name not in self.operations or self._service is None]

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        """One operation; its answer as plain dicts. ``Errors`` rows are raised (`UpstreamRejected`, SAP's words);
        a locked document is retried with backoff first."""
        if self._service is None or operation not in self.operations:
            raise UpstreamRejected(
                f"{self.system}: the system's ICT WSDL has no operation {operation} (binding "
                "ICT_SERVICE_DESK_API_BINDING); check the SOAMANAGER endpoint the source points at",
                system=self.system,
            )
        for attempt in range(self.lock_retries + 1):
            self._transport.calling.operation = operation
            try:
                answer = getattr(self._service, operation)(**parameters)
            except zeep.exceptions.Fault as fault:
                raise UpstreamRejected(
                    f"{self.system}: SAP refused ICT {operation}: {fault.message}",
                    system=self.system,
                    detail=fault.message,
                ) from None
            except (zeep.exceptions.Error, ValueError) as exc:
                said = str(exc).split("\n", 1)[0][:200]  # zeep quotes the whole answer after it: data, not for logs
                raise UpstreamError(
                    f"{self.system}: SAP's answer to ICT {operation} does not match its WSDL ({said})",
                    system=self.system,
                ) from None
            if f"{operation}Response".encode() not in self._transport.last_body:
                # zeep reads any envelope leniently: an answer without the operation's response is no answer
                raise UpstreamError(
                    f"{self.system}: SAP's answer to ICT {operation} does not match its WSDL (no "
                    f"{operation}Response in it); check that the endpoint is ICT_SERVICE_DESK_API's binding",
                    system=self.system,
                )
            result = dict(zeep.helpers.serialize_object(answer, dict) or {})
            errors = [row for row in rows(result.get("Errors")) if row.get("ErrorCode")]
            if not errors:
                return result
            if any(row["ErrorCode"] == LOCKED for row in errors) and attempt < self.lock_retries:
                self._sleep(self.lock_backoff * 2**attempt)
                continue
            said = "; ".join(
                " ".join(str(row.get(key) or "") for key in ("ErrorCode", "Val1", "Val2", "Val3", "Val4")).strip()
                for row in errors
            )
            raise UpstreamRejected(
                f"{self.system}: SAP refused ICT {operation}: {said}",
                system=self.system,
                code=errors[0]["ErrorCode"],
                detail=said,
            )
        raise AssertionError("unreachable")
