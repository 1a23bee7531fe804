"""The Alembic migration and the schema module describe the same database, on both backends."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from setuptools import find_namespace_packages

from acs.store import StoreError, create_engine, ensure_schema, head_revision, metadata, upgrade

ROOT = Path(__file__).resolve().parents[2]


def _diff(url: str, target: sa.MetaData = metadata) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return compare_metadata(context, target)
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_at_head(empty_db_url):
    done = upgrade(empty_db_url)

    assert done.before is None
    assert done.after == head_revision()
    engine = create_engine(empty_db_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert tables == {*metadata.tables, "alembic_version"}
    assert {"devices", "device_tags", "parameters", "events", "sessions", "tasks", "policies"} <= tables


def test_migrated_database_matches_the_schema_module(empty_db_url):
    upgrade(empty_db_url)

    assert _diff(empty_db_url) == []


def test_the_comparison_notices_a_schema_change(empty_db_url):
    """Guards the test above: a column the migration lacks is reported."""
    upgrade(empty_db_url)
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["tasks"].append_column(sa.Column("priority", sa.Integer))

    diff = _diff(empty_db_url, changed)

    assert [(op[0], op[2], op[3].name) for op in diff] == [("add_column", "tasks", "priority")]


def test_upgrade_twice_does_nothing_the_second_time(empty_db_url):
    upgrade(empty_db_url)

    again = upgrade(empty_db_url)

    assert again.before == again.after == head_revision()


def test_ensure_schema_creates_a_new_sqlite_file(tmp_path):
    path = tmp_path / "new" / "acs.db"
    path.parent.mkdir()

    assert ensure_schema(f"sqlite:///{path}") == head_revision()
    assert path.exists()
    assert ensure_schema(f"sqlite:///{path}") == head_revision()


def test_ensure_schema_accepts_a_migrated_database(db_url):
    assert ensure_schema(db_url) == head_revision()


def test_ensure_schema_leaves_an_empty_postgresql_database_to_acs_db_upgrade(backend, empty_db_url):
    if backend == "sqlite":
        assert ensure_schema(empty_db_url) == head_revision()
        return
    with pytest.raises(StoreError, match=r"is empty, this acs needs revision .*: run `acs db upgrade --db "):
        ensure_schema(empty_db_url)


def test_a_database_from_a_newer_acs_is_refused(empty_db_url):
    upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dcafe'"))
    engine.dispose()

    for action in (ensure_schema, upgrade):
        with pytest.raises(StoreError, match="at revision f00dcafe, which this version of acs does not know"):
            action(empty_db_url)


def test_a_foreign_database_is_not_taken_over(empty_db_url):
    engine = create_engine(empty_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id integer primary key)"))
    engine.dispose()

    with pytest.raises(StoreError, match="has tables but no acs schema revision"):
        ensure_schema(empty_db_url)


def test_the_migrations_ship_in_the_package():
    """setup.cfg's package discovery must pick up env.py and the revisions (no __init__.py there)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    include = config["options.packages.find"]["include"].split()

    packages = find_namespace_packages(where=str(ROOT), include=include)

    assert {"acs.store", "acs.store.migrations", "acs.store.migrations.versions"} <= set(packages)
    assert (ROOT / "acs/store/migrations/env.py").is_file()
    assert list((ROOT / "acs/store/migrations/versions").glob("*.py"))


def test_0014_splits_the_created_by_of_existing_tasks_into_their_origin(empty_db_url):
    """Tasks queued before 0014 keep working: their origin is read once from ``created_by``, from
    the right, so a policy named ``office:night`` stays itself and not ``office``'s discovery."""
    upgrade(empty_db_url, "0013")
    expected = {
        "policy:office": ("policy", "office", None, None),
        "policy:office:night": ("policy", "office:night", None, None),
        "policy:office:night:discover:32": ("policy", "office:night", "discover", 32),
        "policy:discovery:values": ("policy", "discovery", "values", None),
        "policy:own-credentials:credentials": ("policy", "own-credentials", "credentials", None),
        "refresh:discover:32": ("refresh", None, "discover", 32),
        "refresh:values": ("refresh", None, "values", None),
        "refresh": ("refresh", None, None, None),
        "api:operator-client": ("api", "operator-client", None, None),
        "cli": ("cli", None, None, None),
        "profile": ("profile", None, None, None),
    }
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO devices (id, oui, serial_number, created_at) "
                    "VALUES ('D1', '00562B', 'S1', CURRENT_TIMESTAMP)"
                )
            )
            for created_by in [*expected, None]:
                conn.execute(
                    sa.text(
                        "INSERT INTO tasks (device_id, kind, args, status, created_at, created_by) "
                        "VALUES ('D1', 'GetRPCMethods', '{}', 'pending', CURRENT_TIMESTAMP, :by)"
                    ),
                    {"by": created_by},
                )
        upgrade(empty_db_url)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT created_by, origin_kind, origin_name, purpose, step FROM tasks")
            ).all()
    finally:
        engine.dispose()
    assert {r[0]: tuple(r[1:]) for r in rows} == expected | {None: (None, None, None, None)}
