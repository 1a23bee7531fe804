"""Prepared statements (SQL compiled once, run on the DBAPI cursor) give what Core's execute gives.

Every test runs on SQLite and PostgreSQL: the values that come back (aware UTC datetimes,
JSON, booleans, NULLs), rowcounts and RETURNING, IN lists, errors and transactions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from acs.store.prepared import Prepared
from acs.store.schema import devices, events, parameters, sessions, tasks, utcnow

PARIS = timezone(timedelta(hours=1))
DEVICE = "00562B-CP-8841-3PCC-FCH1"

_TASK = Prepared(sa.select(tasks).where(tasks.c.id == sa.bindparam("task_id")))
_ADD_TASK = Prepared(
    sa.insert(tasks).returning(tasks.c.id, tasks.c.created_at, tasks.c.args),
    columns=("device_id", "kind", "args", "status", "created_at", "expires_at", "result"),
)
_ADD_PARAMETER = Prepared(
    sa.insert(parameters), columns=("device_id", "path", "value", "writable", "object", "read_at")
)
_VALUES = Prepared(
    sa.select(
        parameters.c.path,
        parameters.c.value,
        parameters.c.writable,
        parameters.c.object,
        parameters.c.read_at,
    )
    .where(
        parameters.c.device_id == sa.bindparam("device"),
        parameters.c.path.in_(sa.bindparam("paths", expanding=True)),
    )
    .order_by(parameters.c.path)
)


def add_device(conn: Connection, device_id: str = DEVICE) -> None:
    conn.execute(
        devices.insert().values(id=device_id, oui="00562B", serial_number="FCH1", created_at=utcnow())
    )


def add_task(conn: Connection, **values: Any) -> int:
    row = {
        "device_id": DEVICE,
        "kind": "Reboot",
        "args": {"CommandKey": "k"},
        "status": "pending",
        "created_at": utcnow(),
        "expires_at": None,
        "result": None,
    } | values
    found = _ADD_TASK.first(conn, row)
    assert found is not None
    return found[0]


def test_rows_are_what_core_returns_datetimes_aware_utc_json_and_nulls(engine: Engine) -> None:
    created = datetime(2026, 3, 1, 12, 30, 15, 250, tzinfo=PARIS)
    with engine.begin() as conn:
        add_device(conn)
        task_id = add_task(conn, created_at=created, args={"List": [1, "two", None], "Nested": {"a": True}})

        row = _TASK.first_mapping(conn, {"task_id": task_id})
        core = conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).mappings().one()

    assert row == dict(core)
    assert row is not None
    assert row["created_at"] == created and row["created_at"].tzinfo == UTC
    assert row["args"] == {"List": [1, "two", None], "Nested": {"a": True}}
    assert row["result"] is None and row["expires_at"] is None and row["sent_at"] is None


def test_none_in_a_json_column_is_sql_null(engine: Engine) -> None:
    with engine.begin() as conn:
        add_device(conn)
        task_id = add_task(conn, result=None)
        null = conn.execute(sa.select(tasks.c.id).where(tasks.c.result.is_(None))).scalars().all()
    assert null == [task_id]


def test_returning_gives_the_inserted_row_converted(engine: Engine) -> None:
    created = datetime(2026, 3, 1, 23, 59, tzinfo=PARIS)
    with engine.begin() as conn:
        add_device(conn)
        found = _ADD_TASK.first(
            conn,
            {
                "device_id": DEVICE,
                "kind": "Reboot",
                "args": {"CommandKey": "x"},
                "status": "pending",
                "created_at": created,
                "expires_at": None,
                "result": None,
            },
        )
    assert found is not None
    task_id, created_at, args = found
    assert isinstance(task_id, int) and created_at == created and created_at.tzinfo == UTC
    assert args == {"CommandKey": "x"}


def test_booleans_nulls_and_in_lists_of_any_length(engine: Engine) -> None:
    read = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    rows = [
        {
            "device_id": DEVICE,
            "path": "Device.A",
            "value": "1",
            "writable": True,
            "object": False,
            "read_at": read,
        },
        {
            "device_id": DEVICE,
            "path": "Device.B",
            "value": None,
            "writable": False,
            "object": False,
            "read_at": None,
        },
        {
            "device_id": DEVICE,
            "path": "Device.C.",
            "value": None,
            "writable": None,
            "object": True,
            "read_at": read,
        },
    ]
    with engine.begin() as conn:
        add_device(conn)
        _ADD_PARAMETER.executemany(conn, rows)
        one = _VALUES.all(conn, {"device": DEVICE, "paths": ["Device.B"]})
        three = _VALUES.all(
            conn, {"device": DEVICE, "paths": ["Device.C.", "Device.A", "Device.B", "Device.Z"]}
        )
        again = _VALUES.all(conn, {"device": DEVICE, "paths": ["Device.A"]})
        with pytest.raises(ValueError, match="empty"):
            _VALUES.all(conn, {"device": DEVICE, "paths": []})

    assert one == [("Device.B", None, False, False, None)]
    assert three == [
        ("Device.A", "1", True, False, read),
        ("Device.B", None, False, False, None),
        ("Device.C.", None, None, True, read),
    ]
    assert all(type(r[3]) is bool for r in three)
    assert again == [("Device.A", "1", True, False, read)]


def test_rowcount_and_returning_of_an_update(engine: Engine) -> None:
    now = utcnow()
    rename = Prepared(
        sa.update(tasks)
        .where(tasks.c.device_id == sa.bindparam("device"), tasks.c.status == "pending")
        .values(status="cancelled", completed_at=sa.bindparam("now"))
    )
    cancel_one = Prepared(
        sa.update(tasks)
        .where(tasks.c.id == sa.bindparam("task_id"))
        .values(status="done", completed_at=sa.bindparam("now"))
        .returning(tasks.c.id, tasks.c.status, tasks.c.completed_at)
    )
    with engine.begin() as conn:
        add_device(conn)
        first, second = add_task(conn), add_task(conn)
        done = cancel_one.mappings(conn, {"task_id": first, "now": now})
        changed = rename.execute(conn, {"device": DEVICE, "now": now})
        none = cancel_one.first_mapping(conn, {"task_id": 10**9, "now": now})
        statuses = dict(conn.execute(sa.select(tasks.c.id, tasks.c.status)).all())

    assert done == [{"id": first, "status": "done", "completed_at": now}]
    assert changed == 1 and none is None
    assert statuses == {first: "done", second: "cancelled"}


def test_scalar_and_json_state(engine: Engine) -> None:
    load = Prepared(sa.select(sessions.c.state).where(sessions.c.id == sa.bindparam("sid")).with_for_update())
    add = Prepared(
        sa.insert(sessions).values(
            id=sa.bindparam("sid"),
            device_id=DEVICE,
            started_at=sa.bindparam("now"),
            status="open",
            state=sa.bindparam("state"),
        )
    )
    with engine.begin() as conn:
        add_device(conn)
        add.execute(
            conn,
            {"sid": "s1", "now": utcnow(), "state": {"pending": [1, 2], "ns": "urn:dslforum-org:cwmp-1-2"}},
        )
        add.execute(conn, {"sid": "s2", "now": utcnow(), "state": None})
        assert load.scalar(conn, {"sid": "s1"}) == {"pending": [1, 2], "ns": "urn:dslforum-org:cwmp-1-2"}
        assert load.scalar(conn, {"sid": "s2"}) is None
        assert load.scalar(conn, {"sid": "nope"}) is None


def test_a_statement_of_one_dialect_is_built_per_dialect(engine: Engine) -> None:
    def upsert(dialect: str) -> Any:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(parameters)
        return insert.on_conflict_do_update(
            index_elements=[parameters.c.device_id, parameters.c.path], set_={"value": insert.excluded.value}
        )

    statement = Prepared(upsert, columns=("device_id", "path", "value", "object"))
    with engine.begin() as conn:
        add_device(conn)
        statement.executemany(
            conn, [{"device_id": DEVICE, "path": "Device.X", "value": "1", "object": False}]
        )
        statement.executemany(
            conn, [{"device_id": DEVICE, "path": "Device.X", "value": "2", "object": False}]
        )
        assert conn.execute(sa.select(parameters.c.value)).scalars().all() == ["2"]


def test_driver_errors_are_sqlalchemys_and_the_transaction_rolls_back(engine: Engine) -> None:
    with engine.begin() as conn:
        add_device(conn)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        add_task(conn, device_id="no-such-device")

    def task_then_the_same_device_again(conn: Connection) -> None:
        add_task(conn)
        add_device(conn)

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        task_then_the_same_device_again(conn)  # the whole transaction goes
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar_one() == 0


def test_a_connection_outside_a_transaction_begins_one_as_execute_would(engine: Engine) -> None:
    with engine.begin() as conn:
        add_device(conn)
    with engine.connect() as conn:
        task_id = add_task(conn)
        assert conn.in_transaction()
        conn.rollback()
        assert _TASK.first(conn, {"task_id": task_id}) is None
        add_task(conn)
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar_one() == 1


def test_statements_go_on_after_an_error_and_after_the_connection_is_replaced(engine: Engine) -> None:
    """One cursor is kept per DBAPI connection: it must serve the next statement after a driver
    error, and a connection the pool replaced must get a cursor of its own."""
    with engine.begin() as conn:
        add_device(conn)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        add_device(conn)
    with engine.connect() as conn:
        first = add_task(conn)
        conn.commit()
        conn.invalidate()  # as after a lost connection: the pool opens a new one
        second = add_task(conn)
        conn.commit()
        assert [r[0] for r in _TASK.all(conn, {"task_id": first})] == [first]
        assert [r[0] for r in _TASK.all(conn, {"task_id": second})] == [second]


def test_python_side_defaults_are_refused_when_compiled(engine: Engine) -> None:
    without_time = Prepared(events.insert(), columns=("device_id", "code"))  # received_at has a default
    with engine.connect() as conn, pytest.raises(ValueError, match="give every column"):
        without_time.execute(conn, {"device_id": DEVICE, "code": "2 PERIODIC"})


def test_many_rows_are_converted_each_as_execute_converts_one(engine: Engine) -> None:
    """``executemany`` converts column by column, once per run of the same object: runs of one
    datetime, booleans that alternate, equal values in distinct objects, JSON and NULLs."""
    now = datetime(2026, 11, 23, 21, 0, tzinfo=PARIS)
    later = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
    same_as_now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # equal to now, another object
    read = [now, now, later, same_as_now, None, now, later]
    writable = [True, True, False, True, None, False, False]
    args = {"ParameterNames": ["Device.A"]}
    rows = [
        {
            "device_id": DEVICE,
            "path": f"Device.P{i}",
            "value": None if i == 4 else str(i),
            "writable": w,
            "object": i % 3 == 0,
            "read_at": r,
        }
        for i, (w, r) in enumerate(zip(writable, read, strict=True))
    ]
    with engine.begin() as conn:
        add_device(conn)
        _ADD_PARAMETER.executemany(conn, rows)
        got = _VALUES.all(conn, {"device": DEVICE, "paths": [r["path"] for r in rows]})
        tasks_many = Prepared(
            sa.insert(tasks), columns=("device_id", "kind", "args", "status", "created_at", "result")
        )
        results = [{"n": 1}, None, {"n": 1}, [1, "two"], None]
        tasks_many.executemany(
            conn,
            [
                {
                    "device_id": DEVICE,
                    "kind": "GetParameterValues",
                    "args": args,  # one object for every row
                    "status": "pending",
                    "created_at": now,
                    "result": result,
                }
                for result in results
            ],
        )
        stored = conn.execute(
            sa.select(tasks.c.args, tasks.c.created_at, tasks.c.result).order_by(tasks.c.id)
        )

        assert [tuple(r) for r in stored] == [(args, now, result) for result in results]
        nulls = conn.execute(sa.select(sa.func.count()).where(tasks.c.result.is_(None))).scalar_one()
        assert nulls == 2  # None is SQL NULL in every row, not JSON null
    assert got == [
        (r["path"], r["value"], r["writable"], r["object"], r["read_at"])
        for r in sorted(rows, key=lambda r: r["path"])
    ]
    assert all(r[4] is None or r[4].tzinfo == UTC for r in got)
