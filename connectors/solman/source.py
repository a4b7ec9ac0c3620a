"""`SolmanConnector`: a Solution Manager's incidents as JSON documents, through the source's backend.

One run: `plan_pages` asks the backend for the incidents its channel lists (ICT: the open ones exchanged with the
hub; OData: all) plus the ones the hub still holds open (so an incident closed in Solman is read once more and
its closure seen), and cuts them into pages of `page_size` GUIDs. With the customer's delta service (odata and
`profile.delta`), it asks only for the incidents changed at or after its watermark (the latest change date read,
less the delta's `overlap_seconds`; closed bound), oldest first, and each page moves the watermark to its latest;
without one, the connector keeps no watermark. `fetch_page` reads each incident of a page with its notes, in
parallel up to the profile's `max_connections` (each request holds an SAP work process): SAP offers no read of
several incidents at once.

A document is the incident as read (`incident_document`), sorted and without a read time, so an unchanged
incident lands the same bytes and the landing's hash makes it a no-op. `decode` applies the profile: the E-code
becomes a canonical status (a code the profile does not map quarantines the incident, naming it), SAP's priority
the hub's, the first description text the ticket's description, the other texts its comments.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import ssl
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors._html import html_to_text
from connectors.base import TICKETS, SourceConnector
from connectors.solman._auth import BearerToken
from connectors.solman._ict import IctService, system_guid
from connectors.solman._odata import ODataService
from connectors.solman._rfc import read_table
from connectors.solman.backend import IctBackend, Incident, Note, OdataBackend, SolmanBackend
from connectors.solman.config import SolmanSource
from connectors.solman.profile import SolmanProfile
from itsm_core.errors import ConfigError, ParseError, UpstreamError, UpstreamNotFound
from itsm_core.models import RawRecord
from itsm_core.store.identities import unfinished_ticket_ids
from itsm_core.threads import ContextPool

log = logging.getLogger("itsm.connectors.solman")

log = logging.getLogger("itsm.connectors.solman")

CREATE_SERVICE, MESSAGE_SERVICE = "AI_CRM_GW_CREATE_INCIDENT_SRV", "AI_CRM_GW_MYMESSAGE_SRV"


def build_http(source: SolmanSource, profile: SolmanProfile) -> httpx.Client:
    """The source's one connection pool: its authentication (basic, an X.509 client certificate, or an OAuth 2.0
    bearer), TLS as configured, the profile's limits."""
    limits = profile.limits
    auth: httpx.Auth | tuple[str, str] | None = None
    if source.oauth is not None:
        oauth = source.oauth
        auth = BearerToken(oauth.token_url, oauth.client_id, oauth.client_secret.get_secret_value(),
                           scope=oauth.scope, system=source.name)  # fmt: skip
    elif source.user is not None and source.password is not None:
        auth = (source.user, source.password.get_secret_value())
    return httpx.Client(
        auth=auth,
        verify=tls_context(source),
        timeout=httpx.Timeout(limits.read_timeout_seconds, connect=10),
        limits=httpx.Limits(max_connections=limits.max_connections),
    )


def tls_context(source: SolmanSource) -> ssl.SSLContext:
    """Whom the hub trusts (the system's CA, or the usual ones; nobody's certificate checked when verify_tls is
    false) and, for X.509 authentication, the certificate it shows."""
    context = ssl.create_default_context(cafile=str(source.ca_file) if source.ca_file else None)
    if not source.verify_tls:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if source.client_cert is not None:
        context.load_cert_chain(str(source.client_cert), str(source.client_key) if source.client_key else None)
    return context


def build_backend(source: SolmanSource, profile: SolmanProfile, http: httpx.Client) -> SolmanBackend:
    limits = profile.limits
    retry = {"lock_retries": limits.lock_retries, "lock_backoff_seconds": limits.lock_backoff_seconds}
    if source.backend == "ict":
        service = IctService(http, source.ict_endpoint(), system=source.name, wsdl=source.ict_wsdl, **retry)
        return IctBackend(service, profile, hub_guid(source), source.language)

    def service(name: str) -> ODataService:
        return ODataService(http, source.odata_service(name), system=source.name, sap_client=source.sap_client,
                            language=source.language, **retry)  # fmt: skip

    delta = service(profile.delta.service) if profile.delta is not None else None
    return OdataBackend(service(CREATE_SERVICE), service(MESSAGE_SERVICE), profile, delta)


