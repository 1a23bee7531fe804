"""CPE identity: Digest nonce counts every worker and node sees, and a revision of the CPE credentials.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

``digest_nonces``: the highest nonce count (``nc``) each Digest nonce was used with, so that a
replayed answer (the same or a lower count) is refused whichever process or machine it reaches;
rows go when their nonce expires (``expires``, seconds since the epoch). The ``credentials``
revision is bumped whenever a device's own credentials change: server processes keep the user
names no device has (a negative cache) until it moves.

Types are spelled out, as in 0001, so this revision keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_revisions = sa.table("revisions", sa.column("name", sa.Text), sa.column("revision", sa.BigInteger))


def upgrade() -> None:
    op.create_table(
        "digest_nonces",
        sa.Column("nonce", sa.Text),
        sa.Column("nc", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_digest_nonces"),
    )
    op.bulk_insert(_revisions, [{"name": "credentials", "revision": 1}])


def downgrade() -> None:
    op.execute(_revisions.delete().where(_revisions.c.name == "credentials"))
    op.drop_table("digest_nonces")
