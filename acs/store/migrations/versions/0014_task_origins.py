"""A task's origin in columns of its own: ``origin_kind``, ``origin_name``, ``purpose``, ``step``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

Until now code parsed ``created_by`` (``policy:NAME:discover:BATCH``) back, so a policy named
``office:night`` read as policy ``office``'s. Existing values are split here once, from the right
(a policy's purpose and step are its last parts, its name the rest); ``created_by`` stays, as text
for people. The split is written here, not imported, so this revision keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("origin_kind", "origin_name", "purpose", "step")
_PURPOSES = ("values", "credentials")


def split(created_by: str) -> tuple[str, str | None, str | None, int | None]:
    """``created_by`` as (origin kind, origin name, purpose, step)."""
    kind, _, rest = created_by.partition(":")
    if kind not in ("policy", "refresh"):
        return kind, rest or None, None, None
    purpose: str | None = None
    step: int | None = None
    head, sep, last = rest.rpartition(":discover:")
    if sep and last.isdigit():
        rest, purpose, step = head, "discover", int(last)
    elif rest.startswith("discover:") and rest[len("discover:") :].isdigit():  # refresh:discover:N
        purpose, step, rest = "discover", int(rest[len("discover:") :]), ""
    else:
        for p in _PURPOSES:
            if rest == p or rest.endswith(":" + p):
                rest, purpose = rest[: -len(p)].removesuffix(":"), p
                break
    return kind, rest or None, purpose, step


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("origin_kind", sa.Text))
        batch.add_column(sa.Column("origin_name", sa.Text))
        batch.add_column(sa.Column("purpose", sa.Text))
        batch.add_column(sa.Column("step", sa.Integer))
    tasks = sa.table("tasks", sa.column("created_by"), *(sa.column(c) for c in _COLUMNS))
    conn = op.get_bind()
    values = conn.execute(sa.select(tasks.c.created_by).where(tasks.c.created_by.is_not(None)).distinct())
    for (created_by,) in values.all():
        kind, name, purpose, step = split(created_by)
        conn.execute(
            tasks.update()
            .where(tasks.c.created_by == created_by)
            .values(origin_kind=kind, origin_name=name, purpose=purpose, step=step)
        )
    op.create_index("ix_tasks_device_id_origin", "tasks", ["device_id", "origin_kind", "origin_name"])


def downgrade() -> None:
    op.drop_index("ix_tasks_device_id_origin", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column)
