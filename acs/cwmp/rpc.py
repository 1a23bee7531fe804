"""The CWMP RPCs and their structures, as typed records.

Attribute names are the element names of the Broadband Forum schema, in its
order, so that one generic codec reads and writes every message: a record's
annotations say how each child element is encoded (``str``, ``int``, ``bool``,
``datetime``, a nested struct, ``list[...]`` for a SOAP-ENC array, or a
``repeated`` element without an array wrapper).

spyne's ComplexModel could describe these too; ``bench/codec.py`` measures it
against plain dataclasses on the per-message path (see docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from acs.cwmp.values import UNKNOWN_TIME


@dataclass(slots=True)
class Struct:
    """A CWMP structure: its class name is the element name of array items."""


@dataclass(slots=True)
class Message:
    """The body of a SOAP envelope: one RPC request or response, or a Fault."""

    #: True for the methods the CPE implements (the ACS calls them), False for the ACS's own.
    cpe_method: ClassVar[bool] = True
    is_response: ClassVar[bool] = False

    @classmethod
    def method(cls) -> str:
        return cls.__name__.removesuffix("Response") if cls.is_response else cls.__name__


@dataclass(slots=True)
class Request(Message):
    pass


@dataclass(slots=True)
class Response(Message):
    is_response: ClassVar[bool] = True


# --- structures --------------------------------------------------------------------------


@dataclass(slots=True)
class ParameterValueStruct(Struct):
    """A parameter and its value; ``Type`` is the value's xsi:type (local name), not an element."""

    Name: str = ""
    Value: Any = ""
    Type: str = ""


@dataclass(slots=True)
class DeviceIdStruct(Struct):
    Manufacturer: str = ""
    OUI: str = ""
    ProductClass: str = ""
    SerialNumber: str = ""


def device_key(oui: str, product_class: str, serial_number: str) -> str:
    """``OUI-ProductClass-SerialNumber``, the device id GenieACS made usual (no ProductClass: two
    parts). The one place it is made: the Inform, pre-registration and the inventory import agree."""
    parts = (oui.upper(), product_class, serial_number)
    return "-".join(p for p in parts if p) if product_class else f"{parts[0]}-{parts[2]}"


@dataclass(slots=True)
class EventStruct(Struct):
    EventCode: str = ""
    CommandKey: str = ""


@dataclass(slots=True)
class ParameterInfoStruct(Struct):
    Name: str = ""
    Writable: bool = False


@dataclass(slots=True)
class SetParameterAttributesStruct(Struct):
    Name: str = ""
    NotificationChange: bool = False
    Notification: int = 0
    AccessListChange: bool = False
    AccessList: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ParameterAttributeStruct(Struct):
    Name: str = ""
    Notification: int = 0
    AccessList: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FaultStruct(Struct):
    """TransferComplete's outcome: FaultCode 0 is success."""

    FaultCode: int = 0
    FaultString: str = ""


@dataclass(slots=True)
class QueuedTransferStruct(Struct):
    CommandKey: str = ""
    State: int = 1


@dataclass(slots=True)
class AllQueuedTransferStruct(Struct):
    CommandKey: str = ""
    State: int = 1
    IsDownload: bool = True
    FileType: str = ""
    FileSize: int = 0
    TargetFileName: str = ""


@dataclass(slots=True)
class TimeWindowStruct(Struct):
    WindowStart: int = 0
    WindowEnd: int = 0
    WindowMode: str = "1 At Any Time"
    UserMessage: str = ""
    MaxRetries: int = -1


@dataclass(slots=True)
class ArgStruct(Struct):
    Name: str = ""
    Value: str = ""


@dataclass(slots=True)
class SetParameterValuesFault(Struct):
    ParameterName: str = ""
    FaultCode: int = 9002
    FaultString: str | None = None


# --- methods the CPE implements (the ACS sends the request) -----------------------------


@dataclass(slots=True)
class GetRPCMethods(Request):
    pass


