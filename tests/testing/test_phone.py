"""The simulated phone answers as a TR-069 CPE does, and everything it sends validates against the XSDs."""

from __future__ import annotations

import pytest

from acs import cwmp
from acs.cwmp import rpc
from acs.testing import SessionError, SimulatedPhone
from acs.testing.datamodel import VOICE
from acs.testing.phone import METHODS
from tests.testing.scripted import Clock, ask, assert_valid, converse, fault_of

MS = "Device.ManagementServer."
LINE1 = f"{VOICE}CallControl.Line.1."
NET1 = f"{VOICE}SIP.Network.1."


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def phone(clock):
    return SimulatedPhone("CP-8841-3PCC", "FCH2233A1B2", "00562b043615", clock=clock)


def booted(phone: SimulatedPhone) -> SimulatedPhone:
    """The phone after its first-contact session, with nothing left to report."""
    converse(phone)
    assert phone.pending_events == []
    return phone


def codes(inform: rpc.Message) -> list[tuple[str, str]]:
    assert isinstance(inform, rpc.Inform)
    return [(e.EventCode, e.CommandKey) for e in inform.Event]


def spv(*pairs: tuple[str, object, str], key: str = "k1") -> rpc.SetParameterValues:
    return rpc.SetParameterValues([rpc.ParameterValueStruct(n, v, t) for n, v, t in pairs], key)


# --- the Inform ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(cwmp.NAMESPACES))
def test_first_contact_inform_in_every_cwmp_version(version, clock):
    phone = SimulatedPhone(
        "CP-7841-3PCC", "FCH2233A1B2", "00:56:2B:04:36:15", cwmp_version=version, clock=clock
    )
    env = assert_valid(cwmp.serialize(phone.envelope(phone.inform())), version)
    inform = env.body
    assert env.ns == cwmp.NAMESPACES[version]
    assert env.version == version
    assert codes(inform) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert inform.DeviceId == rpc.DeviceIdStruct(
        "Cisco Systems, Inc.", "00562B", "CP-7841-3PCC", "FCH2233A1B2"
    )
    assert inform.CurrentTime == clock.now
    params = {p.Name: p.Value for p in inform.ParameterList}
    assert params == {
        "Device.RootDataModelVersion": "2.17",
        "Device.DeviceInfo.HardwareVersion": "V04",
        "Device.DeviceInfo.SoftwareVersion": "sip78xx.12-0-1MPP-1",
        "Device.DeviceInfo.ProvisioningCode": "",
        f"{MS}ParameterKey": "",
        f"{MS}ConnectionRequestURL": "http://10.4.54.21:7547/00562b043615",
        f"{MS}AliasBasedAddressing": False,
        "Device.Ethernet.Interface.1.MACAddress": "00:56:2b:04:36:15",
    }
    assert phone.device_id == "00562B-CP-7841-3PCC-FCH2233A1B2"


def test_a_session_with_nothing_to_report_is_periodic_and_given_events_join_pending_ones(phone):
    booted(phone)
    assert codes(phone.inform()) == [("2 PERIODIC", "")]
    phone = SimulatedPhone(clock=phone.clock)
    assert codes(phone.inform(["6 CONNECTION REQUEST"])) == [
        ("0 BOOTSTRAP", ""),
        ("1 BOOT", ""),
        ("6 CONNECTION REQUEST", ""),
    ]


def test_events_stay_until_an_inform_response_but_a_connection_request_is_not_retried(phone):
    session = phone.session(["6 CONNECTION REQUEST", "2 PERIODIC"])
    session.start()
    session.close()  # the ACS never answered
    assert phone.retry_count == 1
    inform = converse(phone)[0]
    assert codes(inform) == [("0 BOOTSTRAP", ""), ("1 BOOT", ""), ("2 PERIODIC", "")]
    assert inform.RetryCount == 1
    assert phone.retry_count == 0
    assert phone.pending_events == []


def test_user_agent_is_ciscos_version_and_mac():
    assert SimulatedPhone().user_agent == "Cisco-CP-8841-3PCC/12.0.1 (00562b043615)"


def test_fleet_phones_have_their_own_identity():
    a, b = SimulatedPhone.numbered(1), SimulatedPhone.numbered(70000, model="CP-7821-3PCC")
    assert (a.mac, a.identity.serial) == ("00562b000001", "FCH22330001")
    assert (b.mac, b.identity.serial) == ("00562b011170", "FCH22341170")
    assert a.device_id != b.device_id and a.identity.ip != b.identity.ip


