"""Responses become the JSON stored as a task's result, the same whichever path ``to_json`` takes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from acs.cwmp import rpc
from acs.jobs.requests import to_json

WHEN = datetime(2026, 11, 23, 20, 0, 5, tzinfo=UTC)


def walked(obj: Any) -> Any:
    """``to_json`` as it reads, one item at a time: what the lists' shortcuts must equal."""
    if isinstance(obj, rpc.ParameterValueStruct):
        return [obj.Name, walked(obj.Value), obj.Type]
    if isinstance(obj, list | tuple):
        return [walked(x) for x in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: walked(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return to_json(obj)


def test_a_values_response_is_name_value_type_triples_whatever_the_values() -> None:
    params = [
        rpc.ParameterValueStruct("Device.A", "text", "string"),
        rpc.ParameterValueStruct("Device.B", 7, "unsignedInt"),
        rpc.ParameterValueStruct("Device.C", True, "boolean"),
        rpc.ParameterValueStruct("Device.D", WHEN, "dateTime"),
        rpc.ParameterValueStruct("Device.E", b"\x00\x01", "base64"),
        rpc.ParameterValueStruct("Device.F", Decimal("-1.50"), "decimal"),
        rpc.ParameterValueStruct("Device.G", None, ""),
    ]

    shown = to_json(rpc.GetParameterValuesResponse(params))

    assert shown == {
        "ParameterList": [
            ["Device.A", "text", "string"],
            ["Device.B", 7, "unsignedInt"],
            ["Device.C", True, "boolean"],
            ["Device.D", "2026-11-23T20:00:05+00:00", "dateTime"],
            ["Device.E", "AAE=", "base64"],
            ["Device.F", "-1.50", "decimal"],
            ["Device.G", None, ""],
        ]
    }
    assert shown == walked(rpc.GetParameterValuesResponse(params))


def test_a_names_response_is_objects_with_name_and_writable() -> None:
    infos = [rpc.ParameterInfoStruct("Device.", False), rpc.ParameterInfoStruct("Device.A", True)]

    shown = to_json(rpc.GetParameterNamesResponse(infos))

    assert shown == {
        "ParameterList": [{"Name": "Device.", "Writable": False}, {"Name": "Device.A", "Writable": True}]
    }
    assert shown == walked(rpc.GetParameterNamesResponse(infos))


def test_mixed_and_empty_lists_take_the_item_by_item_path() -> None:
    mixed = [
        rpc.ParameterValueStruct("Device.A", WHEN, "dateTime"),
        rpc.ParameterInfoStruct("Device.B", True),
    ]
    attrs = [rpc.ParameterAttributeStruct("Device.A", 2, ["Subscriber"])]

    assert to_json(mixed) == [
        ["Device.A", "2026-11-23T20:00:05+00:00", "dateTime"],
        {"Name": "Device.B", "Writable": True},
    ]
    assert to_json(attrs) == [{"Name": "Device.A", "Notification": 2, "AccessList": ["Subscriber"]}]
    assert to_json([]) == [] and to_json(()) == []
    assert to_json(rpc.GetParameterNamesResponse([])) == {"ParameterList": []}
