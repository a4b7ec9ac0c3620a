"""The canonical model: what a ticket, comment, attachment and configuration item are, whatever their source.

These pydantic models are the contract between mappings (which produce them) and the store (which persists
them). Times are timezone-aware and UTC; a naive datetime is refused rather than guessed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from itsm_core.errors import InvalidTransition


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must carry a time zone; convert local times at the edge, store UTC")
    return value.astimezone(UTC)


UTCDatetime = Annotated[datetime, AfterValidator(_as_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


ELLIPSIS = "…"


def clip(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, the cut marked with "…". The store's columns are bounded; a longer
    title or name is cosmetic, so it is shortened rather than the whole record refused (the raw record keeps
    it whole)."""
    return value if len(value) <= limit else value[: limit - 1].rstrip() + ELLIPSIS


def clip_filename(name: str, limit: int) -> str:
    """Like `clip`, keeping a short extension: "a-very-long-na….pdf"."""
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > 16:
        return clip(name, limit)
    return clip(stem, limit - len(extension) - 1) + "." + extension


def _clipped(limit: int, how=clip) -> BeforeValidator:
    return BeforeValidator(lambda value: how(value, limit) if isinstance(value, str) else value)


#: A text that is shortened to fit its column (identities — addresses, ids — are refused instead).
Title = Annotated[str, _clipped(500), Field(min_length=1)]
Name200 = Annotated[str, _clipped(200)]
FileName = Annotated[str, _clipped(500, clip_filename)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. UTC, Europe/Paris)") from None
    return name


#: A time zone's IANA name, checked when the config loads.
ZoneName = Annotated[str, AfterValidator(_known_zone)]


class TicketKind(StrEnum):
    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"
    PROBLEM = "problem"
    CHANGE = "change"


class TicketStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = TicketStatus
#: Which status may follow which. Resolved can be reopened (to any open status: GLPI sends it back to new or
#: assigned when the requester answers) until it is closed; closed and cancelled are final — a new request after
#: closure is a new ticket, as in ITIL. Any open status may go back to new: GLPI does so when the requester
#: answers a pending ticket nobody is assigned to, or the last assignee is removed (found by
#: tests/faults/test_convergence.py: refusing it left the two sides apart for good).
STATUS_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.PENDING, S.RESOLVED, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.NEW, S.IN_PROGRESS, S.PENDING, S.RESOLVED, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.NEW, S.ASSIGNED, S.PENDING, S.RESOLVED, S.CANCELLED}),
    S.PENDING: frozenset({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CANCELLED}),
    S.RESOLVED: frozenset({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.PENDING, S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
#: Statuses someone still works on (the rest are resolved, closed or cancelled).
OPEN_STATUSES = frozenset({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.PENDING})
del S


def check_transition(current: TicketStatus | str, requested: TicketStatus | str) -> None:
    """Raise `InvalidTransition` unless the table allows `current` → `requested` (staying put is allowed)."""
    current, requested = TicketStatus(current), TicketStatus(requested)
    if current == requested:
        return
    allowed = STATUS_TRANSITIONS[current]
    if requested not in allowed:
        raise InvalidTransition(current.value, requested.value, sorted(s.value for s in allowed))


class ClassifiedBy(StrEnum):
    RULE = "rule"
    MODEL = "model"
    HUMAN = "human"
    SOURCE = "source"  # taken as given from the upstream system


class CanonicalModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Attachment(CanonicalModel):
    """A file attached to a ticket or comment. Content is stored once per sha256, whoever attaches it."""

    name: FileName
    content_type: Name200 = "application/octet-stream"
    content: bytes = Field(repr=False)
    content_id: Annotated[str, _clipped(500)] | None = None  # for inline images referenced as cid: in HTML bodies

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        return len(self.content)


class Comment(CanonicalModel):
    body: str
    author: Annotated[str, _clipped(320)] | None = None  # "Name <address>" or a login: shown, never matched whole
    public: bool = True
    origin: str | None = Field(default=None, max_length=100)  # the source or system it came from
    created_at: UTCDatetime = Field(default_factory=utcnow)
    attachments: list[Attachment] = Field(default_factory=list)


class Ticket(CanonicalModel):
    """A ticket as the hub understands it. Fields left None are unknown, not empty."""

    kind: TicketKind = TicketKind.INCIDENT
    title: Title
    description: str = ""
    description_html: str | None = None  # sanitised; the original markup, kept for display
    status: TicketStatus = TicketStatus.NEW
    impact: int | None = Field(default=None, ge=1)
    urgency: int | None = Field(default=None, ge=1)
    priority: int | None = Field(default=None, ge=1)
    category: Name200 | None = None
    subcategory: Name200 | None = None
    intent: str | None = Field(default=None, max_length=100)  # password_reset, vpn_access, ...
    classification_confidence: float | None = Field(default=None, ge=0, le=1)
    classified_by: ClassifiedBy | None = None
    requester: str | None = Field(default=None, max_length=320)
    requester_name: Name200 | None = None
    assignment_group: str | None = Field(default=None, max_length=200)
    assignee: str | None = Field(default=None, max_length=320)
    source_type: str = Field(max_length=32)  # email, glpi, solman, webhook, web, chatbot, ...
    tenant: Name200 | None = None
    created_at: UTCDatetime = Field(default_factory=utcnow)
    updated_at: UTCDatetime = Field(default_factory=utcnow)
    resolved_at: UTCDatetime | None = None
    closed_at: UTCDatetime | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    attachments: list[Attachment] = Field(default_factory=list)


class CIStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class ConfigurationItem(CanonicalModel):
    """A configuration item: an asset or a piece of software the hub knows, whatever system it came from.

    Lengths are the store's column sizes, so a value too long is refused with its record (quarantined) instead
    of failing the whole batch in the database.
    """

    ci_class: str = Field(min_length=1, max_length=64)  # computer, network_device, printer, monitor, software, ...
    name: str = Field(min_length=1, max_length=300)
    serial: str | None = Field(default=None, max_length=200)
    status: CIStatus = CIStatus.ACTIVE
    tenant: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class RawRecord:
    """One record as a connector fetched it.

    `locator` says where it came from (a file path, a mailbox UID) so the source can acknowledge it after the
    batch is committed; it is not part of the record's identity.
    """

    external_id: str
    payload: bytes
    payload_format: str
    received_at: datetime
    locator: str | None = None

    @cached_property  # read by the landing and by the mapping: the payload is hashed once
    def payload_hash(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()