def test_bad_construction_says_what_is_wrong():
    with pytest.raises(ValueError, match="unknown phone model"):
        SimulatedPhone("CP-9999")
    with pytest.raises(ValueError, match="twelve hex digits"):
        SimulatedPhone(mac="00562b")
    with pytest.raises(ValueError, match="CWMP version"):
        SimulatedPhone(cwmp_version="2.0")


# --- GetRPCMethods, GetParameterNames, GetParameterValues -------------------------------------------------


def test_get_rpc_methods_lists_what_the_phone_answers(phone):
    answer = ask(phone, rpc.GetRPCMethods())
    assert answer.MethodList == list(METHODS)
    assert "Reboot" in METHODS and "FactoryReset" in METHODS and "Download" in METHODS


@pytest.mark.parametrize(
    "request_", [rpc.GetQueuedTransfers(), rpc.CancelTransfer("x"), rpc.UnknownMethod("X_Foo")]
)
def test_anything_else_is_fault_9000(phone, request_):
    if isinstance(request_, rpc.UnknownMethod):
        answer = phone.answer(request_)
        assert assert_valid(cwmp.serialize(phone.envelope(answer, ID="1")), "1.2").body == answer
    else:
        answer = ask(phone, request_)
    assert fault_of(answer) == (9000, [])
    assert answer.faultcode == "Server"


def test_get_parameter_names_from_the_root_and_next_level(phone):
    assert ask(phone, rpc.GetParameterNames("", True)).ParameterList == [
        rpc.ParameterInfoStruct("Device.", False)
    ]
    everything = ask(phone, rpc.GetParameterNames("", False)).ParameterList
    assert len(everything) == len(phone.model)
    assert rpc.ParameterInfoStruct(f"{MS}PeriodicInformInterval", True) in everything
    children = [i.Name for i in ask(phone, rpc.GetParameterNames(f"{VOICE}CallControl.", True)).ParameterList]
    assert f"{VOICE}CallControl.Line." in children
    assert f"{LINE1}DirectoryNumber" not in children


def test_get_parameter_names_faults(phone):
    assert fault_of(ask(phone, rpc.GetParameterNames("Device.Foo.", False))) == (9005, [])
    assert fault_of(ask(phone, rpc.GetParameterNames("Device.DeviceInfo", True))) == (9005, [])
    assert fault_of(ask(phone, rpc.GetParameterNames(f"{MS}URL", True))) == (9003, [])
    assert ask(phone, rpc.GetParameterNames(f"{MS}URL", False)).ParameterList == [
        rpc.ParameterInfoStruct(f"{MS}URL", True)
    ]


def test_get_parameter_values_expands_partial_paths_with_typed_values(phone, clock):
    clock.advance(125)
    answer = ask(phone, rpc.GetParameterValues(["Device.DeviceInfo.", f"{MS}PeriodicInformInterval"]))
    values = {p.Name: (p.Value, p.Type) for p in answer.ParameterList}
    assert values["Device.DeviceInfo.SoftwareVersion"] == ("sip88xx.12-0-1MPP-1", "string")
    assert values["Device.DeviceInfo.UpTime"] == (125, "unsignedInt")
    assert values["Device.DeviceInfo.MemoryStatus.Total"] == (1048576, "unsignedInt")
    assert values[f"{MS}PeriodicInformInterval"] == (20, "unsignedInt")
    assert len(values) == len(phone.model.parameters("Device.DeviceInfo.")) + 1
    everything = ask(phone, rpc.GetParameterValues([""])).ParameterList
    assert len(everything) == len(phone.model.parameters())


def test_get_parameter_values_of_an_unknown_name_faults_the_whole_request(phone):
    answer = ask(phone, rpc.GetParameterValues([f"{MS}URL", "Device.DeviceInfo.Colour"]))
    assert fault_of(answer) == (9005, [])
    assert "Device.DeviceInfo.Colour" in answer.FaultString


def test_secrets_read_back_empty(phone):
    ask(phone, spv((f"{MS}Password", "s3cret", "string")))
    answer = ask(phone, rpc.GetParameterValues([f"{MS}Password"]))
    assert answer.ParameterList == [rpc.ParameterValueStruct(f"{MS}Password", "", "string")]
    assert phone.value(f"{MS}Password") == "s3cret"


# --- SetParameterValues ------------------------------------------------------------------------------------


