"""The simulator's ICT side: SAP's external service-desk SOAP interface ``ICT_SERVICE_DESK_API`` (reference §3).

Served at `ICT_PATH` (``?wsdl`` answers the WSDL in this folder, its address rewritten to this server), document /
literal, SAP's ``mc-style`` namespace with unqualified children and tables as ``<item>`` rows:

- ``RequestSystemGuid``: Solman's own system GUID;
- ``ProcessIncident``: a new incident handed over by a partner system (``IctHead.RequesterGuid``); the same
  ``IncidentGuid`` handed over again answers the first ``PrdIctId`` and creates nothing (what makes a resend safe);
- ``AddInfo``: texts (``IctStatements``) and a user status (``IctAdditionalInfos`` ``SAPUserStatus``);
- ``VerifyIncidentSolution`` / ``RejectIncidentSolution``: a proposed solution (E0005) confirmed (E0008) or sent
  back (E0002); ``CloseIncident``: withdrawn by the requester (E0010);
- ``ListUnclosedIncidents(SystemGuid)``: the open incidents exchanged with that system;
- ``ReadCompleteIncident(IncidentGuid)``: head, texts, and additional infos ``SAPUserStatus``, ``SAPProcessType``,
  ``SAPIncidentID``; ``IctTimestamp`` is the last change, ``yyyymmddhhmmss`` in `SolmanSimulator.ict_zone`.

Failures come back as SAP's function modules report them, in ``Errors`` rows (``ErrorCode``, ``Val1``…), with a
200; a request that is not SOAP gets a SOAP fault. Quirks (`SolmanSimulator.fail_next`, on the operation's name):
``lock`` (an ``Errors`` row ``CRM_ORDER/013``), ``silent`` (no error, nothing done), ``html_login``.
What a real system adds that is not here: value mapping, person replication, attachments' storage, the push
direction (Solman calling the partner's own endpoint).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from lxml import etree
from starlette.responses import Response

#: The simulator (simulators/solman/simulator.py, which imports this module) and its documents, as they are used
#: here: `Any`, so the two modules do not import each other.
SolmanSimulator = Document = Any

NS = "urn:sap-com:document:sap:soap:functions:mc-style"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ICT_PATH = "/sap/bc/srt/rfc/sap/ict_service_desk_api/{client}/ict_service_desk_api/ict_service_desk_api_binding"
WSDL = Path(__file__).with_name("ict_service_desk_api.wsdl")
CLOSED = frozenset({"E0008", "E0010"})
#: ListUnclosedIncidents' two-letter status (the reference's example is RP; the full list is unverified).
SHORT_STATUS = {"E0001": "NW", "E0002": "IP", "E0003": "CA", "E0004": "SA", "E0005": "RP"}
_WRITES = frozenset({"ProcessIncident", "AddInfo", "VerifyIncidentSolution", "RejectIncidentSolution",
                     "CloseIncident"})  # fmt: skip


def wsdl_text(origin: str, client: str) -> str:
    """The WSDL, its port's address pointing at this server."""
    text = WSDL.read_text()
    return text.replace("http://localhost" + ICT_PATH.format(client="100"), origin + ICT_PATH.format(client=client))


def call_values(body: bytes) -> tuple[str, dict[str, Any]] | None:
    """(operation, its parameters as plain data) of a SOAP 1.1 call; None if `body` is not one."""
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        call = root.find(f"{{{SOAP_ENV}}}Body")[0]  # type: ignore[index]
    except (etree.XMLSyntaxError, TypeError, IndexError):
        return None
    args = _read(call)
    return etree.QName(call).localname, args if isinstance(args, dict) else {}


def serve(sim: SolmanSimulator, body: bytes, fault: str | None) -> Response:
    """One SOAP call, under the simulator's lock."""
    values = call_values(body)
    if values is None:
        return fault("soap-env:Client", "The request is not a SOAP 1.1 envelope")
    operation, args = values
    handler = _OPERATIONS.get(operation)
    if handler is None:
        return fault("soap-env:Client", f"Operation {operation} is not part of ICT_SERVICE_DESK_API")
    if fault == "lock" and operation in _WRITES:
        return _answer(operation, errors=[("CRM_ORDER/013", "Transaction is being processed by user PROCESSOR1")])
    if fault == "silent" and operation in _WRITES:
        return _answer(operation, _silent_answer(sim, operation, args))
    return handler(sim, args)


# --- operations ------------------------------------------------------------------------------------------------


