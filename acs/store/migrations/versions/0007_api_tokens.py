"""API tokens of the northbound REST API, and faults an operator cleared.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

Types are spelled out, as in 0001, so this revision keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("token_hash", sa.Text, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_used_at", Timestamp),
        sa.CheckConstraint("role IN ('read', 'operator', 'admin')", name="ck_api_tokens_role"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("name", name="uq_api_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("cleared_at", Timestamp))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("cleared_at")
    op.drop_table("api_tokens")
