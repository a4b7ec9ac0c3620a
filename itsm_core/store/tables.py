"""The store's tables, as SQLAlchemy 2.0 typed declarative classes; the same schema on SQLite and PostgreSQL.

The classes exist for typed queries and for Alembic; the hot path (landing, bulk upsert) uses their
`__table__` with Core statements, never an ORM object per row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from itsm_core.models import CIStatus, ClassifiedBy, TicketKind, TicketStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so values are normalised to UTC before they
    are written and tagged UTC when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONDoc = JSON().with_variant(postgresql.JSONB(), "postgresql")
#: Raw payloads and attachment content: BYTEA on PostgreSQL, BLOB on SQLite.
Blob = LargeBinary()
#: Surrogate keys: BIGINT on PostgreSQL, INTEGER on SQLite (so it stays the rowid alias that autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, values: list[str]) -> CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=f"{column}_valid")


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]  # type: ignore[attr-defined]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _now() -> datetime:
    return datetime.now(UTC)


class TicketRow(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        _one_of("kind", _values(TicketKind)),
        _one_of("status", _values(TicketStatus)),
        _one_of("classified_by", _values(ClassifiedBy)),
        CheckConstraint(
            "classification_confidence IS NULL OR (classification_confidence >= 0 AND classification_confidence <= 1)",
            name="confidence_range",
        ),
        Index(None, "status", "updated_at"),
        Index(None, "tenant", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    description_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    impact: Mapped[int | None] = mapped_column(Integer)
    urgency: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(200))
    subcategory: Mapped[str | None] = mapped_column(String(200))
    intent: Mapped[str | None] = mapped_column(String(100))  # what the requester wants: password_reset, ...
    classification_confidence: Mapped[float | None] = mapped_column(Float)
    classified_by: Mapped[str | None] = mapped_column(String(16))
    requester: Mapped[str | None] = mapped_column(String(320))
    requester_name: Mapped[str | None] = mapped_column(String(200))
    assignment_group: Mapped[str | None] = mapped_column(String(200))
    assignee: Mapped[str | None] = mapped_column(String(320))
    source_type: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    # field → the rule, model or matrix that set it; a field a person or a source sets leaves this map
    decided_by: Mapped[dict[str, str] | None] = mapped_column(JSONDoc)


class CommentRow(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    author: Mapped[str | None] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    origin: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CommentRefRow(Base):
    """Identity of a comment in another system: a GLPI followup pulled, or the followup a hub comment became.

    `(system, external_id)` names one comment, so a followup the hub pushed is recognised when it comes back.
    """

    __tablename__ = "comment_refs"
    __table_args__ = (UniqueConstraint("system", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(500))
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushedValueRow(Base):
    """What the hub last pushed to a system, per ticket and field, as a hash: echo suppression.

    When that system later reports the same value for the field, it is the hub's own change coming back,
    not news: it is neither applied again nor propagated to other systems.
    """

    __tablename__ = "pushed_values"

    system: Mapped[str] = mapped_column(String(100), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    field: Mapped[str] = mapped_column(String(100), primary_key=True)
    value_hash: Mapped[str] = mapped_column(String(64))
    pushed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TicketWatcherRow(Base):
    """People kept informed about a ticket without being its requester (e.g. CC'd on the mail that opened it)."""

    __tablename__ = "ticket_watchers"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HubKeyRow(Base):
    """The installation's own secrets, made at random by the migration that creates them (never in the config)."""

    __tablename__ = "hub_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # reply_token
    value: Mapped[str] = mapped_column(String(128))


class MailMessageRow(Base):
    """Every Message-ID the hub received (`in`) or sent (`out`), and the ticket it belongs to: replies thread by it.

    `address` is the sender of a received mail or the recipient of a sent one (flood limits count by it).
    """

    __tablename__ = "mail_messages"
    __table_args__ = (
        UniqueConstraint("direction", "message_id"),
        _one_of("direction", ["in", "out"]),
        Index(None, "address", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(500))
    direction: Mapped[str] = mapped_column(String(3))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="SET NULL"))
    address: Mapped[str | None] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AttachmentBlobRow(Base):
    """Attachment content, stored once per sha256 whatever the number of tickets that carry it."""

    __tablename__ = "attachment_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(Blob)


