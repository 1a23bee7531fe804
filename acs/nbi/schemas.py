"""The JSON shapes of the API, as JSON Schema (the OpenAPI document's ``components.schemas``).

Response shapes are derived from the store's tables and the queue's ``Task`` record, so a
column added there shows up here; request bodies are written out, since they say what a
client may send. The server validates request bodies against these very schemas.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import sqlalchemy as sa

from acs.cwmp import rpc, values
from acs.jobs import queue
from acs.jobs.policies import DISCOVERY_BATCH
from acs.store import inventory
from acs.store.schema import (
    CONNECTION_REQUEST_OUTCOMES,
    PROFILE_LEVELS,
    TASK_STATUSES,
    TOKEN_ROLES,
    UTCDateTime,
    connection_requests,
    devices,
    events,
    mac_conflicts,
    parameters,
    policies,
    profile_assignments,
    profiles,
    sessions,
    tasks,
)

Schema = dict[str, Any]

DATE_TIME: Schema = {"type": "string", "format": "date-time"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null (OpenAPI 3.1 spells it as a list of types)."""
    kind = schema.get("type")
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    if kind is None:
        return schema  # no type: any JSON value, null included
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    return {**schema, "type": [kind, "null"]}


def _column(column: sa.Column[Any], json: Schema | None = None) -> Schema:
    if json is not None:
        schema = json
    elif isinstance(column.type, UTCDateTime):
        schema = dict(DATE_TIME)
    elif isinstance(column.type, sa.Boolean):
        schema = {"type": "boolean"}
    elif isinstance(column.type, sa.Integer | sa.BigInteger):
        schema = {"type": "integer"}
    else:
        schema = {"type": "string"}
    return nullable(schema) if column.nullable and not column.primary_key else schema


def _object(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    required = list(properties) if required is None else required
    return {"type": "object", "properties": properties, "required": required, **extra}


def _table(
    table: sa.Table, *, only: tuple[str, ...] | None = None, json: dict[str, Schema] | None = None
) -> dict[str, Schema]:
    json = json or {}
    names = only if only is not None else tuple(c.name for c in table.c)
    return {name: _column(table.c[name], json.get(name)) for name in names}


_STRINGS: Schema = {"type": "array", "items": {"type": "string"}}
_NON_BLANK: Schema = {"type": "string", "pattern": "\\S"}

# --- task arguments, per RPC: the fields of its record in the codec -------------------------------

_UNSIGNED: Schema = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
_VALUE_STRUCT: Schema = {
    "oneOf": [
        {
            "type": "array",
            "prefixItems": [
                {"type": "string", "minLength": 1},
                {"type": ["string", "number", "boolean"]},
                {"type": "string", "enum": ["", *values.TYPES]},
            ],
            "minItems": 2,
            "maxItems": 3,
            "description": "[name, value, type]: without a type, the one stored for the parameter.",
        },
        _object(
            {
                "Name": {"type": "string", "minLength": 1},
                "Value": {"type": ["string", "number", "boolean"]},
                "Type": {"type": "string", "enum": ["", *values.TYPES]},
            },
            required=["Name", "Value"],
            additionalProperties=False,
        ),
    ]
}
_ATTRIBUTE_STRUCT = _object(
    {
        "Name": {"type": "string", "minLength": 1},
        "NotificationChange": {"type": "boolean"},
        "Notification": {"type": "integer", "minimum": 0, "maximum": 6},
        "AccessListChange": {"type": "boolean"},
        "AccessList": _STRINGS,
    },
    required=["Name"],
    additionalProperties=False,
)
#: argument name -> schema, where the name says more than the Python type
_ARGUMENT: dict[str, Schema] = {
    "CommandKey": {"type": "string", "maxLength": queue.KEY_MAX_LENGTH},
    "ParameterKey": {"type": "string", "maxLength": queue.KEY_MAX_LENGTH},
    "DelaySeconds": _UNSIGNED,
    "FileSize": _UNSIGNED,
}
_PYTHON: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    list[str]: _STRINGS,
    list[rpc.ParameterValueStruct]: {"type": "array", "items": _VALUE_STRUCT},
    list[rpc.SetParameterAttributesStruct]: {"type": "array", "items": _ATTRIBUTE_STRUCT},
}


