"""Real messages (tests/captures, see SOURCES.md there) read as what they say, schema-valid or not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

import cwmp_schemas
from acs.cwmp import codec, describe, parse, rpc, serialize

CAPTURES = Path(__file__).parent.parent / "captures"
ALL = sorted(CAPTURES.rglob("*.xml"))
GOOGLE = CAPTURES / "google-fiber-catawampus"
AIRVANA = CAPTURES / "commscope-oran-sc-tr069-adapter"
CISCO = CAPTURES / "cisco-mpp-constructed-inform-boot.xml"


def read(path: Path) -> codec.Envelope:
    return parse(path.read_bytes())


def values(inform: rpc.Inform | rpc.GetParameterValuesResponse | rpc.SetParameterValues) -> dict:
    return {p.Name: p.Value for p in inform.ParameterList}


def test_the_captures_are_there():
    assert len(ALL) == 17


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_capture_parses_to_a_known_message(path):
    env = read(path)
    assert not isinstance(env.body, rpc.UnknownMethod)
    assert env.ID
    assert env.ns in (codec.NAMESPACES["1.0"], codec.NAMESPACES["1.2"])


@pytest.mark.parametrize(
    "path", [p for p in ALL if "Inform.xml" in p.name or "inform" in p.name], ids=lambda p: p.name
)
def test_every_real_inform_gets_an_inform_response_its_schema_accepts(path):
    env = read(path)
    answer = serialize(codec.Envelope(body=rpc.InformResponse(), ID=env.ID, ns=env.ns))
    root = etree.fromstring(answer)
    assert root.nsmap["cwmp"] == env.ns  # answered in the namespace the CPE spoke
    assert root.findtext(f"{{{codec.SOAP_ENV}}}Header/{{{env.ns}}}ID") == env.ID
    assert cwmp_schemas.validator(env.version).validate(root)


@pytest.mark.parametrize(
    "name",
    [
        "03_SetParameterValues.xml",
        "09_GetParameterValues.xml",
        "airvana_LTE-C-RANSC_inform_0-BOOTSTRAP_qualified-DeviceId_no-xsi-type.xml",
        "airvana_LTE-C-RANSC_inform_1-BOOT+4-VALUE-CHANGE.xml",
    ],
)
def test_captures_the_schema_rejects_are_read_all_the_same(name):
    path = next(p for p in ALL if p.name == name)
    env = read(path)
    assert not cwmp_schemas.validator(env.version).validate(etree.fromstring(path.read_bytes()))
    assert not isinstance(env.body, rpc.UnknownMethod)


# --- the constructed Cisco MPP Inform ---------------------------------------------------------


def test_cisco_mpp_inform():
    env = read(CISCO)
    inform = env.body
    assert isinstance(inform, rpc.Inform)
    assert (env.ns, env.version, env.ID) == ("urn:dslforum-org:cwmp-1-2", "1.2", "1")
    assert inform.DeviceId == rpc.DeviceIdStruct(
        "Cisco Systems, Inc.", "00562B", "CP-7841-3PCC", "FCH2233A1B2"
    )
    assert inform.event_codes == ["0 BOOTSTRAP", "1 BOOT"]
    assert inform.CurrentTime == datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
    assert inform.CurrentTime.utcoffset().total_seconds() == 0
    found = values(inform)
    assert found["Device.LAN.MACAddress"] == "00:56:2b:04:36:15"
    assert found["Device.DeviceInfo.SoftwareVersion"] == "sip78xx.12-0-1MPP-1"
    assert found["Device.ManagementServer.ConnectionRequestURL"] == "http://192.0.2.41:7547/"
    assert found["Device.DeviceInfo.ProvisioningCode"] == ""
    assert found["Device.DeviceSummary"].startswith("Device:1.4[](Baseline:1), VoiceService:1.0[1]")
    assert len(found) == 8


# --- Google Fiber TV box <-> Google ACS, one session ------------------------------------------


def test_google_inform_with_nonstandard_transfercomplete_event():
    env = read(GOOGLE / "01_Inform.xml")
    inform = env.body
    assert env.ID == "catawampus.1370208445.785391"
    assert (env.ns, env.version) == ("urn:dslforum-org:cwmp-1-2", "1.2")
    assert inform.DeviceId == rpc.DeviceIdStruct("Google Fiber", "F88FCA", "GFHD100", "G00223301811")
    # arrayType="EventStruct[2]" without a prefix; "M TRANSFERCOMPLETE" is not TR-069's but is kept
    assert inform.event_codes == ["0 BOOTSTRAP", "M TRANSFERCOMPLETE"]
    assert all(e.CommandKey == "" for e in inform.Event)
    assert inform.CurrentTime == datetime(2013, 6, 2, 21, 27, 26, 80821, tzinfo=UTC)
    assert (inform.MaxEnvelopes, inform.RetryCount) == (1, 0)
    found = values(inform)
    assert found["InternetGatewayDevice.ManagementServer.ConnectionRequestURL"] == (
        "http://[2605:a601:fe00:fff7:fa8f:caff:fe00:a28c]:7547/ping/21b19cbcfd821008be9c1938219a1b"
    )
    assert found["InternetGatewayDevice.DeviceInfo.SpecVersion"] == "1.0"  # xsd:string stays a string
    assert [p.Type for p in inform.ParameterList] == ["string"] * 5


def test_google_inform_response_holds_requests():
    env = read(GOOGLE / "02_InformResponse.xml")
    assert env.body == rpc.InformResponse(MaxEnvelopes=1)
    assert env.HoldRequests is True
    assert env.ID == "catawampus.1370208445.785391"


def test_google_spv_with_odd_prefixes_and_qualified_members():
    env = read(GOOGLE / "03_SetParameterValues.xml")
    spv = env.body
    assert isinstance(spv, rpc.SetParameterValues)
    assert env.HoldRequests is True
    assert spv.ParameterKey == "GoogleInitConfig"
    enable, interval = spv.ParameterList  # ns5:ParameterValueStruct members are found
    # xsi:type="xs:boolean" (another prefix) and "ns1:unsignedInt" (the SOAP-ENC prefix!)
    assert enable == rpc.ParameterValueStruct(
        "InternetGatewayDevice.ManagementServer.PeriodicInformEnable", True, "boolean"
    )
    assert enable.Value is True
    assert interval == rpc.ParameterValueStruct(
        "InternetGatewayDevice.ManagementServer.PeriodicInformInterval", 60, "unsignedInt"
    )
    assert type(interval.Value) is int


def test_google_spv_response_and_add_object():
    assert read(GOOGLE / "04_SetParameterValuesResponseSuccess.xml").body == rpc.SetParameterValuesResponse(0)
    add = read(GOOGLE / "06_AddObject.xml")
    assert add.body == rpc.AddObject("Device.PeriodicStatistics.SampleSet.1.Parameter.", "GoogleInitConfig")
    assert read(GOOGLE / "07_AddObjectResponse.xml").body == rpc.AddObjectResponse(InstanceNumber=2, Status=0)


def test_google_get_parameter_names():
    env = read(GOOGLE / "05_GetParameterNames.xml")
    assert env.body == rpc.GetParameterNames("Device.PeriodicStatistics.SampleSet.", NextLevel=True)
    assert env.HoldRequests is False


def test_google_cwmp_fault_9005():
    env = read(GOOGLE / "08_CwmpFault.xml")
    fault = env.body
    assert isinstance(fault, rpc.Fault)
    assert fault.FaultCode == 9005
    assert fault.FaultString == "No such parameter: Info"
    assert fault.faultcode == "Client"
    assert fault.SetParameterValuesFault == []
    assert describe(fault.FaultCode) == "Invalid parameter name"
    assert env.ID == "google.acs.1370221731262.21249673"


def test_google_gpv_with_clark_notation_array_type():
    # arrayType="{urn:dslforum-org:cwmp-1-2}string[1]" and a qualified ns5:string member
    env = read(GOOGLE / "09_GetParameterValues.xml")
    assert env.body == rpc.GetParameterValues(ParameterNames=["Device.DeviceInfo.UpTime"])
    assert env.HoldRequests is False


def test_google_gpv_response_unsigned_int():
    gpvr = read(GOOGLE / "10_GetParameterValuesResponse.xml").body
    assert gpvr.ParameterList == [rpc.ParameterValueStruct("Device.DeviceInfo.UpTime", 516925, "unsignedInt")]


# --- Airvana / CommScope LTE small cells ------------------------------------------------------


def test_airvana_bootstrap_with_qualified_device_id_and_no_xsi_types():
    env = read(AIRVANA / "airvana_LTE-C-RANSC_inform_0-BOOTSTRAP_qualified-DeviceId_no-xsi-type.xml")
    inform = env.body
    assert (env.ns, env.version) == ("urn:dslforum-org:cwmp-1-0", "1.0")  # prefix ns4, found by namespace
    assert inform.DeviceId == rpc.DeviceIdStruct("", "0005B9", "LTE_Enterprise_C-RANSC_Cntrl", "0005B9423910")
    assert inform.event_codes == ["0 BOOTSTRAP"]
    assert inform.CurrentTime == datetime(2020, 6, 10, 11, 27, 26, 54000, tzinfo=UTC)
    # no xsi:type: every value is a string, even those that look like numbers
    assert {p.Type for p in inform.ParameterList} == {"string"}
    found = values(inform)
    assert found["Device.Services.FAPService.1.FAPControl.LTE.AdminState"] == "0"
    assert found["Device.DeviceInfo.HardwareVersion"] == "750742.00.13"
    assert found["Device.ManagementServer.ConnectionRequestURL"] == (
        "http://172.20.0.9:30150/ConnectionRequest?command=cr&sn=0005B9423910"
    )


def test_airvana_boot_and_value_change_in_one_event_struct():
    inform = read(AIRVANA / "airvana_LTE-C-RANSC_inform_1-BOOT+4-VALUE-CHANGE.xml").body
    # two EventCodes in one EventStruct: both are events; the BOOT must not be lost
    assert inform.event_codes == ["1 BOOT", "4 VALUE CHANGE"]
    found = values(inform)
    assert found["Device.IP.Interface.1.IPv4Enable"] is True  # xsd:boolean sent as 1
    assert found["Device.ManagementServer.ParameterKey"] == "None"  # a string, not Python's None
    assert inform.CurrentTime == datetime(2018, 4, 27, 7, 9, 16)  # no zone given: kept naive
    assert len(found) == 12


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("2-PERIODIC", "2 PERIODIC"),
        ("4-VALUE-CHANGE", "4 VALUE CHANGE"),
        ("6-CONNECTION-REQUEST", "6 CONNECTION REQUEST"),
    ],
)
def test_airvana_single_event_informs(name, event):
    inform = read(AIRVANA / f"airvana_LTE-C-RANSC_inform_{name}.xml").body
    assert inform.event_codes == [event]
    assert inform.DeviceId.Manufacturer == "Airvana"


def test_airvana_transfer_complete_without_m_download():
    env = read(AIRVANA / "airvana_LTE-C-RANSC_inform_7-TRANSFER-COMPLETE_without-M-Download.xml")
    assert env.body.event_codes == ["7 TRANSFER COMPLETE"]
    assert "M Download" not in env.body.event_codes
    assert env.body.DeviceId.SerialNumber == "0005B9519094"
    assert env.version == "1.0"
