"""A loopback SAP Solution Manager 7.2 speaking the two Fiori OData v2 services and the ICT SOAP interface, over
real HTTP, for the demo, the tests and the benchmark (never a production config).

The ICT side (``ICT_SERVICE_DESK_API``, served from a WSDL) is `simulators/solman/ict.py`; both sides share the
one-order documents below. The OData side:

What it serves (see /work/shared/reference/solman-api.md §2 and §5), under ``/sap/opu/odata/sap/``:

- ``AI_CRM_GW_CREATE_INCIDENT_SRV``: ``POST IncidentSet`` (a plain JSON object) creates a one-order document —
  GUID, object id, process type, user status ``E0001`` — and answers ``201 {"d": {Guid, ObjectId, LongText}}``;
- ``AI_CRM_GW_MYMESSAGE_SRV``: ``MessageResultSet`` (list, ``$top`` capped at 100, ``$skip``; one by
  ``(guid'…')``), its ``TextSet`` (GET; POST ``{"TextString"}`` adds a reply), the function imports
  ``confirmIncident`` and ``withdrawIncident`` (GET or POST, answering a BAPIRET list), ``$metadata``;
- on every service: HTTP basic authentication, ``sap-client`` checked, a CSRF token fetched with
  ``X-CSRF-Token: Fetch`` and bound to the session cookie, required on every write (else ``403`` with
  ``x-csrf-token: Required``); dates as ``/Date(ms)/``; errors as SAP's JSON error body.

Quirks on demand, as integrators met them (`fail_next`): ``lock`` (400 ``CRM_ORDER/013`` while a processor has
the document open), ``html_login`` (an expired single sign-on: 200 with an HTML page), ``silent`` (a write that
answers success and does nothing), ``type_e`` (a function import whose 200 carries ``Type: "E"``), and
`repeat_pages` (``$skip`` ignored: page 1 again). `expire_csrf` forgets every token, as a session timeout does.

``UserStatus`` (the raw E-code) is an addition: the shipped service shows only the status text
(``Concatstatuser``); a customer-built delta service declares the code. Not simulated: Atom XML, ``$batch``,
attachments, partners, categories, ``StatusSet``; the "My" services' reporter scope (every document is visible).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import secrets
import signal
import ssl
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators._serve import LoopbackServer, answer_commands
from simulators.solman import ict
from simulators.solman.ict import ICT_PATH

ROOT = "/sap/opu/odata/sap"
CREATE, MYMESSAGE = "AI_CRM_GW_CREATE_INCIDENT_SRV", "AI_CRM_GW_MYMESSAGE_SRV"
#: A customer-built delta service (SAP ships none): incidents by change date (`profile.delta` points at it).
DELTA = "ZITSM_INCIDENT_DELTA_SRV"
#: `SolmanSimulator.url(ICT)`: the ICT SOAP endpoint (simulators/solman/ict.py).
ICT = "ICT_SERVICE_DESK_API"
TOP_CAP = 100
STATUS_TEXTS = {"E0001": "New", "E0002": "In Process", "E0003": "Customer Action", "E0004": "Sent to SAP",
                "E0005": "Solution Proposed", "E0008": "Confirmed", "E0010": "Withdrawn"}  # fmt: skip
#: What `populate` writes: SAP support-desk incidents as users report them.
SAMPLE_INCIDENTS = [
    ("VA01 short dump when saving a sales order", "ST22 shows MESSAGE_TYPE_X in SAPLV45A since this morning."),
    ("MIRO: invoice cannot be posted", "Message M8 082: balance not zero, on every invoice of vendor 100234."),
    ("Fiori launchpad tiles are empty", "All tiles of the Sales Manager role show 'no data' since the upgrade."),
    ("Printer LP01 does not print SAP spool", "Spool requests stay in status 'waiting' for output device LP01."),
    ("Authorisation missing for ME21N", "User JDOE gets 'No authorization for purchasing group 010'."),
    ("Background job ZFI_CLOSE cancelled", "Job log: 'Period 012 is not open for account type S'."),
    ("IDoc ORDERS stuck in status 51", "Inbound IDocs from the EDI partner fail: 'Material 4711 not found'."),
    ("Password reset for SAP GUI", "Locked after too many attempts; please reset the initial password."),
]
#: Faults that only a write meets (`fail_next`).
WRITE_FAULTS = frozenset({"lock", "silent"})
FUNCTIONS = ("confirmIncident", "withdrawIncident")
_KEY = re.compile(r"^MessageResultSet\(guid'([0-9a-fA-F-]{36})'\)(/TextSet|/AttachmentSet)?$")
_MEDIA = re.compile(r"^AttachmentSet\(refGuid=guid'([0-9a-fA-F-]{36})',loioId='(\w+)',phioId='(\w+)'\)/\$value$")
_LITERAL = re.compile(r"^guid'([0-9a-fA-F-]{36})'$")


@dataclass
class Text:
    """One text of a document (SAPscript: a text id on ``CRM_ORDERH``)."""

    tdid: str
    text: str
    at: datetime
    author: str = ""

    def as_row(self) -> dict[str, Any]:
        return {"Tdid": self.tdid, "Tdobject": "CRM_ORDERH", "TextString": self.text,
                "DateTimeText": _json_date(self.at)}  # fmt: skip


@dataclass
class Attachment:
    """A file on a document (SAP's knowledge-provider object: logical and physical ids)."""

    loio: str
    phio: str
    filename: str
    mime_type: str
    data: bytes = field(repr=False)
    at: datetime | None = None

    def as_row(self, guid: str) -> dict[str, Any]:
        return {"refGuid": str(uuid.UUID(guid)), "loioId": self.loio, "phioId": self.phio, "Filename": self.filename,
                "MimeType": self.mime_type, "DocumentSize": len(self.data)}  # fmt: skip


@dataclass
class Document:
    """One CRM one-order document (an incident) and its texts; `partner` is the external service desk it is
    exchanged with over ICT (its system GUID), `partner_id` that desk's own id of it."""

    guid: str  # 32 upper-case hex, as SAP's tables store it
    object_id: str
    process_type: str
    description: str
    long_text: str
    priority: str
    created_at: datetime
    changed_at: datetime
    status: str = "E0001"
    texts: list[Text] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    partner: str | None = None
    partner_id: str = ""

    def as_message(self) -> dict[str, Any]:
        return {
            "__metadata": {"type": f"{MYMESSAGE}.MessageResult"},
            "Guid": str(uuid.UUID(self.guid)),
            "ObjectId": self.object_id,
            "ProcessType": self.process_type,
            "Description": self.description,
            "Priority": self.priority,
            "Concatstatuser": STATUS_TEXTS.get(self.status, self.status),
            "UserStatus": self.status,
            "PostingDate": _json_date(self.created_at),
            "ChangedAtDate": _json_date(self.changed_at),
            "StillOpen": self.status not in ("E0008", "E0010"),
        }


class SolmanSimulator:
    """`with SolmanSimulator() as sim: sim.url(MYMESSAGE)`; documents in memory, faults on demand."""

    def __init__(
        self,
        *,
        sap_client: str = "100",
        user: str = "HUBUSER",
        password: str = "hub-secret",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ict_zone: str = "UTC",
        seed: int | None = None,
        latency_ms: float = 0,
        tls: dict[str, Any] | None = None,
    ) -> None:
        self.sap_client, self.user, self.password = sap_client, user, password
        self.clock = clock
        self.latency = latency_ms / 1000  # each answer that much later, as a real system's ABAP stack takes time
        self._random = random.Random(seed)
        #: https:// with uvicorn's ssl_* settings (certfile, keyfile; ca_certs and cert_reqs for client certificates)
        self.tls = tls or {}
        #: OAuth 2.0 clients of the token endpoint (client id → secret), and the bearer tokens it issued
        self.oauth_clients: dict[str, str] = {"HUB_CLIENT": "client-secret"}
        self._bearer_tokens: set[str] = set()  # GUIDs (and `populate`'s incidents) the same for the same seed
        #: ICT: this system's GUID, the zone of its `IctTimestamp`s, and the partner desk that incidents created
        #: here are forwarded to (`add_incident`), as an agent's "send to external service desk" action does.
        self.system_guid = uuid.uuid5(uuid.NAMESPACE_DNS, "solman-simulator").hex.upper()
        self.ict_zone = ict_zone
        self.forward_to: str | None = None
        #: Status profiles (TJ30T: STSMA → {ESTAT: TXT30}), read by RFC_READ_TABLE; tests edit them.
        self.status_profiles: dict[str, dict[str, str]] = {"SMIN0001": dict(STATUS_TEXTS)}
        self.documents: dict[str, Document] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path?query, status)
        self.repeat_pages = False
        self._faults: list[tuple[str, str, int]] = []  # (kind, path pattern, times left)
        self._tokens: dict[str, str] = {}  # session cookie → CSRF token
        self._next_object_id = 8000000001
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    # - lifecycle

    def __enter__(self) -> SolmanSimulator:
        self._server = LoopbackServer(_build_app(self), name="solman-simulator", tls=self.tls)
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def origin(self) -> str:
        """``http(s)://127.0.0.1:PORT``: what a source's `url` names (every service is found under it)."""
        assert self._server is not None and self._server.origin, "start the simulator first (with SolmanSimulator())"
        return self._server.origin

    def url(self, service: str) -> str:
        """The base URL of an OData service (`CREATE`, `MYMESSAGE`), or of the ICT SOAP endpoint (`ICT`)."""
        if service == ICT:
            return self.origin + ICT_PATH.format(client=self.sap_client)
        return f"{self.origin}{ROOT}/{service}"

    # - acting as people in Solman, and breaking things

    def add_incident(self, description: str, *, process_type: str = "SMIN", priority: str = "3", text: str = "") -> str:
        """An incident a person creates in Solman; forwarded over ICT to `forward_to` when it is set."""
        with self._lock:
            document = self._create(description, process_type, priority, text)
            document.partner = self.forward_to
            return document.guid

    def populate(self, count: int) -> list[str]:
        """`count` incidents as a service desk fills them (the demo's and the benchmark's), from the seed: a title,
        a description, a priority, some worked on, some with a processor's reply; forwarded like `add_incident`."""
        guids = []
        for number in range(count):
            title, text = SAMPLE_INCIDENTS[number % len(SAMPLE_INCIDENTS)]
            guid = self.add_incident(f"{title} ({number + 1})" if number >= len(SAMPLE_INCIDENTS) else title,
                                     priority=self._random.choice("1233334"), text=text)  # fmt: skip
            roll = self._random.random()
            if roll < 0.4:
                self.set_status(guid, "E0002")
                self.add_text(guid, "Analysing in the quality system; we will come back to you today.")
            elif roll < 0.5:
                self.set_status(guid, "E0003")
                self.add_text(guid, "Please send the exact transaction and a screenshot of the message.")
            guids.append(guid)
        with self._lock:  # spread over the last 30 days, the older first, as a desk's backlog is
            now = self.clock()
            for number, guid in enumerate(guids):
                age = timedelta(days=30) * (count - number) / max(1, count)
                document = self.documents[guid]
                document.created_at = document.changed_at = now - age
                for text in document.texts:
                    text.at = now - age
        return guids

    def add_attachment(
        self, guid: str, filename: str, data: bytes, mime_type: str = "application/octet-stream"
    ) -> None:
        """A processor attaches a file to the incident."""
        with self._lock:
            document = self.documents[guid]
            document.attachments.append(self._attachment(filename, mime_type, data))
            self._touch(document)

    def _attachment(self, filename: str, mime_type: str, data: bytes) -> Attachment:
        loio, phio = (f"{self._random.getrandbits(64):016X}" for _ in range(2))
        return Attachment(loio, phio, filename, mime_type, data, self.clock())

    def add_text(self, guid: str, text: str, *, text_type: str = "SU01", author: str = "PROCESSOR1") -> None:
        """A processor writes on the incident."""
        with self._lock:
            document = self.documents[guid]
            document.texts.append(self._text(text_type, text, author))
            self._touch(document)

    def set_status(self, guid: str, status: str) -> None:
        with self._lock:
            document = self.documents[guid]
            document.status = status
            self._touch(document)

    def fail_next(self, kind: str, path: str = ".*", times: int = 1) -> None:
        """The next `times` requests whose path matches `path` fail as `kind` (lock, html_login, silent, type_e);
        a lock or a silent success is met by writes (and function imports) only."""
        with self._lock:
            self._faults.append((kind, path, times))

    def expire_tokens(self) -> None:
        """Every bearer token becomes invalid (they expired)."""
        with self._lock:
            self._bearer_tokens.clear()

    def expire_csrf(self) -> None:
        """Every CSRF token becomes invalid (the security session timed out)."""
        with self._lock:
            self._tokens.clear()

    @property
    def status_texts(self) -> dict[str, str]:
        return {code: text for texts in self.status_profiles.values() for code, text in texts.items()}

    # - the model

    def _create(
        self, description: str, process_type: str, priority: str, text: str, guid: str | None = None
    ) -> Document:
        now = self.clock()
        document = Document(
            guid=guid or uuid.UUID(int=self._random.getrandbits(128), version=4).hex.upper(),
            object_id=str(self._next_object_id),
            process_type=process_type,
            description=description[:40],
            long_text=text,
            priority=priority,
            created_at=now,
            changed_at=now,
        )
        self._next_object_id += 1
        if text:
            document.texts.append(self._text("SU99", text))
        self.documents[document.guid] = document
        return document

    def _text(self, tdid: str, text: str, author: str = "HUBUSER") -> Text:
        return Text(tdid, text, self.clock(), author)

    def _touch(self, document: Document) -> None:
        """CHANGED_AT moves with every change of the document, its texts included (§1: unverified for texts)."""
        document.changed_at = self.clock()

    def _fault(self, path: str, method: str) -> str | None:
        for index, (kind, pattern, times) in enumerate(self._faults):
            if kind in WRITE_FAULTS and method == "GET" and not _is_function(path):
                continue  # a lock or a silent success concerns a write, not the reads around it
            if re.search(pattern, path):
                if times <= 1:
                    del self._faults[index]
                else:
                    self._faults[index] = (kind, pattern, times - 1)
                return kind
        return None


