"""The profile endpoints: Cisco flat profiles, where they apply, and what they mean for a phone.

The same service functions as ``acs profile`` (``acs.provisioning.store`` and ``tr069``), in
the request's transaction: a profile refused for its content (422, each problem with its line
and element) leaves the store as it was. Profiles are configuration, written by admin
tokens; pushing one to a phone queues a task, which operators may do. Secret values
(passwords, keys) are masked unless an admin token asks for them with ``show_secrets``.
Profiles are read and written as JSON or, with ``Accept`` / ``Content-Type:
application/xml``, as the flat profile itself.
"""

from __future__ import annotations

from typing import Any

from acs.jobs import queue
from acs.nbi import tokens
from acs.nbi.api import DEVICE, LOCATION, NO_CONTENT, _device, many, one, responses, route
from acs.nbi.problem import ApiError, not_found
from acs.nbi.routing import Call, Follow, Param, Reply, Response
from acs.nbi.schemas import PROFILE_NAME, ref
from acs.provisioning import flatprofile, store, tr069
from acs.provisioning.flatprofile import Problem
from acs.provisioning.mapping import load_map

PROFILE = Param("name", "path", PROFILE_NAME, "The profile's name.", required=True)
SHOW_SECRETS = Param(
    "show_secrets",
    "query",
    {"type": "boolean", "default": False},
    "Secret values (passwords, keys) as they are: admin tokens only. Masked otherwise.",
)
PUSH = Param(
    "push",
    "query",
    {"type": "boolean", "default": True},
    "Queue one SetParameterValues of what differs on each TR-069-managed phone the profile reaches.",
)
_XML = "application/xml"
_FLAT_PROFILE = "a Cisco XML flat profile: <flat-profile> with one element per parameter, ua na, ro or rw"
_refused = one("Problem", "The profile is malformed: nothing was stored (each problem has its line).")


def _problem_json(p: Problem) -> dict[str, Any]:
    return {"line": p.line, "element": p.element, "message": p.message, "severity": p.severity}


def _refusal(e: store.ProfileError, where: str) -> ApiError:
    """A ProfileError as a problem: 422 for what the profile says, 400 for the rest (a name...)."""
    if e.problems or "UTF-8" in str(e):
        return ApiError(
            422,
            f"{e}; nothing was stored",
            field=where,
            allowed=_FLAT_PROFILE,
            extra={"problems": [_problem_json(p) for p in e.problems]},
        )
    return ApiError(400, str(e), field=where, allowed=_FLAT_PROFILE)


def _profile(call: Call) -> dict[str, Any]:
    found = store.get_profile(call.conn, call.path["name"])
    if found is None:
        raise not_found("profile", call.path["name"], "path.name", "a profile's name (see GET /profiles)")
    return found


def _show_secrets(call: Call) -> bool:
    """``show_secrets=true`` from an admin token; 403 from another."""
    if not call.query["show_secrets"]:
        return False
    if not tokens.allows(call.token["role"], "admin"):
        raise ApiError(
            403,
            f"token {call.token['name']!r} has role {call.token['role']}; secret values need admin",
            field="query.show_secrets",
            allowed="false, or a token with role admin",
        )
    return True


def _xml(data: bytes | str) -> Reply:
    return Reply(200, data.encode("utf-8") if isinstance(data, str) else data, {"Content-Type": _XML})


def _shown(row: dict[str, Any], show_secrets: bool) -> dict[str, Any]:
    return row if show_secrets else row | {"xml": flatprofile.mask_text(row["xml"])}


def _saved(call: Call, name_field: str, description: str | None, create: bool | None) -> Reply:
    """Save the body's profile under the name at ``name_field`` (``body.name``, ``path.name``), then
    (with ``push``) provision the phones it reaches: 201 when new, else 200."""
    name = call.body["name"] if name_field == "body.name" else call.path["name"]
    try:
        store.check_name(name)
    except store.ProfileError as e:
        raise ApiError(400, str(e), field=name_field, allowed=PROFILE_NAME["description"]) from None
    where = "body" if call.media == _XML else "body.xml"
    try:
        saved = store.save_profile(call.conn, name, call.body["xml"], description=description, create=create)
    except store.ProfileError as e:
        raise _refusal(e, where) from None
    plans = tr069.provision_profile(call.conn, name, load_map()) if call.query.get("push") else []
    body = store.require_profile(call.conn, name) | {
        "warnings": [_problem_json(p) for p in saved.warnings],
        "provisioned": [p.outcome_json() for p in plans],
    }
    headers = {"Location": f"/profiles/{name}"} if saved.created else {}
    return Reply(201 if saved.created else 200, body, headers)


@route(
    "GET",
    "/profiles",
    role="read",
    responses=responses({200: many("ProfileSummary", "Every profile, by name.")}, found=False),
)
def list_profiles(call: Call) -> Reply:
    """List the profiles and where they apply"""
    return Reply(200, store.list_profiles(call.conn))


