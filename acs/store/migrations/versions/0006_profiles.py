"""Cisco flat profiles, where they apply, and the keys they are encrypted with.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
        sa.UniqueConstraint("name", name="uq_profiles_name"),
    )
    op.create_table(
        "profile_assignments",
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("match", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "level IN ('default', 'model', 'tag', 'device')", name="ck_profile_assignments_level"
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name="fk_profile_assignments_profile_id_profiles",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", "level", "match", name="pk_profile_assignments"),
    )
    op.create_index("ix_profile_assignments_level_match", "profile_assignments", ["level", "match"])
    op.create_table(
        "profile_keys",
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("match", sa.Text(), nullable=False),
        sa.Column("passphrase", sa.Text(), nullable=True),
        sa.Column("ikm", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('device', 'tag')", name="ck_profile_keys_scope"),
        sa.PrimaryKeyConstraint("scope", "match", name="pk_profile_keys"),
    )
    op.create_table(
        "profile_key_digests",
        sa.Column("product_class", sa.Text(), nullable=False),
        sa.Column("software_prefix", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.CheckConstraint("digest IN ('md5', 'sha256')", name="ck_profile_key_digests_digest"),
        sa.PrimaryKeyConstraint("product_class", "software_prefix", name="pk_profile_key_digests"),
    )


def downgrade() -> None:
    op.drop_table("profile_key_digests")
    op.drop_table("profile_keys")
    op.drop_index("ix_profile_assignments_level_match", table_name="profile_assignments")
    op.drop_table("profile_assignments")
    op.drop_table("profiles")