def _build_app(sim: SolmanSimulator) -> Starlette:
    async def endpoint(request: Request) -> Response:
        service, rest = request.path_params["service"], request.path_params.get("rest", "")
        target = rest + (f"?{request.url.query}" if request.url.query else "")
        body = await request.body()
        if sim.latency:
            await asyncio.sleep(sim.latency)
        with sim._lock:
            response = _serve(sim, request, service, rest, body)
        sim.requests.append((request.method, f"{service}/{target}", response.status_code))
        return response

    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(errors="replace")))
        with sim._lock:
            response = _serve_token(sim, request, form)
        sim.requests.append((request.method, "oauth2/token", response.status_code))
        return response

    async def rfc(request: Request) -> Response:
        body = await request.body()
        with sim._lock:
            response = _serve_rfc(sim, request, body)
        sim.requests.append((request.method, "RFC_READ_TABLE", response.status_code))
        return response

    async def soap(request: Request) -> Response:
        body = await request.body()
        operation = _operation(body) if request.method == "POST" else "?" + request.url.query
        if sim.latency:
            await asyncio.sleep(sim.latency)
        with sim._lock:
            response = _serve_ict(sim, request, body, operation)
        sim.requests.append((request.method, f"{ICT}/{operation}", response.status_code))
        return response

    methods = ["GET", "POST", "MERGE", "PUT", "DELETE"]
    return Starlette(
        routes=[
            Route(ROOT + "/{service}/{rest:path}", endpoint, methods=methods),
            Route(ICT_PATH.replace("{client}", "{sap_client}"), soap, methods=["GET", "POST"]),
            Route("/sap/bc/soap/rfc", rfc, methods=["POST"]),
            Route("/sap/bc/sec/oauth2/token", token, methods=["POST"]),
        ]
    )


