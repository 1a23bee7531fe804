"""The device id is made in one place: an Inform, the inventory import and the simulated phone agree."""

from __future__ import annotations

from acs.cwmp import rpc
from acs.provisioning.preprovision import InventoryRow
from acs.session.machine import device_id
from acs.testing import SimulatedPhone


def test_device_key_is_oui_product_class_serial_or_two_parts_without_a_class() -> None:
    assert rpc.device_key("00562b", "CP-8841-3PCC", "FCH1") == "00562B-CP-8841-3PCC-FCH1"
    assert rpc.device_key("00562B", "", "FCH1") == "00562B-FCH1"


def test_inform_import_and_phone_name_a_device_alike() -> None:
    phone = SimulatedPhone("CP-8841-3PCC", serial="FCH2233A1B2", mac="00562b043615")
    inform = rpc.DeviceIdStruct("Cisco", "00562b", "CP-8841-3PCC", "FCH2233A1B2")
    row = InventoryRow(line=1, mac="00562b043615", serial="FCH2233A1B2", model="CP-8841-3PCC", oui="00562B")
    assert device_id(inform) == row.device_id == phone.device_id == "00562B-CP-8841-3PCC-FCH2233A1B2"
