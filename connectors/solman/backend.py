"""One interface to a Solution Manager, whatever the channel: `SolmanBackend`, and its `odata` implementation.

A backend lists the incidents changed since a moment, reads one, creates one, adds a note and reaches a canonical
status. Each write is read back before it counts: SAP Gateway answers success for writes that did nothing
(reference §7.2), so a write that does not show on the re-read raises `UpstreamRejected` naming it.

`OdataBackend` uses the Fiori services (``AI_CRM_GW_CREATE_INCIDENT_SRV`` to create, ``AI_CRM_GW_MYMESSAGE_SRV``
for the rest). The shipped services have no "changed since" query: `list_changed` reads the collection and keeps
what changed at or after `since` (closed bound), so it is a reconciliation read, one page of `limits.page_size`
at a time; a customer's own delta service plugs in here later. Statuses are reached as the profile's
`transitions` say (``confirmIncident``, ``withdrawIncident``); any other is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from connectors.solman._odata import ODataService, guid_compact, guid_literal, parse_datetime, string_literal
from connectors.solman.profile import SolmanProfile
from itsm_core.errors import UpstreamNotFound, UpstreamRejected
from itsm_core.models import TicketStatus


@dataclass(frozen=True)
class Note:
    text_type: str  # SAPscript text id (SU01 reply, SU99 description, …)
    text: str
    at: datetime | None


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


class SolmanBackend(Protocol):
    def list_changed(self, since: datetime | None) -> Iterator[Incident]:
        """Incidents changed at or after `since` (all when None), without their notes."""
        ...

    def read(self, guid: str) -> Incident:
        """One incident with its notes."""
        ...

    def create(self, title: str, text: str, *, priority: str, process_type: str | None = None) -> Incident: ...

    def add_note(self, guid: str, text: str) -> None: ...

    def transition(self, guid: str, status: TicketStatus, comment: str = "") -> None: ...


class OdataBackend:
    """`SolmanBackend` over the Fiori OData services (see the module docstring)."""

    name = "odata"

    def __init__(self, create: ODataService, messages: ODataService, profile: SolmanProfile) -> None:
        self.create_service, self.messages, self.profile = create, messages, profile

    def list_changed(self, since: datetime | None) -> Iterator[Incident]:
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
        return replace(self._incident(self.messages.get(key)), notes=notes)

    def create(self, title: str, text: str, *, priority: str, process_type: str | None = None) -> Incident:
        """A new incident: the short description is the title cut to the profile's length; the whole title
        heads the long text, so nothing is lost."""
        limit = self.profile.limits.short_text
        short = title if len(title) <= limit else title[: limit - 1].rstrip() + "…"
        long_text = text if len(title) <= limit else f"{title}\n\n{text}"
        body = {"ProcessType": process_type or self.profile.process_types[0], "Description": short,
                "LongText": long_text, "Priority": priority}  # fmt: skip
        created = self.create_service.post("IncidentSet", body)
        guid = created.get("Guid") if isinstance(created, dict) else None
        try:
            return self.read(guid_compact(str(guid)))
        except (ValueError, UpstreamNotFound) as exc:
            raise self._not_applied(f"the incident {short!r}", f"no incident {guid} to read back ({exc})") from None

    def add_note(self, guid: str, text: str) -> None:
        path = f"{_key(guid)}/TextSet"
        before = len(self.messages.get(path))
        self.messages.post(path, {"TextString": text})
        after = [row.get("TextString") for row in self.messages.get(path)]
        if len(after) <= before or text not in after:
            raise self._not_applied(f"a note on {guid}", "the note is not among the incident's texts")

    def transition(self, guid: str, status: TicketStatus, comment: str = "") -> None:
        way = self.profile.transitions.get(status, {}).get("odata")
        if way is None:
            raise UpstreamRejected(
                f"{self.messages.system}: the profile gives no way to reach {status} through the odata backend "
                f"(transitions.{status}.odata); the Fiori services can only confirm or withdraw an incident",
                system=self.messages.system,
            )
        self.messages.call(way, {"Guid": guid_literal(guid), "Comments": string_literal(comment)})
        reached = self.read(guid).canonical
        if reached != status:
            raise self._not_applied(f"{way} on {guid}", f"the incident is {reached}, not {status}")

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
        system = self.messages.system
        return UpstreamRejected(
            f"{system}: SAP answered success for {what} but did not apply it ({why}); check the incident in "
            "Solman (a lock, a missing authorisation, a BAdI) and retry",
            system=system,
        )


def _key(guid: str) -> str:
    return f"MessageResultSet({guid_literal(guid)})"
