"""The hub's own keys: `reply_token`, the HMAC key behind the per-ticket secret in subject tokens ([#T-000123-k7f2xq]),
made once per installation, at random, when the table is created.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    keys = op.create_table(
        "hub_keys",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.String(length=128), nullable=False),
    )
    op.bulk_insert(keys, [{"name": "reply_token", "value": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("hub_keys")
