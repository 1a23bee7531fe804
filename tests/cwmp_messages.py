"""Small CWMP messages for tests, built with the codec (as a CPE would send them)."""

from __future__ import annotations

from acs import cwmp
from acs.cwmp import rpc


def inform(
    *events: str,
    serial: str = "FCH2233A1B2",
    params: dict[str, str] | None = None,
    ns: str = cwmp.NAMESPACES["1.2"],
    command_key: str = "",
    **header: object,
) -> bytes:
    body = rpc.Inform(
        DeviceId=rpc.DeviceIdStruct("Cisco Systems, Inc.", "00562B", "CP-7841-3PCC", serial),
        Event=[
            rpc.EventStruct(e, command_key if e.startswith("M ") else "") for e in events or ("2 PERIODIC",)
        ],
        ParameterList=[rpc.ParameterValueStruct(k, v, "string") for k, v in (params or {}).items()],
    )
    return cwmp.serialize(cwmp.Envelope(body=body, ID="cpe-1", ns=ns, **header))  # type: ignore[arg-type]


def message(body: rpc.Message, id: str = "cpe-2", ns: str = cwmp.NAMESPACES["1.2"]) -> bytes:
    return cwmp.serialize(cwmp.Envelope(body=body, ID=id, ns=ns))
