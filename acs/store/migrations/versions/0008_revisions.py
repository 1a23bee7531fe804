"""Revisions of what server processes cache: the enabled policies, read at every Inform.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Types are spelled out, as in 0001, so this revision keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "revisions",
        sa.Column("name", sa.Text),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_revisions"),
    )
    op.bulk_insert(table, [{"name": "policies", "revision": 1}])


def downgrade() -> None:
    op.drop_table("revisions")