def test_set_parameter_values_writes_in_the_parameters_type_and_sets_the_parameter_key(phone):
    answer = ask(
        phone,
        spv(
            (f"{MS}PeriodicInformInterval", "3600", "string"),  # an ACS may send a number as a string
            (f"{LINE1}DirectoryNumber", "4155550100", "string"),
            (f"{NET1}ProxyServer", "sip.example.net", "string"),
            (f"{LINE1}Enable", "0", "boolean"),
            key="provision-7",
        ),
    )
    assert answer == rpc.SetParameterValuesResponse(Status=0)
    assert phone.value(f"{MS}PeriodicInformInterval") == 3600
    assert phone.value(f"{LINE1}Enable") is False
    assert phone.parameter_key == "provision-7"
    values = ask(
        phone, rpc.GetParameterValues([f"{LINE1}DirectoryNumber", f"{MS}ParameterKey"])
    ).ParameterList
    assert [p.Value for p in values] == ["4155550100", "provision-7"]
    assert converse(phone)[0].ParameterList[4] == rpc.ParameterValueStruct(
        f"{MS}ParameterKey", "provision-7", "string"
    )


def test_set_parameter_values_is_all_or_nothing_with_a_fault_per_bad_parameter(phone):
    ask(phone, spv((f"{NET1}ProxyServer", "old.example.net", "string"), key="before"))
    answer = ask(
        phone,
        spv(
            (f"{NET1}ProxyServer", "new.example.net", "string"),
            ("Device.DeviceInfo.Colour", "blue", "string"),
            ("Device.DeviceInfo.SerialNumber", "X", "string"),
            (f"{MS}PeriodicInformInterval", "soon", "string"),
            (f"{NET1}ProxyServerTransport", "QUIC", "string"),
            (f"{LINE1}Enable", "maybe", "string"),
            ("Device.DeviceInfo.", "x", "string"),
            key="after",
        ),
    )
    assert fault_of(answer) == (
        9003,
        [
            ("Device.DeviceInfo.Colour", 9005),
            ("Device.DeviceInfo.SerialNumber", 9008),
            (f"{MS}PeriodicInformInterval", 9007),
            (f"{NET1}ProxyServerTransport", 9007),
            (f"{LINE1}Enable", 9007),
            ("Device.DeviceInfo.", 9005),
        ],
    )
    assert answer.faultcode == "Client"
    assert phone.value(f"{NET1}ProxyServer") == "old.example.net"
    assert phone.parameter_key == "before"


def test_a_parameter_listed_twice_is_refused(phone):
    answer = ask(
        phone,
        spv(
            (f"{MS}PeriodicInformInterval", 60, "unsignedInt"),
            (f"{MS}PeriodicInformInterval", 90, "unsignedInt"),
        ),
    )
    assert fault_of(answer) == (9003, [(f"{MS}PeriodicInformInterval", 9003)])
    assert phone.value(f"{MS}PeriodicInformInterval") == 20


def test_a_new_acs_url_makes_the_next_session_a_bootstrap(phone):
    booted(phone)
    converse(phone, spv((f"{MS}URL", "https://acs.example.net/cwmp", "string")))
    assert codes(converse(phone)[0]) == [("0 BOOTSTRAP", "")]


# --- attributes and notification ---------------------------------------------------------------------------


def test_get_parameter_attributes_defaults(phone):
    answer = ask(
        phone, rpc.GetParameterAttributes(["Device.DeviceInfo.SoftwareVersion", f"{NET1}ProxyServer"])
    )
    assert answer.ParameterList == [
        rpc.ParameterAttributeStruct("Device.DeviceInfo.SoftwareVersion", 2, []),
        rpc.ParameterAttributeStruct(f"{NET1}ProxyServer", 0, []),
    ]
    assert fault_of(ask(phone, rpc.GetParameterAttributes(["Device.Nope"]))) == (9005, [])


def test_set_parameter_attributes_on_a_partial_path_skips_what_it_may_not_change(phone):
    answer = ask(
        phone,
        rpc.SetParameterAttributes(
            [
                rpc.SetParameterAttributesStruct("Device.DeviceInfo.", True, 1, True, ["Subscriber"]),
                rpc.SetParameterAttributesStruct(f"{NET1}ProxyServer", True, 2, False, []),
            ]
        ),
    )
    assert answer == rpc.SetParameterAttributesResponse()
    attrs = {
        a.Name: (a.Notification, a.AccessList)
        for a in ask(
            phone, rpc.GetParameterAttributes(["Device.DeviceInfo.", f"{NET1}ProxyServer"])
        ).ParameterList
    }
    assert attrs["Device.DeviceInfo.HostName"] == (1, ["Subscriber"])
    assert attrs["Device.DeviceInfo.SoftwareVersion"] == (2, ["Subscriber"])  # forced active, kept
    assert attrs[f"{NET1}ProxyServer"] == (2, [])


