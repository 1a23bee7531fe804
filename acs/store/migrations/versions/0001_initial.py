"""Initial schema: devices and their tags, parameters, sessions, events, tasks, policies.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Types are spelled out here rather than imported from ``acs.store.schema``, so that
this revision keeps meaning what it meant when the schema module moves on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _device_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["device_id"], ["devices.id"], name=f"fk_{table}_device_id_devices", ondelete="CASCADE"
    )


def _session_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"], ["sessions.id"], name=f"fk_{table}_session_id_sessions", ondelete="SET NULL"
    )


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("oui", sa.Text(), nullable=False),
        sa.Column("product_class", sa.Text(), nullable=True),
        sa.Column("serial_number", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=True),
        sa.Column("manufacturer", sa.Text(), nullable=True),
        sa.Column("software_version", sa.Text(), nullable=True),
        sa.Column("hardware_version", sa.Text(), nullable=True),
        sa.Column("ip", sa.Text(), nullable=True),
        sa.Column("connection_request_url", sa.Text(), nullable=True),
        sa.Column("connection_request_username", sa.Text(), nullable=True),
        sa.Column("connection_request_password", sa.Text(), nullable=True),
        sa.Column("udp_connection_request_address", sa.Text(), nullable=True),
        sa.Column("cwmp_version", sa.Text(), nullable=True),
        sa.Column("parameter_key", sa.Text(), nullable=True),
        sa.Column("provisioning_code", sa.Text(), nullable=True),
        sa.Column("first_inform", Timestamp, nullable=True),
        sa.Column("last_inform", Timestamp, nullable=True),
        sa.Column("last_boot", Timestamp, nullable=True),
        sa.Column("last_bootstrap", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_index("ix_devices_mac", "devices", ["mac"])
    op.create_index("ix_devices_last_inform", "devices", ["last_inform"])

    op.create_table(
        "device_tags",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        _device_fk("device_tags"),
        sa.PrimaryKeyConstraint("device_id", "tag", name="pk_device_tags"),
    )
    op.create_index("ix_device_tags_tag", "device_tags", ["tag"])

    op.create_table(
        "parameters",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("writable", sa.Boolean(), nullable=True),
        sa.Column("object", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("notification", sa.Integer(), nullable=True),
        sa.Column("access_list", sa.Text(), nullable=True),
        sa.Column("read_at", Timestamp, nullable=True),
        _device_fk("parameters"),
        sa.PrimaryKeyConstraint("device_id", "path", name="pk_parameters"),
    )

    op.create_table(
        "sessions",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("last_message_at", Timestamp, nullable=True),
        sa.Column("ended_at", Timestamp, nullable=True),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("remote_addr", sa.Text(), nullable=True),
        sa.Column("cwmp_ns", sa.Text(), nullable=True),
        sa.Column("state", Json, nullable=True),
        sa.Column("lease_until", Timestamp, nullable=True),
        sa.CheckConstraint("status IN ('open', 'ended', 'timed_out', 'failed')", name="ck_sessions_status"),
        _device_fk("sessions"),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_device_id_status", "sessions", ["device_id", "status"])

    op.create_table(
        "events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("command_key", sa.Text(), nullable=True),
        sa.Column("received_at", Timestamp, nullable=False),
        _device_fk("events"),
        _session_fk("events"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_device_id_received_at", "events", ["device_id", "received_at"])

    op.create_table(
        "tasks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("args", Json, nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("answered_at", Timestamp, nullable=True),
        sa.Column("completed_at", Timestamp, nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("fault_code", sa.Integer(), nullable=True),
        sa.Column("fault_string", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("command_key", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'done', 'fault', 'expired', 'cancelled')", name="ck_tasks_status"
        ),
        _device_fk("tasks"),
        _session_fk("tasks"),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_index("ix_tasks_device_id_status_id", "tasks", ["device_id", "status", "id"])
    op.create_index("ix_tasks_job_id", "tasks", ["job_id"])

    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("events", Json, nullable=False),
        sa.Column("match_product_class", sa.Text(), nullable=True),
        sa.Column("match_oui", sa.Text(), nullable=True),
        sa.Column("match_software_version", sa.Text(), nullable=True),
        sa.Column("match_tag", sa.Text(), nullable=True),
        sa.Column("tasks", Json, nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
        sa.UniqueConstraint("name", name="uq_policies_name"),
    )


def downgrade() -> None:
    for table in ("policies", "tasks", "events", "sessions", "parameters", "device_tags", "devices"):
        op.drop_table(table)
