"""Task arguments -> CWMP requests, and responses -> the result stored on the task.

A task is stored as its RPC name and JSON arguments; this module is the one
place that turns those into a request record and a response back into JSON,
so the CLI, the REST API and the session all agree on the shape of both.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
from datetime import datetime
from decimal import Decimal
from typing import Any

from acs.cwmp import rpc
from acs.store.inventory import is_secret, redact


class TaskError(ValueError):
    """Arguments that cannot make a request; the message says which and what is allowed."""


def build_request(kind: str, args: dict[str, Any]) -> rpc.Request:
    """The request record for a task's kind and JSON arguments (names checked by the queue)."""
    kwargs = dict(args)
    if "ParameterList" in kwargs:
        if not isinstance(kwargs["ParameterList"], list):
            raise TaskError(f"{kind} ParameterList must be a list")
        kwargs["ParameterList"] = [_list_item(kind, item) for item in kwargs["ParameterList"]]
    try:
        message = rpc.MESSAGES[kind](**kwargs)
    except (KeyError, TypeError) as e:
        raise TaskError(f"{kind}: {e}") from None
    if not isinstance(message, rpc.Request):
        raise TaskError(f"{kind} is not a request the ACS sends")
    return message


def _list_item(kind: str, item: Any) -> Any:
    if kind == "SetParameterValues":
        if isinstance(item, list | tuple) and len(item) in (2, 3):
            return rpc.ParameterValueStruct(item[0], item[1], item[2] if len(item) == 3 else "")
        if isinstance(item, dict) and "Name" in item:
            return rpc.ParameterValueStruct(item["Name"], item.get("Value", ""), item.get("Type", ""))
        raise TaskError(f"SetParameterValues item {item!r}: expected [name, value, type?]")
    if kind == "SetParameterAttributes":
        if not isinstance(item, dict) or "Name" not in item:
            raise TaskError(f"SetParameterAttributes item {item!r}: expected an object with Name")
        try:
            return rpc.SetParameterAttributesStruct(**item)
        except TypeError as e:
            raise TaskError(f"SetParameterAttributes item {item!r}: {e}") from None
    raise TaskError(f"{kind} takes no ParameterList")


_SCALARS = (str, int, float, type(None))
#: values that are their own JSON (bool is an int)
_PLAIN = frozenset((str, int, bool, float, type(None)))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def to_json(obj: Any) -> Any:
    """A response record as JSON: records become objects, bytes base64, datetimes ISO 8601.

    Runs over every value of every response (608 values and 712 names per Cisco phone's
    discovery): the common cases come first, a record's field names are looked up once per
    class, and the lists of a GetParameterValues or GetParameterNames response take one
    comprehension each, with no call per item unless a value needs converting.
    """
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, rpc.ParameterValueStruct):
        return [obj.Name, to_json(obj.Value), obj.Type]
    if isinstance(obj, list | tuple):
        if obj:
            first = type(obj[0])
            if first is rpc.ParameterValueStruct and all(type(x) is first for x in obj):
                return [[p.Name, v if type(v := p.Value) in _PLAIN else to_json(v), p.Type] for p in obj]
            if first is rpc.ParameterInfoStruct and all(type(x) is first for x in obj):
                return [{"Name": i.Name, "Writable": i.Writable} for i in obj]
        return [to_json(x) for x in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {name: to_json(getattr(obj, name)) for name in _field_names(type(obj))}
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, bytes | bytearray):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, Decimal):
        return str(obj)
    return obj


def redacted(args: dict[str, Any]) -> dict[str, Any]:
    """Task arguments fit to show: file-server passwords and secret parameter values masked."""
    shown = {k: (redact(v) if is_secret(k) else v) for k, v in args.items()}
    if isinstance(shown.get("ParameterList"), list):
        shown["ParameterList"] = [
            [item[0], redact(item[1]), *item[2:]]
            if isinstance(item, list | tuple) and item and is_secret(str(item[0]))
            else item
            for item in shown["ParameterList"]
        ]
    return shown
