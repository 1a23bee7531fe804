"""How fast the CWMP codec is, and what spyne would cost in its place.  Run: python bench/codec.py

Prints messages/s and µs/message for the per-message work of a session:
parsing a ~3 KB Inform of a Cisco MPP phone with 20 parameters, building a
GetParameterValues request of 20 names and an InformResponse. Then it answers
the design's question ("spyne, measured"): what typing the RPC records with
spyne's ComplexModel instead of dataclasses would cost, and what spyne's own
Soap11 pipeline costs to read the same Inform. Figures only; nothing here is
asserted, and the numbers go to docs/performance.md by hand.
"""

from __future__ import annotations

import logging
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lxml import etree

from acs.cwmp import codec, rpc

NS = codec.NAMESPACES["1.2"]
LINE = "Device.Services.VoiceService.1.VoiceProfile.1.Line.1."

#: (name, xsi:type, value): what an MPP phone (Device:1 root + VoiceService:1) reports on boot
PARAMETERS: list[tuple[str, str, str]] = [
    (
        "Device.DeviceSummary",
        "string",
        "Device:1.4[](Baseline:1), VoiceService:1.0[1](Endpoint:1, SIPEndpoint:1)",
    ),
    ("Device.DeviceInfo.Manufacturer", "string", "Cisco Systems, Inc."),
    ("Device.DeviceInfo.ManufacturerOUI", "string", "00562B"),
    ("Device.DeviceInfo.ProductClass", "string", "CP-7841-3PCC"),
    ("Device.DeviceInfo.SerialNumber", "string", "FCH2233A1B2"),
    ("Device.DeviceInfo.HardwareVersion", "string", "V04"),
    ("Device.DeviceInfo.SoftwareVersion", "string", "sip78xx.12-0-1MPP-1"),
    ("Device.DeviceInfo.ProvisioningCode", "string", ""),
    ("Device.DeviceInfo.UpTime", "unsignedInt", "86400"),
    ("Device.ManagementServer.ConnectionRequestURL", "string", "http://192.0.2.41:7547/"),
    ("Device.ManagementServer.ParameterKey", "string", "job-41"),
    ("Device.ManagementServer.PeriodicInformEnable", "boolean", "1"),
    ("Device.ManagementServer.PeriodicInformInterval", "unsignedInt", "3600"),
    ("Device.LAN.AddressingType", "string", "DHCP"),
    ("Device.LAN.IPAddress", "string", "192.0.2.41"),
    ("Device.LAN.SubnetMask", "string", "255.255.255.0"),
    ("Device.LAN.DefaultGateway", "string", "192.0.2.1"),
    ("Device.LAN.MACAddress", "string", "00:56:2b:04:36:15"),
    (f"{LINE}SIP.AuthUserName", "string", "4085550101"),
    (f"{LINE}Status", "string", "Up"),
]


def inform_bytes() -> bytes:
    """The Inform as a phone sends it: the MPP sample's prefixes, no indentation, 20 parameters."""
    params = "".join(
        f"<ParameterValueStruct><Name>{name}</Name>"
        f'<Value xsi:type="xsd:{kind}">{value}</Value></ParameterValueStruct>'
        for name, kind, value in PARAMETERS
    )
    return (
        '<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="{NS}">'
        '<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">1</cwmp:ID></soap-env:Header>'
        "<soap-env:Body><cwmp:Inform><DeviceId><Manufacturer>Cisco Systems, Inc.</Manufacturer>"
        "<OUI>00562B</OUI><ProductClass>CP-7841-3PCC</ProductClass><SerialNumber>FCH2233A1B2</SerialNumber>"
        '</DeviceId><Event soap-enc:arrayType="cwmp:EventStruct[2]">'
        "<EventStruct><EventCode>0 BOOTSTRAP</EventCode><CommandKey></CommandKey></EventStruct>"
        "<EventStruct><EventCode>1 BOOT</EventCode><CommandKey></CommandKey></EventStruct></Event>"
        "<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2024-05-14T09:12:44+00:00</CurrentTime>"
        "<RetryCount>0</RetryCount>"
        f'<ParameterList soap-enc:arrayType="cwmp:ParameterValueStruct[{len(PARAMETERS)}]">'
        f"{params}</ParameterList></cwmp:Inform></soap-env:Body></soap-env:Envelope>"
    ).encode()


