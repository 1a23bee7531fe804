"""Engines, URLs, time stamps and foreign keys behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from acs.store import (
    StoreError,
    create_engine,
    database_url,
    device_tags,
    devices,
    events,
    parameters,
    show_url,
    tasks,
    transaction,
    upgrade,
)


def _device(conn: sa.Connection, device_id: str = "00562B-CP-8841-3PCC-FCH1234ABCD", **extra: object) -> str:
    oui, product_class, serial = device_id.split("-", 1)[0], "CP-8841-3PCC", device_id.rsplit("-", 1)[1]
    row = {"id": device_id, "oui": oui, "product_class": product_class, "serial_number": serial}
    conn.execute(sa.insert(devices).values(**row, **extra))
    return device_id


def test_default_url_is_a_sqlite_file_here_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("ACS_DATABASE_URL", raising=False)
    assert str(database_url()) == "sqlite:///./acs.db"

    monkeypatch.setenv("ACS_DATABASE_URL", "postgresql://acs@db/acs")
    assert str(database_url()) == "postgresql+psycopg://acs@db/acs"
    assert str(database_url("sqlite:///x.db")) == "sqlite:///x.db"


@pytest.mark.parametrize("given", ["postgresql://acs:pw@db:5432/acs", "postgres://acs:pw@db:5432/acs"])
def test_postgresql_urls_get_the_psycopg_driver(given):
    engine = create_engine(given)
    assert engine.dialect.driver == "psycopg"
    assert show_url(engine) == "postgresql+psycopg://acs:***@db:5432/acs"


def test_a_bad_url_is_a_store_error_that_hides_the_password():
    with pytest.raises(StoreError, match=r"invalid database URL 'not a url:\*\*\*@host'") as caught:
        database_url("not a url:secret@host")
    with pytest.raises(StoreError, match=r"unsupported database mysql://acs:\*\*\*@db/acs") as unsupported:
        database_url("mysql://acs:secret@db/acs")
    assert "secret" not in str(caught.value) + str(unsupported.value)


def test_an_unreachable_postgresql_says_so():
    expected = r"cannot connect to postgresql\+psycopg://acs:\*\*\*@127.0.0.1:1/acs: .*refused"
    with pytest.raises(StoreError, match=expected):
        upgrade("postgresql://acs:secret@127.0.0.1:1/acs")


def test_sqlite_connections_are_tuned(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'acs.db'}")
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    engine.dispose()
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 15000}


def test_in_memory_sqlite_is_one_database_for_every_connection():
    engine = create_engine("sqlite://")
    upgrade(engine)
    with engine.begin() as conn:
        _device(conn)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(devices)).scalar() == 1


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 11, 23, 13, 45, 7, 123456, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ],
    ids=["plus-two", "utc-microseconds", "minus-five-thirty"],
)
def test_datetimes_come_back_aware_and_in_utc(engine, moment):
    with engine.begin() as conn:
        _device(conn, last_inform=moment)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(devices.c.last_inform, devices.c.created_at)).one()

    assert stored.last_inform == moment
    assert stored.last_inform.utcoffset() == timedelta(0)
    assert stored.created_at.tzinfo is not None


def test_datetime_comparisons_are_by_instant(engine):
    """A query bound with a non-UTC offset finds the same rows as one in UTC."""
    moment = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        _device(conn, last_inform=moment)
        later = moment.astimezone(timezone(timedelta(hours=9))) + timedelta(seconds=1)
        found = conn.execute(sa.select(devices.c.id).where(devices.c.last_inform < later)).all()
    assert len(found) == 1


def test_naive_datetimes_are_refused(engine):
    naive = datetime(2026, 1, 1)  # what datetime.utcnow() gives
    refused = pytest.raises(sa.exc.StatementError, match=r"naive datetime 2026-01-01T00:00:00 .*an aware one")
    with refused, engine.begin() as conn:
        _device(conn, last_inform=naive)


def test_deleting_a_device_deletes_what_belongs_to_it(engine):
    with engine.begin() as conn:
        device_id = _device(conn)
        conn.execute(sa.insert(device_tags).values(device_id=device_id, tag="lobby"))
        conn.execute(sa.insert(parameters).values(device_id=device_id, path="Device.", object=True))
        conn.execute(sa.insert(events).values(device_id=device_id, code="0 BOOTSTRAP"))
        conn.execute(sa.insert(tasks).values(device_id=device_id, kind="Reboot", args={}))

    with engine.begin() as conn:
        conn.execute(sa.delete(devices))

    with engine.connect() as conn:
        left = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (device_tags, parameters, events, tasks)
        }
    assert left == {"device_tags": 0, "parameters": 0, "events": 0, "tasks": 0}


def test_a_failed_statement_never_shows_its_parameters(engine):
    """The error of a write that failed carries its statement, never its values: a CPE password,
    a connection-request password or a profile key would reach the log with its traceback."""
    import traceback

    secrets = {"password": "pw-never-shown", "connection_request_password": "cr-never-shown"}
    with engine.begin() as conn:
        _device(conn, **secrets)
    with pytest.raises(sa.exc.IntegrityError) as failed, engine.begin() as conn:
        _device(conn, **secrets)  # the same id again
    shown = "".join(traceback.format_exception(failed.value))
    assert "INSERT INTO devices" in shown
    assert not [value for value in secrets.values() if value in shown], shown


def test_rows_must_belong_to_a_known_device(engine):
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(parameters).values(device_id="nobody", path="Device.", object=True))


def test_a_transaction_commits_unless_the_caller_holds_one(engine):
    with engine.connect() as conn:
        with transaction(conn) as tx:  # an idle connection: committed on the way out
            _device(tx, "000000-A-1")
        conn.begin()
        with transaction(conn) as tx:  # the caller's transaction: joined, theirs to end
            _device(tx, "000000-A-2")
        conn.rollback()

    with engine.connect() as conn:
        assert conn.execute(sa.select(devices.c.id)).scalars().all() == ["000000-A-1"]
