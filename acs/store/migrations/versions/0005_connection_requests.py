"""Connection requests: what the ACS asked of each device, how, and what became of it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Types are spelled out here rather than imported from ``acs.store.schema``, so that
this revision keeps meaning what it meant when the schema module moves on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "connection_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("elapsed", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('sent', 'refused', 'unreachable', 'timed_out', 'error')",
            name="ck_connection_requests_outcome",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_connection_requests_device_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_connection_requests"),
    )
    op.create_index(
        "ix_connection_requests_device_id_requested_at", "connection_requests", ["device_id", "requested_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_connection_requests_device_id_requested_at", "connection_requests")
    op.drop_table("connection_requests")