@pytest.mark.parametrize(
    ("name", "notification", "code"),
    [
        ("Device.DeviceInfo.SoftwareVersion", 0, 9009),  # forceEnabled
        ("Device.DeviceInfo.UpTime", 2, 9009),  # canDeny: changes every second
        ("Device.DeviceInfo.Nope", 1, 9005),
        (f"{NET1}ProxyServer", 5, 9003),  # lightweight notification is CWMP 1.4
    ],
)
def test_set_parameter_attributes_faults_change_nothing(phone, name, notification, code):
    answer = ask(
        phone,
        rpc.SetParameterAttributes(
            [
                rpc.SetParameterAttributesStruct("Device.DeviceInfo.HostName", True, 2, False, []),
                rpc.SetParameterAttributesStruct(name, True, notification, False, []),
            ]
        ),
    )
    assert fault_of(answer)[0] == code
    assert phone.notification("Device.DeviceInfo.HostName") == 0


def test_a_local_change_is_reported_by_its_notification(phone):
    booted(phone)
    dnd = f"{VOICE}CallControl.CallingFeatures.Set.1.DoNotDisturbEnable"
    ask(
        phone,
        rpc.SetParameterAttributes(
            [
                rpc.SetParameterAttributesStruct(f"{LINE1}DirectoryNumber", True, 1, False, []),
                rpc.SetParameterAttributesStruct(dnd, True, 2, False, []),
            ]
        ),
    )
    phone.local_change(f"{LINE1}DirectoryNumber", "4155550123")  # passive: rides along, no session reason
    assert phone.pending_events == []
    phone.local_change(dnd, True)  # active: the change itself is a reason to call the ACS
    inform = converse(phone)[0]
    assert codes(inform) == [("4 VALUE CHANGE", "")]
    reported = {p.Name: p.Value for p in inform.ParameterList[8:]}
    assert reported == {f"{LINE1}DirectoryNumber": "4155550123", dnd: True}
    assert len(converse(phone)[0].ParameterList) == 8  # reported once


# --- AddObject and DeleteObject ------------------------------------------------------------------------


def test_add_object_makes_an_instance_with_defaults_and_delete_object_removes_it(phone):
    table = f"{MS}InformParameter."
    answer = ask(phone, rpc.AddObject(table, "add-1"))
    assert answer == rpc.AddObjectResponse(InstanceNumber=1, Status=0)
    assert phone.parameter_key == "add-1"
    names = [i.Name for i in ask(phone, rpc.GetParameterNames(f"{table}1.", True)).ParameterList]
    assert names == [f"{table}1.{n}" for n in ("Enable", "Alias", "ParameterName", "EventList")]
    assert phone.value(f"{MS}InformParameterNumberOfEntries") == 1
    assert ask(phone, rpc.DeleteObject(f"{table}1.", "del-1")) == rpc.DeleteObjectResponse(Status=0)
    assert phone.parameter_key == "del-1"
    assert fault_of(ask(phone, rpc.GetParameterValues([f"{table}1."])))[0] == 9005
    assert ask(phone, rpc.AddObject(table, "add-2")).InstanceNumber == 2


def test_an_inform_parameter_entry_puts_its_parameter_in_the_inform(phone):
    booted(phone)
    ask(phone, rpc.AddObject(f"{MS}InformParameter.", ""))
    entry = f"{MS}InformParameter.1."
    ask(
        phone,
        spv((f"{entry}Enable", True, "boolean"), (f"{entry}ParameterName", f"{NET1}ProxyServer", "string")),
    )
    inform = converse(phone)[0]
    assert inform.ParameterList[-1].Name == f"{NET1}ProxyServer"


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (rpc.AddObject(f"{VOICE}CallControl.Line."), 9004),  # every line key has its line
        (rpc.AddObject("Device.DNS.Client.Server."), 9004),  # Primary and Secondary DNS only
        (rpc.AddObject("Device.Ethernet.Interface."), 9005),  # the ports are the ports
        (rpc.AddObject("Device.Nope."), 9005),
        (rpc.AddObject(f"{MS}URL"), 9005),
        (rpc.DeleteObject("Device.Ethernet.Interface.2."), 9005),
        (rpc.DeleteObject(f"{VOICE}CallControl.Line.9."), 9005),
        (rpc.DeleteObject("Device.DeviceInfo."), 9005),
    ],
)
def test_object_faults_change_nothing(phone, request_, code):
    ask(phone, spv(key="before"))
    size = len(phone.model)
    assert fault_of(ask(phone, request_)) == (code, [])
    assert len(phone.model) == size
    assert phone.parameter_key == "before"