@route(
    "POST",
    "/profiles",
    role="admin",
    body="ProfileCreate",
    responses=responses(
        {201: one("ProfileSaved", "The new profile (not assigned yet).", **LOCATION), 422: _refused},
        found=False,
        conflict=True,
    ),
)
def create_profile(call: Call) -> Reply:
    """Create a profile from a Cisco XML flat profile
    Unknown element names and duplicates are warnings (kept, as phones ignore them); errors (a bad
    ua, nested or broken XML) refuse the profile with 422, each problem with its line and element."""
    name = call.body["name"]
    if store.get_profile(call.conn, name) is not None:
        raise ApiError(
            409,
            f"profile {name!r} exists already; PUT /profiles/{name} replaces it",
            field="body.name",
            allowed="a new name",
        )
    return _saved(call, "body.name", call.body.get("description"), create=True)


@route(
    "GET",
    "/profiles/{name}",
    role="read",
    params=(PROFILE, SHOW_SECRETS),
    responses=responses(
        {200: Response("The profile (or, to Accept: application/xml, its XML).", ref("Profile"), xml=True)}
    ),
)
def get_profile(call: Call) -> Reply:
    """A profile as written, and where it applies
    Secret values are masked unless show_secrets (admin). With Accept: application/xml, the flat profile
    itself."""
    row = _shown(_profile(call), _show_secrets(call))
    return _xml(row["xml"]) if call.wants_xml else Reply(200, row)


@route(
    "PUT",
    "/profiles/{name}",
    role="admin",
    params=(PROFILE, PUSH),
    body="ProfileWrite",
    xml_body="xml",
    responses=responses(
        {
            200: one("ProfileSaved", "The profile, replaced; what the phones it reaches were sent."),
            201: one("ProfileSaved", "The profile, created.", **LOCATION),
            422: _refused,
        },
        found=False,
    ),
)
def put_profile(call: Call) -> Reply:
    """Create or replace a profile: JSON with the XML, or the XML itself (Content-Type: application/xml)
    A replaced profile reaches the TR-069-managed phones it applies to at once (unless push=false): each
    gets one SetParameterValues of the values that differ from its stored tree. A malformed profile is
    refused with 422 and the one stored stays as it was."""
    return _saved(call, "path.name", call.body.get("description"), create=None)


@route("DELETE", "/profiles/{name}", role="admin", params=(PROFILE,), responses=responses({204: NO_CONTENT}))
def delete_profile(call: Call) -> Reply:
    """Delete a profile and its assignments
    Phones keep the values they were given."""
    store.delete_profile(call.conn, _profile(call)["name"])
    return Reply(204)


# --- assignments ----------------------------------------------------------------------------------


def _target(call: Call, level: str, match: str, where: str) -> str:
    """The assignment's match as stored: a device by its id; refusals name ``where``."""
    if level == "device" and match:
        return _device(call, where, match)["id"]
    if level != "default" and not match.strip():
        what = {
            "model": "a ProductClass (CP-8841-3PCC)",
            "tag": "a tag",
            "device": "a device id, MAC or serial",
        }
        raise ApiError(400, f"the {level} level needs a match", field=where, allowed=what[level])
    if level == "default" and match:
        raise ApiError(
            400, "the default level takes no match: it applies to every device", field=where, allowed="none"
        )
    return match


@route(
    "POST",
    "/profiles/{name}/assignments",
    role="admin",
    params=(PROFILE, PUSH),
    body="AssignmentCreate",
    responses=responses({200: one("Assigned", "Where the profile now applies, and what was queued.")}),
)
def assign_profile(call: Call) -> Reply:
    """Apply a profile to every device (default), a model, a tag or one device
    Each TR-069-managed phone it reaches gets one SetParameterValues of the values that differ from its
    stored tree (unless push=false); a phone not discovered yet gets it when its discovery finishes, and
    phones that resync by Profile_Rule at their next resync. Assigning again changes the priority."""
    name = _profile(call)["name"]
    level, priority = call.body["level"], call.body.get("priority", 0)
    match = _target(call, level, call.body.get("match", ""), "body.match")
    store.assign(call.conn, name, level, match, priority=priority)
    plans = tr069.provision_at(call.conn, level, match, load_map()) if call.query["push"] else []
    body = {"profile": name, "level": level, "match": match, "priority": priority}
    return Reply(200, body | {"provisioned": [p.outcome_json() for p in plans]})


def _unassign(call: Call, level: str, match: str) -> Reply:
    name = _profile(call)["name"]
    match = _target(call, level, match, "path.match")
    if not store.unassign(call.conn, name, level, match):
        where = store.describe_target(level, match)
        field = "path.match" if level != "default" else "path"
        raise not_found(
            f"assignment of {name} to", where, field, "a place the profile applies (see GET /profiles)"
        )
    return Reply(204)