class AttachmentRow(Base):
    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("ticket_id", "sha256", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(ForeignKey("attachment_blobs.sha256"), index=True)
    content_id: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConfigurationItemRow(Base):
    __tablename__ = "configuration_items"
    __table_args__ = (_one_of("status", _values(CIStatus)), Index(None, "ci_class", "name"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ci_class: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    serial: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CIRelationshipRow(Base):
    """A typed, directed edge between two CIs, e.g. `runs_on`, `depends_on`, `connected_to`, `installed_on`."""

    __tablename__ = "ci_relationships"
    __table_args__ = (
        UniqueConstraint("source_ci_id", "rel_type", "target_ci_id"),
        CheckConstraint("source_ci_id <> target_ci_id", name="no_self_loop"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_ci_id: Mapped[int] = mapped_column(ForeignKey("configuration_items.id", ondelete="CASCADE"))
    target_ci_id: Mapped[int] = mapped_column(ForeignKey("configuration_items.id", ondelete="CASCADE"), index=True)
    rel_type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TicketCILinkRow(Base):
    __tablename__ = "ticket_ci_links"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    ci_id: Mapped[int] = mapped_column(
        ForeignKey("configuration_items.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(64), primary_key=True, default="affected")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExternalRefRow(Base):
    """Identity across systems: `(system, external_id)` names exactly one canonical ticket or CI.

    `system` is the configured source name (two GLPI instances are two systems). Systems whose ids are
    only unique per item type prefix them (e.g. ``Computer/42``).
    """

    __tablename__ = "external_refs"
    __table_args__ = (
        UniqueConstraint("system", "external_id"),
        CheckConstraint(
            "(ticket_id IS NOT NULL AND ci_id IS NULL) OR (ticket_id IS NULL AND ci_id IS NOT NULL)",
            name="one_target",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(500))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    ci_id: Mapped[int | None] = mapped_column(ForeignKey("configuration_items.id", ondelete="CASCADE"), index=True)
    remote_version: Mapped[str | None] = mapped_column(String(100))
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    landed_hash: Mapped[str | None] = mapped_column(String(64))
    pushed_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEventRow(Base):
    """Append-only history: the database itself refuses UPDATE and DELETE (triggers from the migration)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "entity", "entity_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    entity: Mapped[str] = mapped_column(String(32))  # ticket, ci
    entity_id: Mapped[int] = mapped_column(BigInteger)
    field: Mapped[str] = mapped_column(String(100))
    old_value: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONDoc, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))  # who or what: source:NAME, rule:NAME, user:LOGIN
    source: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)  # why: the rule, the model's confidence, ...


class RoutingTurnRow(Base):
    """Round-robin among equally loaded agents of a group: the agent whose last turn is oldest goes next."""

    __tablename__ = "routing_turns"

    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    agent: Mapped[str] = mapped_column(String(320), primary_key=True)
    turn: Mapped[int] = mapped_column(BigInteger)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


SLA_STATES = ["running", "paused", "met", "breached"]


class SlaClockRow(Base):
    """Each ticket's SLA clocks as last computed from its history (`itsm_core/rules/sla.py`): kept for fast
    questions ("what breaches in the next hour?"); recomputing replaces them, they are never counted forward."""

    __tablename__ = "sla_clocks"
    __table_args__ = (_one_of("state", SLA_STATES), Index(None, "state", "due_at"))

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(100), primary_key=True)  # first_response, resolution, ola:GROUP
    policy: Mapped[str] = mapped_column(String(100))
    calendar: Mapped[str] = mapped_column(String(100))
    target_seconds: Mapped[float] = mapped_column(Float)
    used_seconds: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlaEventRow(Base):
    """Warnings, breaches and escalation levels fired: at most once per ticket, metric and level."""

    __tablename__ = "sla_events"
    __table_args__ = (UniqueConstraint("ticket_id", "metric", "level"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(100))  # warn:75, breach, escalation:NAME
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)


class SyncStateRow(Base):
    """Watermarks per source and entity; advanced only in the transaction that commits the page they cover."""

    __tablename__ = "sync_state"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    entity: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark: Mapped[str | None] = mapped_column(Text)  # a connector's cursors (JSON for GLPI), any length
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class WebhookDeliveryRow(Base):
    """Every delivery a webhook source accepted, as received (committed before the sender hears 202): the upstream
    of the `webhook` kind, read in id order by its connector. Once per (source, delivery key)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("source", "delivery_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    delivery_key: Mapped[str] = mapped_column(String(200))  # the sender's delivery id, else "sha256:<body hash>"
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDoc)  # those that matter (content type, sender, event)
    body: Mapped[bytes] = mapped_column(Blob)


INBOUND_OUTCOMES = ["pending", "created", "updated", "unchanged", "quarantined", "comment", "ignored", "duplicate"]


class InboundRecordRow(Base):
    """The raw landing: every payload exactly as the upstream gave it, once per content hash."""

    __tablename__ = "inbound_records"
    __table_args__ = (
        UniqueConstraint("source", "external_id", "payload_hash"),
        _one_of("outcome", INBOUND_OUTCOMES),
        Index(None, "source", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(500))
    payload: Mapped[bytes] = mapped_column(Blob)
    payload_format: Mapped[str] = mapped_column(String(16))  # eml, json, xml
    payload_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16), default="pending")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))


OUTBOX_STATES = ["pending", "sent", "dead"]


class OutboxRow(Base):
    """Changes to push to a target system, written in the same transaction as the change itself."""

    __tablename__ = "outbox"
    __table_args__ = (_one_of("state", OUTBOX_STATES), Index(None, "target_system", "state", "next_attempt_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_system: Mapped[str] = mapped_column(String(100))
    # None for mail about no ticket (e.g. telling a sender their message was too large to import)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    fields_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


DEAD_LETTER_STAGES = ["parse", "triage", "map", "store", "push"]


class DeadLetterRow(Base):
    """Quarantine: a record kept whole with why it failed, until someone fixes the cause and replays it."""

    __tablename__ = "dead_letters"
    __table_args__ = (_one_of("stage", DEAD_LETTER_STAGES), Index(None, "source", "replayed_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(500))
    inbound_record_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_records.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[bytes] = mapped_column(Blob)
    payload_format: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replay_attempts: Mapped[int] = mapped_column(Integer, default=0)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replay_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))


AUTOMATION_STATES = ["asking", "asked", "queued", "started", "succeeded", "failed", "declined"]


class AutomationRunRow(Base):
    """A ticket's automation (`itsm_core/automation/`): at most one per ticket, ever — the once-only guarantee.

    asking → asked (the requester was asked; `approval: ask`) → queued → started (the Prefect flow run) →
    succeeded | failed; or declined by the requester. Each step is written in the transaction of what caused it."""

    __tablename__ = "automation_runs"
    __table_args__ = (_one_of("state", AUTOMATION_STATES), Index(None, "state"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    rule: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[str] = mapped_column(String(200))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    state: Mapped[str] = mapped_column(String(16))
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    flow_run_name: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)  # why it failed or was declined
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


metadata = Base.metadata
