"""Realistic CWMP messages of every kind the codec knows, and what each schema version declares.

The messages are what this ACS exchanges with Cisco MPP phones (Device:1 root,
VoiceService:1): the tests build, validate, parse and compare them. Which
version a message applies to is read from the Broadband Forum XSDs themselves
(a global element of that name in the version's schema, following
``xs:include`` and ``xs:redefine``), so a schema change cannot silently skip a test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache

from lxml import etree

import cwmp_schemas
from acs.cwmp import codec, rpc
from acs.cwmp.values import UNKNOWN_TIME
from acs.testing.phone import METHODS as PHONE_METHODS

XS = "http://www.w3.org/2001/XMLSchema"
VERSIONS = cwmp_schemas.VERSIONS
MAC = "00562B043615"
SERIAL = "FCH2233A1B2"
FIRMWARE = "sip78xx.12-0-1MPP-1.loads"
FW_URL = f"http://acs.example.net/firmware/{FIRMWARE}"
T_START = datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
T_DONE = datetime(2024, 5, 14, 9, 14, 2, 250000, tzinfo=UTC)


@cache
def schema_elements(version: str) -> frozenset[str]:
    """Names of the global elements of a version's CWMP schema, with its includes and redefines."""
    seen: set[str] = set()
    names: set[str] = set()

    def walk(filename: str) -> None:
        if filename in seen:
            return
        seen.add(filename)
        root = etree.parse(str(cwmp_schemas.HERE / filename)).getroot()
        names.update(e.get("name") for e in root.iterchildren(f"{{{XS}}}element"))
        for child in root.iterchildren(f"{{{XS}}}include", f"{{{XS}}}redefine"):
            walk(child.get("schemaLocation").rsplit("/", 1)[1])

    walk(cwmp_schemas.SCHEMAS[version][0])
    return frozenset(names)


def defines(version: str, message: rpc.Message) -> bool:
    return message.method() == "Fault" or type(message).__name__ in schema_elements(version)


def pvs(name: str, value: object, kind: str = "") -> rpc.ParameterValueStruct:
    return rpc.ParameterValueStruct(name, value, kind)


#: a value of every xsi:type a ParameterValueStruct may carry, with edge values
TYPED_VALUES: list[rpc.ParameterValueStruct] = [
    pvs("Device.DeviceInfo.Manufacturer", "Cisco Systems, Inc.", "string"),
    pvs("Device.DeviceInfo.ProvisioningCode", "", "string"),
    pvs(
        "Device.Services.VoiceService.1.VoiceProfile.1.Line.1.CallingFeatures.CallerIDName",
        'Zoë <Front Desk> & "Lobby" 受付',
        "string",
    ),
    pvs("Device.Services.VoiceService.1.VoiceProfile.1.RTP.DSCPMark", 46, "int"),
    pvs("Device.Time.LocalTimeZoneOffset", -(2**31), "int"),
    pvs("Device.X_CISCO_Test.IntMax", 2**31 - 1, "int"),
    pvs("Device.DeviceInfo.UpTime", 516925, "unsignedInt"),
    pvs("Device.ManagementServer.PeriodicInformInterval", 2**32 - 1, "unsignedInt"),
    pvs("Device.X_CISCO_Test.LongMin", -(2**63), "long"),
    pvs("Device.X_CISCO_Test.LongMax", 2**63 - 1, "long"),
    pvs("Device.LAN.Stats.TotalBytesReceived", 2**64 - 1, "unsignedLong"),
    pvs("Device.LAN.Stats.TotalBytesSent", 0, "unsignedLong"),
    pvs("Device.ManagementServer.PeriodicInformEnable", True, "boolean"),
    pvs("Device.ManagementServer.UpgradesManaged", False, "boolean"),
    pvs("Device.Time.CurrentLocalTime", T_START, "dateTime"),
    pvs("Device.ManagementServer.PeriodicInformTime", UNKNOWN_TIME, "dateTime"),
    pvs(
        "Device.DeviceInfo.FirstUseDate",
        datetime(2023, 11, 2, 23, 30, 0, 125000, tzinfo=timezone(timedelta(hours=-5))),
        "dateTime",
    ),
    pvs("Device.X_CISCO_Test.SinceBoot", datetime(1, 1, 3, 3, 4, 5), "dateTime"),
    # no UTC datetime exists for these two (year 0 and 10000): written with their own offset
    pvs(
        "Device.X_CISCO_Test.EndOfTime",
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        "dateTime",
    ),
    pvs(
        "Device.X_CISCO_Test.StartOfTime",
        datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
        "dateTime",
    ),
    pvs("Device.Security.Certificate.1.SerialNumber", b"\x00\x01\xfe\xff cert", "base64"),
    pvs("Device.X_CISCO_Test.Empty", b"", "base64"),
    pvs("Device.X_CISCO_Test.Key", bytes.fromhex("00562b043615"), "hexBinary"),
    pvs("Device.DeviceInfo.TemperatureStatus.TemperatureSensor.1.Value", Decimal("36.6"), "decimal"),
    pvs("Device.X_CISCO_Test.Negative", Decimal("-0.000125"), "decimal"),
    pvs("Device.X_CISCO_Test.Exponent", Decimal("1E+3"), "decimal"),
    pvs("Device.X_CISCO_Test.Float", 2.5e-7, "decimal"),
]

