"""One interface to a Solution Manager, whatever the channel: `SolmanBackend`, and its `ict` and `odata` backends.

A backend lists the incidents changed since a moment, reads one, creates one, adds a note and reaches a canonical
status. Each write is read back before it counts: SAP Gateway answers success for writes that did nothing
(reference §7.2), so a write that does not show on the re-read raises `UpstreamRejected` naming it.

`OdataBackend` uses the Fiori services (``AI_CRM_GW_CREATE_INCIDENT_SRV`` to create, ``AI_CRM_GW_MYMESSAGE_SRV``
for the rest). The shipped services have no "changed since" query: `list_changed` reads the collection and keeps
what changed at or after `since` (closed bound), so it is a reconciliation read, one page of `limits.page_size`
at a time; a customer's own delta service plugs in here later. Statuses are reached as the profile's
`transitions` say (``confirmIncident``, ``withdrawIncident``); any other is refused with the reason.

`IctBackend` uses SAP's external service-desk interface (``ICT_SERVICE_DESK_API``, SOAP), the default for two-way
sync: the hub is registered in Solman as an external service desk with a system GUID of its own, and sees the
incidents exchanged with it. ICT has no "changed since" either: `list_changed` is a reconciliation poll —
``ListUnclosedIncidents`` (one request), then ``ReadCompleteIncident`` for each of them and for each of `also`
(incidents the hub still holds open, so that one closed in Solman since is seen once more) — and filters on the
last change. Statuses are reached as the profile's `transitions` say: an E-code (through ``AddInfo``'s
``SAPUserStatus``) or an operation (``VerifyIncidentSolution``, ``RejectIncidentSolution``, ``CloseIncident``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from connectors.solman._ict import IctService, parse_timestamp, rows, table, text_lines, timestamp
from connectors.solman._odata import (
    ODataService,
    datetime_literal,
    guid_compact,
    guid_literal,
    parse_datetime,
    string_literal,
)
from connectors.solman.profile import SolmanProfile, is_status_code
from itsm_core.errors import UpstreamError, UpstreamNotFound, UpstreamRejected
from itsm_core.models import TicketStatus


@dataclass(frozen=True)
class Note:
    text_type: str  # SAPscript text id (SU01 reply, SU99 description, …)
    text: str
    at: datetime | None
    author: str = ""

    @property
    def ref(self) -> str:
        """The note's identity: SAP gives texts none, so their type, time and content make one."""
        digest = hashlib.sha256(same_text(self.text).encode()).hexdigest()[:16]
        return f"{self.text_type}/{self.at.strftime('%Y%m%d%H%M%S') if self.at else '-'}/{digest}"


@dataclass(frozen=True)
class File:
    """An attachment of an incident."""

    name: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class Incident:
    """An incident as the hub needs it; `status` is the E-code, `canonical` its meaning in the profile."""

    guid: str  # 32 upper-case hex
    object_id: str
    process_type: str
    description: str
    priority: str
    status: str | None
    canonical: TicketStatus | None
    changed_at: datetime | None
    notes: tuple[Note, ...] = ()
    files: tuple[File, ...] = ()
    #: Files not read: over the profile's `limits.max_attachment_bytes` (name and size, for a line that says so).
    files_left_out: tuple[tuple[str, int], ...] = ()


class SolmanBackend(Protocol):
    name: str

    def listed(self, also: Iterable[str] = ()) -> list[str]:
        """The GUIDs of the incidents the channel lists (ICT: the open ones exchanged with the hub; OData: every
        one), then those of `also` it did not list (the hub's open ones), each once."""
        ...

    def list_changed(self, since: datetime | None, also: Iterable[str] = ()) -> Iterator[Incident]:
        """Incidents changed at or after `since` (all when None), with their notes where the channel reads them
        together; `also`: GUIDs to look at besides the channel's own list (the hub's open incidents)."""
        ...

    def read(self, guid: str) -> Incident:
        """One incident with its notes."""
        ...

    def create(self, title: str, text: str, *, priority: str, process_type: str | None = None) -> Incident: ...

    def add_note(self, guid: str, text: str) -> Note:
        """Add a reply text; the note as the system now holds it (read back)."""
        ...

    def transition(self, guid: str, status: TicketStatus, comment: str = "") -> None: ...

    def attach(self, guid: str, file: File) -> None:
        """Attach a file; checked on the incident read back."""
        ...

    def missing(self) -> list[str]:
        """What the connector would call that the system does not offer (its WSDL or $metadata), each named."""
        ...


