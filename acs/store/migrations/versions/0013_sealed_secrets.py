"""Secrets sealed with the server key: CPE and connection-request passwords, profile keys, the shared
CPE password (moved to the new ``settings.secret``), and the check that tells the key is this database's.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-10

The key comes from the caller (``acs.store.engine.upgrade(keyring=...)``: ``acs db upgrade`` loads
or makes it); a database with secrets in clear and no key given is refused, unchanged. Values are
read and written as plain text here, not through ``SealedText``, so this revision keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from acs.store.engine import StoreError

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: table -> (its primary key, its secret columns)
SECRETS = {
    "devices": (("id",), ("password", "connection_request_password")),
    "profile_keys": (("scope", "match"), ("passphrase", "ikm")),
    "settings": (("name",), ("secret",)),
}
CPE_PASSWORD = "cpe_password"  # noqa: S105 - the setting's name
CHECK_SETTING, CHECK_TEXT = "secrets_key_check", "acs secrets key check"


def _table(name: str) -> sa.TableClause:
    keys, columns = SECRETS[name]
    return sa.table(name, *(sa.column(c) for c in (*keys, *columns)))


def _keyring(count: int, doing: str) -> Any:
    keyring = context.config.attributes.get("keyring")
    if keyring is None and count:
        raise StoreError(
            f"the database holds {count} secret{'s' if count > 1 else ''} to {doing}, and no secrets key "
            "was given: run `acs db upgrade` with --secrets-key-file PATH or ACS_SECRETS_KEY_FILE "
            "(for SQLite it is made beside the database by default)"
        )
    return keyring


def _convert(conn: sa.Connection, convert: Any) -> None:
    for name, (keys, columns) in SECRETS.items():
        table = _table(name)
        for column in columns:
            rows = conn.execute(
                sa.select(*(table.c[k] for k in keys), table.c[column]).where(table.c[column].is_not(None))
            ).all()
            for *pk, value in rows:
                where = [table.c[k] == v for k, v in zip(keys, pk, strict=True)]
                conn.execute(sa.update(table).where(*where).values({column: convert(value)}))


def _count(conn: sa.Connection) -> int:
    total = 0
    for name, (_, columns) in SECRETS.items():
        table = _table(name)
        for column in columns:
            total += conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c[column].is_not(None))
            ).scalar_one()
    return total


def upgrade() -> None:
    with op.batch_alter_table("settings") as batch:
        batch.add_column(sa.Column("secret", sa.Text))
    if context.is_offline_mode():
        return  # values cannot be sealed in a script of SQL: run `acs db upgrade`
    conn = op.get_bind()
    settings = sa.table("settings", sa.column("name"), sa.column("value"), sa.column("secret"))
    conn.execute(
        sa.update(settings)
        .where(settings.c.name == CPE_PASSWORD)
        .values(secret=settings.c.value, value=sa.null())
    )
    count = _count(conn)
    keyring = _keyring(count, "seal")
    if keyring is None:
        return
    _convert(conn, keyring.seal)
    now = datetime.now(UTC)
    conn.execute(
        sa.insert(
            sa.table(
                "settings",
                sa.column("name"),
                sa.column("secret"),
                sa.column("updated_at", sa.DateTime(timezone=True)),
            )
        ),
        {
            "name": CHECK_SETTING,
            "secret": keyring.seal(CHECK_TEXT),
            "updated_at": now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now,
        },
    )
    if count:
        # the clear values are in free pages and WAL frames of a SQLite file until it is vacuumed
        context.config.attributes["vacuum"] = True


def downgrade() -> None:
    conn = op.get_bind()
    settings = sa.table("settings", sa.column("name"), sa.column("value"), sa.column("secret"))
    conn.execute(sa.delete(settings).where(settings.c.name == CHECK_SETTING))
    keyring = _keyring(_count(conn), "open")
    if keyring is not None:
        _convert(conn, keyring.unseal)
    conn.execute(
        sa.update(settings)
        .where(settings.c.name == CPE_PASSWORD)
        .values(value=settings.c.secret, secret=sa.null())
    )
    with op.batch_alter_table("settings") as batch:
        batch.drop_column("secret")
