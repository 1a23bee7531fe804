"""Database engines and schema migrations for the two supported backends.

SQLite (one file, WAL) is the embedded default, so ``acs serve`` works with no
setup; PostgreSQL (psycopg 3) is for production and several workers or machines.
Migrations are Alembic's, driven from code: no ``alembic.ini`` has to exist on disk.
Alembic is imported only to migrate or to name an unknown revision: checking that a
database is at head (every CLI command) reads the ``alembic_version`` table and the
migrations' file names, and costs no Alembic import (a third of a second).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

DEFAULT_URL = "sqlite:///./acs.db"
URL_ENV = "ACS_DATABASE_URL"
MIGRATIONS = Path(__file__).with_name("migrations")
#: A migration's file name: its revision id, then what it does (``0008_revisions.py``).
REVISION_FILE = re.compile(r"(\d{4})_\w+\.py")
#: Where Alembic keeps the revision a database is at (its default version table).
_VERSION_TABLE = sa.table("alembic_version", sa.column("version_num", sa.String))
#: How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000
#: Seconds before giving up on an unreachable PostgreSQL host (the OS default is minutes).
POSTGRES_CONNECT_TIMEOUT = 10


class StoreError(Exception):
    """The store's one error: a database that cannot be reached, read or migrated, in words."""


class Upgrade(NamedTuple):
    """What ``upgrade`` did: the revision before (None for an empty database) and after."""

    before: str | None
    after: str


def database_url(url: str | URL | None = None) -> URL:
    """The URL to use: the one given, else ``$ACS_DATABASE_URL``, else ``./acs.db``.

    ``postgresql://`` (and ``postgres://``) get the psycopg 3 driver, the one installed.
    """
    text = url if url is not None else os.environ.get(URL_ENV) or DEFAULT_URL
    try:
        parsed = sa.make_url(text)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"invalid database URL {_mask(str(text))!r}: {exc}; "
            "expected sqlite:///PATH or postgresql://USER@HOST/DATABASE"
        ) from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {show_url(parsed)}: acs runs on sqlite:///PATH or postgresql://..."
        )
    return parsed


def show_url(given: str | URL | Engine | Connection) -> str:
    """The URL fit to print or log: the password is never shown."""
    if isinstance(given, Connection):
        given = given.engine
    url = given.url if isinstance(given, Engine) else given
    if isinstance(url, str):
        text = url
        try:
            url = sa.make_url(text)
        except sa.exc.ArgumentError:
            return _mask(text)
    return url.render_as_string(hide_password=True)


def _mask(text: str) -> str:
    """Hide the password of a URL that does not even parse: ``user:***@host``."""
    head, at, host = text.rpartition("@")
    scheme, sep, userinfo = head.rpartition("://")
    if not at or ":" not in userinfo:
        return text
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