def _request_system_guid(sim: SolmanSimulator, args: dict[str, Any]) -> Response:
    return _answer("RequestSystemGuid", {"SystemGuid": sim.system_guid})


def _process_incident(sim: SolmanSimulator, args: dict[str, Any]) -> Response:
    head = args.get("IctHead") or {}
    guid = str(head.get("IncidentGuid") or "").upper()
    requester = str(head.get("RequesterGuid") or "").upper()
    if len(guid) != 32 or len(requester) != 32:
        return _answer("ProcessIncident", errors=[("ICT/001", "IncidentGuid and RequesterGuid are 32 hex digits")])
    existing = sim.documents.get(guid)
    if existing is not None:  # handed over before (a resend): the same answer, nothing created
        return _answer("ProcessIncident", {"PrdIctId": existing.object_id})
    if not head.get("ShortDescription"):
        return _answer("ProcessIncident", errors=[("CRM_ORDER/002", "Enter a description")])
    infos = _infos(args)
    document = sim._create(
        str(head["ShortDescription"]),
        infos.get("SAPProcessType", "SMIN"),
        str(head.get("Priority") or "3"),
        "",
        guid=guid,
    )
    document.partner, document.partner_id = requester, str(args.get("IctId") or "")
    for text_type, text in _statements(args):
        document.texts.append(sim._text(text_type, text))
    return _answer("ProcessIncident", {"PrdIctId": document.object_id})


def _add_info(sim: SolmanSimulator, args: dict[str, Any]) -> Response:
    document, refused = _document(sim, "AddInfo", args)
    if document is None:
        return refused
    status = _infos(args).get("SAPUserStatus")
    if status and status not in sim.status_texts:
        return _answer("AddInfo", errors=[("CRM_ORDER/030", f"Status {status} is not in profile SMIN0001")])
    for text_type, text in _statements(args):
        document.texts.append(sim._text(text_type, text))
    for row in _rows(args.get("IctAttachments")):
        if isinstance(row, dict) and row.get("Filename"):
            data = base64.b64decode(str(row.get("Data") or ""))
            document.attachments.append(sim._attachment(str(row["Filename"]), str(row.get("MimeType") or ""), data))
    if status:
        document.status = status
    sim._touch(document)
    return _answer("AddInfo", {})


def _step(operation: str, allowed: Iterable[str], target: str):
    def handler(sim: SolmanSimulator, args: dict[str, Any]) -> Response:
        document, refused = _document(sim, operation, args)
        if document is None:
            return refused
        if document.status not in allowed:
            said = sim.status_texts.get(document.status, document.status)
            refusal = f"{operation} is not possible: the incident is {said}"
            return _answer(operation, errors=[("CRM_ORDER/030", refusal)])
        for text_type, text in _statements(args):
            document.texts.append(sim._text(text_type, text))
        document.status = target
        sim._touch(document)
        return _answer(operation, {})

    return handler


def _list_unclosed(sim: SolmanSimulator, args: dict[str, Any]) -> Response:
    system = str(args.get("SystemGuid") or "").upper()
    rows = [
        {
            "IncidentGuid": d.guid,
            "ProviderGuid": sim.system_guid,
            "RequesterGuid": system,
            "Status": SHORT_STATUS.get(d.status, "IP"),
        }
        for d in sorted(sim.documents.values(), key=lambda d: d.object_id)
        if d.partner == system and d.status not in CLOSED
    ]
    return _answer("ListUnclosedIncidents", {"Incidents": rows})


def _read_complete(sim: SolmanSimulator, args: dict[str, Any]) -> Response:
    document, refused = _document(sim, "ReadCompleteIncident", args)
    if document is None:
        return refused
    zone = ZoneInfo(sim.ict_zone)
    statements = [
        {
            "TextType": text.tdid,
            "Texts": text.text.split("\n"),
            "Timestamp": _stamp(text.at, zone),
            "PersonId": text.author,
            "Language": "EN",
        }
        for text in document.texts
    ]
    attributes = {
        "SAPUserStatus": document.status,
        "SAPProcessType": document.process_type,
        "SAPIncidentID": document.object_id,
    }
    infos = [
        {"Guid": f"{document.guid[:28]}{index:04d}", "ParentGuid": "", "AddInfoAttribute": name, "AddInfoValue": value}
        for index, (name, value) in enumerate(attributes.items())
    ]
    head = {
        "IncidentGuid": document.guid, "RequesterGuid": document.partner or "", "ProviderGuid": sim.system_guid,
        "ShortDescription": document.description, "Priority": document.priority, "Language": "EN",
    }  # fmt: skip
    files = [
        {"AttachmentGuid": f"{a.loio}{a.phio}", "Filename": a.filename, "MimeType": a.mime_type,
         "Data": base64.b64encode(a.data).decode(), "Timestamp": _stamp(a.at or document.changed_at, zone)}
        for a in document.attachments
    ]  # fmt: skip
    answer = {
        "IctAttachments": files,
        "IctAdditionalInfos": infos,
        "IctHead": head,
        "IctId": document.partner_id or "",
        "IctStatements": statements,
        "IctTimestamp": _stamp(document.changed_at, zone),
        "PrdIctId": document.object_id,
    }
    return _answer("ReadCompleteIncident", answer)


