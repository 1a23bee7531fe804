"""Each RPC kind, queued from the CLI, reaches the phone, and its outcome shows in ``acs task show``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from acs.cwmp import rpc
from acs.testing import SessionLog
from acs.testing.phone import METHODS
from tests.e2e.conftest import Acs, new_phone
from tests.e2e.test_bootstrap import assert_tree_is_the_phones

INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
DIRECTORY_NUMBER = "Device.Services.VoiceService.1.CallControl.Line.1.DirectoryNumber"
HOST_NAME = "Device.DeviceInfo.HostName"
CR_URL = "Device.ManagementServer.ConnectionRequestURL"
VOIP_PROFILE = "Device.Services.VoiceService.1.VoIPProfile."
INFORM_PARAMETER = "Device.ManagementServer.InformParameter."


def sent_methods(log: SessionLog) -> list[str]:
    """The RPCs the ACS sent in a session, by name, in order."""
    return [type(r).__name__ for r in log.requests]


def test_get_rpc_methods_names_and_values_reach_the_phone_in_order(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    methods = acs.cli.queue("get-rpc-methods", "--device", phone.mac)
    names = acs.cli.queue("get-names", "Device.ManagementServer.", "--next-level", "--device", phone.mac)
    read = acs.cli.queue("get-values", "Device.DeviceInfo.", INTERVAL, "--device", phone.device_id)
    assert [acs.cli.task(t)["status"] for t in (methods, names, read)] == ["pending"] * 3

    log = acs.session(phone)

    assert sent_methods(log) == ["GetRPCMethods", "GetParameterNames", "GetParameterValues"]
    shown = acs.cli.task(methods)
    assert shown["status"] == "done"
    assert shown["result"] == {"MethodList": list(METHODS)}

    shown = acs.cli.task(names)
    assert shown["status"] == "done"
    expected = [{"Name": n, "Writable": w} for n, w in phone.model.names("Device.ManagementServer.", True)]
    assert shown["result"] == {"ParameterList": expected}

    shown = acs.cli.task(read)
    assert shown["status"] == "done"
    got = {name: (value, kind) for name, value, kind in shown["result"]["ParameterList"]}
    wanted = [p for p, _ in phone.model.parameters("Device.DeviceInfo.")] + [INTERVAL]
    assert list(got) == wanted
    assert got["Device.DeviceInfo.SoftwareVersion"] == (phone.software_version, "string")
    assert got[INTERVAL] == (20, "unsignedInt")

    stored = acs.cli.tree(phone.mac)
    assert stored[INTERVAL]["value"] == "20"
    assert stored["Device.DeviceInfo.HostName"]["value"] == phone.value("Device.DeviceInfo.HostName")
    assert stored["Device.ManagementServer.URL"]["writable"] is True  # from GetParameterNames
    assert stored["Device.ManagementServer.InformParameter."]["object"] is True
    assert all(acs.cli.task(t)["attempts"] == 1 for t in (methods, names, read))


def test_set_values_changes_the_phone_and_the_stored_tree(serve: Callable[..., Acs]) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    task = acs.cli.queue(
        "set-values", f"{INTERVAL}:unsignedInt=3600", f"{DIRECTORY_NUMBER}=4001", "--device", phone.mac
    )

    log = acs.session(phone)

    (request,) = log.requests
    assert isinstance(request, rpc.SetParameterValues)
    assert request.ParameterKey == f"acs-{task}"
    shown = acs.cli.task(task)
    assert shown["status"] == "done"
    assert shown["result"] == {"Status": 0}
    assert phone.value(INTERVAL) == 3600
    assert phone.value(DIRECTORY_NUMBER) == "4001"
    assert phone.parameter_key == f"acs-{task}"
    stored = acs.cli.tree(phone.mac)
    assert (stored[DIRECTORY_NUMBER]["value"], stored[DIRECTORY_NUMBER]["type"]) == ("4001", "string")
    assert (stored[INTERVAL]["value"], stored[INTERVAL]["type"]) == ("3600", "unsignedInt")
    acs.session(phone)
    assert acs.cli.device(phone.mac)["parameter_key"] == f"acs-{task}"  # the phone's next Inform says so
    assert_tree_is_the_phones(acs.cli.tree(phone.mac), phone)  # the stored tree is still the phone's


def test_get_and_set_attributes_reach_the_phone_and_the_stored_tree(serve: Callable[..., Acs]) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    set_ = acs.cli.queue(
        "set-attributes",
        HOST_NAME,
        "--notification",
        "1",
        "--access-list",
        "Subscriber",
        "--device",
        phone.mac,
    )
    get = acs.cli.queue("get-attributes", HOST_NAME, CR_URL, "--device", phone.mac)

    log = acs.session(phone)

    assert sent_methods(log) == ["SetParameterAttributes", "GetParameterAttributes"]
    assert acs.cli.task(set_)["status"] == "done"
    assert phone.notification(HOST_NAME) == 1
    shown = acs.cli.task(get)
    assert shown["status"] == "done"
    assert shown["result"] == {
        "ParameterList": [
            {"Name": HOST_NAME, "Notification": 1, "AccessList": ["Subscriber"]},
            {"Name": CR_URL, "Notification": 2, "AccessList": []},  # forced active by TR-181
        ]
    }
    stored = acs.cli.tree(phone.mac)
    assert (stored[HOST_NAME]["notification"], stored[HOST_NAME]["access_list"]) == (1, "Subscriber")
    assert stored[CR_URL]["notification"] == 2
    assert stored[HOST_NAME]["value"] == phone.value(HOST_NAME)  # the value is kept alongside


def test_add_and_delete_object_change_the_phone_and_the_stored_tree(serve: Callable[..., Acs]) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    assert any(p.startswith(f"{VOIP_PROFILE}1.") for p in acs.cli.tree(phone.mac))
    add_profile = acs.cli.queue("add-object", VOIP_PROFILE.rstrip("."), "--device", phone.mac)
    add_inform = acs.cli.queue("add-object", INFORM_PARAMETER, "--device", phone.mac)
    delete = acs.cli.queue("delete-object", f"{VOIP_PROFILE}1", "--device", phone.mac)

    log = acs.session(phone)

    # then the ACS reads what changed: each new instance's subtree, and the tables' NumberOfEntries
    assert sent_methods(log)[:3] == ["AddObject", "AddObject", "DeleteObject"]
    assert [r.ObjectName for r in log.requests[:3]] == [VOIP_PROFILE, INFORM_PARAMETER, f"{VOIP_PROFILE}1."]
    assert set(sent_methods(log)[3:]) == {"GetParameterNames", "GetParameterValues"}
    assert acs.cli.task(add_profile)["result"] == {"InstanceNumber": 2, "Status": 0}
    assert acs.cli.task(add_inform)["result"] == {"InstanceNumber": 1, "Status": 0}
    shown = acs.cli.task(delete)
    assert (shown["status"], shown["result"]) == ("done", {"Status": 0})
    assert f"{VOIP_PROFILE}2." in phone.model
    assert f"{INFORM_PARAMETER}1." in phone.model
    assert f"{VOIP_PROFILE}1." not in phone.model
    stored = acs.cli.tree(phone.mac)
    assert stored[f"{VOIP_PROFILE}2."]["object"] is True
    assert stored[f"{INFORM_PARAMETER}1."]["object"] is True
    assert [p for p in stored if p.startswith(f"{VOIP_PROFILE}1.")] == []
    new_values = {
        p: str(v.value).lower() if isinstance(v.value, bool) else str(v.value)
        for p, v in phone.model.parameters(f"{VOIP_PROFILE}2.")
    }
    assert new_values
    assert {p: stored[p]["value"] for p in new_values} == new_values
    count = "Device.Services.VoiceService.1.VoIPProfileNumberOfEntries"
    assert stored[count]["value"] == str(phone.value(count))


def test_reboot_is_sent_then_done_when_the_phone_comes_back_with_m_reboot(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    booted = datetime.fromisoformat(acs.cli.device(phone.mac)["last_boot"])
    task = acs.cli.queue("reboot", "--device", phone.mac)

    log = acs.session(phone)

    (request,) = log.requests
    assert isinstance(request, rpc.Reboot)
    assert request.CommandKey == f"acs-{task}"
    shown = acs.cli.task(task)
    assert shown["status"] == "sent"  # answered; the reboot itself is not done yet
    assert shown["answered_at"] is not None
    assert shown["completed_at"] is None

    log = acs.session(phone)

    assert [(e.EventCode, e.CommandKey) for e in log.inform.Event] == [
        ("1 BOOT", ""),
        ("M Reboot", f"acs-{task}"),
    ]
    assert log.requests == []  # not sent again
    shown = acs.cli.task(task)
    assert (shown["status"], shown["attempts"]) == ("done", 1)
    assert shown["completed_at"] is not None
    assert datetime.fromisoformat(acs.cli.device(phone.mac)["last_boot"]) > booted
    assert acs.cli.events(phone.mac)[-2:] == [("1 BOOT", ""), ("M Reboot", f"acs-{task}")]


def test_download_is_done_at_its_transfer_complete_and_a_failed_one_is_a_fault_in_words(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    firmware = acs.cli.queue(
        "download", "http://fw.example.com/sip88xx.12-0-2MPP-3.loads", "--device", phone.mac
    )
    config = acs.cli.queue(
        "download",
        "http://files.example.com/missing/phone.xml",
        "--file-type",
        "config",
        "--device",
        phone.mac,
    )

    log = acs.session(phone)

    assert sent_methods(log) == ["Download", "Download"]
    assert [r.FileType for r in log.requests] == ["1 Firmware Upgrade Image", "3 Vendor Configuration File"]
    assert [acs.cli.task(t)["status"] for t in (firmware, config)] == ["sent", "sent"]

    log = acs.session(phone)

    codes = [(e.EventCode, e.CommandKey) for e in log.inform.Event]
    assert ("7 TRANSFER COMPLETE", "") in codes
    assert ("M Download", f"acs-{firmware}") in codes
    assert ("M Download", f"acs-{config}") in codes
    assert ("1 BOOT", "") in codes  # the new load runs after a reboot
    completes = [e.sent_message for e in log.exchanges if isinstance(e.sent_message, rpc.TransferComplete)]
    assert [c.CommandKey for c in completes] == [f"acs-{firmware}", f"acs-{config}"]
    shown = acs.cli.task(firmware)
    assert shown["status"] == "done"
    assert shown["result"]["FaultStruct"] == {"FaultCode": 0, "FaultString": ""}
    assert acs.cli.device(phone.mac)["software_version"] == "sip88xx.12-0-2MPP-3"
    shown = acs.cli.task(config)
    assert shown["status"] == "fault"
    assert (shown["fault_code"], shown["fault_meaning"]) == (
        9016,
        "File transfer failure: unable to access file",
    )
    text = acs.cli("task", "show", str(config))
    assert "9016 File transfer failure: unable to access file" in text
    listed = acs.cli("task", "list", "--device", phone.mac, "--status", "fault")
    assert "9016 File transfer failure: unable to access file" in listed
    assert ("M Download", f"acs-{config}") in acs.cli.events(phone.mac)


def test_upload_is_done_at_its_transfer_complete(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    task = acs.cli.queue(
        "upload", "http://files.example.com/upload/", "--file-type", "log", "--device", phone.mac
    )

    log = acs.session(phone)

    (request,) = log.requests
    assert isinstance(request, rpc.Upload)
    assert (request.FileType, request.CommandKey) == ("2 Vendor Log File", f"acs-{task}")
    assert acs.cli.task(task)["status"] == "sent"

    log = acs.session(phone)

    codes = [(e.EventCode, e.CommandKey) for e in log.inform.Event]
    assert codes == [("7 TRANSFER COMPLETE", ""), ("M Upload", f"acs-{task}")]
    shown = acs.cli.task(task)
    assert shown["status"] == "done"
    assert shown["result"]["CommandKey"] == f"acs-{task}"
    assert shown["result"]["FaultStruct"]["FaultCode"] == 0


def test_schedule_inform_brings_a_3_scheduled_session(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    task = acs.cli.queue("schedule-inform", "--delay", "5s", "--device", phone.mac)

    log = acs.session(phone)

    (request,) = log.requests
    assert isinstance(request, rpc.ScheduleInform)
    assert (request.DelaySeconds, request.CommandKey) == (5, f"acs-{task}")
    shown = acs.cli.task(task)
    assert shown["status"] in ("sent", "done")  # answered; done at the latest when the phone informs
    assert (shown["answered_at"] is not None, shown["result"]) == (True, {})

    log = acs.session(phone)

    expected = [("3 SCHEDULED", ""), ("M ScheduleInform", f"acs-{task}")]
    assert [(e.EventCode, e.CommandKey) for e in log.inform.Event] == expected
    assert log.requests == []
    assert acs.cli.events(phone.mac)[-2:] == expected
    shown = acs.cli.task(task)
    assert (shown["status"], shown["attempts"]) == ("done", 1)


def test_factory_reset_forgets_the_stored_tree_and_rediscovers_it(serve: Callable[..., Acs]) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    added = acs.cli.queue("add-object", INFORM_PARAMETER, "--device", phone.mac)
    reset = acs.cli.queue("factory-reset", "--device", phone.mac)

    log = acs.session(phone)

    # the reads of the new instance, queued after its AddObject was answered, come after the reset
    assert sent_methods(log)[:2] == ["AddObject", "FactoryReset"]
    assert acs.cli.task(added)["status"] == "done"
    assert (
        acs.cli.task(reset)["status"] == "sent"
    )  # answered: done when the phone comes back with 0 BOOTSTRAP
    assert f"{INFORM_PARAMETER}1." not in phone.model  # the phone is as it left the factory

    log = acs.session(phone)

    assert [e.EventCode for e in log.inform.Event] == ["0 BOOTSTRAP", "1 BOOT"]
    assert acs.cli.task(reset)["status"] == "done"
    assert sent_methods(log)[0] == "GetParameterNames"  # discovered again, in the same session
    stored = acs.cli.tree(phone.mac)
    assert f"{INFORM_PARAMETER}1." not in stored
    assert_tree_is_the_phones(stored, phone)
    discoveries = acs.cli.tasks("--device", phone.mac, "--kind", "GetParameterNames")
    discoveries = [t for t in discoveries if t["created_by"] != "refresh:discover:32"]  # the AddObject's
    assert [(t["status"], t["created_by"]) for t in discoveries] == [
        ("done", "policy:discovery:discover:32")
    ] * 2


def test_set_values_without_a_type_keeps_the_parameter_s_type(serve: Callable[..., Acs]) -> None:
    """`acs task add set-values --help`: "Without :TYPE the type stored for the parameter is used"."""
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    task = acs.cli.queue("set-values", f"{INTERVAL}=3600", "--device", phone.mac)
    log = acs.session(phone)
    (request,) = log.requests
    assert [(p.Name, p.Type) for p in request.ParameterList] == [(INTERVAL, "unsignedInt")]
    assert acs.cli.task(task)["status"] == "done"
    stored = acs.cli.tree(phone.mac, INTERVAL)[INTERVAL]
    assert (stored["value"], stored["type"]) == ("3600", "unsignedInt")


def test_secrets_are_masked_unless_asked_for(serve: Callable[..., Acs]) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    password = "Device.Services.VoiceService.1.SIP.Client.1.AuthPassword"
    set_task = acs.cli.queue("set-values", f"{password}=sip-s3cret", "--device", phone.mac)
    download = acs.cli.queue(
        "download",
        "https://fw.example.net/sip88xx.12-0-2MPP-1.loads",
        "--username",
        "fw",
        "--password",
        "fw-s3cret",
        "--device",
        phone.mac,
    )
    acs.session(phone)
    assert acs.cli.tree(phone.mac, password)[password]["value"] == "********"
    shown = acs.cli("device", "show", phone.mac, "--params", password, "--show-secrets")
    assert "sip-s3cret" in shown
    for task in (set_task, download):
        text = acs.cli("task", "show", str(task))
        assert "s3cret" not in text
        assert "********" in text
    assert "s3cret" not in acs.cli("task", "list", "--json")