def _arguments(kind: str) -> Schema:
    hints = typing.get_type_hints(getattr(rpc, kind))
    props = {
        f.name: _ARGUMENT.get(f.name, _PYTHON[hints[f.name]]) for f in dataclasses.fields(getattr(rpc, kind))
    }
    return _object(props, required=[], additionalProperties=False, description=f"The arguments of {kind}.")


ARGS: dict[str, Schema] = {f"{kind}Args": _arguments(kind) for kind in queue.KINDS}


def by_kind(
    common: dict[str, Schema], args: dict[str, str], *, required: list[str], description: str
) -> Schema:
    """One object per RPC kind, ``args`` being that kind's arguments: a client (and schemathesis) sees
    exactly what each kind takes. ``check_body`` picks the branch by ``kind`` to say what was wrong."""
    return {
        "oneOf": [
            _object(
                {"kind": {"const": kind}, "args": ref(component)} | common,
                required=["kind", *required],
                additionalProperties=False,
                title=kind,
            )
            for kind, component in args.items()
        ],
        "description": description,
    }


_TASK_ARGS = {kind: f"{kind}Args" for kind in queue.KINDS}
_BATCH: Schema = {"type": "integer", "minimum": 1, "maximum": 10000}
_DISCOVER_ARGS = _object(
    {
        "batch": {**_BATCH, "default": DISCOVERY_BATCH},
        "models": {
            "type": "array",
            "items": _object(
                {
                    "product_class": {"type": "string", "pattern": "\\S"},
                    "oui": {"type": "string"},
                    "batch": _BATCH,
                },
                required=["product_class", "batch"],
                additionalProperties=False,
            ),
            "description": "The batch for some models: a product class (with an OUI: only that "
            "manufacturer's), which wins over `batch`.",
        },
    },
    required=[],
    additionalProperties=False,
    description="Discover reads the whole tree: names, then values in batches of `batch` names (a device "
    "whose session died on a batch gets half as many from then on, down to 1).",
)
_ISSUE_CREDENTIALS_ARGS = _object(
    {},
    required=[],
    additionalProperties=False,
    description="IssueCredentials gives a device on the shared credentials its own: the ACS makes a "
    "password and sets ManagementServer.Username (the device's id) and Password on it; once applied, "
    "they are its own. It takes no arguments.",
)
_POLICY_TASK = by_kind(
    {},
    _TASK_ARGS | {"Discover": "DiscoverArgs", "IssueCredentials": "IssueCredentialsArgs"},
    required=[],
    description="A task to queue: an RPC (kind) and its arguments; {root} in strings becomes Device. or "
    "InternetGatewayDevice. Discover reads the device's whole tree; IssueCredentials gives a device on "
    "the shared credentials its own.",
)
_KIND: Schema = {"type": "string", "enum": list(queue.KINDS)}

# --- what the server answers ------------------------------------------------------------------

_device_props = _table(devices, only=tuple(f for f in inventory.DEVICE_FIELDS if f != "tags"))
_device_props["tags"] = _STRINGS
DEVICE = _object(
    _device_props,
    required=["id"],
    description="A device (CPE). With `fields`, only those properties (and the id) are present.",
)
PARAMETER = _object(_table(parameters), description="A stored parameter; password values are masked.")
DEVICE_DETAIL = {
    "allOf": [
        ref("Device"),
        {
            "type": "object",
            "properties": {
                "parameters": {"type": "array", "items": ref("Parameter")},
                "last_connection_request": nullable(ref("ConnectionRequestRecord")),
                "mac_conflicts": {"type": "array", "items": ref("MacConflict")},
            },
            "description": "`parameters` is present when asked for with the `parameters` query parameter; "
            "`last_connection_request` and `mac_conflicts` (the open ones the device is in, as the one "
            "that has the MAC or one that reported it) when `fields` is not given.",
        },
    ]
}
TAGS = _object({"id": {"type": "string"}, "tags": _STRINGS})

