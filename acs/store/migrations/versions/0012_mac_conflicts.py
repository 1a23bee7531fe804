"""MAC conflicts: a device that reported the MAC another device has, and was refused it.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-05

Types are spelled out here rather than imported from ``acs.store.schema``, so that this
revision keeps meaning what it meant when the schema module moves on.

Devices that share a MAC already (the last one to inform took it too, before this revision)
are recorded as conflicts, open: the device created first holds the MAC, each other one is a
claimant (``source`` ``upgrade``, no report counted), until an operator resolves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mac_conflicts",
        sa.Column("mac", sa.Text(), nullable=False),
        sa.Column("claimant_id", sa.Text(), nullable=False),
        sa.Column("holder_id", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("first_seen_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("reports", sa.Integer(), server_default="1", nullable=False),
        sa.Column("resolved_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["claimant_id"], ["devices.id"], name="fk_mac_conflicts_claimant_id_devices", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["devices.id"], name="fk_mac_conflicts_holder_id_devices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("mac", "claimant_id", name="pk_mac_conflicts"),
    )
    op.create_index("ix_mac_conflicts_claimant_id", "mac_conflicts", ["claimant_id"])
    op.create_index("ix_mac_conflicts_holder_id", "mac_conflicts", ["holder_id"])
    _record_shared_macs()


def _record_shared_macs() -> None:
    """A conflict per device that shares its MAC with one created before it."""
    devices = sa.table(
        "devices", sa.column("id", sa.Text), sa.column("mac", sa.Text), sa.column("created_at", Timestamp)
    )
    conflicts = sa.table(
        "mac_conflicts",
        *(sa.column(c, sa.Text) for c in ("mac", "claimant_id", "holder_id", "source")),
        *(sa.column(c, Timestamp) for c in ("first_seen_at", "last_seen_at")),
        sa.column("reports", sa.Integer),
    )
    first = devices.alias("first")
    holder = (
        sa.select(first.c.id)
        .where(first.c.mac == devices.c.mac)
        .order_by(first.c.created_at, first.c.id)
        .limit(1)
        .scalar_subquery()
    )
    now = sa.bindparam("now", datetime.now(UTC), type_=Timestamp)
    shared = (
        sa.select(
            devices.c.mac, devices.c.id, holder, sa.literal("upgrade"), now, now, sa.literal(0, sa.Integer)
        )
        .where(devices.c.mac.is_not(None))
        .where(devices.c.id != holder)
    )
    op.execute(
        conflicts.insert().from_select(
            ["mac", "claimant_id", "holder_id", "source", "first_seen_at", "last_seen_at", "reports"], shared
        )
    )


def downgrade() -> None:
    op.drop_index("ix_mac_conflicts_holder_id", "mac_conflicts")
    op.drop_index("ix_mac_conflicts_claimant_id", "mac_conflicts")
    op.drop_table("mac_conflicts")
