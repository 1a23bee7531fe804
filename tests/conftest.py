"""Shared fixtures: a fresh database per test, on SQLite and on PostgreSQL.

Every test that asks for ``db_url`` or ``engine`` runs twice, once per backend. The
schema is migrated once per run with ``acs.store.upgrade`` into a template. On SQLite
each test gets a copy of the template file. On PostgreSQL, where ``CREATE DATABASE``
costs ~0.3 s of fsync, each test module gets its own copy (``CREATE DATABASE ...
TEMPLATE``, random name, dropped after the module, so parallel runs never collide)
and every table is reset to what the migrations left before each test. ``empty_db_url`` is a database nothing
has touched, of the test's own: for tests that migrate or alter the schema.

PostgreSQL comes from ``$ACS_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). When it is unreachable the
PostgreSQL tests fail, saying so: they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from acs.jobs import policies
from acs.session.service import SessionHandler
from acs.store import create_engine, metadata, secrets, upgrade

POSTGRES_URL_ENV = "ACS_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True, scope="session")
def _session_secrets_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The secrets key of what runs before a test's own fixtures: module-scoped servers and seeds."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _use_new_key(tmp_path_factory, monkeypatch)


@pytest.fixture(autouse=True)
def secrets_key(
    _session_secrets_key: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A secrets key file of the test's own, used by this process (its store calls) and named in
    ``ACS_SECRETS_KEY_FILE`` for the ``acs`` commands and servers it starts, on either backend.
    Tests of where the key is by default take the variable away."""
    return _use_new_key(tmp_path_factory, monkeypatch)


def _use_new_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "acs.key"
    monkeypatch.setenv(secrets.KEY_FILE_ENV, str(path))
    monkeypatch.setattr(secrets, "_active", secrets.Keyring.create(path))
    return path


DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


class Postgres:
    """Makes and drops throwaway databases on the server behind the base URL."""

    def __init__(self, base_url: str) -> None:
        self.base: URL = sa.make_url(base_url).set(drivername="postgresql+psycopg")
        self.admin = sa.create_engine(self.base, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def check(self) -> None:
        try:
            with self.admin.connect():
                pass
        except sa.exc.OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            pytest.fail(
                f"PostgreSQL at {self.base.render_as_string(hide_password=True)} is unreachable ({reason}). "
                f"The store tests run on PostgreSQL as well as SQLite: start it (see .ci/run) "
                f"or set {POSTGRES_URL_ENV} to a server where this user may CREATE DATABASE.",
                pytrace=False,
            )

    def create(self, template: str | None = None) -> str:
        name = f"acs_test_{uuid.uuid4().hex[:12]}"
        ddl = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(ddl)
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres(os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL)
    server.check()
    yield server
    server.admin.dispose()


@pytest.fixture(scope="session")
def _postgres_template(postgres: Postgres) -> Iterator[str]:
    name = postgres.create()
    try:
        upgrade(postgres.url(name))
        yield name
    finally:
        postgres.drop(name)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "acs.db"
    upgrade(f"sqlite:///{path}")  # disposes its engine: the WAL is checkpointed into the file
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend a test runs on: ``sqlite`` or ``postgresql``."""
    return request.param


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that exists and is empty (no tables, no revision)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'acs.db'}"
        return
    postgres: Postgres = request.getfixturevalue("postgres")
    name = postgres.create()
    yield postgres.url(name)
    postgres.drop(name)


@pytest.fixture(scope="module")
def _postgres_module_db(postgres: Postgres, _postgres_template: str) -> Iterator[str]:
    name = postgres.create(template=_postgres_template)
    yield postgres.url(name)
    postgres.drop(name)


@pytest.fixture(scope="session")
def _postgres_seed(postgres: Postgres, _postgres_template: str) -> dict[str, list[dict[str, object]]]:
    """The rows the migrations themselves write (the built-in policies), table by table."""
    engine = sa.create_engine(postgres.url(_postgres_template), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            seed = {
                t.name: [dict(r) for r in conn.execute(t.select()).mappings()] for t in metadata.sorted_tables
            }
    finally:
        engine.dispose()
    return {name: rows for name, rows in seed.items() if rows}


def _reset_every_table(url: str, seed: dict[str, list[dict[str, object]]]) -> None:
    """Every table back to what the migrations left: emptied, then the seed rows put back."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")  # a leaked lock fails, not hangs
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
            for table in metadata.sorted_tables:
                if table.name in seed:
                    conn.execute(table.insert(), seed[table.name])
    finally:
        engine.dispose()


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database migrated to head, with only what the migrations put in it, for this test alone."""
    if backend == "sqlite":
        path = tmp_path / "acs.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("_postgres_module_db")
    _reset_every_table(url, request.getfixturevalue("_postgres_seed"))
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine (``acs.store.create_engine``) on this test's migrated database."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cwmp(engine: Engine) -> SessionHandler:
    """The CWMP session backend on this test's database, without the built-in discovery: these
    tests' sessions carry only what they queue."""
    with engine.begin() as conn:
        policies.set_enabled(conn, "discovery", False)
    return SessionHandler(engine)
