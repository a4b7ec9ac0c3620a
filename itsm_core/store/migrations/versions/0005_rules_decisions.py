"""Rules: the intent of a ticket, which fields the hub's rules decided (so people and sources always win and a
derived priority follows its impact and urgency), why each audit event happened, and routing turns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): audit_events carries the triggers that keep it append-only.
    op.add_column("tickets", sa.Column("intent", sa.String(length=100), nullable=True))
    op.add_column("tickets", sa.Column("decided_by", JSONDoc, nullable=True))
    op.add_column("audit_events", sa.Column("detail", JSONDoc, nullable=True))
    op.create_table(
        "routing_turns",
        sa.Column("group_name", sa.String(length=200), nullable=False),
        sa.Column("agent", sa.String(length=320), nullable=False),
        sa.Column("turn", sa.BigInteger(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_name", "agent", name=op.f("pk_routing_turns")),
    )


def downgrade() -> None:
    op.drop_table("routing_turns")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("decided_by")
        batch.drop_column("intent")
    op.drop_column("audit_events", "detail")
