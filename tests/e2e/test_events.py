"""Each EventCode a phone informs with does what TR-069 has it do, and is recorded as it came.

``3 SCHEDULED`` + ``M ScheduleInform``, ``7 TRANSFER COMPLETE`` + ``M Download`` / ``M Upload``
and ``M Reboot`` close the tasks that caused them: see ``test_rpcs.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from acs.cwmp import rpc
from tests.e2e.conftest import Acs, new_phone
from tests.e2e.test_bootstrap import assert_tree_is_the_phones

HOST_NAME = "Device.DeviceInfo.HostName"
DIRECTORY_NUMBER = "Device.Services.VoiceService.1.CallControl.Line.1.DirectoryNumber"
INFORM_PARAMETER = "Device.ManagementServer.InformParameter."


def when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def test_0_bootstrap_forgets_the_stored_tree_and_discovers_it_again(serve: Callable[..., Acs]) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    acs.cli.queue("add-object", INFORM_PARAMETER, "--device", phone.mac)
    acs.cli.queue("set-attributes", HOST_NAME, "--notification", "1", "--device", phone.mac)
    acs.session(phone)
    stored = acs.cli.tree(phone.mac)
    assert f"{INFORM_PARAMETER}1." in stored
    assert stored[HOST_NAME]["notification"] == 1
    first = when(acs.cli.device(phone.mac)["last_bootstrap"])

    # reset from its keypad: the same phone, as it left the factory, bootstraps again
    phone = new_phone()
    log = acs.session(phone)

    assert [e.EventCode for e in log.inform.Event] == ["0 BOOTSTRAP", "1 BOOT"]
    stored = acs.cli.tree(phone.mac)
    assert f"{INFORM_PARAMETER}1." not in stored  # what the ACS knew is gone...
    assert stored[HOST_NAME]["notification"] is None
    assert_tree_is_the_phones(stored, phone)  # ...and the tree is the phone's as it is now
    device = acs.cli.device(phone.mac)
    assert when(device["last_bootstrap"]) > first
    assert when(device["last_bootstrap"]) == when(device["last_inform"])
    assert [c for c, _ in acs.cli.events(phone.mac)].count("0 BOOTSTRAP") == 2


def test_1_boot_sets_last_boot_and_2_periodic_does_not(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    device = acs.cli.device(phone.mac)
    assert when(device["last_boot"]) == when(device["first_inform"])

    log = acs.session(phone)  # nothing to report: a periodic Inform

    assert [e.EventCode for e in log.inform.Event] == ["2 PERIODIC"]
    periodic = acs.cli.device(phone.mac)
    assert when(periodic["last_inform"]) > when(device["last_inform"])
    assert periodic["last_boot"] == device["last_boot"]

    acs.session(phone, events=["1 BOOT"])  # power cycled

    booted = acs.cli.device(phone.mac)
    assert when(booted["last_boot"]) == when(booted["last_inform"]) > when(periodic["last_inform"])
    assert booted["last_bootstrap"] == device["last_bootstrap"]
    assert acs.cli.events(phone.mac) == [
        ("0 BOOTSTRAP", ""),
        ("1 BOOT", ""),
        ("2 PERIODIC", ""),
        ("1 BOOT", ""),
    ]


def test_4_value_change_stores_the_values_the_inform_carries(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    acs.cli.queue("set-attributes", HOST_NAME, "--notification", "2", "--device", phone.mac)  # active
    acs.cli.queue("set-attributes", DIRECTORY_NUMBER, "--notification", "1", "--device", phone.mac)  # passive
    acs.session(phone)

    phone.local_change(HOST_NAME, "reception")  # typed on the phone's own web page
    phone.local_change(DIRECTORY_NUMBER, "4002")
    log = acs.session(phone)

    assert [e.EventCode for e in log.inform.Event] == ["4 VALUE CHANGE"]
    carried = {p.Name: p.Value for p in log.inform.ParameterList}
    assert (carried[HOST_NAME], carried[DIRECTORY_NUMBER]) == ("reception", "4002")
    stored = acs.cli.tree(phone.mac)
    assert stored[HOST_NAME]["value"] == "reception"
    assert stored[DIRECTORY_NUMBER]["value"] == "4002"
    assert acs.cli.events(phone.mac)[-1] == ("4 VALUE CHANGE", "")


def test_6_connection_request_session_gets_the_queued_tasks(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    task = acs.cli.queue("get-values", HOST_NAME, "--device", phone.mac)

    log = acs.session(phone, events=["6 CONNECTION REQUEST"])

    assert [e.EventCode for e in log.inform.Event] == ["6 CONNECTION REQUEST"]
    assert [type(r).__name__ for r in log.requests] == ["GetParameterValues"]
    assert acs.cli.task(task)["status"] == "done"
    assert acs.cli.tree(phone.mac, HOST_NAME)[HOST_NAME]["value"] == phone.value(HOST_NAME)
    assert acs.cli.events(phone.mac)[-1] == ("6 CONNECTION REQUEST", "")


def test_a_vendor_event_code_is_recorded_as_it_came(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)

    log = acs.session(
        phone, events=[rpc.EventStruct("X 00562B Custom", "from-the-keypad"), "M X_CISCO_Resync"]
    )

    assert log.statuses[-2:] == [200, 204]  # an ordinary session: InformResponse, then the end
    assert acs.cli.events(phone.mac)[-2:] == [
        ("X 00562B Custom", "from-the-keypad"),
        ("M X_CISCO_Resync", ""),
    ]
    listed = acs.cli("device", "events", phone.mac)
    assert "X 00562B Custom" in listed and "from-the-keypad" in listed
    assert acs.errors() == []