def _serve_rfc(sim: SolmanSimulator, request: Request, body: bytes) -> Response:
    """SOAP-RFC: ``RFC_READ_TABLE`` on TJ30T (the status profiles' codes and texts), the only table served."""
    if request.query_params.get("sap-client", sim.sap_client) != sim.sap_client:
        return Response("client does not exist", 404)
    if not _authorised(sim, request):
        return Response("Logon failed", 401, {"www-authenticate": 'Basic realm="SAP NetWeaver Application Server"'})
    if sim._fault("RFC_READ_TABLE", "POST") == "forbidden":
        return ict.fault("soap-env:Server", "No RFC authorization for function module RFC_READ_TABLE")
    values = ict.call_values(body)
    if values is None or values[0] != "RFC_READ_TABLE":
        return ict.fault("soap-env:Client", "Only RFC_READ_TABLE is served here")
    args = values[1]
    if args.get("QUERY_TABLE") != "TJ30T":
        return ict.fault("soap-env:Server", "TABLE_NOT_AVAILABLE")
    where = " ".join(str(row.get("TEXT", "")) for row in args.get("OPTIONS") or [] if isinstance(row, dict))
    wanted = re.findall(r"STSMA\s*=\s*'([^']*)'", where)
    fields = [str(row.get("FIELDNAME")) for row in args.get("FIELDS") or [] if isinstance(row, dict)]
    delimiter = str(args.get("DELIMITER") or "|")
    lines = [
        delimiter.join({"STSMA": profile, "ESTAT": code, "TXT30": text, "SPRAS": "E"}.get(f, "") for f in fields)
        for profile, texts in sim.status_profiles.items()
        if not wanted or profile in wanted
        for code, text in texts.items()
    ]
    data = "".join(f"<item><WA>{line}</WA></item>" for line in lines)
    return ict.envelope(
        f'<rfc:RFC_READ_TABLE.Response xmlns:rfc="urn:sap-com:document:sap:rfc:functions"><DATA>{data}</DATA>'
        "<FIELDS/><OPTIONS/></rfc:RFC_READ_TABLE.Response>"
    )