@route(
    "DELETE",
    "/profiles/{name}/assignments/default",
    role="admin",
    params=(PROFILE,),
    responses=responses({204: NO_CONTENT}),
)
def unassign_default(call: Call) -> Reply:
    """Stop applying a profile to every device
    Phones keep the values they were given."""
    return _unassign(call, "default", "")


@route(
    "DELETE",
    "/profiles/{name}/assignments/{level}/{match}",
    role="admin",
    params=(
        PROFILE,
        Param(
            "level",
            "path",
            {"type": "string", "enum": ["model", "tag", "device"]},
            "The level.",
            required=True,
        ),
        Param(
            "match",
            "path",
            {"type": "string", "pattern": "\\S"},
            "The model (ProductClass), tag, or device (id, MAC or serial number).",
            required=True,
        ),
    ),
    responses=responses({204: NO_CONTENT}),
)
def unassign_profile(call: Call) -> Reply:
    """Stop applying a profile to a model, a tag or a device
    Phones keep the values they were given."""
    return _unassign(call, call.path["level"], call.path["match"])


# --- a device's profile -------------------------------------------------------------------------


@route(
    "GET",
    "/devices/{device}/profile",
    role="read",
    params=(DEVICE, SHOW_SECRETS),
    responses=responses(
        {
            200: Response(
                "The effective profile (or, to Accept: application/xml, its XML).",
                ref("EffectiveProfile"),
                xml=True,
            )
        }
    ),
)
def effective_profile(call: Call) -> Reply:
    """A device's effective profile: its layers composed, macros expanded
    What a phone that resyncs gets, and what TR-069 sends it (through the TR-069 <-> XML map). With
    Accept: application/xml, the flat profile itself."""
    dev = _device(call)
    layers = store.layers(call.conn, dev)
    profile = store.effective_profile(call.conn, dev)
    shown = profile if _show_secrets(call) else flatprofile.mask_secrets(profile)
    names = ", ".join(f"{layer.name} ({store.describe_target(layer.level, layer.match)})" for layer in layers)
    xml = flatprofile.render(shown, comment=f"{dev['id']}: layers {names or 'none'}".replace("--", "- -"))
    if call.wants_xml:
        return _xml(xml)
    body = {
        "device": dev["id"],
        "layers": [
            {"name": layer.name, "level": layer.level, "match": layer.match, "priority": layer.priority}
            for layer in layers
        ],
        "parameter_key": tr069.parameter_key(profile),
        "xml": xml.decode("utf-8"),
    }
    return Reply(200, body)


@route(
    "GET",
    "/devices/{device}/profile/diff",
    role="read",
    params=(DEVICE, SHOW_SECRETS),
    responses=responses({200: one("ProfileDiff", "What would change on the phone.")}),
)
def profile_diff(call: Call) -> Reply:
    """What a device's profile would change on the phone, against its stored tree
    managed is false for a device not informed or not discovered yet: it has no tree to compare with."""
    dev = _device(call)
    plan = tr069.plan(call.conn, dev, load_map())
    return Reply(200, plan.diff_json(show_secrets=_show_secrets(call)))


@route(
    "POST",
    "/devices/{device}/profile/push",
    role="operator",
    params=(DEVICE,),
    body="ProfilePush",
    body_optional=True,
    responses=responses(
        {
            200: one("TaskCreated", "The SetParameterValues completed within `timeout`.", **LOCATION),
            202: one("TaskCreated", "The SetParameterValues is queued.", **LOCATION),
            204: Response("The phone matches its profile: nothing queued."),
        },
        conflict=True,
    ),
)
def push_profile(call: Call) -> Reply:
    """Queue a device's profile now: one SetParameterValues of what differs from its stored tree
    With `connection_request` the device is asked for a session now, with `timeout` the answer waits
    for the task, as for POST /devices/{device}/tasks. 204 when nothing differs; 409 for a device
    with no stored tree (not informed or not discovered)."""
    dev = _device(call)
    plan = tr069.provision(call.conn, dev, load_map())
    if not plan.managed:
        raise ApiError(
            409,
            f"{dev['id']} has no stored tree yet (not informed or not discovered): nothing to compare with; "
            "it gets its profile when its discovery finishes",
            field="path.device",
            allowed="a device that has informed and been discovered",
        )
    if plan.task_id is None:
        return Reply(204)
    task = queue.get(call.conn, plan.task_id)
    assert task is not None
    follow = Follow(
        plan.task_id,
        dev["id"],
        float(call.body.get("timeout", 0)),
        bool(call.body.get("connection_request", False)),
    )
    return Reply(202, queue.task_json(task), {"Location": f"/tasks/{plan.task_id}"}, follow)
