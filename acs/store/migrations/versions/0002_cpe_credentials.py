"""CPE credentials per device: what a phone sends as ManagementServer.Username/Password.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("username", sa.Text))
        batch.add_column(sa.Column("password", sa.Text))
        batch.create_index("ix_devices_username", ["username"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_username")
        batch.drop_column("password")
        batch.drop_column("username")