_task_fields = [f.name for f in dataclasses.fields(queue.Task)]
_task_props = _table(
    tasks,
    only=tuple(_task_fields),
    json={
        "args": {"type": "object", "description": "The RPC's arguments by element name (secrets masked)."},
        "result": {"description": "The CPE's response as JSON (null until there is one)."},
        "kind": _KIND,
        "status": {"type": "string", "enum": list(TASK_STATUSES)},
        "session_id": nullable(
            {"type": "string", "description": "The session it was sent in, by reference (see Session.id)."}
        ),
    },
)
_task_props["fault_meaning"] = nullable(
    {
        "type": "string",
        "description": "The fault in words: its code's meaning, or for a fault with no CWMP code "
        "(no answer, a deadline passed, a broken response) what happened. Null unless status is fault.",
    }
)
_task_props["complete_within"]["description"] = (
    "Seconds it may take to complete after its response (null: its kind's default)."
)
_task_props["deadline_at"]["description"] = (
    "When an answered task waiting for its event (1 BOOT, TransferComplete...) becomes a fault."
)
TASK = _object(
    _task_props, description="A queued RPC: pending -> sent -> done | fault | expired | cancelled."
)
_OUTCOME: Schema = {"type": "string", "enum": list(CONNECTION_REQUEST_OUTCOMES)}
CONNECTION_REQUEST = _object(
    {
        "device_id": {"type": "string"},
        "outcome": _OUTCOME,
        "method": nullable(
            {"type": "string", "description": "http or udp: how it got through, or the last try."}
        ),
        "summary": {"type": "string", "description": "What happened, in words."},
        "attempts": {
            "type": "array",
            "items": _object(
                {
                    "method": nullable({"type": "string"}),
                    "outcome": _OUTCOME,
                    "detail": {"type": "string"},
                    "requested_at": DATE_TIME,
                    "elapsed": nullable({"type": "number"}),
                }
            ),
        },
    },
    description="A connection request: the device asked to open a session now (outcome sent), or why not.",
)
CONNECTION_REQUEST_RECORD = _object(
    _table(connection_requests, json={"outcome": _OUTCOME}),
    description="A connection request as recorded: when, how, and what came of it.",
)
TASK_CREATED = {
    "allOf": [
        ref("Task"),
        {
            "type": "object",
            "properties": {"connection_request": ref("ConnectionRequest")},
            "description": "`connection_request` is present when one was asked for.",
        },
    ]
}
JOB_QUEUED = _object(
    {"job": {"type": "string"}, "tasks": {"type": "array", "items": {"type": "integer"}}},
    description="Tasks queued in bulk: the job that groups them, and their ids in device order.",
)
JOB = _object(
    {
        "job": {"type": "string"},
        "kind": _KIND,
        "created_at": DATE_TIME,
        "total": {"type": "integer", "minimum": 1},
        **{s: {"type": "integer", "minimum": 0} for s in TASK_STATUSES},
        "finished": {"type": "boolean", "description": "No task of the job is pending or sent any more."},
    },
    description="A job's progress: how many of its tasks are in each status.",
)
POLICY = _object(
    _table(policies, json={"events": _STRINGS, "tasks": {"type": "array", "items": _POLICY_TASK}}),
    description="Tasks the ACS queues by itself when matching devices inform.",
)
EVENT = _object(
    _table(events, json={"session_id": nullable({"type": "string"})}),
    description="An EventCode a device informed, in the session (by reference) it came in; or one the "
    "ACS recorded (ACS MAC CONFLICT, ACS MAC RESOLVED), its command_key saying what.",
)
MAC_CONFLICT = _object(
    _table(mac_conflicts, json={"source": {"type": "string", "enum": list(inventory.MAC_SOURCES)}}),
    description="A device (claimant_id) that reported a MAC another device (holder_id) has: the MAC "
    "stayed with the holder. resolved_at: an operator settled it; the claimant's reports are refused.",
)
MAC_CONFLICT_RESOLVE = _object(
    {"keep": {**_NON_BLANK, "description": "The device that keeps the MAC: its id or serial number."}},
    additionalProperties=False,
    description="Who keeps the MAC (acs device mac-conflict resolve).",
)
MAC_CONFLICT_RESOLVED = _object(
    {"mac": {"type": "string"}, "kept": {"type": "string"}, "lost": _STRINGS},
    description="The device that has the MAC now, and those that lost it or whose reports are refused.",
)
SESSION = _object(
    _table(
        sessions,
        only=("id", "started_at", "last_message_at", "ended_at", "status", "remote_addr", "cwmp_ns"),
        json={"id": {"type": "string", "description": "A reference, not the session's cookie."}},
    ),
    description="A CWMP session of the device.",
)
PROBLEM = _object(
    {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What was wrong, in words."},
        "field": {
            "type": "string",
            "description": "Where: header.Authorization, path.NAME, query.NAME, body.NAME or method.",
        },
        "allowed": {"type": "string", "description": "What would have been accepted."},
        "problems": {
            "type": "array",
            "items": ref("ProfileProblem"),
            "description": "A refused profile's problems, each with its line and element.",
        },
        "devices": {
            "type": "array",
            "items": {"type": "string"},
            "description": "409 for a MAC or serial number several devices share: their ids, one of "
            "which to give instead.",
        },
    },
    required=["type", "title", "status", "detail"],
    description="An RFC 9457 problem; every 4xx names the field and what is allowed.",
)