def test_a_line_can_be_deleted_and_added_again(phone):
    assert ask(phone, rpc.DeleteObject(f"{VOICE}CallControl.Line.5.")) == rpc.DeleteObjectResponse(0)
    assert phone.value(f"{VOICE}CallControl.LineNumberOfEntries") == 4
    assert ask(phone, rpc.AddObject(f"{VOICE}CallControl.Line.")).InstanceNumber == 6


# --- what happens after the session --------------------------------------------------------------------


def test_reboot_happens_after_the_session_and_the_next_one_says_so(phone, clock):
    booted(phone)
    clock.advance(3600)
    sent = converse(phone, rpc.Reboot("reboot-42"))
    assert sent[1] == rpc.RebootResponse()
    clock.advance(30)
    assert phone.value("Device.DeviceInfo.UpTime") == 30  # up since the reboot, not for an hour
    assert codes(converse(phone)[0]) == [("1 BOOT", ""), ("M Reboot", "reboot-42")]
    assert phone.pending_events == []


def test_nothing_happens_before_the_session_ends(phone):
    booted(phone)
    session = phone.session()
    session.start()
    session.receive(_acs_bytes(phone, rpc.InformResponse()))
    session.receive(_acs_bytes(phone, rpc.Reboot("r"), ID="2"))
    assert phone.pending_events == []
    session.close()  # even a session that died: the phone accepted the Reboot
    assert codes(phone.inform()) == [("1 BOOT", ""), ("M Reboot", "r")]


def test_factory_reset_restores_defaults_keeps_the_firmware_and_bootstraps(phone):
    booted(phone)
    converse(phone, rpc.Download("fw", "1 Firmware Upgrade Image", "http://fw/sip88xx.12-0-2MPP-3.loads"))
    converse(phone)
    converse(
        phone,
        spv((f"{NET1}ProxyServer", "sip.example.net", "string"), key="k9"),
        rpc.AddObject(f"{MS}InformParameter."),
    )
    converse(phone, rpc.FactoryReset())
    inform = converse(phone)[0]
    assert codes(inform) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert phone.value(f"{NET1}ProxyServer") == ""
    assert phone.parameter_key == ""
    assert phone.model.instances(f"{MS}InformParameter.") == []
    assert phone.software_version == "sip88xx.12-0-2MPP-3"


def test_download_of_firmware_reports_transfer_complete_and_runs_the_new_load(phone, clock):
    booted(phone)
    url = "http://fw.example.net/cisco/sip88xx.12-0-2MPP-3.loads"
    sent = converse(phone, rpc.Download("dl-1", "1 Firmware Upgrade Image", url, FileSize=48_000_000))
    assert sent[1].Status == 1
    clock.advance(90)
    inform, complete, *rest = converse(phone)
    assert codes(inform) == [("1 BOOT", ""), ("7 TRANSFER COMPLETE", ""), ("M Download", "dl-1")]
    assert {p.Name: p.Value for p in inform.ParameterList}["Device.DeviceInfo.SoftwareVersion"] == (
        "sip88xx.12-0-2MPP-3"
    )
    assert isinstance(complete, rpc.TransferComplete)
    assert complete.CommandKey == "dl-1"
    assert complete.FaultStruct == rpc.FaultStruct(0, "")
    assert rest == []
    assert phone.value("Device.DeviceInfo.ActiveFirmwareImage") == "Device.DeviceInfo.FirmwareImage.2"
    assert phone.value("Device.DeviceInfo.FirmwareImage.2.Name") == "sip88xx.12-0-2MPP-3"
    assert phone.pending_events == [] and phone.pending_transfers == []
    assert codes(converse(phone)[0]) == [("2 PERIODIC", "")]