INFORM_PARAMETERS = [
    pvs(
        "Device.DeviceSummary",
        "Device:1.4[](Baseline:1), VoiceService:1.0[1](Endpoint:1, SIPEndpoint:1)",
        "string",
    ),
    pvs("Device.DeviceInfo.HardwareVersion", "V04", "string"),
    pvs("Device.DeviceInfo.SoftwareVersion", "sip78xx.12-0-1MPP-1", "string"),
    pvs("Device.DeviceInfo.ProvisioningCode", "", "string"),
    pvs("Device.DeviceInfo.UpTime", 86400, "unsignedInt"),
    pvs("Device.ManagementServer.ConnectionRequestURL", "http://192.0.2.41:7547/", "string"),
    pvs("Device.ManagementServer.ParameterKey", "job-41", "string"),
    pvs("Device.ManagementServer.PeriodicInformEnable", True, "boolean"),
    pvs("Device.LAN.IPAddress", "192.0.2.41", "string"),
    pvs("Device.LAN.MACAddress", "00:56:2b:04:36:15", "string"),
]

DEVICE = rpc.DeviceIdStruct("Cisco Systems, Inc.", "00562B", "CP-7841-3PCC", SERIAL)


def inform(events: tuple[str, ...] = ("0 BOOTSTRAP", "1 BOOT"), **kw: object) -> rpc.Inform:
    return rpc.Inform(
        DeviceId=DEVICE,
        Event=[rpc.EventStruct(code, "fw-12.0.1" if code.startswith("M ") else "") for code in events],
        MaxEnvelopes=1,
        CurrentTime=datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC),
        RetryCount=kw.pop("RetryCount", 0),  # type: ignore[arg-type]
        ParameterList=list(kw.pop("ParameterList", INFORM_PARAMETERS)),  # type: ignore[call-overload]
    )


