"""Email: Message-IDs received and sent (threading), ticket watchers, new landing outcomes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_OUTCOMES = ["pending", "created", "updated", "unchanged", "quarantined"]
NEW_OUTCOMES = [*OLD_OUTCOMES, "comment", "ignored", "duplicate"]
OLD_STAGES = ["parse", "map", "store", "push"]
NEW_STAGES = ["parse", "triage", "map", "store", "push"]  # triage: refused by a channel rule (e.g. a mail flood)


def _check(column: str, values: list[str]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def upgrade() -> None:
    op.create_table(
        "ticket_watchers",
        sa.Column("ticket_id", BigId, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_watchers_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", "address", name=op.f("pk_ticket_watchers")),
    )
    op.create_table(
        "mail_messages",
        sa.Column("id", BigId, nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("ticket_id", BigId, nullable=True),
        sa.Column("comment_id", BigId, nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_mail_messages_direction_valid")),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name=op.f("fk_mail_messages_comment_id_comments"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_mail_messages_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
        sa.UniqueConstraint("direction", "message_id", name=op.f("uq_mail_messages_direction_message_id")),
    )
    op.create_index(op.f("ix_mail_messages_address_at"), "mail_messages", ["address", "at"], unique=False)
    op.create_index(op.f("ix_mail_messages_ticket_id"), "mail_messages", ["ticket_id"], unique=False)
    _replace_check("inbound_records", "outcome", NEW_OUTCOMES)
    _replace_check("dead_letters", "stage", NEW_STAGES)


def downgrade() -> None:
    op.execute("UPDATE inbound_records SET outcome = 'unchanged' WHERE outcome IN ('comment', 'ignored', 'duplicate')")
    op.execute("UPDATE dead_letters SET stage = 'map' WHERE stage = 'triage'")
    _replace_check("inbound_records", "outcome", OLD_OUTCOMES)
    _replace_check("dead_letters", "stage", OLD_STAGES)
    op.drop_index(op.f("ix_mail_messages_ticket_id"), table_name="mail_messages")
    op.drop_index(op.f("ix_mail_messages_address_at"), table_name="mail_messages")
    op.drop_table("mail_messages")
    op.drop_table("ticket_watchers")


def _replace_check(table: str, column: str, values: list[str]) -> None:
    # SQLite cannot alter a CHECK constraint: batch mode copies the table; PostgreSQL alters in place.
    name = op.f(f"ck_{table}_{column}_valid")
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(name, type_="check")
        batch.create_check_constraint(name, _check(column, values))