_OPERATIONS = {
    "RequestSystemGuid": _request_system_guid,
    "ProcessIncident": _process_incident,
    "AddInfo": _add_info,
    "VerifyIncidentSolution": _step("VerifyIncidentSolution", ("E0005",), "E0008"),
    "RejectIncidentSolution": _step("RejectIncidentSolution", ("E0005",), "E0002"),
    "CloseIncident": _step("CloseIncident", ("E0001", "E0002", "E0003", "E0004", "E0005"), "E0010"),
    "ListUnclosedIncidents": _list_unclosed,
    "ReadCompleteIncident": _read_complete,
}


def _silent_answer(sim: SolmanSimulator, operation: str, args: dict[str, Any]) -> dict[str, Any]:
    """What a write answers when it did nothing: no error; ProcessIncident even invents a number."""
    return {"PrdIctId": str(sim._next_object_id + 500000)} if operation == "ProcessIncident" else {}


# --- reading the call ------------------------------------------------------------------------------------------


def _read(element: Any) -> Any:
    """An element as plain data: text for a leaf, a list for a table of ``item`` rows, else a dict by name."""
    children = list(element)
    if not children:
        return element.text or ""
    if all(etree.QName(child).localname == "item" for child in children):
        return [_read(child) for child in children]
    return {etree.QName(child).localname: _read(child) for child in children}


def _rows(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _infos(args: dict[str, Any]) -> dict[str, str]:
    return {
        str(row.get("AddInfoAttribute")): str(row.get("AddInfoValue") or "")
        for row in _rows(args.get("IctAdditionalInfos"))
        if isinstance(row, dict)
    }


def _statements(args: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for row in _rows(args.get("IctStatements")):
        if isinstance(row, dict):
            lines = row.get("Texts")
            found.append((str(row.get("TextType") or "SU01"), "\n".join(lines if isinstance(lines, list) else [])))
    return found


def _document(sim: SolmanSimulator, operation: str, args: dict[str, Any]) -> tuple[Document | None, Response]:
    head = args.get("IctHead")
    guid = str((head.get("IncidentGuid") if isinstance(head, dict) else None) or args.get("IncidentGuid") or "")
    document = sim.documents.get(guid.upper())
    if document is None:
        return None, _answer(operation, errors=[("CRM_ORDER/001", f"Document {guid} does not exist")])
    return document, Response()


def _stamp(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y%m%d%H%M%S")


# --- writing the answer ----------------------------------------------------------------------------------------


def _answer(operation: str, values: dict[str, Any] | None = None, errors: Iterable[tuple[str, str]] = ()) -> Response:
    fields = {"Errors": [{"ErrorCode": code, "Val1": text} for code, text in errors], **(values or {})}
    inner = "".join(_xml(name, value) for name, value in sorted(fields.items()))
    return envelope(f'<n0:{operation}Response xmlns:n0="{NS}">{inner}</n0:{operation}Response>')


def _xml(name: str, value: Any) -> str:
    if isinstance(value, list):
        return f"<{name}>{''.join(_xml('item', row) for row in value)}</{name}>"
    if isinstance(value, dict):
        return f"<{name}>{''.join(_xml(key, item) for key, item in value.items())}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def fault(code: str, message: str) -> Response:
    body = f"<soap-env:Fault><faultcode>{code}</faultcode><faultstring>{escape(message)}</faultstring></soap-env:Fault>"
    return envelope(body, status=500)


def envelope(body: str, status: int = 200) -> Response:
    text = (
        f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}"><soap-env:Header/>'
        f"<soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"
    )
    return Response(text, status, media_type="text/xml; charset=utf-8")