@dataclass(slots=True)
class GetRPCMethodsResponse(Response):
    MethodList: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SetParameterValues(Request):
    ParameterList: list[ParameterValueStruct] = field(default_factory=list)
    ParameterKey: str = ""


@dataclass(slots=True)
class SetParameterValuesResponse(Response):
    Status: int = 0


@dataclass(slots=True)
class GetParameterValues(Request):
    ParameterNames: list[str] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterValuesResponse(Response):
    ParameterList: list[ParameterValueStruct] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterNames(Request):
    ParameterPath: str = ""
    NextLevel: bool = False


@dataclass(slots=True)
class GetParameterNamesResponse(Response):
    ParameterList: list[ParameterInfoStruct] = field(default_factory=list)


@dataclass(slots=True)
class SetParameterAttributes(Request):
    ParameterList: list[SetParameterAttributesStruct] = field(default_factory=list)


@dataclass(slots=True)
class SetParameterAttributesResponse(Response):
    pass


@dataclass(slots=True)
class GetParameterAttributes(Request):
    ParameterNames: list[str] = field(default_factory=list)


@dataclass(slots=True)
class GetParameterAttributesResponse(Response):
    ParameterList: list[ParameterAttributeStruct] = field(default_factory=list)


@dataclass(slots=True)
class AddObject(Request):
    ObjectName: str = ""
    ParameterKey: str = ""


@dataclass(slots=True)
class AddObjectResponse(Response):
    #: 0 when the CPE left it out: no instance is numbered 0, so the session takes it for a fault
    InstanceNumber: int = 0
    Status: int = 0


@dataclass(slots=True)
class DeleteObject(Request):
    ObjectName: str = ""
    ParameterKey: str = ""


@dataclass(slots=True)
class DeleteObjectResponse(Response):
    Status: int = 0


@dataclass(slots=True)
class Download(Request):
    CommandKey: str = ""
    FileType: str = "1 Firmware Upgrade Image"
    URL: str = ""
    Username: str = ""
    Password: str = ""
    FileSize: int = 0
    TargetFileName: str = ""
    DelaySeconds: int = 0
    SuccessURL: str = ""
    FailureURL: str = ""


@dataclass(slots=True)
class DownloadResponse(Response):
    Status: int = 1
    StartTime: datetime = UNKNOWN_TIME
    CompleteTime: datetime = UNKNOWN_TIME


@dataclass(slots=True)
class Reboot(Request):
    CommandKey: str = ""


@dataclass(slots=True)
class RebootResponse(Response):
    pass


@dataclass(slots=True)
class FactoryReset(Request):
    pass


@dataclass(slots=True)
class FactoryResetResponse(Response):
    pass


@dataclass(slots=True)
class Upload(Request):
    CommandKey: str = ""
    FileType: str = "1 Vendor Configuration File"
    URL: str = ""
    Username: str = ""
    Password: str = ""
    DelaySeconds: int = 0


@dataclass(slots=True)
class UploadResponse(Response):
    Status: int = 1
    StartTime: datetime = UNKNOWN_TIME
    CompleteTime: datetime = UNKNOWN_TIME


@dataclass(slots=True)
class ScheduleInform(Request):
    DelaySeconds: int = 0
    CommandKey: str = ""


@dataclass(slots=True)
class ScheduleInformResponse(Response):
    pass


@dataclass(slots=True)
class GetQueuedTransfers(Request):
    pass


@dataclass(slots=True)
class GetQueuedTransfersResponse(Response):
    TransferList: list[QueuedTransferStruct] = field(default_factory=list)


@dataclass(slots=True)
class GetAllQueuedTransfers(Request):
    pass


@dataclass(slots=True)
class GetAllQueuedTransfersResponse(Response):
    TransferList: list[AllQueuedTransferStruct] = field(default_factory=list)


@dataclass(slots=True)
class ScheduleDownload(Request):
    CommandKey: str = ""
    FileType: str = "1 Firmware Upgrade Image"
    URL: str = ""
    Username: str = ""
    Password: str = ""
    FileSize: int = 0
    TargetFileName: str = ""
    TimeWindowList: list[TimeWindowStruct] = field(default_factory=list)


