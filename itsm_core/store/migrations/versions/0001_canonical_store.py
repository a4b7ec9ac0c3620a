"""Canonical store: tickets, CIs, identity, audit trail, landing, outbox, quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The audit trail is append-only, enforced by the database so no code path (or operator) rewrites history.
_PG_AUDIT_GUARD = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP;
END $$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
"""
_SQLITE_AUDIT_GUARD = [
    f"""CREATE TRIGGER audit_events_no_{op_name.lower()} BEFORE {op_name} ON audit_events
        BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {op_name} is not allowed'); END"""
    for op_name in ("UPDATE", "DELETE")
]


def _create_audit_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_AUDIT_GUARD)
    else:
        for statement in _SQLITE_AUDIT_GUARD:
            op.execute(statement)


def _drop_audit_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")


def upgrade() -> None:
    op.create_table(
        "attachment_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_attachment_blobs")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column(
            "old_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "new_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        op.f("ix_audit_events_entity_entity_id_at"),
        "audit_events",
        ["entity", "entity_id", "at"],
        unique=False,
    )

    op.create_table(
        "configuration_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ci_class", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("serial", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('planned', 'active', 'maintenance', 'retired')",
            name=op.f("ck_configuration_items_status_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_configuration_items")),
    )
    op.create_index(
        op.f("ix_configuration_items_ci_class_name"),
        "configuration_items",
        ["ci_class", "name"],
        unique=False,
    )
    op.create_index(op.f("ix_configuration_items_serial"), "configuration_items", ["serial"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("watermark", sa.String(length=200), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("source", "entity", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("impact", sa.Integer(), nullable=True),
        sa.Column("urgency", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("subcategory", sa.String(length=200), nullable=True),
        sa.Column("classification_confidence", sa.Float(), nullable=True),
        sa.Column("classified_by", sa.String(length=16), nullable=True),
        sa.Column("requester", sa.String(length=320), nullable=True),
        sa.Column("requester_name", sa.String(length=200), nullable=True),
        sa.Column("assignment_group", sa.String(length=200), nullable=True),
        sa.Column("assignee", sa.String(length=320), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "classified_by IN ('rule', 'model', 'human', 'source')",
            name=op.f("ck_tickets_classified_by_valid"),
        ),
        sa.CheckConstraint(
            "kind IN ('incident', 'service_request', 'problem', 'change')", name=op.f("ck_tickets_kind_valid")
        ),
        sa.CheckConstraint(
            "status IN ('new', 'assigned', 'in_progress', 'pending', 'resolved', 'closed', 'cancelled')",
            name=op.f("ck_tickets_status_valid"),
        ),
        sa.CheckConstraint(
            "classification_confidence IS NULL OR (classification_confidence >= 0 AND classification_confidence <= 1)",
            name=op.f("ck_tickets_confidence_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    op.create_index(op.f("ix_tickets_status_updated_at"), "tickets", ["status", "updated_at"], unique=False)
    op.create_index(op.f("ix_tickets_tenant_status"), "tickets", ["tenant", "status"], unique=False)

    op.create_table(
        "ci_relationships",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_ci_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("target_ci_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rel_type", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source_ci_id <> target_ci_id", name=op.f("ck_ci_relationships_no_self_loop")),
        sa.ForeignKeyConstraint(
            ["source_ci_id"],
            ["configuration_items.id"],
            name=op.f("fk_ci_relationships_source_ci_id_configuration_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_ci_id"],
            ["configuration_items.id"],
            name=op.f("fk_ci_relationships_target_ci_id_configuration_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ci_relationships")),
        sa.UniqueConstraint(
            "source_ci_id",
            "rel_type",
            "target_ci_id",
            name=op.f("uq_ci_relationships_source_ci_id_rel_type_target_ci_id"),
        ),
    )
    op.create_index(op.f("ix_ci_relationships_target_ci_id"), "ci_relationships", ["target_ci_id"], unique=False)

    op.create_table(
        "comments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_comments_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    op.create_index(op.f("ix_comments_ticket_id"), "comments", ["ticket_id"], unique=False)

    op.create_table(
        "external_refs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("ci_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("remote_version", sa.String(length=100), nullable=True),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("landed_hash", sa.String(length=64), nullable=True),
        sa.Column("pushed_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(ticket_id IS NOT NULL AND ci_id IS NULL) OR (ticket_id IS NULL AND ci_id IS NOT NULL)",
            name=op.f("ck_external_refs_one_target"),
        ),
        sa.ForeignKeyConstraint(
            ["ci_id"],
            ["configuration_items.id"],
            name=op.f("fk_external_refs_ci_id_configuration_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_external_refs_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_refs")),
        sa.UniqueConstraint("system", "external_id", name=op.f("uq_external_refs_system_external_id")),
    )
    op.create_index(op.f("ix_external_refs_ci_id"), "external_refs", ["ci_id"], unique=False)
    op.create_index(op.f("ix_external_refs_ticket_id"), "external_refs", ["ticket_id"], unique=False)

    op.create_table(
        "inbound_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_format", sa.String(length=16), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('pending', 'created', 'updated', 'unchanged', 'quarantined')",
            name=op.f("ck_inbound_records_outcome_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_inbound_records_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_records")),
        sa.UniqueConstraint(
            "source",
            "external_id",
            "payload_hash",
            name=op.f("uq_inbound_records_source_external_id_payload_hash"),
        ),
    )
    op.create_index(
        op.f("ix_inbound_records_source_received_at"),
        "inbound_records",
        ["source", "received_at"],
        unique=False,
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("target_system", sa.String(length=100), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("fields_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'sent', 'dead')", name=op.f("ck_outbox_state_valid")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_outbox_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        op.f("ix_outbox_target_system_state_next_attempt_at"),
        "outbox",
        ["target_system", "state", "next_attempt_at"],
        unique=False,
    )

    op.create_table(
        "ticket_ci_links",
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ci_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ci_id"],
            ["configuration_items.id"],
            name=op.f("fk_ticket_ci_links_ci_id_configuration_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_ci_links_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "ci_id", "role", name=op.f("pk_ticket_ci_links")),
    )
    op.create_index(op.f("ix_ticket_ci_links_ci_id"), "ticket_ci_links", ["ci_id"], unique=False)

    op.create_table(
        "attachments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("comment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_id", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comments.id"],
            name=op.f("fk_attachments_comment_id_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["attachment_blobs.sha256"], name=op.f("fk_attachments_sha256_attachment_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_attachments_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("ticket_id", "sha256", "name", name=op.f("uq_attachments_ticket_id_sha256_name")),
    )
    op.create_index(op.f("ix_attachments_sha256"), "attachments", ["sha256"], unique=False)
    op.create_index(op.f("ix_attachments_ticket_id"), "attachments", ["ticket_id"], unique=False)

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=True),
        sa.Column("inbound_record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_format", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replay_attempts", sa.Integer(), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.CheckConstraint("stage IN ('parse', 'map', 'store', 'push')", name=op.f("ck_dead_letters_stage_valid")),
        sa.ForeignKeyConstraint(
            ["inbound_record_id"],
            ["inbound_records.id"],
            name=op.f("fk_dead_letters_inbound_record_id_inbound_records"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["replay_ticket_id"],
            ["tickets.id"],
            name=op.f("fk_dead_letters_replay_ticket_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(op.f("ix_dead_letters_inbound_record_id"), "dead_letters", ["inbound_record_id"], unique=False)
    op.create_index(op.f("ix_dead_letters_source_replayed_at"), "dead_letters", ["source", "replayed_at"], unique=False)
    _create_audit_guard()


def downgrade() -> None:
    _drop_audit_guard()
    op.drop_index(op.f("ix_dead_letters_source_replayed_at"), table_name="dead_letters")
    op.drop_index(op.f("ix_dead_letters_inbound_record_id"), table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index(op.f("ix_attachments_ticket_id"), table_name="attachments")
    op.drop_index(op.f("ix_attachments_sha256"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_index(op.f("ix_ticket_ci_links_ci_id"), table_name="ticket_ci_links")
    op.drop_table("ticket_ci_links")
    op.drop_index(op.f("ix_outbox_target_system_state_next_attempt_at"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_inbound_records_source_received_at"), table_name="inbound_records")
    op.drop_table("inbound_records")
    op.drop_index(op.f("ix_external_refs_ticket_id"), table_name="external_refs")
    op.drop_index(op.f("ix_external_refs_ci_id"), table_name="external_refs")
    op.drop_table("external_refs")
    op.drop_index(op.f("ix_comments_ticket_id"), table_name="comments")
    op.drop_table("comments")
    op.drop_index(op.f("ix_ci_relationships_target_ci_id"), table_name="ci_relationships")
    op.drop_table("ci_relationships")
    op.drop_index(op.f("ix_tickets_tenant_status"), table_name="tickets")
    op.drop_index(op.f("ix_tickets_status_updated_at"), table_name="tickets")
    op.drop_table("tickets")
    op.drop_table("sync_state")
    op.drop_index(op.f("ix_configuration_items_serial"), table_name="configuration_items")
    op.drop_index(op.f("ix_configuration_items_ci_class_name"), table_name="configuration_items")
    op.drop_table("configuration_items")
    op.drop_index(op.f("ix_audit_events_entity_entity_id_at"), table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("attachment_blobs")