def hub_guid(source: SolmanSource) -> str:
    """The hub's system GUID as Solman's external service desk for this source."""
    return source.system_guid or system_guid(source.name)


def incident_document(incident: Incident) -> bytes:
    """The landed payload of an incident: its fields and notes, dates in ISO 8601 UTC, keys sorted."""
    data = asdict(incident)
    data.pop("canonical")  # the profile's reading, done again by `decode` (a profile change then applies)
    return json.dumps(data, default=_iso, sort_keys=True, ensure_ascii=False).encode()


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):  # a file's content
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


class SolmanConnector(SourceConnector):
    payload_format = "json"

    @property
    def incremental(self) -> bool:  # type: ignore[override]
        """Only with the customer's delta service (odata): SAP's own channels list no changes since a moment."""
        return self.source.backend == "odata" and self.profile.delta is not None

    def __init__(self, source: SolmanSource, backend: SolmanBackend | None = None) -> None:
        self.source = source
        self.profile = source.loaded_profile()
        self._http = None if backend is not None else build_http(source, self.profile)
        self._backend = backend
        self._pool = ContextPool(max_workers=self.profile.limits.max_connections, thread_name_prefix="solman")
        self._store: Any = None
        self._checked = backend is not None  # a backend handed in is a test's: no system to check
        self._notices: list[str] = []

    @property
    def backend(self) -> SolmanBackend:
        """Built at first use: the ICT backend reads the system's WSDL first, which only a run needs."""
        if self._backend is None:
            assert self._http is not None
            self._backend = build_backend(self.source, self.profile, self._http)
        return self._backend

    def use_store(self, store: Any) -> None:
        self._store = store

    def check(self) -> list[str]:
        """The self-check: the channel offers every operation the connector and the profile's transitions call,
        and every status profile and code the profile maps exists in the system (table TJ30T, read with
        RFC_READ_TABLE). When TJ30T cannot be read (no S_RFC for it), the codes are not verified: said once in
        the log and the run's notices, not guessed."""
        problems = self.backend.missing()
        if self._http is None:
            return problems  # a backend handed in (a test's): no system to read TJ30T from
        profiles = sorted(set(self.profile.status_profiles.values()))
        try:
            rows = read_table(
                self._http, self.source.url, system=self.source.name, sap_client=self.source.sap_client,
                table="TJ30T", fields=["STSMA", "ESTAT", "TXT30"],
                where=" OR ".join(f"STSMA = '{profile}'" for profile in profiles),
            )  # fmt: skip
        except UpstreamError as exc:
            said = (
                f"the status codes were not checked against the system: TJ30T cannot be read ({exc}); grant the "
                "hub's user S_RFC for RFC_READ_TABLE (function group SDTX) to have them checked"
            )
            if said not in self._notices:
                self._notices.append(said)
                log.warning("%s: %s", self.source.name, said)
            return problems
        held: dict[str, set[str]] = {}
        for row in rows:
            held.setdefault(row.get("STSMA", ""), set()).add(row.get("ESTAT", ""))
        return problems + self.profile.problems_against(held)

    def facts(self) -> dict[str, str]:
        found = {"backend": self.source.backend, "profile": self.source.profile}
        if self.source.backend == "ict":
            found |= {"ICT endpoint": self.source.ict_endpoint(), "hub system GUID": hub_guid(self.source)}
        return found

    def notices(self) -> list[str]:
        return list(self._notices)

    def plan_pages(self, watermark: str | None, entity: str = TICKETS) -> Iterator[dict[str, Any]]:
        if not self._checked:
            problems = self.check()
            if problems:
                raise ConfigError(
                    f"{self.source.name}: the profile does not match the system, so no incident is read: "
                    + "; ".join(problems)
                    + f". Fix the profile ({self.source.profile}) or the system, then run `itsm sync check "
                    f"{self.source.name}`",
                    key="profile",
                )  # fmt: skip
            self._checked = True
        size = self.source.page_size
        if self.incremental:
            assert isinstance(self.backend, OdataBackend) and self.profile.delta is not None
            since = _changed_at(watermark)
            overlap = timedelta(seconds=self.profile.delta.overlap_seconds)
            changed = self.backend.changed_since(since - overlap if since else None)
            for start in range(0, len(changed), size):
                chunk = changed[start : start + size]
                yield {"guids": [guid for _, guid in chunk], "until": chunk[-1][0].isoformat()}
            return
        unfinished: list[str] = []
        if self._store is not None:
            with self._store.connect() as conn:
                unfinished = unfinished_ticket_ids(conn, self.source.name)
        guids = self.backend.listed(unfinished)
        for start in range(0, len(guids), size):
            yield {"guids": guids[start : start + size]}

    def page_watermark(self, page: Any, watermark: str | None) -> str | None:
        """With a delta service: the latest change date read so far (pages come oldest first). Closed bound: the
        next run asks for changes at or after it, less the delta's `overlap_seconds`."""
        if not self.incremental:
            return None
        before = _changed_at(watermark)
        until = datetime.fromisoformat(page["until"])
        return json.dumps({"changed_at": max(until, before).isoformat() if before else until.isoformat()})

    def watermark_positions(self, watermark: str | None) -> dict[str, tuple[Any, ...]]:
        moment = _changed_at(watermark)
        return {"changed_at": (moment,)} if moment else {}

    def fetch_page(self, page: Any) -> list[RawRecord]:
        now = datetime.now(UTC)
        read = self._pool.map(self._read, page["guids"])
        return [
            RawRecord(
                external_id=incident.guid, payload=incident_document(incident), payload_format="json", received_at=now
            )
            for incident in read
            if incident is not None
        ]

    def _read(self, guid: str) -> Incident | None:
        try:
            return self.backend.read(guid)
        except UpstreamNotFound:
            return None  # gone since the plan

    def decode(self, payload: bytes, entity: str = TICKETS) -> dict[str, Any]:
        return decode_incident(payload, self.profile)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._http is not None:
            self._http.close()