INFORM = inform_bytes()
GPV_NAMES = [name for name, _, _ in PARAMETERS]
#: the parameter values as Python values, for building records
TYPED = [
    (name, kind, int(value) if kind == "unsignedInt" else value == "1" if kind == "boolean" else value)
    for name, kind, value in PARAMETERS
]
NOW = datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)


# --- the codec ----------------------------------------------------------------------------


def parse_inform() -> codec.Envelope:
    return codec.parse(INFORM)


def build_gpv() -> bytes:
    return codec.serialize(codec.Envelope(body=rpc.GetParameterValues(GPV_NAMES), ID="acs-17", ns=NS))


def build_inform_response() -> bytes:
    return codec.serialize(codec.Envelope(body=rpc.InformResponse(MaxEnvelopes=1), ID="1", ns=NS))


def inform_to_inform_response() -> bytes:
    env = codec.parse(INFORM)
    return codec.serialize(codec.Envelope(body=rpc.InformResponse(MaxEnvelopes=1), ID=env.ID, ns=env.ns))


def dataclass_records() -> rpc.Inform:
    return rpc.Inform(
        DeviceId=rpc.DeviceIdStruct("Cisco Systems, Inc.", "00562B", "CP-7841-3PCC", "FCH2233A1B2"),
        Event=[rpc.EventStruct("0 BOOTSTRAP", ""), rpc.EventStruct("1 BOOT", "")],
        MaxEnvelopes=1,
        CurrentTime=NOW,
        RetryCount=0,
        ParameterList=[rpc.ParameterValueStruct(name, value, kind) for name, kind, value in TYPED],
    )


# --- the same with spyne --------------------------------------------------------------------


def spyne_cases() -> tuple[Callable[[], object], Callable[[], object]]:
    """(construct the records with ComplexModel, read the Inform with spyne's Soap11 pipeline)."""
    logging.getLogger("spyne").setLevel(logging.CRITICAL)
    import acs.nbi.spyne_compat  # noqa: F401  # isort: skip - spyne on Python 3.12+, as acs.nbi.soap
    from spyne import (
        Application,
        Array,
        ComplexModel,
        DateTime,
        MethodContext,
        ServiceBase,
        Unicode,
        UnsignedInteger32,
    )
    from spyne import rpc as srpc
    from spyne.protocol.soap import Soap11
    from spyne.server import ServerBase

    class DeviceIdStruct(ComplexModel):
        __namespace__ = NS
        _type_info = [
            ("Manufacturer", Unicode),
            ("OUI", Unicode),
            ("ProductClass", Unicode),
            ("SerialNumber", Unicode),
        ]

    class EventStruct(ComplexModel):
        __namespace__ = NS
        _type_info = [("EventCode", Unicode), ("CommandKey", Unicode)]

    class ParameterValueStruct(ComplexModel):
        __namespace__ = NS
        # spyne has no anySimpleType that keeps xsi:type; Value is read as text (so it drops xsi:type)
        _type_info = [("Name", Unicode), ("Value", Unicode), ("Type", Unicode)]

    class Inform(ComplexModel):
        __namespace__ = NS
        _type_info = [
            ("DeviceId", DeviceIdStruct),
            ("Event", Array(EventStruct)),
            ("MaxEnvelopes", UnsignedInteger32),
            ("CurrentTime", DateTime),
            ("RetryCount", UnsignedInteger32),
            ("ParameterList", Array(ParameterValueStruct)),
        ]

    class InformResponse(ComplexModel):
        __namespace__ = NS
        _type_info = [("MaxEnvelopes", UnsignedInteger32)]

    class AcsService(ServiceBase):
        @srpc(
            Inform,
            _body_style="bare",
            _returns=InformResponse,
            _in_message_name="Inform",
            _out_message_name="InformResponse",
        )
        def inform(ctx: object, inform: object) -> object:
            return InformResponse(MaxEnvelopes=1)

    # parse_xsi_type=False: with it, spyne refuses xsi:type="xsd:boolean" on a Value it does not declare so
    soap11 = Soap11(parse_xsi_type=False)
    server = ServerBase(Application([AcsService], tns=NS, in_protocol=soap11, out_protocol=Soap11()))

    def construct() -> object:
        return Inform(
            DeviceId=DeviceIdStruct(
                Manufacturer="Cisco Systems, Inc.",
                OUI="00562B",
                ProductClass="CP-7841-3PCC",
                SerialNumber="FCH2233A1B2",
            ),
            Event=[
                EventStruct(EventCode="0 BOOTSTRAP", CommandKey=""),
                EventStruct(EventCode="1 BOOT", CommandKey=""),
            ],
            MaxEnvelopes=1,
            CurrentTime=NOW,
            RetryCount=0,
            ParameterList=[
                ParameterValueStruct(Name=name, Value=value, Type=kind) for name, kind, value in TYPED
            ],
        )

    def soap11_parse() -> object:
        ctx = MethodContext(server, MethodContext.SERVER)
        ctx.in_string = [INFORM]
        (ctx,) = server.generate_contexts(ctx)
        server.get_in_object(ctx)
        if ctx.in_error is not None:
            raise ctx.in_error
        return ctx.in_object  # bare body style: the Inform itself

    return construct, soap11_parse