def create_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """An Engine for ``url`` (see ``database_url``), tuned for its backend.

    SQLite connections get WAL (readers never block the writer), synchronous=NORMAL
    (durable at each checkpoint, fast commits), foreign keys on (SQLite's default is
    off) and a busy timeout, so concurrent writers wait instead of failing.
    ``kwargs`` go to ``sqlalchemy.create_engine``. A statement's parameters are never shown in an
    error (``hide_parameters``): a failed write of a CPE password or a profile key would otherwise
    carry it into the traceback a log keeps.
    """
    parsed = database_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # One connection shared by every thread, else each would see its own empty database.
            kwargs.setdefault("poolclass", StaticPool)
            kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = sa.create_engine(parsed, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if "connect_timeout" not in parsed.query:
        kwargs.setdefault("connect_args", {"connect_timeout": POSTGRES_CONNECT_TIMEOUT})
    return sa.create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


@contextmanager
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection inside a transaction, for store functions that accept either.

    Given an Engine or an idle Connection, the transaction is committed on the way
    out (the work is durable when the function returns). Given a Connection already
    in a transaction, the work joins it and the caller commits: what the caller
    does around it stays atomic.
    """
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    elif bind.in_transaction():
        yield bind
    else:
        with bind.begin():
            yield bind


@contextmanager
def connect(bind: str | URL | Engine | None = None) -> Iterator[Connection]:
    """A connection, with "cannot connect" turned into a StoreError that says why.

    An engine made here from a URL is disposed of on the way out.
    """
    engine = bind if isinstance(bind, Engine) else create_engine(bind)
    try:
        try:
            conn = engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise StoreError(f"cannot connect to {show_url(engine)}: {_reason(exc)}") from exc
        with conn:
            yield conn
    finally:
        if engine is not bind:
            engine.dispose()


def _reason(exc: sa.exc.DBAPIError) -> str:
    return " ".join(str(exc.orig).split()) or type(exc.orig).__name__


def alembic_config() -> Config:
    """Alembic's configuration, built in code so an installed package needs no alembic.ini.

    Developers make a new revision with
    ``command.revision(alembic_config(), "what changed", autogenerate=True)``
    (against a database at head, chosen by ``$ACS_DATABASE_URL``), in a file named
    ``NNNN_<what>.py`` whose revision id is ``NNNN`` (``REVISION_FILE``).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


@functools.cache
def head_revision() -> str:
    """The newest revision this version of acs knows: the highest ``NNNN`` of its migration files.

    The revisions are a line numbered in order, so the highest file name is the head; read
    from the names, not through Alembic (``tests/store/test_migrations.py`` checks they agree).
    """
    files = (MIGRATIONS / "versions").iterdir()
    numbers = [m.group(1) for f in files if (m := REVISION_FILE.fullmatch(f.name))]
    if not numbers:  # pragma: no cover - the package ships its migrations
        raise StoreError(f"no migrations found in {MIGRATIONS}")
    return max(numbers)


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    if not sa.inspect(conn).has_table(_VERSION_TABLE.name):
        return None
    found = conn.execute(sa.select(_VERSION_TABLE.c.version_num)).scalars().all()
    if len(found) > 1:
        raise StoreError(
            f"database {show_url(conn)} is at several revisions ({', '.join(sorted(found))}): "
            "acs migrations are one line; was it migrated by something else?"
        )
    return found[0] if found else None


def upgrade(
    bind: str | URL | Engine | None = None, revision: str = "head", *, keyring: Any = None
) -> Upgrade:
    """Migrate the database to ``revision`` (the newest by default), in one transaction.

    Creates every table on an empty database; does nothing on one already there. ``keyring``
    (``acs.store.secrets.Keyring``): the server key, for migrations that seal secrets; one that
    finds secrets to seal without it refuses, and nothing is changed. A SQLite file in which a
    migration replaced clear values is vacuumed after the commit, so they are not left in it.
    """
    vacuum = False
    with connect(bind) as conn:
        before = current_revision(conn)
        _check_known(conn, before)
        from alembic import command
        from alembic.util import CommandError

        config = alembic_config()
        # env.py runs in the transaction this connection is already in; commit it here.
        config.attributes["connection"] = conn
        config.attributes["keyring"] = keyring
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            raise StoreError(f"cannot upgrade {show_url(conn)} to {revision}: {exc}") from exc
        after = current_revision(conn)
        conn.commit()
        vacuum = bool(config.attributes.get("vacuum")) and conn.dialect.name == "sqlite"
    if vacuum:
        from acs.store.secrets import wipe_free_pages

        engine = bind if isinstance(bind, Engine) else create_engine(bind)
        try:
            wipe_free_pages(engine)
        finally:
            if engine is not bind:
                engine.dispose()
    assert after is not None
    return Upgrade(before, after)


def ensure_schema(bind: str | URL | Engine | None = None, *, create: bool = True) -> str:
    """Make sure the database is at head before working on it; return its revision.

    With ``create`` (``acs serve``), a brand-new SQLite database (a file that does not
    exist yet, or an empty one) is created by upgrading, so ``acs serve`` needs no setup.
    Without it (the other commands), a database that does not exist is an error and
    nothing is created: a command run in the wrong directory or with a mistyped ``--db``
    must not leave an empty ``acs.db`` behind and print an empty table as if it were true.
    Anything else that is not at head is an error that says how to fix it: production
    schemas change only through ``acs db upgrade``.
    """
    if not create:
        _require_sqlite_file(bind)
    with connect(bind) as conn:
        current = current_revision(conn)
        _check_known(conn, current)
        if current == head_revision():
            return current
        empty = not sa.inspect(conn).get_table_names()
        sqlite = conn.dialect.name == "sqlite"
        where = show_url(conn)
    if current is None and empty and sqlite and create:
        return upgrade(bind).after
    if current is None and not empty:
        raise StoreError(
            f"database {where} has tables but no acs schema revision: is it an acs database? "
            "Point --db / ACS_DATABASE_URL at an empty database or an acs one"
        )
    state = "empty" if current is None else f"at revision {current}"
    raise StoreError(
        f"database {where} is {state}, this acs needs revision {head_revision()}: "
        f"run `acs db upgrade --db {where}`"
    )


def _require_sqlite_file(bind: str | URL | Engine | None) -> None:
    """Refuse a SQLite file that does not exist, before connecting (which would create it)."""
    url = bind.url if isinstance(bind, Engine) else database_url(bind)
    path = url.database
    if url.get_backend_name() != "sqlite" or path in (None, "", ":memory:") or "uri" in url.query:
        return
    if not Path(path).exists():
        default = url.render_as_string() == database_url(DEFAULT_URL).render_as_string()
        db = "" if default else f" --db {show_url(url)}"
        raise StoreError(
            f"no database at {path}: start the server (`acs serve{db}`) "
            f"or create it with `acs db upgrade{db}`"
        )


def _check_known(conn: Connection, revision: str | None) -> None:
    """Refuse a database migrated by a newer acs: its schema is not ours to touch."""
    if revision is None:
        return
    if revision == head_revision():
        return
    from alembic.util import CommandError

    try:
        known = _scripts().get_revision(revision)
    except CommandError:
        known = None
    if known is None:
        raise StoreError(
            f"database {show_url(conn)} is at revision {revision}, which this version of acs "
            "does not know: was it upgraded by a newer acs? Upgrade acs, or use another database"
        )
