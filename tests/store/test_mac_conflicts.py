"""A MAC stays with the device that had it: another device's Inform, GetParameterValues answer or
profile fetch that reports it is refused it, the conflict is recorded (an event on both, a log line,
a row) and an operator resolves it. On SQLite and PostgreSQL, through the store's functions; the
server, the CLI, the API and the profile server are ``tests/e2e/test_profile_identity.py``'s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.cwmp import rpc
from acs.store import create_engine, devices, inventory, upgrade
from acs.store.schema import mac_conflicts
from acs.testing import SimulatedPhone

MAC = "00562b043615"
DESK = SimulatedPhone("CP-8841-3PCC", serial="FCH2233A1B2", mac=MAC)
#: another device, reporting DESK's MAC
ROGUE = SimulatedPhone("CP-8841-3PCC", serial="FCH6666EVIL", mac=MAC)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def inform(engine: Engine, phone: SimulatedPhone, now: datetime, events: list[str] | None = None) -> dict:
    with engine.begin() as conn:
        sent = phone.inform(events or ["2 PERIODIC"])
        return inventory.record_device(conn, phone.device_id, sent, version="1.2", remote_addr=None, now=now)


def mac_of(engine: Engine, device_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(devices.c.mac).where(devices.c.id == device_id)).scalar_one()


def acs_events(engine: Engine, device_id: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = inventory.get_events(conn, device_id, limit=100)
    return [(r["code"], r["command_key"]) for r in reversed(rows) if r["code"].startswith("ACS ")]


def conflicts(engine: Engine, **kwargs: object) -> list[dict]:
    with engine.connect() as conn:
        return inventory.list_mac_conflicts(conn, **kwargs)


def test_an_inform_reporting_another_device_s_mac_does_not_take_it(engine: Engine, caplog) -> None:
    inform(engine, DESK, T0, ["0 BOOTSTRAP", "1 BOOT"])
    with caplog.at_level("WARNING", logger="acs.store.inventory"):
        stored = inform(engine, ROGUE, T0 + timedelta(minutes=1), ["0 BOOTSTRAP", "1 BOOT"])
    assert stored["mac"] is None  # a new device: its INSERT is undone
    assert (mac_of(engine, DESK.device_id), mac_of(engine, ROGUE.device_id)) == (MAC, None)
    with engine.connect() as conn:
        assert inventory.get_device(conn, MAC)["id"] == DESK.device_id  # not ambiguous: one has it
        assert inventory.find_phone(conn, [MAC], [], "CP-8841-3PCC")["id"] == DESK.device_id
    (row,) = conflicts(engine)
    assert row == {
        "mac": MAC,
        "claimant_id": ROGUE.device_id,
        "holder_id": DESK.device_id,
        "source": "inform",
        "first_seen_at": T0 + timedelta(minutes=1),
        "last_seen_at": T0 + timedelta(minutes=1),
        "reports": 1,
        "resolved_at": None,
    }
    assert acs_events(engine, ROGUE.device_id) == [("ACS MAC CONFLICT", f"{MAC} held by {DESK.device_id}")]
    assert acs_events(engine, DESK.device_id) == [("ACS MAC CONFLICT", f"{MAC} claimed by {ROGUE.device_id}")]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        f"MAC conflict: device {ROGUE.device_id} reported MAC {MAC} (inform), which device {DESK.device_id} "
        f"has; the MAC stays with {DESK.device_id}"
    )
    assert line.endswith(f"`acs device mac-conflict resolve {MAC} --keep DEVICE`")

    # its periodic Informs: counted, no new event nor line, the MAC still DESK's
    caplog.clear()
    for minutes in (2, 3):
        assert inform(engine, ROGUE, T0 + timedelta(minutes=minutes))["mac"] is None
    (row,) = conflicts(engine)
    assert (row["reports"], row["last_seen_at"]) == (3, T0 + timedelta(minutes=3))
    assert len(acs_events(engine, ROGUE.device_id)) == 1 and caplog.records == []
    # and DESK's own Informs change nothing
    assert inform(engine, DESK, T0 + timedelta(minutes=4))["mac"] == MAC


def test_a_device_that_had_a_mac_keeps_it_when_it_reports_one_another_device_has(engine: Engine) -> None:
    """The upsert's guard: an informed device whose MAC changes to another's keeps its own."""
    lobby = SimulatedPhone("CP-7841-3PCC", serial="FCH9999ZZZZ", mac="00562b0499aa")
    inform(engine, DESK, T0, ["0 BOOTSTRAP"])
    inform(engine, lobby, T0, ["0 BOOTSTRAP"])
    moved = SimulatedPhone("CP-7841-3PCC", serial="FCH9999ZZZZ", mac=MAC)  # lobby now says DESK's MAC
    assert inform(engine, moved, T0 + timedelta(minutes=1))["mac"] == "00562b0499aa"
    assert [(r["claimant_id"], r["holder_id"]) for r in conflicts(engine)] == [
        (lobby.device_id, DESK.device_id)
    ]
    # a MAC nobody has is taken as before
    free = SimulatedPhone("CP-7841-3PCC", serial="FCH9999ZZZZ", mac="00562b0499bb")
    assert inform(engine, free, T0 + timedelta(minutes=2))["mac"] == "00562b0499bb"


def test_a_get_parameter_values_answer_or_a_profile_fetch_does_not_take_it_either(engine: Engine) -> None:
    inform(engine, DESK, T0, ["0 BOOTSTRAP"])
    with engine.begin() as conn:
        conn.execute(devices.insert().values(id="imported-1", oui="00562B", serial_number="FCH1", mac=None))
        conn.execute(devices.insert().values(id="imported-2", oui="00562B", serial_number="FCH2", mac=None))
        values = [rpc.ParameterValueStruct("Device.Ethernet.Interface.1.MACAddress", "00:56:2B:04:36:15")]
        inventory.record_facts(conn, "imported-1", values, written=False)
        fetched = inventory.record_profile_fetch(
            conn,
            inventory.get_device(conn, "imported-2"),
            now=T0,
            ip="192.0.2.7",
            mac=MAC,
            model="CP-8841-3PCC",
        )
        assert "mac" not in fetched and fetched["product_class"] == "CP-8841-3PCC"
        free = inventory.record_profile_fetch(
            conn, inventory.get_device(conn, "imported-2"), now=T0, mac="00562b0000aa"
        )
        assert free["mac"] == "00562b0000aa"
    assert mac_of(engine, "imported-1") is None and mac_of(engine, "imported-2") == "00562b0000aa"
    assert [(r["claimant_id"], r["source"]) for r in conflicts(engine)] == [
        ("imported-1", "parameters"),
        ("imported-2", "profile fetch"),
    ]


def test_a_preregistered_placeholder_is_adopted_not_a_conflict(engine: Engine) -> None:
    with engine.begin() as conn:
        inventory.preregister(conn, mac=MAC, tags=["lobby"])
    inform(engine, DESK, T0, ["0 BOOTSTRAP"])
    assert mac_of(engine, DESK.device_id) == MAC
    assert conflicts(engine) == []


def test_the_operator_resolves_a_conflict_and_its_decision_stands(engine: Engine) -> None:
    inform(engine, DESK, T0, ["0 BOOTSTRAP"])
    inform(engine, ROGUE, T0 + timedelta(minutes=1), ["0 BOOTSTRAP"])  # say, DESK's replacement
    with engine.begin() as conn:
        with pytest.raises(ValueError, match=f"device lobby has no part in the conflict over MAC {MAC}"):
            inventory.resolve_mac_conflict(conn, MAC, "lobby", now=T0)
        with pytest.raises(inventory.NoMacConflict, match="no open conflict over MAC 00562b0000ff"):
            inventory.resolve_mac_conflict(conn, "00562b0000ff", DESK.device_id, now=T0)
        done = inventory.resolve_mac_conflict(conn, MAC, ROGUE.device_id, now=T0 + timedelta(hours=1))
    assert done.to_json() == {"mac": MAC, "kept": ROGUE.device_id, "lost": [DESK.device_id]}
    assert (mac_of(engine, DESK.device_id), mac_of(engine, ROGUE.device_id)) == (None, MAC)
    assert conflicts(engine) == []  # nothing open
    (settled,) = conflicts(engine, resolved=True)
    assert (settled["claimant_id"], settled["holder_id"], settled["source"]) == (
        DESK.device_id,
        ROGUE.device_id,
        "operator",
    )
    assert settled["resolved_at"] == T0 + timedelta(hours=1)
    for device in (DESK, ROGUE):
        assert acs_events(engine, device.device_id)[-1] == (
            "ACS MAC RESOLVED",
            f"{MAC} kept by {ROGUE.device_id}",
        )
    # DESK still reports the MAC: refused, counted, no new alarm
    assert inform(engine, DESK, T0 + timedelta(hours=2))["mac"] is None
    assert conflicts(engine) == []
    (settled,) = conflicts(engine, resolved=True)
    assert settled["reports"] == 1
    assert acs_events(engine, DESK.device_id)[-1][0] == "ACS MAC RESOLVED"
    # deleting the device that kept it ends the matter: the MAC is free again
    with engine.begin() as conn:
        inventory.delete_device(conn, ROGUE.device_id)
    assert inform(engine, DESK, T0 + timedelta(hours=3))["mac"] == MAC
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(mac_conflicts)).scalar() == 0


def test_the_migration_records_macs_devices_shared_before_it(empty_db_url: str) -> None:
    upgrade(empty_db_url, "0010")
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            for device_id, created in (("twin", T0 + timedelta(days=1)), ("desk", T0), ("lone", T0)):
                mac = "00562b0499aa" if device_id == "lone" else MAC
                conn.execute(
                    sa.text(
                        "INSERT INTO devices (id, oui, serial_number, mac, created_at) "
                        "VALUES (:id, '00562B', :id, :mac, :created)"
                    ),
                    {"id": device_id, "mac": mac, "created": created.replace(tzinfo=None)},
                )
        upgrade(empty_db_url)
        (row,) = conflicts(engine)
        assert (row["mac"], row["claimant_id"], row["holder_id"], row["source"], row["reports"]) == (
            MAC,
            "twin",
            "desk",
            "upgrade",
            0,
        )
        with engine.begin() as conn:
            inventory.resolve_mac_conflict(conn, MAC, "desk", now=T0)
        assert (mac_of(engine, "desk"), mac_of(engine, "twin")) == (MAC, None)
    finally:
        engine.dispose()
