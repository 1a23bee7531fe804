"""Deadlines for tasks completed by a later event, and a discovery batch size remembered per device.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

``tasks.complete_within`` / ``deadline_at``: a Reboot, FactoryReset, ScheduleInform, Download or
Upload that was answered waits for its event (1 BOOT, 0 BOOTSTRAP, 3 SCHEDULED, TransferComplete)
until its deadline, then becomes a fault. Tasks already waiting get the default deadline, counted
from their answer. ``devices.discovery_batch``: the batch a device was last found to survive.
The built-in discovery policy, if still as 0003 made it, asks 32 names per batch instead of 100
(an agent seen in the field crashes above 31).

Types and defaults are spelled out, as in 0001, so this revision keeps its meaning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
#: the default seconds each kind may take after its response, as acs.jobs.queue had them then
_DEFAULTS = {"Reboot": 600, "FactoryReset": 600, "ScheduleInform": 600, "Download": 3600, "Upload": 3600}
_OLD_DISCOVERY = [{"kind": "Discover", "args": {"batch": 100}}]
_NEW_DISCOVERY = [{"kind": "Discover", "args": {"batch": 32}}]

_tasks = sa.table(
    "tasks",
    sa.column("id", sa.BigInteger),
    sa.column("kind", sa.Text),
    sa.column("args", sa.JSON),
    sa.column("status", sa.Text),
    sa.column("answered_at", Timestamp),
    sa.column("deadline_at", Timestamp),
)
_policies = sa.table("policies", sa.column("name", sa.Text), sa.column("tasks", sa.JSON))
_revisions = sa.table("revisions", sa.column("name", sa.Text), sa.column("revision", sa.BigInteger))


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("complete_within", sa.Integer))
        batch.add_column(sa.Column("deadline_at", Timestamp))
        batch.create_index("ix_tasks_status_deadline_at", ["status", "deadline_at"])
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("discovery_batch", sa.Integer))
    conn = op.get_bind()
    waiting = conn.execute(
        sa.select(_tasks.c.id, _tasks.c.kind, _tasks.c.args, _tasks.c.answered_at).where(
            _tasks.c.status == "sent",
            _tasks.c.answered_at.is_not(None),
            _tasks.c.kind.in_(list(_DEFAULTS)),
        )
    ).all()
    for task_id, kind, args, answered_at in waiting:
        delay = _delay(args)
        deadline = answered_at + timedelta(seconds=_DEFAULTS[kind] + delay)
        conn.execute(_tasks.update().where(_tasks.c.id == task_id).values(deadline_at=deadline))
    _set_discovery(conn, _OLD_DISCOVERY, _NEW_DISCOVERY)


def downgrade() -> None:
    _set_discovery(op.get_bind(), _NEW_DISCOVERY, _OLD_DISCOVERY)
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("discovery_batch")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_status_deadline_at")
        batch.drop_column("deadline_at")
        batch.drop_column("complete_within")


def _delay(args: Any) -> int:
    if isinstance(args, str):
        args = json.loads(args)
    delay = args.get("DelaySeconds", 0) if isinstance(args, dict) else 0
    return delay if isinstance(delay, int) and delay > 0 else 0


def _set_discovery(conn: sa.Connection, was: list[dict[str, Any]], becomes: list[dict[str, Any]]) -> None:
    """The built-in discovery's batch, only if an operator has not changed its tasks."""
    row = conn.execute(sa.select(_policies.c.tasks).where(_policies.c.name == "discovery")).first()
    if row is None:
        return
    current = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    if current != was:
        return
    conn.execute(_policies.update().where(_policies.c.name == "discovery").values(tasks=becomes))
    conn.execute(
        _revisions.update().where(_revisions.c.name == "policies").values(revision=_revisions.c.revision + 1)
    )