# --- profiles ----------------------------------------------------------------------------------

PROFILE_PROBLEM = _object(
    {
        "line": nullable({"type": "integer"}),
        "element": nullable({"type": "string"}),
        "message": {"type": "string"},
        "severity": {"type": "string", "enum": ["error", "warning"]},
    },
    description="Something wrong in a flat profile: an error refuses it, a warning is kept.",
)
ASSIGNMENT = _object(
    _table(
        profile_assignments,
        only=("level", "match", "priority"),
        json={"level": {"type": "string", "enum": list(PROFILE_LEVELS)}},
    ),
    description='Where a profile applies: every device (default, match ""), a model (ProductClass), a '
    "tag or a device (its id).",
)
_ASSIGNMENTS: Schema = {"type": "array", "items": ref("Assignment")}
PROFILE_SUMMARY = _object(
    _table(profiles, only=("id", "name", "description", "updated_at")) | {"assignments": _ASSIGNMENTS},
    description="A profile and where it applies (GET /profiles/{name} has its XML).",
)
PROFILE = _object(
    _table(profiles, json={"xml": {"type": "string", "description": "The flat profile as written."}})
    | {"assignments": _ASSIGNMENTS},
    description="A Cisco XML flat profile and where it applies; secret values masked unless asked for.",
)
PROVISIONED = _object(
    {
        "device": {"type": "string"},
        "task": nullable(
            {"type": "integer", "description": "The SetParameterValues queued; null: no change."}
        ),
        "parameter_key": {
            "type": "string",
            "description": "The profile version, as the phone will report it.",
        },
        "changes": {"type": "integer", "minimum": 0, "description": "How many values differ."},
        "cancelled": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "Older profile tasks still pending, replaced by this one.",
        },
    },
    description="What a TR-069-managed device was sent: one SetParameterValues of what differs.",
)
_PROVISIONED: Schema = {
    "type": "array",
    "items": ref("Provisioned"),
    "description": "The TR-069-managed devices it reaches (the others get it when they resync).",
}
PROFILE_SAVED = {
    "allOf": [
        ref("Profile"),
        _object(
            {
                "warnings": {"type": "array", "items": ref("ProfileProblem")},
                "provisioned": _PROVISIONED,
            }
        ),
    ]
}
ASSIGNED = _object(
    {
        "profile": {"type": "string"},
        "level": {"type": "string", "enum": list(PROFILE_LEVELS)},
        "match": {"type": "string"},
        "priority": {"type": "integer"},
        "provisioned": _PROVISIONED,
    },
    description="A profile assigned, and what the devices it reaches were sent.",
)
EFFECTIVE_PROFILE = _object(
    {
        "device": {"type": "string"},
        "layers": {
            "type": "array",
            "items": _object({"name": {"type": "string"}} | ASSIGNMENT["properties"]),
            "description": "The profiles that apply, in the order they compose (the last one wins).",
        },
        "parameter_key": {"type": "string", "description": "Its version: the ParameterKey it is sent with."},
        "xml": {"type": "string", "description": "The composed profile, macros expanded for the device."},
    },
    description="A device's effective profile: default -> model -> tag -> device, the last value winning.",
)
PROFILE_DIFF = _object(
    {
        "device": {"type": "string"},
        "managed": {
            "type": "boolean",
            "description": "Informed and discovered: its stored tree can be compared (and sent to).",
        },
        "parameter_key": {"type": "string"},
        "changes": {
            "type": "array",
            "items": _object(
                {
                    "element": {"type": "string"},
                    "path": {"type": "string"},
                    "phone": nullable({"type": "string"}),
                    "profile": {"type": "string"},
                    "type": {"type": "string"},
                }
            ),
        },
        "unmapped": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Elements with no TR-069 path: served in flat profiles only.",
        },
        "problems": {"type": "array", "items": {"type": "string"}},
    },
    description="What the device's effective profile would change on the phone, against its stored tree.",
)

# --- what clients send ---------------------------------------------------------------------------

