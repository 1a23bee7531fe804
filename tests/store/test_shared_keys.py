"""A MAC (or serial number) that two devices have names neither: lookups by it are refused with
both ids, never answered with one of them. Ids always name one device. On SQLite and PostgreSQL.

Since migration 0012 an Inform no longer takes a MAC another device has (it stays with the device
that had it: ``test_mac_conflicts.py``); devices that shared one before it are made here as the
server before it made them, the second Inform's MAC written over the refusal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from acs.store import devices, inventory
from acs.testing import SimulatedPhone

MAC = "00562b043615"
DESK = SimulatedPhone("CP-8841-3PCC", serial="FCH2233A1B2", mac=MAC)
#: another model whose firmware reports the same MAC
TWIN = SimulatedPhone("CP-7841-3PCC", serial="FCH7777TWIN", mac=MAC)
LOBBY = SimulatedPhone("CP-7841-3PCC", serial="FCH9999ZZZZ", mac="00562b0499aa")
BOTH = sorted([DESK.device_id, TWIN.device_id])


@pytest.fixture
def informed(engine: Engine) -> Engine:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for phone in (DESK, TWIN, LOBBY):
            inform = phone.inform(["0 BOOTSTRAP", "1 BOOT"])
            inventory.record_device(conn, phone.device_id, inform, version="1.2", remote_addr=None, now=now)
        assert inventory.get_device(conn, MAC)["id"] == DESK.device_id  # the MAC stayed with DESK
        # a database from before 0012: TWIN's Inform took the MAC too
        conn.execute(devices.update().where(devices.c.id == TWIN.device_id).values(mac=MAC))
    return engine


def test_a_shared_mac_names_no_device_in_any_notation(informed: Engine) -> None:
    with informed.connect() as conn:
        for key in (MAC, "00:56:2B:04:36:15", "0056.2b04.3615"):
            with pytest.raises(inventory.AmbiguousDevice) as info:
                inventory.get_device(conn, key)
            assert info.value.device_ids == BOTH
            assert (
                str(info.value)
                == f"{key!r} names 2 devices: {', '.join(BOTH)}; give the id of the one you mean"
            )
        assert inventory.get_device(conn, DESK.device_id)["id"] == DESK.device_id  # ids name one
        assert inventory.get_device(conn, TWIN.identity.serial)["id"] == TWIN.device_id
        assert inventory.get_device(conn, "00:56:2b:04:99:aa")["id"] == LOBBY.device_id


def test_keys_in_a_filter_must_each_name_one_device(informed: Engine) -> None:
    with informed.connect() as conn:
        with pytest.raises(inventory.AmbiguousDevice) as info:
            inventory.find_devices(conn, keys=[LOBBY.device_id, MAC])
        assert info.value.key == MAC and info.value.device_ids == BOTH
        with pytest.raises(inventory.AmbiguousDevice):
            inventory.count_devices(conn, keys=["00-56-2B-04-36-15"])
        named = inventory.find_devices(conn, keys=[DESK.device_id, TWIN.identity.serial, "nothing"])
        assert [d["id"] for d in named] == BOTH
        assert inventory.unmatched_keys(named, [DESK.device_id, "nothing"]) == ["nothing"]
        # the explicit MAC filter lists every device with it: how to find them
        assert [d["id"] for d in inventory.find_devices(conn, macs=[MAC])] == BOTH
        assert inventory.count_devices(conn, macs=[MAC], product_class="CP-7841-3PCC") == 1


def test_the_profile_server_tells_them_apart_by_model_or_serves_neither(informed: Engine) -> None:
    with informed.connect() as conn:
        assert inventory.find_phone(conn, [MAC], [], "CP-7841-3PCC")["id"] == TWIN.device_id
        assert inventory.find_phone(conn, [MAC], [], "CP-8841-3PCC")["id"] == DESK.device_id
        for model in (None, "CP-6821-3PCC"):
            with pytest.raises(inventory.AmbiguousDevice) as info:
                inventory.find_phone(conn, [MAC], [], model)
            assert info.value.device_ids == BOTH
        assert inventory.find_phone(conn, ["00562b0499aa"], [])["id"] == LOBBY.device_id