@dataclass(slots=True)
class ScheduleDownloadResponse(Response):
    pass


@dataclass(slots=True)
class CancelTransfer(Request):
    CommandKey: str = ""


@dataclass(slots=True)
class CancelTransferResponse(Response):
    pass


# --- methods the ACS implements (the CPE sends the request) -----------------------------


@dataclass(slots=True)
class Inform(Request):
    cpe_method: ClassVar[bool] = False

    DeviceId: DeviceIdStruct = field(default_factory=DeviceIdStruct)
    Event: list[EventStruct] = field(default_factory=list)
    MaxEnvelopes: int = 1
    CurrentTime: datetime | None = None
    RetryCount: int = 0
    ParameterList: list[ParameterValueStruct] = field(default_factory=list)

    @property
    def event_codes(self) -> list[str]:
        return [e.EventCode for e in self.Event]


@dataclass(slots=True)
class InformResponse(Response):
    cpe_method: ClassVar[bool] = False

    MaxEnvelopes: int = 1


@dataclass(slots=True)
class TransferComplete(Request):
    cpe_method: ClassVar[bool] = False

    CommandKey: str = ""
    FaultStruct: FaultStruct = field(default_factory=FaultStruct)
    StartTime: datetime = UNKNOWN_TIME
    CompleteTime: datetime = UNKNOWN_TIME


@dataclass(slots=True)
class TransferCompleteResponse(Response):
    cpe_method: ClassVar[bool] = False


@dataclass(slots=True)
class AutonomousTransferComplete(Request):
    cpe_method: ClassVar[bool] = False

    AnnounceURL: str = ""
    TransferURL: str = ""
    IsDownload: bool = True
    FileType: str = "1 Firmware Upgrade Image"
    FileSize: int = 0
    TargetFileName: str = ""
    FaultStruct: FaultStruct = field(default_factory=FaultStruct)
    StartTime: datetime = UNKNOWN_TIME
    CompleteTime: datetime = UNKNOWN_TIME


@dataclass(slots=True)
class AutonomousTransferCompleteResponse(Response):
    cpe_method: ClassVar[bool] = False


@dataclass(slots=True)
class RequestDownload(Request):
    cpe_method: ClassVar[bool] = False

    FileType: str = "1 Firmware Upgrade Image"
    FileTypeArg: list[ArgStruct] = field(default_factory=list)


@dataclass(slots=True)
class RequestDownloadResponse(Response):
    cpe_method: ClassVar[bool] = False


@dataclass(slots=True)
class Kicked(Request):
    cpe_method: ClassVar[bool] = False

    Command: str = ""
    Referer: str = ""
    Arg: str = ""
    Next: str = ""


@dataclass(slots=True)
class KickedResponse(Response):
    cpe_method: ClassVar[bool] = False

    NextURL: str = ""


# --- faults and the unknown ----------------------------------------------------------------


@dataclass(slots=True)
class Fault(Message):
    """A SOAP Fault carrying a cwmp:Fault; either side may send one in place of a response.

    ``faultcode`` and ``faultstring`` are the SOAP fault's own fields; ``FaultCode``
    is None when a CPE sent a bare SOAP fault without the CWMP detail.
    """

    FaultCode: int | None = 9002
    FaultString: str = ""
    #: written as repeated elements, not as a SOAP-ENC array
    SetParameterValuesFault: list[SetParameterValuesFault] = field(
        default_factory=list, metadata={"repeated": True}
    )
    faultcode: str = "Server"
    faultstring: str = "CWMP fault"

    @classmethod
    def method(cls) -> str:
        return "Fault"


@dataclass(slots=True)
class UnknownMethod(Message):
    """A well-formed RPC this server does not know: the session answers it with fault 8000/9000."""

    name: str = ""

    @classmethod
    def method(cls) -> str:
        return "Unknown"


#: element local name -> message class, for every RPC request and response above
MESSAGES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Request | Response) and cls not in (Request, Response)
}
