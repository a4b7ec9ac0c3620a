"""Automation runs: at most one per ticket, with its Prefect flow run and outcome.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STATES = "'asking', 'asked', 'queued', 'started', 'succeeded', 'failed', 'declined'"


def upgrade() -> None:
    op.create_table(
        "automation_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("ticket_id", BigId, nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=200), nullable=False),
        sa.Column("parameters", JSONDoc, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=True),
        sa.Column("flow_run_name", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_automation_runs_state_valid")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_automation_runs_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_automation_runs_ticket_id")),
    )
    op.create_index(op.f("ix_automation_runs_state"), "automation_runs", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_automation_runs_state"), table_name="automation_runs")
    op.drop_table("automation_runs")
