"""Watermarks of any length: a GLPI source's cursors (one per walk: live and trash tickets, and per asset type)
outgrow 200 characters, and so do the ticket ids sharing a boundary second.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.alter_column("watermark", existing_type=sa.String(length=200), type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    # A watermark longer than the old column is dropped: the next run reads that source's entity from the start
    # (the landing recognises what it already has).
    op.execute("UPDATE sync_state SET watermark = NULL WHERE LENGTH(watermark) > 200")
    with op.batch_alter_table("sync_state") as batch:
        batch.alter_column("watermark", existing_type=sa.Text(), type_=sa.String(length=200), existing_nullable=True)
