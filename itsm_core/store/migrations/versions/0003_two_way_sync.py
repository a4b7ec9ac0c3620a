"""Two-way sync: comment identities in other systems, pushed values (echo suppression), mail about no ticket.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "comment_refs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column("comment_id", BigId, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"], ["comments.id"], name=op.f("fk_comment_refs_comment_id_comments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment_refs")),
        sa.UniqueConstraint("system", "external_id", name=op.f("uq_comment_refs_system_external_id")),
    )
    op.create_index(op.f("ix_comment_refs_comment_id"), "comment_refs", ["comment_id"], unique=False)
    op.create_table(
        "pushed_values",
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("ticket_id", BigId, nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_pushed_values_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("system", "ticket_id", "field", name=op.f("pk_pushed_values")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("ticket_id", existing_type=BigId, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE ticket_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("ticket_id", existing_type=BigId, nullable=False)
    op.drop_table("pushed_values")
    op.drop_index(op.f("ix_comment_refs_comment_id"), table_name="comment_refs")
    op.drop_table("comment_refs")
