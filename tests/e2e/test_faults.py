"""A fault from the phone is stored on its task and shown to the operator in words."""

from __future__ import annotations

from collections.abc import Callable

from acs.cwmp import rpc
from tests.e2e.conftest import Acs, new_phone

SERIAL = "Device.DeviceInfo.SerialNumber"
HOST_NAME = "Device.DeviceInfo.HostName"


def test_a_fault_from_the_phone_is_stored_and_shown_in_words(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    bad = acs.cli.queue("get-values", "Device.DeviceInfo.NoSuchThing", "--device", phone.mac)
    good = acs.cli.queue("get-values", HOST_NAME, "--device", phone.mac)

    log = acs.session(phone)

    faults = [r for r in log.responses if isinstance(r, rpc.Fault)]
    assert [f.FaultCode for f in faults] == [9005]
    shown = acs.cli.task(bad)
    assert shown["status"] == "fault"
    assert (shown["fault_code"], shown["fault_meaning"]) == (9005, "Invalid parameter name")
    assert "Device.DeviceInfo.NoSuchThing" in shown["fault_string"]  # the phone's own words, kept
    text = acs.cli("task", "show", str(bad))
    assert "9005 Invalid parameter name" in text
    assert "9005 Invalid parameter name" in acs.cli("task", "list", "--device", phone.mac)
    # the session went on after the fault
    assert acs.cli.task(good)["status"] == "done"
    assert acs.cli.task(bad)["attempts"] == 1  # a fault is an answer: not sent again
    assert acs.session(phone).requests == []


def test_set_values_on_a_read_only_parameter_is_9003_with_9008_for_that_parameter(
    serve: Callable[..., Acs],
) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    before = acs.cli.tree(phone.mac, "Device.DeviceInfo.")
    assert before[SERIAL]["value"] == "FCH2233A1B2"
    task = acs.cli.queue("set-values", f"{SERIAL}=STOLEN", f"{HOST_NAME}=lobby", "--device", phone.mac)

    acs.session(phone)

    shown = acs.cli.task(task)
    assert shown["status"] == "fault"
    assert (shown["fault_code"], shown["fault_meaning"]) == (9003, "Invalid arguments")
    assert "9003 Invalid arguments" in acs.cli("task", "show", str(task))
    per_parameter = shown["result"]["SetParameterValuesFault"]
    assert [(f["ParameterName"], f["FaultCode"]) for f in per_parameter] == [(SERIAL, 9008)]
    assert "read-only" in per_parameter[0]["FaultString"]
    # all or nothing: neither the phone nor the stored tree changed
    assert phone.value(SERIAL) == "FCH2233A1B2"
    assert phone.value(HOST_NAME) == "SEP00562B043615"
    assert acs.cli.tree(phone.mac, "Device.DeviceInfo.") == before