#: device filters, as query parameters of GET /devices and as the `devices` object of POST /tasks
FILTERS: dict[str, tuple[Schema, str]] = {
    "key": (
        _STRINGS,
        "Devices by id, MAC (any notation) or serial number, as operators name them; any of them.",
    ),
    "id": (_STRINGS, "Device ids (OUI-ProductClass-SerialNumber); any of them."),
    "mac": (_STRINGS, "MAC addresses, in any notation; any of them."),
    "serial_number": (_STRINGS, "Serial numbers; any of them."),
    "product_class": ({"type": "string"}, "ProductClass (model), e.g. CP-8841-3PCC."),
    "oui": ({"type": "string"}, "Manufacturer OUI, e.g. 00562B."),
    "software_version": ({"type": "string"}, "SoftwareVersion as the device reports it."),
    "tag": ({"type": "string"}, "Devices with this tag."),
    "last_inform_after": (DATE_TIME, "Informed at or after this time (RFC 3339, with a time zone)."),
    "last_inform_before": (DATE_TIME, "Not informed since this time (or never informed)."),
    "parameter": (
        {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}},
        "PATH=VALUE: the stored parameter PATH has exactly VALUE; all must hold.",
    ),
    "parameter_prefix": (
        {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}},
        "PATH=PREFIX: the stored parameter PATH's value starts with PREFIX; all must hold.",
    ),
}
DEVICE_FILTER = _object(
    {name: {**schema, "description": text} for name, (schema, text) in FILTERS.items()}
    | {"all": {"type": "boolean", "description": "Every device: needed when no other filter is given."}},
    required=[],
    additionalProperties=False,
    description="Which devices: every filter given must hold; give at least one, or all: true.",
    anyOf=[{"properties": {"all": {"const": True}}, "required": ["all"]}]
    + [{"required": [name]} for name in FILTERS],
)
_TASK_OPTIONS: dict[str, Schema] = {
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3},
    "expires_at": {**DATE_TIME, "description": "Give up if not sent by then (RFC 3339, with a time zone)."},
    "complete_within": {
        "type": "integer",
        "minimum": 1,
        "maximum": queue.COMPLETE_WITHIN_MAX,
        "description": "For "
        + ", ".join(queue.AWAITED)
        + " only: seconds the device may take, after its response, to complete it (come back with "
        "1 BOOT, 0 BOOTSTRAP, 3 SCHEDULED, send its TransferComplete); then the task is a fault. "
        "Default: "
        + ", ".join(f"{kind} {a.seconds}" for kind, a in queue.AWAITED.items())
        + " (ScheduleInform's and transfers' DelaySeconds come on top).",
    },
}
TASK_CREATE = by_kind(
    _TASK_OPTIONS
    | {
        "connection_request": {
            "type": "boolean",
            "default": False,
            "description": "Ask the device to open a session now instead of at its next periodic Inform.",
        },
        "timeout": {
            "type": "number",
            "minimum": 0,
            "maximum": 300,
            "default": 0,
            "description": "Seconds to wait for the task to complete: 200 if it did, else 202.",
        },
    },
    _TASK_ARGS,
    required=[],
    description="An RPC to queue on the device: its kind, its arguments (the kind's Args) and options.",
)
BULK_TASK_CREATE = by_kind(
    _TASK_OPTIONS | {"devices": ref("DeviceFilter")},
    _TASK_ARGS,
    required=["devices"],
    description="An RPC to queue on every device the filter selects, as one job.",
)
PREREGISTER = _object(
    {
        "mac": {
            "type": "string",
            "maxLength": 17,
            "pattern": "^[^0-9A-Fa-f]*([0-9A-Fa-f][^0-9A-Fa-f]*){12}$",
            "description": "The MAC: 12 hex digits, in any notation (00:56:2B:04:36:15, 00562b043615...).",
        },
        "serial_number": {"type": "string", "minLength": 1},
        "oui": {"type": "string", "minLength": 1},
        "product_class": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": _NON_BLANK},
    },
    required=[],
    additionalProperties=False,
    anyOf=[{"required": ["mac"]}, {"required": ["serial_number"]}],
    description="A device known before it informs: a MAC or a serial number (or both) is needed.",
)
TAG_CHANGE = _object(
    {
        "add": {"type": "array", "items": _NON_BLANK},
        "remove": {"type": "array", "items": _NON_BLANK},
    },
    required=[],
    additionalProperties=False,
)
CREDENTIALS = _object(
    {
        "username": nullable({"type": "string", "minLength": 1}),
        "password": nullable({"type": "string"}),
        "connection_request": {
            "type": "boolean",
            "default": False,
            "description": "The ConnectionRequestUsername/Password the device checks connection requests "
            "with, instead of those it authenticates to the ACS with.",
        },
    },
    required=["username", "password"],
    additionalProperties=False,
    description="A user name and password; both null: forget them (the device uses the shared ones).",
)
CREDENTIALS_SET = _object(
    {
        "id": {"type": "string"},
        "username": nullable({"type": "string"}),
        "connection_request": {"type": "boolean"},
    }
)
#: a device of an inventory import (``acs device import``'s CSV row, in the API's names)
INVENTORY_DEVICE = _object(
    {
        "mac": {"type": "string", "description": "12 hex digits, in any notation."},
        "serial_number": {"type": "string"},
        "product_class": {"type": "string", "description": "The model, e.g. CP-8841-3PCC."},
        "oui": nullable({"type": "string", "description": "6 hex digits; default: the MAC's first six."}),
        "tags": {
            "type": "array",
            "items": _NON_BLANK,
            "description": "Tags to add (the tag level of the profile composition).",
        },
        "profile": nullable({"type": "string", "description": "The device's own profile (it must exist)."}),
        "username": nullable({"type": "string", "description": "Its own CPE credentials, with password."}),
        "password": nullable({"type": "string"}),
    },
    required=["mac", "serial_number", "product_class"],
    additionalProperties=False,
    description="A device to create or update before it first connects; its id is OUI-ProductClass-Serial.",
)
INVENTORY_IMPORT = _object(
    {"devices": {"type": "array", "items": ref("InventoryDevice"), "minItems": 1, "maxItems": 1000}},
    additionalProperties=False,
    description="Devices to create or update, as `acs device import` reads them from a CSV.",
)
INVENTORY_IMPORTED = _object(
    {
        "created": {"type": "integer", "minimum": 0},
        "updated": {"type": "integer", "minimum": 0},
        "refused": {
            "type": "array",
            "items": _object(
                {
                    "index": {"type": "integer", "minimum": 0, "description": "Its place in `devices`."},
                    "reason": {"type": "string"},
                }
            ),
        },
    },
    description="What the import did: devices refused are named by their index, the others kept.",
)
PROFILE_REDIRECT = _object(
    {
        "url": nullable(
            {
                "type": "string",
                "minLength": 1,
                "description": "An http(s) URL: a server (ending in /, the phone's path is appended) or "
                "the profile's full URL; null: serve the phone here again.",
            }
        ),
        "temporary": {"type": "boolean", "default": False, "description": "302 (moved for now), not 301."},
    },
    required=["url"],
    additionalProperties=False,
    description="Where the phone's profile fetches are sent (acs device move).",
)
PROFILE_REDIRECT_SET = _object(
    {
        "id": {"type": "string"},
        "url": nullable({"type": "string"}),
        "status": {"type": ["integer", "null"], "enum": [301, 302, None]},
    },
    description="The device's profile redirect after the change (null: none).",
)
_policy_fields: dict[str, Schema] = {
    "enabled": {"type": "boolean"},
    "events": {
        "type": "array",
        "items": _NON_BLANK,
        "minItems": 1,
        "description": 'EventCodes ("1 BOOT", "2 PERIODIC"...), NEW (first Inform) or * (every Inform).',
    },
    "tasks": {"type": "array", "items": _POLICY_TASK, "minItems": 1},
    "priority": {
        "type": "integer",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
        "description": "Lower runs first.",
    },
    **{
        f"match_{k}": nullable({"type": "string", "description": f"Only devices with this {k}; null: any."})
        for k in ("product_class", "oui", "software_version", "tag")
    },
}
POLICY_CREATE = _object(
    {"name": _NON_BLANK} | _policy_fields,
    required=["name", "events", "tasks"],
    additionalProperties=False,
)
POLICY_UPDATE = _object(_policy_fields, required=[], additionalProperties=False)
PROFILE_NAME: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "description": "1-64 letters, digits, '.', '_' or '-', starting with a letter or a digit.",
}
#: ``flat-profile``: text a JSON Schema cannot say more about; the server parses it, and refuses a
#: malformed one with 422 and the line and element at fault
_PROFILE_XML: Schema = {
    "type": "string",
    "format": "flat-profile",
    "description": "A Cisco XML flat profile (<flat-profile>).",
}
PROFILE_CREATE = _object(
    {"name": PROFILE_NAME, "xml": _PROFILE_XML, "description": {"type": "string"}},
    required=["name", "xml"],
    additionalProperties=False,
)
PROFILE_WRITE = _object(
    {"xml": _PROFILE_XML, "description": {"type": "string"}},
    required=["xml"],
    additionalProperties=False,
    description="The profile (or, as application/xml, the flat profile itself: the description is kept).",
)
_PRIORITY: Schema = {
    "type": "integer",
    "minimum": -(2**31),
    "maximum": 2**31 - 1,
    "default": 0,
    "description": "Order within a level: higher is applied later and wins.",
}
_MATCH: Schema = {
    **_NON_BLANK,
    "description": "A ProductClass (model), a tag, or a device id, MAC or serial number (device).",
}
ASSIGNMENT_CREATE = _object(
    {"level": {"type": "string", "enum": list(PROFILE_LEVELS)}, "match": _MATCH, "priority": _PRIORITY},
    required=["level"],
    additionalProperties=False,
    description="Where a profile applies: every device (default, no match), a model, a tag or one device.",
    **{
        "if": {"properties": {"level": {"const": "default"}}, "required": ["level"]},
        "then": {
            "not": {"required": ["match"]},
            "description": "no match: the default level applies to every device",
        },
        "else": {"required": ["match"], "properties": {"match": _MATCH}},
    },
)
PROFILE_PUSH = _object(
    {
        "connection_request": TASK_CREATE["oneOf"][0]["properties"]["connection_request"],
        "timeout": TASK_CREATE["oneOf"][0]["properties"]["timeout"],
    },
    required=[],
    additionalProperties=False,
    description="Options of a push (the body may be left out).",
)

