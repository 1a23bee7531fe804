"""The built-in discovery policy: read a new or bootstrapped device's whole tree.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_policies = sa.table(
    "policies",
    sa.column("name", sa.Text),
    sa.column("enabled", sa.Boolean),
    sa.column("events", sa.JSON),
    sa.column("tasks", sa.JSON),
    sa.column("priority", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    created = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        created = created.replace(tzinfo=None)  # the store keeps naive UTC on SQLite
    op.bulk_insert(
        _policies,
        [
            {
                "name": "discovery",
                "enabled": True,
                "events": ["NEW", "0 BOOTSTRAP"],
                "tasks": [{"kind": "Discover", "args": {"batch": 100}}],
                "priority": 0,
                "created_at": created,
            }
        ],
    )


def downgrade() -> None:
    op.execute(_policies.delete().where(_policies.c.name == "discovery"))
