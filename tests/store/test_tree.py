"""The parameter tree's upserts (SQLite and PostgreSQL): many rows at once, as a discovery writes
them (one statement of arrays on PostgreSQL, executemany on SQLite), give the same tree."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.cwmp import rpc
from acs.store import inventory
from acs.store.schema import devices, parameters, utcnow

DEVICE = "00562B-CP-8841-3PCC-FCH1"


def tree(engine: Engine) -> dict[str, tuple[str | None, str | None, bool | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(parameters.c.path, parameters.c.value, parameters.c.type, parameters.c.writable)
        ).all()
    return {path: (value, kind, writable) for path, value, kind, writable in rows}


def read_at(engine: Engine, path: str) -> datetime:
    with engine.connect() as conn:
        return conn.execute(sa.select(parameters.c.read_at).where(parameters.c.path == path)).scalar_one()


def test_many_values_and_names_at_once_a_path_given_twice_keeps_its_last(engine: Engine) -> None:
    then = utcnow() - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(devices.insert().values(id=DEVICE, oui="00562B", serial_number="FCH1", created_at=then))
        names = [rpc.ParameterInfoStruct(f"Device.X.{i}.Name", i % 2 == 0) for i in range(300)]
        inventory.store_names(conn, DEVICE, [*names, rpc.ParameterInfoStruct("Device.X.7.Name", True)], then)
        values = [rpc.ParameterValueStruct(f"Device.X.{i}.Name", f"v{i}", "xsd:string") for i in range(300)]
        values.append(rpc.ParameterValueStruct("Device.X.3.Name", "last", "xsd:string"))
        inventory.store_values(conn, DEVICE, values, then)

    stored = tree(engine)
    assert len(stored) == 300
    assert stored["Device.X.2.Name"] == ("v2", "xsd:string", True)
    assert stored["Device.X.3.Name"] == ("last", "xsd:string", False)  # the later of two rows
    assert stored["Device.X.7.Name"] == ("v7", "xsd:string", True)  # named twice: the last says writable

    now = utcnow()
    with engine.begin() as conn:  # the same values again, one changed: only that row is written
        again = [rpc.ParameterValueStruct(f"Device.X.{i}.Name", f"v{i}", "xsd:string") for i in range(300)]
        again[3] = rpc.ParameterValueStruct("Device.X.3.Name", "last", "xsd:string")
        again[5] = rpc.ParameterValueStruct("Device.X.5.Name", "moved", "xsd:string")
        inventory.store_values(conn, DEVICE, again, now)
    assert tree(engine)["Device.X.5.Name"] == ("moved", "xsd:string", False)
    assert read_at(engine, "Device.X.5.Name") == now
    assert read_at(engine, "Device.X.4.Name") == then  # unchanged: not rewritten


def test_naive_datetimes_are_refused_one_row_or_many(engine: Engine) -> None:
    naive = datetime(2026, 12, 3, 12, 0)  # no tzinfo: what is refused
    with engine.begin() as conn:
        conn.execute(
            devices.insert().values(id=DEVICE, oui="00562B", serial_number="FCH1", created_at=utcnow())
        )
    for count in (1, 50):
        values = [rpc.ParameterValueStruct(f"Device.X.{i}.Name", "v", "xsd:string") for i in range(count)]
        with (
            pytest.raises((ValueError, sa.exc.StatementError), match="naive datetime"),
            engine.begin() as conn,
        ):
            inventory.store_values(conn, DEVICE, values, naive)
    assert tree(engine) == {}
