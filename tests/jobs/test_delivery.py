"""Which orphans a device's Inform reports done (``acs.jobs.delivery.judge``), as plain data."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from acs.cwmp import rpc
from acs.jobs.delivery import judge, reported_parameter_key
from acs.jobs.queue import Task

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def task(task_id: int, kind: str, *, key: str = "", sent: int = 0) -> Task:
    args: dict[str, Any] = {}
    if kind in ("SetParameterValues", "AddObject", "DeleteObject"):
        args["ParameterKey"] = key
    elif key:
        args["CommandKey"] = key
    fields = {f.name: None for f in dataclasses.fields(Task)}
    return Task(  # type: ignore[arg-type]
        **fields
        | {
            "id": task_id,
            "device_id": "D",
            "kind": kind,
            "args": args,
            "status": "sent",
            "created_at": T0,
            "sent_at": T0 + timedelta(seconds=sent),
            "attempts": 1,
            "max_attempts": 3,
            "command_key": key if kind in ("Download", "Upload", "Reboot") else None,
        }
    )


def events(*pairs: tuple[str, str]) -> list[rpc.EventStruct]:
    return [rpc.EventStruct(code, key) for code, key in pairs]


def test_only_the_last_keyed_task_sent_can_have_been_applied() -> None:
    older = task(1, "SetParameterValues", key="k", sent=0)
    newer = task(2, "AddObject", key="k2", sent=5)
    read = task(3, "GetParameterValues", sent=9)  # sent last, but it sets no key

    assert judge([older, newer, read], [], "k2", "k0").applied == newer
    assert judge([older, newer, read], [], "k", "k0").applied is None  # overwritten since, or never applied


def test_a_key_the_store_knew_already_an_empty_one_or_none_reported_tells_nothing() -> None:
    spv = task(1, "SetParameterValues", key="v1")
    assert judge([spv], [], "v1", "v1").applied is None
    assert judge([spv], [], None, "v0").applied is None
    assert judge([task(1, "DeleteObject", key="")], [], "", "v0").applied is None
    assert judge([spv], [], "v1", None).applied == spv


def test_transfers_reported_by_their_m_event_wait_for_their_transfer_complete_others_are_held() -> None:
    reported = task(1, "Download", key="acs-1")
    other = task(2, "Upload", key="acs-2")
    reboot = task(3, "Reboot", key="acs-3")

    found = judge(
        [reported, other, reboot], events(("7 TRANSFER COMPLETE", ""), ("M Download", "acs-1")), None, None
    )
    assert (found.transferred, found.held) == ([reported], [other])

    periodic = judge([reported, other], events(("2 PERIODIC", "")), None, None)
    assert (periodic.transferred, periodic.held) == ([], [])  # sent again: nothing says they were done


def test_the_parameter_key_is_read_from_either_root_and_only_there() -> None:
    for root in ("Device", "InternetGatewayDevice"):
        params = [
            rpc.ParameterValueStruct("Device.Services.X.ManagementServer.ParameterKey", "no"),
            rpc.ParameterValueStruct(f"{root}.ManagementServer.ParameterKey", "acs-7", "string"),
        ]
        assert reported_parameter_key(params) == (f"{root}.ManagementServer.ParameterKey", "acs-7")
    assert reported_parameter_key([rpc.ParameterValueStruct("Device.DeviceInfo.UpTime", 5)]) is None