def _operation(body: bytes) -> str:
    """The SOAP operation a call names (its body's first element), without parsing the whole envelope."""
    found = re.search(rb"Body>\s*<(?:[\w-]+:)?(\w+)", body)
    return found.group(1).decode() if found else ""


def _serve_ict(sim: SolmanSimulator, request: Request, body: bytes, operation: str) -> Response:
    if request.path_params["sap_client"] != sim.sap_client:
        return Response(f"client {request.path_params['sap_client']} does not exist", 404)
    if not _authorised(sim, request):
        return Response("Logon failed", 401, {"www-authenticate": 'Basic realm="SAP NetWeaver Application Server"'})
    if request.method == "GET":
        if "wsdl" not in request.query_params:
            return Response("Use ?wsdl for the service description", 404)
        origin = f"{request.url.scheme}://{request.url.netloc}"
        return Response(ict.wsdl_text(origin, sim.sap_client), 200, media_type="text/xml")
    fault = sim._fault(operation, "POST")
    if fault == "html_login":
        return Response("<html><body><form id='logonForm'>SAP NetWeaver login</form></body></html>", 200,
                        {"content-type": "text/html"})  # fmt: skip
    return ict.serve(sim, body, fault)


def _serve(sim: SolmanSimulator, request: Request, service: str, rest: str, body: bytes) -> Response:
    if request.query_params.get("sap-client", sim.sap_client) != sim.sap_client:
        return _error(400, "/IWFND/CM_BEC/001", f"client {request.query_params.get('sap-client')} does not exist")
    if not _authorised(sim, request):
        return Response("Logon failed", 401, {"www-authenticate": 'Basic realm="SAP NetWeaver Application Server"'})
    cookie = request.cookies.get(f"SAP_SESSIONID_SM1_{sim.sap_client}") or secrets.token_hex(8)
    headers = {"set-cookie": f"SAP_SESSIONID_SM1_{sim.sap_client}={cookie}; path=/"}
    if service not in (CREATE, MYMESSAGE, DELTA):
        return _error(404, "/IWFND/MED/170", f"No service found for namespace /SAP/, name {service}, version 0001")
    fault = sim._fault(rest, request.method)
    if fault == "html_login":
        return Response("<html><body><form id='logonForm'>SAP NetWeaver login</form></body></html>", 200,
                        {"content-type": "text/html"})  # fmt: skip
    if request.headers.get("x-csrf-token", "").lower() == "fetch":
        token = sim._tokens.setdefault(cookie, secrets.token_urlsafe(16))
        return JSONResponse({"d": {"EntitySets": []}}, 200, {**headers, "x-csrf-token": token})
    if request.method != "GET" and sim._tokens.get(cookie) != request.headers.get("x-csrf-token"):
        return Response("CSRF token validation failed", 403, {**headers, "x-csrf-token": "Required"})
    if fault == "lock":
        return _error(400, "CRM_ORDER/013", "Transaction is being processed by user PROCESSOR1", headers)
    if rest == "$metadata":
        return Response(_metadata(service), 200, {**headers, "content-type": "application/xml"})
    if service == CREATE:
        return _create(sim, request, rest, body, headers, silent=fault == "silent")
    if service == DELTA:
        return _delta(sim, request, rest, headers)
    return _mymessage(sim, request, rest, body, headers, fault)