class OdataBackend:
    """`SolmanBackend` over the Fiori OData services (see the module docstring)."""

    name = "odata"

    def __init__(
        self, create: ODataService, messages: ODataService, profile: SolmanProfile, delta: ODataService | None = None
    ) -> None:
        self.create_service, self.messages, self.profile, self.delta = create, messages, profile, delta

    def changed_since(self, since: datetime | None) -> list[tuple[datetime, str]]:
        """(change date, GUID) of every incident the profile's delta service lists as changed at or after `since`
        (closed bound; all when None), oldest first. Only with a delta service (`profile.delta`)."""
        feed = self.profile.delta
        assert self.delta is not None and feed is not None, "no delta service in the profile"
        params = {"$filter": f"{feed.changed_at} ge {datetime_literal(since)}"} if since else {}
        found = []
        for row in self.delta.iter_collection(feed.entity_set, params, top=self.profile.limits.page_size):
            changed_at = parse_datetime(row.get(feed.changed_at))
            if changed_at is None:
                raise UpstreamError(
                    f"{self.delta.system}: {feed.service} listed an incident without {feed.changed_at}: check the "
                    "profile's delta.changed_at",
                    system=self.delta.system,
                )
            found.append((changed_at, guid_compact(str(row[feed.guid]))))
        return sorted(found)

    def listed(self, also: Iterable[str] = ()) -> list[str]:
        rows = self.messages.iter_collection("MessageResultSet", top=self.profile.limits.page_size)
        return _once([guid_compact(str(row["Guid"])) for row in rows], also)

    def list_changed(self, since: datetime | None, also: Iterable[str] = ()) -> Iterator[Incident]:
        # MessageResultSet holds every incident, closed ones included: `also` is in it already.
        for row in self.messages.iter_collection("MessageResultSet", top=self.profile.limits.page_size):
            incident = self._incident(row)
            if since is None or incident.changed_at is None or incident.changed_at >= since:
                yield incident

    def read(self, guid: str) -> Incident:
        key = _key(guid)
        notes = tuple(
            Note(str(row.get("Tdid") or ""), str(row.get("TextString") or ""), parse_datetime(row.get("DateTimeText")))
            for row in self.messages.get(f"{key}/TextSet")
        )
        files, left_out = [], []
        for row in self.messages.get(f"{key}/AttachmentSet"):
            name, size = str(row.get("Filename") or "attachment"), int(row.get("DocumentSize") or 0)
            if size > self.profile.limits.max_attachment_bytes:
                left_out.append((name, size))
                continue
            media = (f"AttachmentSet(refGuid={guid_literal(guid)},loioId={string_literal(str(row['loioId']))},"
                     f"phioId={string_literal(str(row['phioId']))})/$value")  # fmt: skip
            files.append(
                File(name, str(row.get("MimeType") or "application/octet-stream"), self.messages.get_media(media))
            )
        incident = self._incident(self.messages.get(key))
        return replace(incident, notes=notes, files=tuple(files), files_left_out=tuple(left_out))

    def attach(self, guid: str, file: File) -> None:
        before = len(self.read(guid).files)
        self.messages.post_media(f"{_key(guid)}/AttachmentSet", file.content, filename=file.name,
                                 content_type=file.content_type)  # fmt: skip
        _attached(self.read(guid).files[before:], file, self.messages.system, guid)

    def create(self, title: str, text: str, *, priority: str, process_type: str | None = None) -> Incident:
        """A new incident: the short description is the title cut to the profile's length; the whole title
        heads the long text, so nothing is lost."""
        short, long_text = self.profile.short_and_long(title, text)
        body = {"ProcessType": process_type or self.profile.process_types[0], "Description": short,
                "LongText": long_text, "Priority": priority}  # fmt: skip
        created = self.create_service.post("IncidentSet", body)
        guid = created.get("Guid") if isinstance(created, dict) else None
        try:
            return self.read(guid_compact(str(guid)))
        except (ValueError, UpstreamNotFound) as exc:
            raise self._not_applied(f"the incident {short!r}", f"no incident {guid} to read back ({exc})") from None

    def add_note(self, guid: str, text: str) -> Note:
        before = len(self.read(guid).notes)
        self.messages.post(f"{_key(guid)}/TextSet", {"TextString": text})
        return _added(self.read(guid).notes[before:], text, self.messages.system, guid)

    def transition(self, guid: str, status: TicketStatus, comment: str = "") -> None:
        way = self.profile.way_to(status, "odata", self.messages.system)  # the Fiori services: confirm, withdraw
        self.messages.call(way, {"Guid": guid_literal(guid), "Comments": string_literal(comment)})
        reached = self.read(guid).canonical
        if reached != status:
            raise self._not_applied(f"{way} on {guid}", f"the incident is {reached}, not {status}")

    def missing(self) -> list[str]:
        wanted = {
            self.create_service: {"IncidentSet"},
            self.messages: {"MessageResultSet", *(ways["odata"] for ways in self.profile.transitions.values()
                                                  if "odata" in ways)},
        }  # fmt: skip
        if self.delta is not None and self.profile.delta is not None:
            wanted[self.delta] = {self.profile.delta.entity_set}
        problems = []
        for service, names in wanted.items():
            offered = service.metadata_names()
            problems += [f"{service.url.rsplit('/', 1)[-1]} has no {name} in its $metadata" for name in sorted(names)
                         if name not in offered]  # fmt: skip
        return problems

    def _incident(self, row: dict[str, Any]) -> Incident:
        process_type = str(row.get("ProcessType") or "")
        status = row.get("UserStatus")
        return Incident(
            guid=guid_compact(str(row["Guid"])),
            object_id=str(row.get("ObjectId") or ""),
            process_type=process_type,
            description=str(row.get("Description") or ""),
            priority=str(row.get("Priority") or ""),
            status=status,
            canonical=self.profile.status_of(process_type, status) if status else None,
            changed_at=parse_datetime(row.get("ChangedAtDate")),
        )

    def _not_applied(self, what: str, why: str) -> UpstreamRejected:
        return _not_applied(self.messages.system, what, why)