# --- measuring ------------------------------------------------------------------------------


def measure(fn: Callable[[], object], repeat: int = 7, min_time: float = 0.2) -> tuple[float, float]:
    """(best, median) seconds per call, timeit-style: calibrate a loop of >= min_time, repeat it."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < min_time:
        number *= 2
    runs = [t / number for t in timer.repeat(repeat=repeat, number=number)]
    return min(runs), statistics.median(runs)


def cases() -> list[tuple[str, Callable[[], object]]]:
    spyne_construct, spyne_parse = spyne_cases()
    return [
        (f"parse Inform ({len(INFORM)} B, {len(PARAMETERS)} params)", parse_inform),
        (f"build GetParameterValues ({len(GPV_NAMES)} names)", build_gpv),
        ("build InformResponse", build_inform_response),
        ("Inform -> InformResponse (parse + build)", inform_to_inform_response),
        ("records: 20 PVS + Inform, dataclasses", dataclass_records),
        ("records: 20 PVS + Inform, spyne ComplexModel", spyne_construct),
        ("parse Inform, spyne Soap11 (no xsi:type)", spyne_parse),
    ]


def main() -> None:
    import acs.nbi.spyne_compat  # noqa: F401  # isort: skip
    import spyne

    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"lxml {etree.__version__} (libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}), "
        f"spyne {spyne.__version__}"
    )
    print(f"{platform.machine()}, {platform.system()} {platform.release()}")
    print()
    rows = [(label, *measure(fn)) for label, fn in cases()]
    width = max(len(label) for label, _, _ in rows)
    print(f"{'operation':<{width}}  {'µs/msg best':>11}  {'µs/msg median':>13}  {'msgs/s':>9}")
    print(f"{'-' * width}  {'-' * 11}  {'-' * 13}  {'-' * 9}")
    for label, best, median in rows:
        print(f"{label:<{width}}  {best * 1e6:>11.1f}  {median * 1e6:>13.1f}  {1 / best:>9,.0f}")
    by_label = {label: best for label, best, _ in rows}
    dataclass, complex_model = by_label[rows[4][0]], by_label[rows[5][0]]
    ours, theirs = by_label[rows[0][0]], by_label[rows[6][0]]
    print()
    print(
        f"spyne ComplexModel records cost {complex_model / dataclass:.1f}x dataclasses "
        f"(+{(complex_model - dataclass) * 1e6:.1f} µs per Inform); "
        f"spyne's Soap11 read of the Inform costs {theirs / ours:.1f}x the lxml codec."
    )


if __name__ == "__main__":
    main()
