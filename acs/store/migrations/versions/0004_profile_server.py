"""The profile server's facts on devices: when a phone last fetched its profile, and where it moved;
phones looked up by serial number (``/$SN.xml``, the inventory import).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("last_profile_fetch", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("profile_redirect", sa.Text))
        batch.add_column(sa.Column("profile_redirect_status", sa.Integer))
        batch.create_index("ix_devices_serial_number", ["serial_number"])


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_serial_number")
        batch.drop_column("profile_redirect_status")
        batch.drop_column("profile_redirect")
        batch.drop_column("last_profile_fetch")
