"""Checking a database's revision without Alembic: the migrations' file names and the version table.

Every command checks that its database is at head; importing Alembic for that cost a third of
a second per command. These tests hold the shortcut to what Alembic itself says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from acs.store import StoreError, create_engine, current_revision, head_revision
from acs.store.engine import REVISION_FILE, alembic_config


def test_the_head_read_from_the_file_names_is_alembic_s():
    scripts = ScriptDirectory.from_config(alembic_config())

    assert head_revision() == scripts.get_current_head()
    for script in scripts.walk_revisions():
        name = Path(script.path).name
        assert REVISION_FILE.fullmatch(name) and name.startswith(f"{script.revision}_"), name


def revisions(url: str) -> tuple[str | None, str | None]:
    """(ours, Alembic's)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn), MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_the_revision_read_from_the_version_table_is_alembic_s(db_url):
    assert revisions(db_url) == (head_revision(), head_revision())


def test_an_empty_database_is_at_no_revision_for_both(empty_db_url):
    assert revisions(empty_db_url) == (None, None)


def test_a_database_at_two_revisions_is_refused(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('0001')"))

    with engine.connect() as conn, pytest.raises(StoreError) as refused:
        current_revision(conn)
    assert f"is at several revisions (0001, {head_revision()})" in str(refused.value)