def _key(guid: str) -> str:
    return f"MessageResultSet({guid_literal(guid)})"


class IctBackend:
    """`SolmanBackend` over ``ICT_SERVICE_DESK_API`` (see the module docstring). `system_guid` is the hub's own
    GUID as an external service desk (the requester side of every exchanged incident)."""

    name = "ict"

    def __init__(self, service: IctService, profile: SolmanProfile, system_guid: str, language: str = "EN") -> None:
        self.service, self.profile, self.system_guid, self.language = service, profile, system_guid, language
        self.zone = profile.timezones.ict_timestamps

    def listed(self, also: Iterable[str] = ()) -> list[str]:
        """The open incidents exchanged with the hub (``ListUnclosedIncidents``: one request), then `also`."""
        answer = self.service.call("ListUnclosedIncidents", SystemGuid=self.system_guid)
        unclosed = [guid_compact(str(row["IncidentGuid"])) for row in rows(answer.get("Incidents"))
                    if row.get("IncidentGuid")]  # fmt: skip
        return _once(unclosed, also)

    def list_changed(self, since: datetime | None, also: Iterable[str] = ()) -> Iterator[Incident]:
        for guid in self.listed(also):
            try:
                incident = self.read(guid)
            except UpstreamNotFound:
                continue  # gone since it was listed
            if since is None or incident.changed_at is None or incident.changed_at >= since:
                yield incident

    def read(self, guid: str) -> Incident:
        answer = self.service.call("ReadCompleteIncident", IncidentGuid=guid_compact(guid))
        head = answer.get("IctHead") or {}
        if not head.get("IncidentGuid"):
            raise UpstreamNotFound(f"{self.service.system}: no incident {guid} in Solman", system=self.service.system)
        infos = {str(row.get("AddInfoAttribute")): str(row.get("AddInfoValue") or "")
                 for row in rows(answer.get("IctAdditionalInfos"))}  # fmt: skip
        process_type = infos.get("SAPProcessType") or self.profile.process_types[0]
        status = infos.get("SAPUserStatus") or None
        notes = tuple(
            Note(
                str(row.get("TextType") or ""),
                "\n".join(str(line or "") for line in rows(row.get("Texts"))),
                parse_timestamp(row.get("Timestamp"), self.zone),
                str(row.get("PersonId") or ""),
            )
            for row in rows(answer.get("IctStatements"))
        )
        return Incident(
            guid=guid_compact(str(head["IncidentGuid"])),
            object_id=infos.get("SAPIncidentID") or str(answer.get("PrdIctId") or ""),
            process_type=process_type,
            description=str(head.get("ShortDescription") or ""),
            priority=str(head.get("Priority") or ""),
            status=status,
            canonical=self.profile.status_of(process_type, status) if status else None,
            changed_at=parse_timestamp(answer.get("IctTimestamp"), self.zone),
            notes=notes,
            files=tuple(
                File(str(row.get("Filename") or "attachment"), str(row.get("MimeType") or "application/octet-stream"),
                     bytes(row.get("Data") or b""))
                for row in rows(answer.get("IctAttachments"))
                if str(row.get("Delete") or "").upper() != "X"
                and len(row.get("Data") or b"") <= self.profile.limits.max_attachment_bytes
            ),
            files_left_out=tuple(
                (str(row.get("Filename") or "attachment"), len(row.get("Data") or b""))
                for row in rows(answer.get("IctAttachments"))
                if len(row.get("Data") or b"") > self.profile.limits.max_attachment_bytes
            ),
        )  # fmt: skip

    def attach(self, guid: str, file: File) -> None:
        before = len(self.read(guid).files)
        attachment = {
            "AttachmentGuid": uuid.uuid4().hex.upper(), "Filename": file.name, "MimeType": file.content_type,
            "Data": file.content, "Timestamp": timestamp(_now(), self.zone), "Language": self.language,
        }  # fmt: skip
        self.service.call("AddInfo", **self._envelope(guid, []), IctAttachments=table([attachment]))
        _attached(self.read(guid).files[before:], file, self.service.system, guid)

    def create(
        self, title: str, text: str, *, priority: str, process_type: str | None = None, key: str | None = None
    ) -> Incident:
        """Hand an incident over (``ProcessIncident``). Its GUID comes from `key` (the hub's ticket) when given, so
        a resend after a lost answer finds the first one instead of creating a second."""
        short, long_text = self.profile.short_and_long(title, text)
        guid = (uuid.uuid5(uuid.UUID(self.system_guid), key) if key else uuid.uuid4()).hex.upper()
        head = {"IncidentGuid": guid, "RequesterGuid": self.system_guid, "ShortDescription": short,
                "Priority": priority, "Language": self.language}  # fmt: skip
        self.service.call(
            "ProcessIncident",
            IctHead=head,
            IctId=key or guid,
            IctTimestamp=timestamp(_now(), self.zone),
            IctStatements=table([self._statement(self.profile.text_types.description, long_text)]),
            IctAdditionalInfos=table(
                [{"AddInfoAttribute": "SAPProcessType", "AddInfoValue": process_type or self.profile.process_types[0]}]
            ),
        )
        try:
            return self.read(guid)
        except UpstreamNotFound:
            raise _not_applied(self.service.system, f"the incident {short!r}", "it cannot be read back") from None

    def add_note(self, guid: str, text: str) -> Note:
        before = len(self.read(guid).notes)
        self._add_info(guid, statements=[self._statement(self.profile.text_types.reply, text)])
        return _added(self.read(guid).notes[before:], text, self.service.system, guid)

    def transition(self, guid: str, status: TicketStatus, comment: str = "") -> None:
        way = self.profile.way_to(status, "ict", self.service.system)
        statements = [self._statement(self.profile.text_types.reply, comment)] if comment else []
        if is_status_code(way):
            self._add_info(guid, statements=statements, status=way)
        else:
            self.service.call(way, **self._envelope(guid, statements))
        reached = self.read(guid).canonical
        if reached != status:
            raise _not_applied(self.service.system, f"{way} on {guid}", f"the incident is {reached}, not {status}")

    def missing(self) -> list[str]:
        operations = {way for ways in self.profile.transitions.values() for backend, way in ways.items()
                      if backend == "ict" and not is_status_code(way)}  # fmt: skip
        absent = set(self.service.missing_operations()) | (operations - self.service.operations)
        return [f"the ICT WSDL has no operation {name}" for name in sorted(absent)]

    def _add_info(self, guid: str, *, statements: list[dict[str, Any]], status: str | None = None) -> None:
        infos = [{"AddInfoAttribute": "SAPUserStatus", "AddInfoValue": status}] if status else []
        self.service.call("AddInfo", **self._envelope(guid, statements), IctAdditionalInfos=table(infos))

    def _envelope(self, guid: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "IctHead": {"IncidentGuid": guid_compact(guid), "RequesterGuid": self.system_guid},
            "IctId": guid_compact(guid),
            "IctTimestamp": timestamp(_now(), self.zone),
            "IctStatements": table(statements),
        }

    def _statement(self, text_type: str, text: str) -> dict[str, Any]:
        return {"TextType": text_type, "Texts": text_lines(text), "Timestamp": timestamp(_now(), self.zone),
                "Language": self.language}  # fmt: skip


def _added(new_notes: tuple[Note, ...], text: str, system: str, guid: str) -> Note:
    """The note just written among the incident's new ones; a silent success is reported."""
    for note in new_notes:
        if same_text(note.text) == same_text(text):
            return note
    raise _not_applied(system, f"a note on {guid}", "the note is not among the incident's texts")


def _attached(new_files: tuple[File, ...], file: File, system: str, guid: str) -> None:
    if not any(found.name == file.name and found.content == file.content for found in new_files):
        raise _not_applied(system, f"the file {file.name!r} on {guid}", "it is not among the incident's attachments")


def _once(listed: list[str], also: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*listed, *(guid_compact(guid) for guid in also)]))


def same_text(text: str) -> str:
    """A text as compared across channels: without whitespace, since SAPscript cuts lines at 132 characters and
    reads them back joined by line breaks."""
    return "".join(text.split())


def _now() -> datetime:
    return datetime.now(UTC)


def _not_applied(system: str, what: str, why: str) -> UpstreamRejected:
    return UpstreamRejected(
        f"{system}: SAP answered success for {what} but did not apply it ({why}); check the incident in Solman "
        "(a lock, a missing authorisation, a BAdI) and retry",
        system=system,
    )