def messages() -> list[tuple[str, rpc.Message]]:
    """(test id, message): at least one realistic instance of every class in rpc.MESSAGES."""
    line = "Device.Services.VoiceService.1.VoiceProfile.1.Line."
    return [
        # --- the CPE's methods, called by the ACS
        ("GetRPCMethods", rpc.GetRPCMethods()),
        (
            "GetRPCMethodsResponse",
            rpc.GetRPCMethodsResponse(MethodList=list(PHONE_METHODS)),  # what a Cisco MPP phone answers
        ),
        (
            "SetParameterValues",
            rpc.SetParameterValues(
                ParameterList=[
                    pvs(f"{line}1.SIP.AuthUserName", "4085550101", "string"),
                    pvs(f"{line}1.SIP.AuthPassword", "s3cr&t<pw>", "string"),
                    pvs("Device.ManagementServer.PeriodicInformInterval", 3600, "unsignedInt"),
                    pvs("Device.ManagementServer.PeriodicInformEnable", True, "boolean"),
                ],
                ParameterKey="job-42",
            ),
        ),
        (
            "SetParameterValues-every-type",
            rpc.SetParameterValues(ParameterList=TYPED_VALUES, ParameterKey=""),
        ),
        ("SetParameterValuesResponse", rpc.SetParameterValuesResponse(Status=0)),
        ("SetParameterValuesResponse-1", rpc.SetParameterValuesResponse(Status=1)),
        (
            "GetParameterValues",
            rpc.GetParameterValues(
                ParameterNames=[
                    "Device.DeviceInfo.",
                    "Device.ManagementServer.PeriodicInformInterval",
                ]
            ),
        ),
        ("GetParameterValuesResponse", rpc.GetParameterValuesResponse(ParameterList=TYPED_VALUES)),
        ("GetParameterValuesResponse-empty", rpc.GetParameterValuesResponse(ParameterList=[])),
        (
            "GetParameterNames",
            rpc.GetParameterNames(ParameterPath="Device.Services.VoiceService.1.", NextLevel=True),
        ),
        (
            "GetParameterNamesResponse",
            rpc.GetParameterNamesResponse(
                ParameterList=[
                    rpc.ParameterInfoStruct("Device.Services.VoiceService.1.VoiceProfile.", False),
                    rpc.ParameterInfoStruct("Device.Services.VoiceService.1.X_CISCO_Dialplan", True),
                ]
            ),
        ),
        (
            "SetParameterAttributes",
            rpc.SetParameterAttributes(
                ParameterList=[
                    rpc.SetParameterAttributesStruct("Device.DeviceInfo.SoftwareVersion", True, 2, False, []),
                    rpc.SetParameterAttributesStruct("Device.LAN.IPAddress", True, 1, True, ["Subscriber"]),
                ]
            ),
        ),
        ("SetParameterAttributesResponse", rpc.SetParameterAttributesResponse()),
        ("GetParameterAttributes", rpc.GetParameterAttributes(ParameterNames=["Device.DeviceInfo."])),
        (
            "GetParameterAttributesResponse",
            rpc.GetParameterAttributesResponse(
                ParameterList=[
                    rpc.ParameterAttributeStruct("Device.DeviceInfo.SoftwareVersion", 2, []),
                    rpc.ParameterAttributeStruct("Device.LAN.IPAddress", 0, ["Subscriber"]),
                ]
            ),
        ),
        ("AddObject", rpc.AddObject(ObjectName=line, ParameterKey="job-43")),
        ("AddObjectResponse", rpc.AddObjectResponse(InstanceNumber=2, Status=0)),
        ("DeleteObject", rpc.DeleteObject(ObjectName=f"{line}2.", ParameterKey="job-44")),
        ("DeleteObjectResponse", rpc.DeleteObjectResponse(Status=1)),
        (
            "Download",
            rpc.Download(
                CommandKey="fw-12.0.1",
                FileType="1 Firmware Upgrade Image",
                URL=FW_URL,
                Username="phone",
                Password="pa&ss",
                FileSize=41234567,
                TargetFileName=FIRMWARE,
                DelaySeconds=30,
                SuccessURL="",
                FailureURL="",
            ),
        ),
        ("DownloadResponse-later", rpc.DownloadResponse(Status=1)),
        ("DownloadResponse-done", rpc.DownloadResponse(Status=0, StartTime=T_START, CompleteTime=T_DONE)),
        ("Reboot", rpc.Reboot(CommandKey="reboot-7")),
        ("RebootResponse", rpc.RebootResponse()),
        ("FactoryReset", rpc.FactoryReset()),
        ("FactoryResetResponse", rpc.FactoryResetResponse()),
        (
            "Upload",
            rpc.Upload(
                CommandKey="cfg-1",
                FileType="1 Vendor Configuration File",
                URL=f"https://acs.example.net/upload/00562B-{SERIAL}.xml",
                Username="",
                Password="",
                DelaySeconds=0,
            ),
        ),
        ("UploadResponse", rpc.UploadResponse(Status=0, StartTime=T_START, CompleteTime=T_DONE)),
        ("ScheduleInform", rpc.ScheduleInform(DelaySeconds=300, CommandKey="si-1")),
        ("ScheduleInformResponse", rpc.ScheduleInformResponse()),
        ("GetQueuedTransfers", rpc.GetQueuedTransfers()),
        (
            "GetQueuedTransfersResponse",
            rpc.GetQueuedTransfersResponse(
                TransferList=[
                    rpc.QueuedTransferStruct("fw-12.0.1", 2),
                    rpc.QueuedTransferStruct("cfg-1", 1),
                ]
            ),
        ),
        ("GetAllQueuedTransfers", rpc.GetAllQueuedTransfers()),
        (
            "GetAllQueuedTransfersResponse",
            rpc.GetAllQueuedTransfersResponse(
                TransferList=[
                    rpc.AllQueuedTransferStruct(
                        "fw-12.0.1", 2, True, "1 Firmware Upgrade Image", 41234567, FIRMWARE
                    ),
                ]
            ),
        ),
        (
            "ScheduleDownload",
            rpc.ScheduleDownload(
                CommandKey="fw-12.0.1",
                FileType="1 Firmware Upgrade Image",
                URL=FW_URL,
                Username="",
                Password="",
                FileSize=41234567,
                TargetFileName=FIRMWARE,
                TimeWindowList=[
                    rpc.TimeWindowStruct(0, 3600, "1 At Any Time", "", -1),
                    rpc.TimeWindowStruct(7200, 10800, "3 When Idle", "Firmware update tonight", 3),
                ],
            ),
        ),
        ("ScheduleDownloadResponse", rpc.ScheduleDownloadResponse()),
        ("CancelTransfer", rpc.CancelTransfer(CommandKey="fw-12.0.1")),
        ("CancelTransferResponse", rpc.CancelTransferResponse()),
        # --- the ACS's methods, called by the CPE
        ("Inform", inform()),
        ("Inform-transfer-complete", inform(("7 TRANSFER COMPLETE", "M Download"), RetryCount=942)),
        ("Inform-no-parameters", inform(("2 PERIODIC",), ParameterList=[])),
        ("InformResponse", rpc.InformResponse(MaxEnvelopes=1)),
        (
            "TransferComplete",
            rpc.TransferComplete(
                CommandKey="fw-12.0.1",
                FaultStruct=rpc.FaultStruct(0, ""),
                StartTime=T_START,
                CompleteTime=T_DONE,
            ),
        ),
        (
            "TransferComplete-failed",
            rpc.TransferComplete(
                CommandKey="fw-12.0.1",
                FaultStruct=rpc.FaultStruct(9010, "HTTP 404 Not Found"),
            ),
        ),
        ("TransferCompleteResponse", rpc.TransferCompleteResponse()),
        (
            "AutonomousTransferComplete",
            rpc.AutonomousTransferComplete(
                AnnounceURL="",
                TransferURL=FW_URL,
                IsDownload=True,
                FileType="1 Firmware Upgrade Image",
                FileSize=41234567,
                TargetFileName=FIRMWARE,
                FaultStruct=rpc.FaultStruct(0, ""),
                StartTime=T_START,
                CompleteTime=T_DONE,
            ),
        ),
        ("AutonomousTransferCompleteResponse", rpc.AutonomousTransferCompleteResponse()),
        (
            "RequestDownload",
            rpc.RequestDownload(
                FileType="3 Vendor Configuration File",
                FileTypeArg=[rpc.ArgStruct("Version", "12.0.1")],
            ),
        ),
        ("RequestDownload-no-args", rpc.RequestDownload(FileType="1 Firmware Upgrade Image")),
        ("RequestDownloadResponse", rpc.RequestDownloadResponse()),
        (
            "Kicked",
            rpc.Kicked(
                Command="provision",
                Referer="https://portal.example.net/activate",
                Arg="line=1",
                Next="https://portal.example.net/done",
            ),
        ),
        ("KickedResponse", rpc.KickedResponse(NextURL="https://portal.example.net/done?ok=1")),
        # --- faults, both ways
        ("Fault-ACS-8003", rpc.Fault(FaultCode=8003, FaultString="Invalid arguments", faultcode="Client")),
        ("Fault-ACS-8005", rpc.Fault(FaultCode=8005, FaultString="Retry request")),
        ("Fault-CPE-9000", rpc.Fault(FaultCode=9000, FaultString="Method not supported")),
        (
            "Fault-CPE-9003-SPV",
            rpc.Fault(
                FaultCode=9003,
                FaultString="Invalid arguments",
                faultcode="Client",
                SetParameterValuesFault=[
                    rpc.SetParameterValuesFault(f"{line}1.SIP.AuthUserName", 9007, "Value too long"),
                    rpc.SetParameterValuesFault("Device.DeviceInfo.SoftwareVersion", 9008, None),
                    rpc.SetParameterValuesFault("Device.X_CISCO_Nope", 9005, ""),
                ],
            ),
        ),
        ("Fault-CPE-vendor", rpc.Fault(FaultCode=9801, FaultString="Phone is in a call")),
    ]


def envelope(message: rpc.Message, version: str, **header: object) -> codec.Envelope:
    """The envelope a message travels in: the version's namespace, an ID like real sessions use."""
    return codec.Envelope(body=message, ID="acs-1715677964.17", ns=codec.NAMESPACES[version], **header)