def test_a_download_that_fails_reports_its_fault_and_keeps_the_old_load(phone):
    booted(phone)
    converse(
        phone, rpc.Download("dl-2", "1 Firmware Upgrade Image", "http://fw/missing/sip88xx.12-0-2MPP-3.loads")
    )
    inform, complete = converse(phone)
    assert codes(inform) == [("7 TRANSFER COMPLETE", ""), ("M Download", "dl-2")]
    assert complete.FaultStruct == rpc.FaultStruct(9016, "File transfer failure: unable to access file")
    assert phone.software_version == "sip88xx.12-0-1MPP-1"


def test_transfer_faults_are_configurable(clock):
    phone = booted(SimulatedPhone(clock=clock, transfer_faults={"corrupt": 9018}))
    converse(phone, rpc.Download("dl", "3 Vendor Configuration File", "https://p/corrupt.xml"))
    assert converse(phone)[1].FaultStruct.FaultCode == 9018


def test_a_transfer_over_an_unsupported_protocol_is_refused_at_once(phone):
    assert fault_of(ask(phone, rpc.Download("dl", "1 Firmware Upgrade Image", "ftp://fw/x.loads"))) == (
        9013,
        [],
    )
    assert fault_of(ask(phone, rpc.Upload("up", "2 Vendor Log File", "scp://logs/"))) == (9013, [])


def test_an_unacknowledged_transfer_complete_is_sent_again_next_session(phone):
    booted(phone)
    converse(phone, rpc.Download("dl-3", "3 Vendor Configuration File", "http://p/cfg.xml"))
    first = converse(phone, fault_transfer_complete=True)
    assert isinstance(first[1], rpc.TransferComplete)
    held = converse(phone, hold_requests=True)  # HoldRequests: the phone may not call TransferComplete
    assert codes(held[0]) == [("7 TRANSFER COMPLETE", ""), ("M Download", "dl-3")] and len(held) == 1
    again = converse(phone)
    assert codes(again[0]) == [("7 TRANSFER COMPLETE", ""), ("M Download", "dl-3")]
    assert again[1].CommandKey == "dl-3"
    assert phone.pending_events == []


def test_upload_and_schedule_inform_have_their_follow_up_events(phone):
    booted(phone)
    sent = converse(
        phone,
        rpc.Upload("up-1", "1 Vendor Configuration File", "https://acs.example.net/upload/cfg"),
        rpc.ScheduleInform(DelaySeconds=60, CommandKey="si-1"),
    )
    assert sent[1].Status == 1 and sent[2] == rpc.ScheduleInformResponse()
    inform, complete = converse(phone)
    assert codes(inform) == [
        ("7 TRANSFER COMPLETE", ""),
        ("M Upload", "up-1"),
        ("3 SCHEDULED", ""),
        ("M ScheduleInform", "si-1"),
    ]
    assert complete.CommandKey == "up-1" and complete.FaultStruct.FaultCode == 0


# --- the session's side of things ---------------------------------------------------------------------------


def _acs_bytes(phone: SimulatedPhone, message: rpc.Message, ID: str = "1") -> bytes:
    return cwmp.serialize(cwmp.Envelope(message, ID=ID, ns=phone.ns))


def test_responses_carry_the_id_of_the_request(phone):
    session = phone.session()
    session.start()
    assert session.receive(_acs_bytes(phone, rpc.InformResponse())) == b""
    out = session.receive(_acs_bytes(phone, rpc.GetParameterValues([f"{MS}URL"]), ID="abc-99"))
    assert cwmp.parse(out).ID == "abc-99"
    assert session.receive(b"") is None
    assert session.finished
    session.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (rpc.Fault(8005, "Retry request"), "fault 8005 \\(Retry request\\)"),
        (rpc.GetParameterValues(["Device."]), "not InformResponse"),
        (None, "without answering the Inform"),
        (b"<not-xml", "unreadable message"),
    ],
)
def test_a_bad_answer_to_the_inform_is_a_session_error(phone, reply, message):
    session = phone.session()
    session.start()
    body = reply if isinstance(reply, bytes) else b"" if reply is None else _acs_bytes(phone, reply)
    with pytest.raises(SessionError, match=message):
        session.receive(body)
    session.close()
    assert phone.retry_count == 1
    assert codes(phone.inform()) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]


def test_a_response_where_a_request_is_due_is_a_session_error(phone):
    session = phone.session()
    session.start()
    session.receive(_acs_bytes(phone, rpc.InformResponse()))
    with pytest.raises(SessionError, match="GetRPCMethodsResponse"):
        session.receive(_acs_bytes(phone, rpc.GetRPCMethodsResponse(["Inform"])))