COMPONENTS: dict[str, Schema] = {
    **ARGS,
    "DiscoverArgs": _DISCOVER_ARGS,
    "IssueCredentialsArgs": _ISSUE_CREDENTIALS_ARGS,
    "Device": DEVICE,
    "DeviceDetail": DEVICE_DETAIL,
    "Parameter": PARAMETER,
    "Tags": TAGS,
    "TagChange": TAG_CHANGE,
    "Credentials": CREDENTIALS,
    "CredentialsSet": CREDENTIALS_SET,
    "InventoryDevice": INVENTORY_DEVICE,
    "InventoryImport": INVENTORY_IMPORT,
    "InventoryImported": INVENTORY_IMPORTED,
    "ProfileRedirect": PROFILE_REDIRECT,
    "ProfileRedirectSet": PROFILE_REDIRECT_SET,
    "Preregister": PREREGISTER,
    "Task": TASK,
    "TaskCreate": TASK_CREATE,
    "TaskCreated": TASK_CREATED,
    "ConnectionRequest": CONNECTION_REQUEST,
    "ConnectionRequestRecord": CONNECTION_REQUEST_RECORD,
    "DeviceFilter": DEVICE_FILTER,
    "BulkTaskCreate": BULK_TASK_CREATE,
    "JobQueued": JOB_QUEUED,
    "Job": JOB,
    "Policy": POLICY,
    "PolicyCreate": POLICY_CREATE,
    "PolicyUpdate": POLICY_UPDATE,
    "Event": EVENT,
    "MacConflict": MAC_CONFLICT,
    "MacConflictResolve": MAC_CONFLICT_RESOLVE,
    "MacConflictResolved": MAC_CONFLICT_RESOLVED,
    "Session": SESSION,
    "Problem": PROBLEM,
    "ProfileProblem": PROFILE_PROBLEM,
    "Assignment": ASSIGNMENT,
    "ProfileSummary": PROFILE_SUMMARY,
    "Profile": PROFILE,
    "ProfileSaved": PROFILE_SAVED,
    "Provisioned": PROVISIONED,
    "Assigned": ASSIGNED,
    "EffectiveProfile": EFFECTIVE_PROFILE,
    "ProfileDiff": PROFILE_DIFF,
    "ProfileCreate": PROFILE_CREATE,
    "ProfileWrite": PROFILE_WRITE,
    "AssignmentCreate": ASSIGNMENT_CREATE,
    "ProfilePush": PROFILE_PUSH,
}
ROLES = TOKEN_ROLES