def _delta(sim: SolmanSimulator, request: Request, rest: str, headers: dict[str, str]) -> Response:
    """A customer's delta service: ``IncidentSet`` by change date, ``$filter=ChangedAt ge datetime'…'``."""
    if rest != "IncidentSet" or request.method != "GET":
        return _error(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{rest}'", headers)
    rows = sorted(sim.documents.values(), key=lambda d: (d.changed_at, d.guid))
    wanted = request.query_params.get("$filter", "")
    if wanted:
        found = re.fullmatch(r"ChangedAt ge datetime'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)'", wanted)
        if found is None:
            return _error(400, "/IWBEP/CM_MGW_RT/004", f"Invalid filter expression: '{wanted}'", headers)
        since = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
        rows = [d for d in rows if d.changed_at >= since]
    top = min(int(request.query_params.get("$top", TOP_CAP)), TOP_CAP)
    skip = int(request.query_params.get("$skip", 0))
    page = [{"Guid": str(uuid.UUID(d.guid)), "ChangedAt": _json_date(d.changed_at)} for d in rows[skip : skip + top]]
    return JSONResponse({"d": {"results": page}}, 200, headers)


def _create(sim, request: Request, rest: str, body: bytes, headers: dict[str, str], *, silent: bool) -> Response:
    if rest != "IncidentSet" or request.method != "POST":
        return _error(405, "/IWBEP/CM_MGW_RT/021", "Method not allowed", headers)
    data = json.loads(body or b"{}")
    if not data.get("Description"):
        return _error(400, "CRM_ORDER/002", "Enter a description", headers)
    if silent:  # Gateway answered 201 and persisted nothing
        ghost = {"Guid": str(uuid.uuid4()), "ObjectId": "", "LongText": data.get("LongText", "")}
        return JSONResponse({"d": ghost}, 201, headers)
    document = sim._create(data["Description"], data.get("ProcessType") or "SMIN", str(data.get("Priority") or "3"),
                           data.get("LongText") or "")  # fmt: skip
    answer = {"Guid": str(uuid.UUID(document.guid)), "ObjectId": document.object_id, "LongText": document.long_text}
    return JSONResponse({"d": answer}, 201, headers)


def _mymessage(sim, request: Request, rest: str, body: bytes, headers: dict[str, str], fault: str | None) -> Response:
    if rest == "MessageResultSet" and request.method == "GET":
        top = min(int(request.query_params.get("$top", TOP_CAP)), TOP_CAP)
        skip = 0 if sim.repeat_pages else int(request.query_params.get("$skip", 0))
        rows = sorted(sim.documents.values(), key=lambda d: d.object_id)
        return JSONResponse({"d": {"results": [d.as_message() for d in rows[skip : skip + top]]}}, 200, headers)
    match = _KEY.match(rest)
    if match:
        document = sim.documents.get(uuid.UUID(match.group(1)).hex.upper())
        if document is None:
            return _error(404, "CRM_ORDER/001", "Document does not exist", headers)
        if not match.group(2):
            return JSONResponse({"d": document.as_message()}, 200, headers)
        if match.group(2) == "/AttachmentSet":
            return _attachments(sim, request, document, body, headers, fault)
        if request.method == "GET":
            return JSONResponse({"d": {"results": [text.as_row() for text in document.texts]}}, 200, headers)
        text = json.loads(body or b"{}").get("TextString")
        if not text:
            return _error(400, "CRM_ORDER/020", "Enter a text", headers)
        written = sim._text("SU01", text)
        if fault != "silent":
            document.texts.append(written)
            sim._touch(document)
        return JSONResponse({"d": written.as_row()}, 201, headers)
    media = _MEDIA.match(rest)
    if media and request.method == "GET":
        document = sim.documents.get(uuid.UUID(media.group(1)).hex.upper())
        found = [a for a in (document.attachments if document else []) if (a.loio, a.phio) == media.group(2, 3)]
        if not found:
            return _error(404, "/IWBEP/CM_MGW_RT/020", "Attachment does not exist", headers)
        return Response(found[0].data, 200, {**headers, "content-type": found[0].mime_type})
    function = rest.split("?")[0]
    if function in FUNCTIONS:
        return _function(sim, request, function, headers, fault)
    return _error(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{rest}'", headers)


def _attachments(sim, request: Request, document: Document, body: bytes, headers: dict[str, str], fault) -> Response:
    """``AttachmentSet`` of a message: GET lists them; POST uploads one (the body is the file; its name in
    ``content-disposition: inline; filename="…"`` or ``slug``)."""
    if request.method == "GET":
        return JSONResponse({"d": {"results": [a.as_row(document.guid) for a in document.attachments]}}, 200, headers)
    disposition = request.headers.get("content-disposition", "")
    named = re.search(r'filename="([^"]*)"', disposition)
    filename = unquote(named.group(1) if named else request.headers.get("slug", ""))
    if not filename or not body:
        return _error(400, "CRM_ORDER/040", "Enter a file name and content", headers)
    attachment = sim._attachment(filename, request.headers.get("content-type", "application/octet-stream"), body)
    if fault != "silent":
        document.attachments.append(attachment)
        sim._touch(document)
    return JSONResponse({"d": attachment.as_row(document.guid)}, 201, headers)


def _function(sim, request: Request, function: str, headers: dict[str, str], fault: str | None) -> Response:
    literal = _LITERAL.match(request.query_params.get("Guid", ""))
    document = sim.documents.get(uuid.UUID(literal.group(1)).hex.upper()) if literal else None
    if document is None:
        return _error(400, "CRM_ORDER/001", "Document does not exist", headers)
    target = "E0008" if function == "confirmIncident" else "E0010"
    allowed = document.status == "E0005" if function == "confirmIncident" else document.status not in ("E0008", "E0010")
    if fault == "type_e" or not allowed:
        reason = f"Status {target} cannot be set: the incident is {STATUS_TEXTS.get(document.status, document.status)}"
        return JSONResponse({"d": {"results": [{"Type": "E", "Id": "CRM_ORDER", "Number": "030", "Message": reason}]}},
                            200, headers)  # fmt: skip
    if fault != "silent":
        document.status = target
        sim._touch(document)
    return JSONResponse({"d": {"results": [{"Type": "S", "Id": "CRM_ORDER", "Number": "000", "Message": "Saved"}]}},
                        200, headers)  # fmt: skip


def _is_function(path: str) -> bool:
    return path.split("?")[0] in FUNCTIONS


def _authorised(sim: SolmanSimulator, request: Request) -> bool:
    """Basic with the user's password, a bearer token the token endpoint issued, or — served with client
    certificates required — none: the TLS handshake proved the certificate, which CERTRULE maps to the user."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials in sim._bearer_tokens
    if scheme.lower() != "basic":
        return scheme == "" and sim.tls.get("cert_reqs") == ssl.CERT_REQUIRED
    return _basic(request) == (sim.user, sim.password)


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(credentials).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def _serve_token(sim: SolmanSimulator, request: Request, form: dict[str, str]) -> Response:
    """AS ABAP's OAuth 2.0 token endpoint, for the client-credentials grant (clients of `oauth_clients`)."""
    client = _basic(request) or (form.get("client_id", ""), form.get("client_secret", ""))
    if sim.oauth_clients.get(client[0]) != client[1] or not client[0]:
        return JSONResponse({"error": "invalid_client"}, 401)
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, 400)
    token = secrets.token_urlsafe(24)
    sim._bearer_tokens.add(token)
    return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                         "scope": form.get("scope", "")})  # fmt: skip


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "error": {
            "code": code,
            "message": {"lang": "en", "value": message},
            "innererror": {"application": {"component_id": "SV-SMG-SUP", "service_namespace": "/SAP/"}},
        }
    }
    return JSONResponse(body, status, headers)  # fmt: skip