def decode_incident(payload: bytes, profile: SolmanProfile) -> dict[str, Any]:
    """An incident document as the mapping reads it (see the module docstring). `ParseError` names what is wrong."""
    try:
        data = json.loads(payload)
        guid, process_type, code = data["guid"], data["process_type"], data.get("status")
        notes = list(data.get("notes") or [])
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not a Solman incident document ({type(exc).__name__}: {exc})") from None
    status = profile.status_of(process_type, code) if code else None
    if code and status is None:
        raise ParseError(
            f"user status {code} of process type {process_type} is not in the profile's status_map: add it to "
            f"status_map.{process_type} and replay"
        )
    priority = profile.priority_map.get(str(data.get("priority") or ""))

    def as_text(text: str) -> str:  # the system's texts are HTML or plain, as the profile says
        return html_to_text(text) if profile.text_format == "html" else text

    description_type = profile.text_types.description
    first = next((note for note in notes if note.get("text_type") == description_type), None)
    comments = [
        {
            "external_id": _note_ref(note),
            "body": as_text(note.get("text") or ""),
            "public": note.get("text_type") != profile.text_types.internal_note,
            "author": note.get("author") or None,
            "created_at": _parsed(note.get("at")),
        }
        for note in notes
        if note is not first and (note.get("text") or "").strip()
    ]
    try:
        attachments = [
            {"name": f["name"], "content_type": f["content_type"], "content": base64.b64decode(f["content"])}
            for f in data.get("files") or []
        ]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise ParseError(f"incident {guid}: an attachment has no readable content") from None
    left_out = [
        f"[file {name} ({size} bytes) left out: over the profile's limits.max_attachment_bytes "
        f"({profile.limits.max_attachment_bytes}); raise it to import the file with the incident's next change]"
        for name, size in data.get("files_left_out") or []
    ]
    description = "\n\n".join(part for part in [as_text((first or {}).get("text") or ""), *left_out] if part)
    return {
        "guid": guid,
        "object_id": data.get("object_id"),
        "process_type": process_type,
        "user_status": code,
        "title": data.get("description") or f"Solman incident {data.get('object_id') or guid}",
        "description": description,
        "attachments": attachments,
        "status": str(status) if status else None,
        "priority": priority,
        "changed_at": _parsed(data.get("changed_at")),
        "comments": comments,
    }


def _note_ref(note: dict[str, Any]) -> str:
    return Note(note.get("text_type") or "", note.get("text") or "", _parsed(note.get("at")), "").ref


def _changed_at(watermark: str | None) -> datetime | None:
    return datetime.fromisoformat(json.loads(watermark)["changed_at"]) if watermark else None


def _parsed(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
