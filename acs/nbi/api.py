"""The endpoints: each a route declaration and a handler calling the service functions.

Handlers run on a database thread, inside the request's transaction (``Call.conn``), and
answer with the JSON the CLI's ``--json`` prints for the same thing: devices as
``inventory.device_json``, tasks as ``queue.task_json``, policies as their rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from acs.jobs import policies, queue
from acs.nbi import tokens
from acs.nbi.problem import ApiError, not_found
from acs.nbi.routing import Call, Follow, Param, Reply, Response, Router, parse_datetime
from acs.nbi.schemas import DEVICE_FILTER, FILTERS, ref
from acs.provisioning import preprovision
from acs.store import connection_requests, inventory
from acs.store.schema import TASK_STATUSES, TaskStatus, utcnow
from acs.usecases import tasks

router = Router()

# --- shared declarations ---------------------------------------------------------------------------

DEVICE = Param(
    "device", "path", {"type": "string"}, "A device id, MAC (any notation) or serial number.", required=True
)
#: ids are 64-bit in the store: a larger number names nothing
ID_MAX = 2**63 - 1
TASK = Param(
    "task", "path", {"type": "integer", "minimum": 1, "maximum": ID_MAX}, "A task id.", required=True
)
POLICY = Param("name", "path", {"type": "string"}, "The policy's name.", required=True)
JOB = Param("job", "path", {"type": "string"}, "A job id (from POST /tasks).", required=True)
TAG = Param("tag", "path", {"type": "string"}, "A tag of the device.", required=True)


def limit(default: int = 100) -> Param:
    schema = {"type": "integer", "minimum": 1, "maximum": 1000, "default": default}
    return Param("limit", "query", schema, "At most this many items.")


OFFSET = Param(
    "offset",
    "query",
    {"type": "integer", "minimum": 0, "maximum": ID_MAX, "default": 0},
    "Skip this many items first.",
)
PAGE = (limit(), OFFSET)
TASK_FILTERS = (
    Param("status", "query", {"type": "string", "enum": list(TASK_STATUSES)}, "Only tasks in this status."),
    Param("kind", "query", {"type": "string", "enum": list(queue.KINDS)}, "Only tasks of this RPC."),
)

_problem = Response("A problem (RFC 9457), naming the field and what is allowed.", ref("Problem"))


def responses(ok: dict[int, Response], *, found: bool = True, conflict: bool = False) -> dict[int, Response]:
    """``ok`` and the problems every endpoint may answer with (401, 403, 400; 404 when it names
    something; 409 when the thing's state may forbid the change)."""
    errors = {400: _problem, 401: _problem, 403: _problem} | ({404: _problem} if found else {})
    return ok | errors | ({409: _problem} if conflict else {})


def one(schema: str, description: str, **headers: str) -> Response:
    return Response(description, ref(schema), headers)


def many(schema: str, description: str, **headers: str) -> Response:
    return Response(description, {"type": "array", "items": ref(schema)}, headers)


def route(
    method: str, path: str, *, responses: dict[int, Response], params: tuple[Param, ...] = (), **kwargs: Any
) -> Any:
    """``router.route``. A route that names a device (``device`` in its path or query) may answer 409:
    a MAC or serial number several devices share names none of them."""
    if any(p.name == "device" for p in params):
        responses = {409: _problem} | responses
    return router.route(method, path, responses=responses, params=params, **kwargs)


def ambiguous(e: inventory.AmbiguousDevice | tasks.AmbiguousDevice, where: str) -> ApiError:
    """409 for a key several devices share, with their ids."""
    return ApiError(
        409,
        str(e),
        field=where,
        allowed=f"one device's id: {', '.join(e.device_ids)}",
        extra={"devices": e.device_ids},
    )


NO_CONTENT = Response("Done; nothing to say.")
LOCATION = {"Location": "Where the new thing can be read."}


def _device(call: Call, where: str = "path.device", key: str | None = None) -> dict[str, Any]:
    key = call.path["device"] if key is None else key
    try:
        dev = inventory.get_device(call.conn, key)
    except inventory.AmbiguousDevice as e:
        raise ambiguous(e, where) from None
    if dev is None:
        raise not_found("device", key, where, "a device id, MAC or serial number (see GET /devices)")
    return dev


def _task(call: Call) -> queue.Task:
    task = queue.get(call.conn, call.path["task"])
    if task is None:
        raise not_found("task", call.path["task"], "path.task", "a task id (see GET /tasks)")
    return task


def _transition(call: Call, action: Any, allowed: str) -> Reply:
    """A task's status change; a task in the wrong status for it is a conflict."""
    _task(call)
    try:
        return Reply(200, queue.task_json(action(call.conn, call.path["task"])))
    except queue.QueueError as e:
        raise ApiError(409, str(e), field="path.task", allowed=allowed) from None


#: the origin kind of the tasks the NBI (REST and SOAP) queues; the token's name is the origin's
API = "api"


def _origin(call: Call) -> queue.Origin:
    return queue.Origin(API, call.token["name"])


# --- devices -------------------------------------------------------------------------------------------

_FILTER_PARAMS = tuple(Param(name, "query", schema, text) for name, (schema, text) in FILTERS.items())
_SORT = {"type": "string", "enum": [*inventory.SORT_FIELDS, *(f"-{f}" for f in inventory.SORT_FIELDS)]}
_FIELDS = Param(
    "fields",
    "query",
    {"type": "array", "items": {"type": "string", "enum": list(inventory.DEVICE_FIELDS)}},
    "Only these properties of each device (repeat the parameter for more); the id is always there.",
)


def device_filters(values: dict[str, Any], where: str) -> dict[str, Any]:
    """GET /devices' query parameters, or POST /tasks' ``devices`` object, as ``find_devices`` filters."""

    def when(name: str) -> Any:
        value = values.get(name)
        return parse_datetime(value, f"{where}{name}") if isinstance(value, str) else value

    matches = []
    for name, prefix in (("parameter", False), ("parameter_prefix", True)):
        for text in values.get(name) or ():
            try:
                matches.append(inventory.ParameterMatch.parse(text, prefix=prefix))
            except ValueError as e:
                raise ApiError(400, str(e), field=f"{where}{name}", allowed="PATH=VALUE") from None
    return {
        "keys": values.get("key") or (),
        "ids": values.get("id") or (),
        "macs": values.get("mac") or (),
        "serials": values.get("serial_number") or (),
        "product_class": values.get("product_class"),
        "oui": values.get("oui"),
        "software_version": values.get("software_version"),
        "tag": values.get("tag"),
        "informed_after": when("last_inform_after"),
        "informed_before": when("last_inform_before"),
        "params": matches,
    }


@route(
    "GET",
    "/devices",
    role="read",
    params=(
        *_FILTER_PARAMS,
        Param("sort", "query", _SORT | {"default": "id"}, "Order by this property; - in front: descending."),
        *PAGE,
        _FIELDS,
    ),
    responses=responses(
        {
            200: many(
                "Device", "The matching devices.", **{"X-Total-Count": "How many devices match, all pages."}
            )
        },
        found=False,
        conflict=True,
    ),
)
def list_devices(call: Call) -> Reply:
    """List devices, filtered, sorted and paged
    Every filter given must hold; a list-valued filter matches any of its values."""
    q = call.query
    filters = device_filters(q, "query.")
    try:
        rows = inventory.find_devices(
            call.conn, sort=q["sort"], limit=q["limit"], offset=q["offset"], tags=True, **filters
        )
    except inventory.AmbiguousDevice as e:
        raise ambiguous(e, "query.key") from None
    total = inventory.count_devices(call.conn, **filters)
    body = [inventory.device_json(r, q["fields"]) for r in rows]
    return Reply(200, body, {"X-Total-Count": str(total)})


@route(
    "POST",
    "/devices",
    role="admin",
    body="Preregister",
    responses=responses(
        {201: one("Device", "The device, known before its first Inform.", **LOCATION)},
        found=False,
        conflict=True,
    ),
)
def preregister_device(call: Call) -> Reply:
    """Pre-register a device by MAC and/or serial number, before it ever informs
    With serial_number and product_class (and oui, by default the MAC's first six hex digits) its
    id is the one its Inform will carry (OUI-ProductClass-SerialNumber); otherwise a placeholder
    (mac:... or serial:...) that its first Inform replaces, keeping the tags and tasks given to it."""
    body = call.body
    try:
        known = inventory.get_device(call.conn, body["serial_number"]) if body.get("serial_number") else None
        if known is None and body.get("mac"):
            known = inventory.get_device(call.conn, body["mac"])
    except inventory.AmbiguousDevice as e:
        known = {"id": ", ".join(e.device_ids)}
    if known is not None:
        raise ApiError(
            409, f"device {known['id']} is already known", field="body", allowed="a device not known yet"
        )
    try:
        dev = inventory.preregister(call.conn, **body)
    except ValueError as e:
        field = "body.mac" if "mac" in str(e) else "body"
        allowed = "a MAC (12 hex digits, any notation) and/or a serial number"
        raise ApiError(409 if "already" in str(e) else 400, str(e), field=field, allowed=allowed) from None
    return Reply(201, inventory.device_json(dev), {"Location": f"/devices/{dev['id']}"})


@route(
    "GET",
    "/devices/{device}",
    role="read",
    params=(
        DEVICE,
        Param(
            "parameters",
            "query",
            {"type": "array", "items": {"type": "string", "minLength": 1}},
            "Include the stored parameters: a name ending in '.' stands for its subtree; '.' for all. "
            "Password values are masked.",
        ),
        _FIELDS,
        Param(
            "show_secrets",
            "query",
            {"type": "boolean", "default": False},
            "Password values as stored instead of masked: for admin tokens only.",
        ),
    ),
    responses=responses({200: one("DeviceDetail", "The device (and its parameters when asked for).")}),
)
def get_device(call: Call) -> Reply:
    """A device, with its stored parameters when asked for"""
    show_secrets = call.query["show_secrets"]
    if show_secrets and not tokens.allows(call.token["role"], "admin"):
        raise ApiError(
            403,
            f"token {call.token['name']!r} has role {call.token['role']}; show_secrets needs admin",
            field="query.show_secrets",
            allowed="false, or a token with role admin",
        )
    dev = _device(call)
    body = inventory.device_json(dev, call.query["fields"])
    if call.query["fields"] is None:  # as `acs device show` shows it
        kicks = connection_requests.history(call.conn, dev["id"], limit=1)
        body["last_connection_request"] = kicks[0] if kicks else None
        body["mac_conflicts"] = inventory.list_mac_conflicts(call.conn, device_id=dev["id"])
    wanted = call.query["parameters"]
    if wanted is not None:
        paths = () if "." in wanted else wanted
        body["parameters"] = inventory.get_parameters(
            call.conn, dev["id"], paths=paths, show_secrets=show_secrets
        )
    return Reply(200, body)


@route("DELETE", "/devices/{device}", role="admin", params=(DEVICE,), responses=responses({204: NO_CONTENT}))
def delete_device(call: Call) -> Reply:
    """Forget a device: its parameters, tags, events, sessions and tasks go with it
    A device that informs again is known again, as a new one."""
    inventory.delete_device(call.conn, _device(call)["id"])
    return Reply(204)


@route(
    "POST",
    "/devices/{device}/tags",
    role="operator",
    params=(DEVICE,),
    body="TagChange",
    responses=responses({200: one("Tags", "The device's tags after the change.")}),
)
def change_tags(call: Call) -> Reply:
    """Add and remove tags of a device
    Policies (match_tag) and filters (tag) match on them."""
    dev = _device(call)
    tags = inventory.set_tags(call.conn, dev["id"], call.body.get("add", ()), call.body.get("remove", ()))
    return Reply(200, {"id": dev["id"], "tags": tags})


@route(
    "DELETE",
    "/devices/{device}/tags/{tag}",
    role="operator",
    params=(DEVICE, TAG),
    responses=responses({200: one("Tags", "The device's tags after the change.")}),
)
def remove_tag(call: Call) -> Reply:
    """Remove one tag from a device"""
    dev = _device(call)
    if call.path["tag"] not in dev["tags"]:
        raise not_found(
            "tag", call.path["tag"], "path.tag", f"a tag of {dev['id']}: {', '.join(dev['tags'])}"
        )
    return Reply(
        200, {"id": dev["id"], "tags": inventory.set_tags(call.conn, dev["id"], remove=[call.path["tag"]])}
    )


@route(
    "PUT",
    "/devices/{device}/credentials",
    role="admin",
    params=(DEVICE,),
    body="Credentials",
    responses=responses(
        {200: one("CredentialsSet", "The credentials are set (the password is never shown).")}, conflict=True
    ),
)
def set_credentials(call: Call) -> Reply:
    """Set the credentials a device authenticates to the ACS with (ManagementServer.Username/Password)
    With connection_request, those the ACS answers the device's connection-request challenge with.
    Both null: forget them (the device uses the server's shared credentials again)."""
    dev = _device(call)
    username, password = call.body["username"], call.body["password"]
    if (username is None) != (password is None):
        raise ApiError(
            400,
            "give username and password, or both null",
            field="body",
            allowed="both strings, or both null",
        )
    if call.body.get("connection_request"):
        connection_requests.set_credentials(call.conn, dev["id"], username, password)
    else:
        try:
            inventory.set_credentials(call.conn, dev["id"], username, password)
        except ValueError as e:
            raise ApiError(
                409, str(e), field="body.username", allowed="a user name no other device has"
            ) from None
    body = {
        "id": dev["id"],
        "username": username,
        "connection_request": bool(call.body.get("connection_request")),
    }
    return Reply(200, body)


@route(
    "PUT",
    "/devices/{device}/profile-redirect",
    role="admin",
    params=(DEVICE,),
    body="ProfileRedirect",
    responses=responses({200: one("ProfileRedirectSet", "Where the phone's profile fetches go now.")}),
)
def set_profile_redirect(call: Call) -> Reply:
    """Send a phone's profile fetches to another provisioning server (acs device move)
    The profile server answers its fetches with 301 (302 when temporary) to the URL; null serves them
    here again."""
    dev = _device(call)
    url, status = call.body["url"], 302 if call.body.get("temporary") else 301
    try:
        inventory.set_profile_redirect(call.conn, dev["id"], url, status)
    except ValueError as e:
        allowed = "an http:// or https:// URL: a server ending in / or the profile's full URL; or null"
        raise ApiError(400, str(e), field="body.url", allowed=allowed) from None
    return Reply(200, {"id": dev["id"], "url": url, "status": status if url is not None else None})


@route(
    "POST",
    "/devices/{device}/connection-request",
    role="operator",
    params=(DEVICE,),
    responses=responses({200: one("ConnectionRequest", "What came of asking the device for a session.")}),
)
def kick_device(call: Call) -> Reply:
    """Ask a device to open a session now (a connection request; acs device kick)
    HTTP to its ConnectionRequestURL, or UDP (TR-069 Annex G), within the server's limits. The answer
    says whether it got through (outcome sent) and, if not, why; it is 200 either way."""
    dev = _device(call)
    return Reply(200, None, follow=Follow(None, dev["id"], 0.0, True))


@route(
    "POST",
    "/devices/import",
    role="admin",
    body="InventoryImport",
    responses=responses(
        {200: one("InventoryImported", "What was created, updated and refused.")}, found=False
    ),
)
def import_devices(call: Call) -> Reply:
    """Create or update devices before they first connect (acs device import)
    As an inventory CSV's rows: each gets the id its Inform will carry (OUI-ProductClass-Serial), its
    tags, its own profile and credentials. A device whose values are wrong, or whose MAC or user name
    another device has, is refused with the reason; the others are kept, in one transaction."""
    items = call.body["devices"]
    records = [
        (
            index,
            {
                "mac": item["mac"],
                "serial": item["serial_number"],
                "model": item["product_class"],
                "oui": item.get("oui") or "",
                "profile": item.get("profile") or "",
                "username": item.get("username") or "",
                "password": item.get("password") or "",
            },
        )
        for index, item in enumerate(items)
    ]
    checked, problems = preprovision.check_rows(records, where="at index")
    # tags as given (a CSV's group column is split on spaces and ";", a JSON list is not)
    rows = [replace(r, groups=tuple(dict.fromkeys(items[r.line].get("tags") or ()))) for r in checked]
    report = preprovision.import_rows(call.conn, rows)
    refused = sorted(problems + report.problems, key=lambda p: p.line)
    body = {
        "created": report.created,
        "updated": report.updated,
        "refused": [{"index": p.line, "reason": p.reason} for p in refused],
    }
    return Reply(200, body)


_HEX2 = "[0-9A-Fa-f]{2}"
MAC = Param(
    "mac",
    "path",
    {
        "type": "string",
        "pattern": f"^(?:{_HEX2}[:-]?){{5}}{_HEX2}$|^(?:[0-9A-Fa-f]{{4}}\\.){{2}}[0-9A-Fa-f]{{4}}$",
    },
    "A MAC address: 00562b043615, 00:56:2B:04:36:15, 00-56-2b-04-36-15 or 0056.2b04.3615.",
    required=True,
)


@route(
    "GET",
    "/mac-conflicts",
    role="read",
    params=(
        Param("resolved", "query", {"type": "boolean", "default": False}, "Resolved conflicts too."),
        *PAGE,
    ),
    responses=responses({200: many("MacConflict", "The conflicts, by MAC.")}, found=False),
)
def list_mac_conflicts(call: Call) -> Reply:
    """Devices that reported a MAC another device has (acs device mac-conflict list)
    The MAC stayed with the device that had it: the profile server finds a phone by its MAC, and a
    device that took another's would be served its profile."""
    q = call.query
    rows = inventory.list_mac_conflicts(
        call.conn, resolved=q["resolved"], limit=q["limit"], offset=q["offset"]
    )
    return Reply(200, rows)


@route(
    "POST",
    "/mac-conflicts/{mac}/resolve",
    role="admin",
    params=(MAC,),
    body="MacConflictResolve",
    responses=responses(
        {200: one("MacConflictResolved", "Who has the MAC now, and who lost it.")}, conflict=True
    ),
)
def resolve_mac_conflict(call: Call) -> Reply:
    """Settle who has a MAC (acs device mac-conflict resolve)
    The device keep names gets it (the profile server serves its profile for the MAC); every other one
    that had or reported it loses it, and its later reports are refused without another alarm."""
    mac = inventory.normalize_mac(call.path["mac"])
    if mac is None:
        raise ApiError(
            400, f"{call.path['mac']!r} is not a MAC address", field="path.mac", allowed="12 hex digits"
        )
    keep = _device(call, "body.keep", call.body["keep"])
    try:
        done = inventory.resolve_mac_conflict(call.conn, mac, keep["id"], now=utcnow())
    except inventory.NoMacConflict as e:
        raise ApiError(404, str(e), field="path.mac", allowed="a MAC of GET /mac-conflicts") from None
    except ValueError as e:
        raise ApiError(
            409, str(e), field="body.keep", allowed="a device that has or reported the MAC"
        ) from None
    return Reply(200, done.to_json())


@route(
    "GET",
    "/devices/{device}/events",
    role="read",
    params=(DEVICE, limit(50), OFFSET),
    responses=responses({200: many("Event", "Events the device informed, newest first.")}),
)
def device_events(call: Call) -> Reply:
    """The events a device informed (0 BOOTSTRAP, 1 BOOT, M Reboot...), newest first
    And those the ACS recorded on it (ACS MAC CONFLICT, ACS MAC RESOLVED; command_key says what)."""
    dev = _device(call)
    return Reply(200, inventory.get_events(call.conn, dev["id"], call.query["limit"], call.query["offset"]))


@route(
    "GET",
    "/devices/{device}/connection-requests",
    role="read",
    params=(DEVICE, limit(50), OFFSET),
    responses=responses(
        {200: many("ConnectionRequestRecord", "Connection requests sent to the device, newest first.")}
    ),
)
def device_connection_requests(call: Call) -> Reply:
    """The connection requests sent to a device and what came of each, newest first"""
    dev = _device(call)
    q = call.query
    return Reply(200, connection_requests.history(call.conn, dev["id"], q["limit"], q["offset"]))


@route(
    "GET",
    "/devices/{device}/sessions",
    role="read",
    params=(DEVICE, limit(50), OFFSET),
    responses=responses({200: many("Session", "The device's CWMP sessions, newest first.")}),
)
def device_sessions(call: Call) -> Reply:
    """The CWMP sessions of a device, newest first"""
    dev = _device(call)
    return Reply(200, inventory.get_sessions(call.conn, dev["id"], call.query["limit"], call.query["offset"]))


# --- tasks ----------------------------------------------------------------------------------------------


def _queue_options(call: Call) -> tasks.Options:
    body = call.body
    expires = body.get("expires_at")
    return tasks.Options(
        max_attempts=int(body.get("max_attempts", 3)),
        expires_at=parse_datetime(expires, "body.expires_at") if expires is not None else None,
        complete_within=body.get("complete_within"),
        origin=_origin(call),
    )


def _bad_args(e: tasks.BadArguments) -> ApiError:
    if e.about_complete_within:
        kinds = ", ".join(queue.AWAITED)
        allowed = f"complete_within with {kinds} only: seconds, at most {queue.COMPLETE_WITHIN_MAX}"
        return ApiError(400, str(e), field="body.complete_within", allowed=allowed)
    takes = ", ".join(sorted(queue.ARGUMENTS[e.kind])) or "no arguments"
    return ApiError(400, str(e), field="body.args", allowed=f"the arguments of {e.kind}: {takes}")


def _queue(call: Call, kind: str, devices: tasks.Devices, where: str) -> tasks.Queued:
    """The use case, its errors in HTTP words: ``where`` is the field that chose the devices."""
    options = _queue_options(call)
    try:
        return tasks.queue_task(call.conn, kind, call.body.get("args"), devices, options)
    except tasks.AmbiguousDevice as e:
        raise ambiguous(e, where if isinstance(devices, tasks.OneDevice) else f"{where}.key") from None
    except tasks.UnknownDevice as e:
        if isinstance(devices, tasks.OneDevice):
            raise not_found(
                "device", devices.key, where, "a device id, MAC or serial number (see GET /devices)"
            ) from None
        raise ApiError(
            404,
            str(e),
            field=f"{where}.key",
            allowed="device ids, MACs or serial numbers of known devices (see GET /devices)",
        ) from None
    except tasks.NoDeviceMatches as e:
        raise ApiError(404, str(e), field=where, allowed="a filter some device matches") from None
    except tasks.BadArguments as e:
        raise _bad_args(e) from None


@route(
    "GET",
    "/devices/{device}/tasks",
    role="read",
    params=(DEVICE, *TASK_FILTERS, *PAGE),
    responses=responses({200: many("Task", "The device's tasks, newest first.")}),
)
def device_tasks(call: Call) -> Reply:
    """The tasks of a device, newest first"""
    dev = _device(call)
    q = call.query
    found = queue.list_tasks(
        call.conn,
        device_id=dev["id"],
        status=q["status"],
        kind=q["kind"],
        limit=q["limit"],
        offset=q["offset"],
    )
    return Reply(200, [queue.task_json(t) for t in found])


@route(
    "POST",
    "/devices/{device}/tasks",
    role="operator",
    params=(DEVICE,),
    body="TaskCreate",
    responses=responses(
        {
            200: one("TaskCreated", "The task completed within `timeout` (done, fault...).", **LOCATION),
            202: one("TaskCreated", "The task is queued (not final within `timeout`).", **LOCATION),
        }
    ),
)
def create_task(call: Call) -> Reply:
    """Queue an RPC on a device
    The task is committed before the answer. With `connection_request` the device is asked to open a
    session now; with `timeout` the answer waits up to that many seconds for the task to complete:
    200 with its result if it did, 202 if it is still queued (follow it at its Location)."""
    kind = call.body["kind"]
    queued = _queue(call, kind, tasks.OneDevice(call.path["device"]), "path.device")
    task_id = queued.task_ids[0]
    task = queue.get(call.conn, task_id)
    assert task is not None
    follow = Follow(
        task_id,
        queued.device_ids[0],
        float(call.body.get("timeout", 0)),
        bool(call.body.get("connection_request", False)),
    )
    return Reply(202, queue.task_json(task), {"Location": f"/tasks/{task_id}"}, follow)


@route(
    "POST",
    "/tasks",
    role="operator",
    body="BulkTaskCreate",
    responses=responses(
        {202: one("JobQueued", "One task per matching device, queued as one job.", **LOCATION)},
        conflict=True,
    ),
)
def create_tasks(call: Call) -> Reply:
    """Queue an RPC on every device a filter selects, as one job
    Follow the job's progress at its Location (GET /jobs/{job}). 404 when no device matches."""
    selection = call.body["devices"]
    if not selection.get("all") and all(k == "all" for k in selection):
        raise ApiError(
            400,
            "say which devices: give a filter, or all: true for every device",
            field="body.devices",
            allowed=", ".join(DEVICE_FILTER["properties"]),
        )
    kind = call.body["kind"]
    devices = tasks.DeviceSelection(selection.get("key") or (), device_filters(selection, "body.devices."))
    queued = _queue(call, kind, devices, "body.devices")
    body = {"job": queued.job_id, "tasks": queued.task_ids}
    return Reply(202, body, {"Location": f"/jobs/{queued.job_id}"})


@route(
    "GET",
    "/tasks",
    role="read",
    params=(
        Param("device", "query", {"type": "string"}, "Only this device's (id, MAC or serial number)."),
        Param("job", "query", {"type": "string"}, "Only the tasks of this job."),
        *TASK_FILTERS,
        *PAGE,
    ),
    responses=responses({200: many("Task", "Tasks, newest first.")}),
)
def list_tasks(call: Call) -> Reply:
    """List tasks, newest first"""
    q = call.query
    device_id = _device(call, "query.device", q["device"])["id"] if q["device"] is not None else None
    found = queue.list_tasks(
        call.conn,
        device_id=device_id,
        job_id=q["job"],
        status=q["status"],
        kind=q["kind"],
        limit=q["limit"],
        offset=q["offset"],
    )
    return Reply(200, [queue.task_json(t) for t in found])


@route(
    "GET", "/tasks/{task}", role="read", params=(TASK,), responses=responses({200: one("Task", "The task.")})
)
def get_task(call: Call) -> Reply:
    """A task: its RPC, status, timestamps, and the response or the fault in words"""
    return Reply(200, queue.task_json(_task(call)))


@route(
    "POST",
    "/tasks/{task}/cancel",
    role="operator",
    params=(TASK,),
    responses=responses({200: one("Task", "The task, cancelled.")}, conflict=True),
)
def cancel_task(call: Call) -> Reply:
    """Cancel a pending or sent task"""
    return _transition(call, queue.cancel, "a pending or sent task")


@route(
    "POST",
    "/tasks/{task}/retry",
    role="operator",
    params=(TASK,),
    responses=responses({200: one("Task", "The task, pending again.")}, conflict=True),
)
def retry_task(call: Call) -> Reply:
    """Queue a fault, expired or cancelled task again, from scratch"""
    return _transition(call, queue.retry, "a fault, expired or cancelled task")


@route(
    "GET",
    "/jobs/{job}",
    role="read",
    params=(JOB,),
    responses=responses({200: one("Job", "The job's progress.")}),
)
def get_job(call: Call) -> Reply:
    """How far a job's tasks got"""
    progress = queue.job_progress(call.conn, call.path["job"])
    if progress is None:
        raise not_found("job", call.path["job"], "path.job", "a job id from POST /tasks")
    return Reply(200, progress)


# --- faults ---------------------------------------------------------------------------------------------


@route(
    "GET",
    "/faults",
    role="read",
    params=(
        Param("device", "query", {"type": "string"}, "Only this device's (id, MAC or serial number)."),
        *PAGE,
    ),
    responses=responses({200: many("Task", "Tasks that ended in a fault no one has cleared, newest first.")}),
)
def list_faults(call: Call) -> Reply:
    """Open faults: tasks that ended in a fault no one has cleared, newest first"""
    q = call.query
    device_id = _device(call, "query.device", q["device"])["id"] if q["device"] is not None else None
    found = queue.list_faults(call.conn, device_id=device_id, limit=q["limit"], offset=q["offset"])
    return Reply(200, [queue.task_json(t) for t in found])


@route(
    "GET",
    "/devices/{device}/faults",
    role="read",
    params=(DEVICE, *PAGE),
    responses=responses({200: many("Task", "The device's open faults, newest first.")}),
)
def device_faults(call: Call) -> Reply:
    """A device's open faults, newest first"""
    dev = _device(call)
    found = queue.list_faults(
        call.conn, device_id=dev["id"], limit=call.query["limit"], offset=call.query["offset"]
    )
    return Reply(200, [queue.task_json(t) for t in found])


def _fault(call: Call) -> queue.Task:
    task = _task(call)
    if task.status != TaskStatus.FAULT:
        raise not_found(
            "fault on task", task.id, "path.task", f"a task in fault (task {task.id} is {task.status})"
        )
    return task


@route(
    "POST",
    "/faults/{task}/retry",
    role="operator",
    params=(TASK,),
    responses=responses({200: one("Task", "The task, pending again.")}),
)
def retry_fault(call: Call) -> Reply:
    """Queue a task that ended in a fault again"""
    _fault(call)
    return Reply(200, queue.task_json(queue.retry(call.conn, call.path["task"])))


@route(
    "DELETE",
    "/faults/{task}",
    role="operator",
    params=(TASK,),
    responses=responses({200: one("Task", "The task, its fault cleared (cleared_at set).")}),
)
def clear_fault(call: Call) -> Reply:
    """Clear a fault: the task keeps it, but it leaves the open faults"""
    _fault(call)
    return Reply(200, queue.task_json(queue.clear_fault(call.conn, call.path["task"])))


# --- policies -------------------------------------------------------------------------------------------


def _policy_error(e: policies.PolicyError) -> ApiError:
    text = str(e)
    field = "body.events" if "event" in text else "body.tasks"
    return ApiError(
        400, text, field=field, allowed=f"see the {field.split('.')[1]} of PolicyCreate in /openapi.json"
    )


def _policy(call: Call) -> dict[str, Any]:
    found = policies.get(call.conn, call.path["name"])
    if found is None:
        raise not_found("policy", call.path["name"], "path.name", "a policy's name (see GET /policies)")
    return found


@route(
    "GET",
    "/policies",
    role="read",
    responses=responses({200: many("Policy", "In the order they run.")}, found=False),
)
def list_policies(call: Call) -> Reply:
    """List the policies, in the order they run"""
    return Reply(200, policies.list_policies(call.conn))


@route(
    "POST",
    "/policies",
    role="admin",
    body="PolicyCreate",
    responses=responses({201: one("Policy", "The new policy.", **LOCATION)}, found=False, conflict=True),
)
def create_policy(call: Call) -> Reply:
    """Create a policy: tasks queued when matching devices inform"""
    body = call.body
    if policies.get(call.conn, body["name"]) is not None:
        raise ApiError(
            409, f"a policy named {body['name']!r} exists already", field="body.name", allowed="a new name"
        )
    match = {k: body.get(f"match_{k}") for k in ("product_class", "oui", "software_version", "tag")}
    try:
        policies.add(
            call.conn,
            body["name"],
            events=body["events"],
            tasks_=body["tasks"],
            match=match,
            priority=body.get("priority", 100),
            enabled=body.get("enabled", True),
        )
    except policies.PolicyError as e:
        raise _policy_error(e) from None
    created = policies.get(call.conn, body["name"])
    return Reply(201, created, {"Location": f"/policies/{body['name']}"})


@route(
    "GET",
    "/policies/{name}",
    role="read",
    params=(POLICY,),
    responses=responses({200: one("Policy", "The policy.")}),
)
def get_policy(call: Call) -> Reply:
    """A policy"""
    return Reply(200, _policy(call))


@route(
    "PATCH",
    "/policies/{name}",
    role="admin",
    params=(POLICY,),
    body="PolicyUpdate",
    responses=responses({200: one("Policy", "The policy after the change.")}),
)
def update_policy(call: Call) -> Reply:
    """Change some of a policy's properties (enabled, events, tasks, priority, match_*)"""
    _policy(call)
    try:
        return Reply(200, policies.update(call.conn, call.path["name"], call.body))
    except policies.PolicyError as e:
        raise _policy_error(e) from None


@route("DELETE", "/policies/{name}", role="admin", params=(POLICY,), responses=responses({204: NO_CONTENT}))
def delete_policy(call: Call) -> Reply:
    """Delete a policy; the tasks it queued stay queued"""
    policies.remove(call.conn, _policy(call)["name"])
    return Reply(204)


from acs.nbi import profiles as _profiles  # noqa: E402, F401 - its routes register on this router