def _json_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)})/"


def _metadata(service: str) -> str:
    names = ["MessageResultSet", "TextSet"] if service == MYMESSAGE else ["IncidentSet"]
    sets = "".join(f'<EntitySet Name="{name}" EntityType="{service}.{name[:-3]}"/>' for name in names)
    if service == MYMESSAGE:
        sets += "".join(
            f'<FunctionImport Name="{name}" ReturnType="Collection({service}.BAPIRET)" m:HttpMethod="GET"/>'
            for name in FUNCTIONS
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="1.0" '
        'xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" '
        'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><edmx:DataServices>'
        f'<Schema Namespace="{service}"><EntityContainer Name="{service}_Entities">{sets}</EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m simulators.solman.simulator --incidents N`: print the origin when ready, serve until a signal."""
    parser = argparse.ArgumentParser(prog="python -m simulators.solman.simulator", description=main.__doc__)
    parser.add_argument("--incidents", type=int, default=20, help="incidents made by `populate`")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forward-to", default=None, metavar="GUID", help="the hub's ICT system GUID")
    parser.add_argument("--latency-ms", type=float, default=0, help="delay every answer (a real Solman: 50-300 ms)")
    parser.add_argument(
        "--control",
        action="store_true",
        help="read commands on stdin (`touch FRACTION [SEED]`, `requests`; each answered with a JSON line); "
        "end of input stops",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    shift = [timedelta()]  # `advance` moves the clock forward
    clock = lambda: datetime.now(UTC) + shift[0]  # noqa: E731
    with SolmanSimulator(seed=args.seed, latency_ms=args.latency_ms, clock=clock) as sim:
        sim.forward_to = args.forward_to
        started = time.perf_counter()
        sim.populate(args.incidents)
        print(sim.origin, flush=True)
        print(f"generated {args.incidents} incidents in {time.perf_counter() - started:.1f} s", file=sys.stderr,
              flush=True)  # fmt: skip
        if args.control:
            threading.Thread(target=_control, args=(sim, stop, shift), daemon=True, name="solman-control").start()
        while not stop.wait(0.5):
            pass
    return 0


def _control(sim: SolmanSimulator, stop: threading.Event, shift: list[timedelta]) -> None:
    """`--control`: ``touch FRACTION [SEED]`` makes a processor write on that share of the open incidents (a note;
    one in three also moves to Customer Action) → ``{"touched": N}``; ``requests`` → the requests served since the
    last ``requests``, by kind; ``advance SECONDS`` moves Solman's clock forward, as if that much time had passed."""

    def handle(words: list[str]) -> dict[str, Any]:
        if words[0] == "touch" and len(words) in (2, 3):
            chance = random.Random(int(words[2]) if len(words) == 3 else 0)
            with sim._lock:
                open_ones = [g for g, d in sim.documents.items() if d.status not in ("E0008", "E0010")]
            picked = chance.sample(open_ones, round(float(words[1]) * len(open_ones)))
            for number, guid in enumerate(picked):
                sim.add_text(guid, f"Processor's update {number}: the fix is in the quality system.")
                if number % 3 == 0:
                    sim.set_status(guid, "E0003")
            return {"touched": len(picked)}
        if words[0] == "advance" and len(words) == 2:
            shift[0] += timedelta(seconds=float(words[1]))
            return {"now": sim.clock().isoformat()}
        if words[0] == "requests" and len(words) == 1:
            with sim._lock:
                served, sim.requests = sim.requests, []
            kinds = Counter(path.split("?")[0].split("(")[0] for _, path, _ in served)
            return {"total": len(served), "by_kind": dict(kinds.most_common())}
        raise ValueError("expected: touch FRACTION [SEED], advance SECONDS, or requests")

    answer_commands(handle, stop)


if __name__ == "__main__":
    sys.exit(main())
