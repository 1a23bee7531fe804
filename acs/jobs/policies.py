"""Policies: tasks the ACS queues by itself when a device informs.

A policy names the events it fires on (``0 BOOTSTRAP``, ``1 BOOT``,
``2 PERIODIC``, any code as the CPE sends it, ``NEW`` for a device's first
Inform, or ``*`` for every Inform), which devices it applies to (product
class, OUI, software version, tag; unset matches any) and the tasks it queues,
as ``{"kind": ..., "args": {...}}``. ``{root}`` in a string argument becomes
the device's data-model root (``Device.`` or ``InternetGatewayDevice.``).

The pseudo-task ``Discover`` reads the device's whole tree: a GetParameterNames
of the root, and, when its answer arrives, GetParameterValues of every
parameter in batches. The built-in ``discovery`` policy (created by migration
0003; operators may disable it) runs it on first contact and on ``0 BOOTSTRAP``,
so every new phone's tree is in the store after its first session.
``finishes_discovery`` tells when the last batch is answered: the tree is then
known, and what depends on it (the phone's profile) can be decided.

The pseudo-task ``IssueCredentials`` gives a device credentials of its own: for a
device that authenticated with the shared credentials, the ACS makes a password and
queues a SetParameterValues of ``{root}ManagementServer.Username`` (the device's id)
and ``.Password``; when the device has applied it, the pair becomes the device's own
(``acs device credentials``), and the shared credentials no longer speak for it.

A policy's tasks have origin ``policy`` and the policy's name (``queue.Origin``,
columns of the task); its discovery's have purpose ``discover`` and the batch as
step (the names), or ``values`` (the batches); its issued credentials'
``credentials``. ``created_by`` shows the same as text (``policy:NAME:discover:32``)
for people and is never parsed: a policy named ``office:night`` is not
policy ``office``. A policy does
not queue a task while one it queued earlier for the same device, discovery
included, is still pending or sent, so repeated Informs don't pile up work.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from acs.jobs import queue
from acs.store import inventory, settings
from acs.store.prepared import Prepared
from acs.store.schema import TaskStatus, device_tags, devices, policies, revisions, tasks, utcnow

#: how many parameter names one discovery GetParameterValues asks for, unless a policy says
#: otherwise (an agent seen in the field crashes above 31 names, and again at each retry)
DISCOVERY_BATCH = 32
DISCOVER = "Discover"
ISSUE_CREDENTIALS = "IssueCredentials"
#: the purposes of a policy's (or a refresh's) own tasks: a discovery's GetParameterNames, its
#: GetParameterValues batches, the SetParameterValues of issued credentials
DISCOVERING, VALUES, CREDENTIALS = "discover", "values", "credentials"
POLICY, REFRESH = "policy", "refresh"
#: the two parameters issued credentials set, under the device's root
MANAGEMENT_USERNAME, MANAGEMENT_PASSWORD = "ManagementServer.Username", "ManagementServer.Password"
NEW = "NEW"
ANY = "*"
_MATCHES = ("product_class", "oui", "software_version", "tag")
log = logging.getLogger(__name__)


class PolicyError(ValueError):
    """A policy that cannot work, saying what is wrong and what is allowed."""


def check_tasks(entries: Any) -> list[dict[str, Any]]:
    """Validate a policy's task list as it will be queued (arguments with {root} filled in)."""
    if not isinstance(entries, list) or not entries:
        raise PolicyError('tasks must be a non-empty list of {"kind": ..., "args": {...}}')
    checked = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) - {"kind", "args"} or "kind" not in entry:
            raise PolicyError(f'task {entry!r}: expected {{"kind": ..., "args": {{...}}}}')
        kind, args = entry["kind"], entry.get("args") or {}
        if not isinstance(args, dict):
            raise PolicyError(f"task {kind}: args must be an object")
        if kind == DISCOVER:
            _check_discover(args)
        elif kind == ISSUE_CREDENTIALS:
            if args:
                raise PolicyError(f"{ISSUE_CREDENTIALS} takes no args: the ACS makes the password")
        else:
            try:
                queue.check_args(kind, _fill(args, "Device."))
            except queue.QueueError as e:
                raise PolicyError(str(e)) from None
        checked.append({"kind": kind, "args": args})
    return checked


_DISCOVER_USAGE = (
    "Discover takes batch (names per GetParameterValues, a whole number of at least 1) and models "
    '([{"product_class": ..., "oui": ... (optional), "batch": ...}]: the batch for those models)'
)


def _check_discover(args: dict[str, Any]) -> None:
    if set(args) - {"batch", "models"} or not _is_batch(args.get("batch", DISCOVERY_BATCH)):
        raise PolicyError(_DISCOVER_USAGE)
    models = args.get("models", [])
    if not isinstance(models, list):
        raise PolicyError(_DISCOVER_USAGE)
    seen = set()
    for model in models:
        if (
            not isinstance(model, dict)
            or set(model) - {"product_class", "oui", "batch"}
            or not isinstance(model.get("product_class"), str)
            or not model["product_class"].strip()
            or not isinstance(model.get("oui", ""), str)
            or not _is_batch(model.get("batch"))
        ):
            raise PolicyError(f"Discover model {model!r}: {_DISCOVER_USAGE}")
        key = (model["product_class"], model.get("oui"))
        if key in seen:
            raise PolicyError(f"Discover names the model {_model_name(model)} twice")
        seen.add(key)


def _is_batch(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _model_name(model: dict[str, Any]) -> str:
    return f"{model['oui']}/{model['product_class']}" if model.get("oui") else model["product_class"]


def discovery_batch(args: dict[str, Any], device: dict[str, Any]) -> int:
    """The batch a ``Discover`` with ``args`` uses for this device: its model's (product class and
    OUI, else product class alone) if the policy names it, else the policy's, else ``DISCOVERY_BATCH``."""
    models = args.get("models") or ()
    oui = (device.get("oui") or "").upper()

    def same_oui(m: dict[str, Any]) -> bool:
        return bool((m.get("oui") or "").upper() == oui)

    def any_oui(m: dict[str, Any]) -> bool:
        return not m.get("oui")

    for wanted in (same_oui, any_oui):
        for model in models:
            if model["product_class"] == device.get("product_class") and wanted(model):
                return int(model["batch"])
    return int(args.get("batch", DISCOVERY_BATCH))


def set_discovery_batch(
    conn: Connection,
    name: str,
    batch: int | None,
    *,
    product_class: str | None = None,
    oui: str | None = None,
) -> dict[str, Any]:
    """Set the batch of a policy's ``Discover``, for every model or for one (None: forget that
    model's, so it takes the policy's again); returns the policy. PolicyError if it has no Discover."""
    policy = get(conn, name)
    if policy is None:
        raise PolicyError(f"no policy named {name!r}")
    if not any(t["kind"] == DISCOVER for t in policy["tasks"]):
        raise PolicyError(f"policy {name!r} has no Discover task")
    if oui is not None and product_class is None:
        raise PolicyError("a model is a product class, optionally with an OUI: give the product class")
    tasks_ = []
    for entry in policy["tasks"]:
        if entry["kind"] == DISCOVER:
            args = dict(entry.get("args") or {})
            if product_class is None:
                if batch is None:
                    raise PolicyError("give a batch for the policy (only a model's can be forgotten)")
                args["batch"] = batch
            else:
                oui_key = oui.upper() if oui else None
                models = [
                    m
                    for m in args.get("models", [])
                    if (m["product_class"], (m.get("oui") or "").upper() or None) != (product_class, oui_key)
                ]
                if batch is not None:
                    models.append(
                        {
                            "product_class": product_class,
                            **({"oui": oui_key} if oui_key else {}),
                            "batch": batch,
                        }
                    )
                args["models"] = models
                if not models:
                    del args["models"]
            entry = {"kind": DISCOVER, "args": args}
        tasks_.append(entry)
    return update(conn, name, {"tasks": tasks_})


def _check_events(events: Iterable[str]) -> list[str]:
    checked = [e.strip() for e in events if e.strip()]
    if not checked:
        raise PolicyError(f"a policy needs at least one event: an EventCode, {NEW} or {ANY}")
    return checked


def add(
    conn: Connection,
    name: str,
    *,
    events: Iterable[str],
    tasks_: list[dict[str, Any]],
    match: dict[str, str | None] | None = None,
    priority: int = 0,
    enabled: bool = True,
) -> int:
    """Create a policy; PolicyError when the name is taken or the tasks are not valid."""
    events = _check_events(events)
    if not name.strip():
        raise PolicyError("a policy needs a name")
    match = match or {}
    unknown = set(match) - set(_MATCHES)
    if unknown:
        raise PolicyError(f"unknown match {', '.join(sorted(unknown))}; allowed: {', '.join(_MATCHES)}")
    if conn.execute(sa.select(policies.c.id).where(policies.c.name == name)).first() is not None:
        raise PolicyError(f"a policy named {name!r} exists already")
    row = {
        "name": name,
        "enabled": enabled,
        "events": events,
        "tasks": check_tasks(tasks_),
        "priority": priority,
        "created_at": utcnow(),
    } | {f"match_{k}": v for k, v in match.items()}
    _changed(conn)
    return int(conn.execute(sa.insert(policies).returning(policies.c.id), row).scalar_one())


def list_policies(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(policies).order_by(policies.c.priority, policies.c.name)).mappings()
    return [dict(r) for r in rows]


def get(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(policies).where(policies.c.name == name)).mappings().first()
    return dict(row) if row is not None else None


#: What ``update`` may change: every column but the id, the name and when it was made.
UPDATABLE = ("enabled", "events", "tasks", "priority", *(f"match_{k}" for k in _MATCHES))


def update(conn: Connection, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change some of a policy's columns (``UPDATABLE``; a match set to None matches any device);
    returns the policy. PolicyError names an unknown policy or column, or invalid tasks."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise PolicyError(f"cannot change {', '.join(unknown)}; allowed: {', '.join(UPDATABLE)}")
    values = dict(changes)
    if "events" in values:
        values["events"] = _check_events(values["events"])
    if "tasks" in values:
        values["tasks"] = check_tasks(values["tasks"])
    if values:
        conn.execute(policies.update().where(policies.c.name == name).values(**values))
        _changed(conn)
    policy = get(conn, name)
    if policy is None:
        raise PolicyError(f"no policy named {name!r}")
    return policy


def set_enabled(conn: Connection, name: str, enabled: bool) -> None:
    if conn.execute(policies.update().where(policies.c.name == name).values(enabled=enabled)).rowcount == 0:
        raise PolicyError(f"no policy named {name!r}")
    _changed(conn)


def remove(conn: Connection, name: str) -> None:
    if conn.execute(policies.delete().where(policies.c.name == name)).rowcount == 0:
        raise PolicyError(f"no policy named {name!r}")
    _changed(conn)


_BUMP = revisions.update().where(revisions.c.name == "policies").values(revision=revisions.c.revision + 1)


def _changed(conn: Connection) -> None:
    """Every change of the policies bumps their revision, in its transaction: server processes
    then read them again at the next Inform (``enabled``). Change policies only through here."""
    conn.execute(_BUMP)
    _changing.add(conn.get_transaction())


# --- on an Inform -------------------------------------------------------------------------------

#: read when the policies' revision moved: through SQL compiled once (``acs.store.prepared``)
_ENABLED = Prepared(
    sa.select(policies).where(policies.c.enabled).order_by(policies.c.priority, policies.c.id)
)
#: per engine: the enabled policies as last read, with the revision they were read at
_enabled_cache: weakref.WeakKeyDictionary[Engine, tuple[int, list[dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)
#: transactions that changed policies: what they read is not cached (they may still roll back)
_changing: weakref.WeakSet[Any] = weakref.WeakSet()


def enabled(conn: Connection, revision: int | None) -> list[dict[str, Any]]:
    """The enabled policies, in the order they apply (not to be changed in place).

    ``revision``: the policies' revision read in this transaction (``record_device`` reads it
    with the device); the policies are read again only when it moved, so a periodic Inform costs
    no statement for them. None: read them.
    """
    if revision is not None:
        cached = _enabled_cache.get(conn.engine)
        if cached is not None and cached[0] == revision:
            return cached[1]
    rows = _ENABLED.mappings(conn)
    if revision is not None and conn.get_transaction() not in _changing:
        _enabled_cache[conn.engine] = (revision, rows)
    return rows


_OPEN = tasks.c.status.in_((TaskStatus.PENDING, TaskStatus.SENT))
#: an open task of a policy, its discovery's included
_OPEN_FROM = (
    sa.select(tasks.c.id)
    .where(
        tasks.c.device_id == sa.bindparam("device"),
        tasks.c.origin_kind == POLICY,
        tasks.c.origin_name == sa.bindparam("policy"),
        _OPEN,
    )
    .limit(1)
)
#: the same origin (kind, and name unless NULL), bound as ``kind`` and ``name``
_NAME = sa.bindparam("name", type_=sa.Text())
_SAME_ORIGIN = sa.and_(
    tasks.c.origin_kind == sa.bindparam("kind", type_=sa.Text()),
    sa.or_(tasks.c.origin_name == _NAME, sa.and_(_NAME.is_(None), tasks.c.origin_name.is_(None))),
)
#: an open GetParameterValues batch of a discovery, other than the one just answered: asked at
#: every answer of a session, through SQL compiled once (``acs.store.prepared``)
_OPEN_BATCH = Prepared(
    sa.select(tasks.c.id)
    .where(
        tasks.c.device_id == sa.bindparam("device"),
        _SAME_ORIGIN,
        tasks.c.purpose == VALUES,
        tasks.c.id != sa.bindparam("task", type_=sa.BigInteger()),
        sa.or_(tasks.c.status == TaskStatus.PENDING, tasks.c.status == TaskStatus.SENT),
    )
    .limit(1)
)


def on_inform(
    conn: Connection, device: dict[str, Any], events: Iterable[str], *, new: bool, root: str
) -> list[int]:
    """Queue the tasks of every enabled policy that matches this Inform; returns the task ids."""
    codes = set(events) | ({NEW} if new else set())
    tags: set[str] | None = None
    queued: list[int] = []
    for policy in enabled(conn, device.get("policies_revision")):
        if not (ANY in policy["events"] or codes & set(policy["events"])):
            continue
        if policy["match_tag"] is not None:
            if tags is None:
                tags = set(
                    conn.execute(
                        sa.select(device_tags.c.tag).where(device_tags.c.device_id == device["id"])
                    ).scalars()
                )
            if policy["match_tag"] not in tags:
                continue
        if any(
            policy[f"match_{k}"] not in (None, device.get(k))
            for k in ("product_class", "oui", "software_version")
        ):
            continue
        entries = [e for e in policy["tasks"] if e["kind"] != ISSUE_CREDENTIALS or device.get("shared")]
        if not entries:
            continue  # credentials are issued only to devices the shared ones speak for
        creator = queue.Origin(POLICY, policy["name"])
        if conn.execute(_OPEN_FROM, {"device": device["id"], "policy": policy["name"]}).first() is not None:
            continue
        for entry in entries:
            task_id = _queue_entry(conn, device, entry, creator, root)
            if task_id is not None:
                queued.append(task_id)
    return queued


def _queue_entry(
    conn: Connection, device: dict[str, Any], entry: dict[str, Any], creator: queue.Origin, root: str
) -> int | None:
    if entry["kind"] == ISSUE_CREDENTIALS:
        return _issue_credentials(conn, device["id"], creator, root)
    if entry["kind"] == DISCOVER:
        batch = discovery_batch(entry.get("args") or {}, device)
        args = {"ParameterPath": root, "NextLevel": False}
        discover = dataclasses.replace(creator, purpose=DISCOVERING, step=batch)
        return queue.enqueue(conn, device["id"], "GetParameterNames", args, origin=discover)
    return queue.enqueue(
        conn, device["id"], entry["kind"], _fill(entry.get("args") or {}, root), origin=creator
    )


def _issue_credentials(conn: Connection, device_id: str, creator: queue.Origin, root: str) -> int | None:
    """Queue the SetParameterValues that gives the device credentials of its own: its id as the user
    name (unique, and what the store finds it by before they are confirmed), a new password."""
    username, password = device_id, settings.new_password()
    try:
        settings.check(username, password)
    except ValueError as e:
        log.warning("no credentials issued to %s: its id cannot be a user name (%s)", device_id, e)
        return None
    taken = conn.execute(sa.select(devices.c.id).where(devices.c.username == username)).first()
    if taken is not None:
        log.warning("no credentials issued to %s: device %s has its id as user name", device_id, taken[0])
        return None
    args = {
        "ParameterList": [
            [root + MANAGEMENT_USERNAME, username, "string"],
            [root + MANAGEMENT_PASSWORD, password, "string"],
        ]
    }
    origin = dataclasses.replace(creator, purpose=CREDENTIALS)
    return queue.enqueue(conn, device_id, "SetParameterValues", args, origin=origin)


def issued_credentials(task: queue.Task) -> tuple[str, str] | None:
    """The user name and password a policy's ``IssueCredentials`` task sets; None for other tasks."""
    if task.kind != "SetParameterValues" or task.origin_kind != POLICY or task.purpose != CREDENTIALS:
        return None
    found: Mapping[str, Any] = {
        str(item[0]).rpartition(".ManagementServer.")[2]: item[1]
        for item in task.args.get("ParameterList") or ()
        if isinstance(item, list | tuple) and len(item) >= 2
    }
    username, password = found.get("Username"), found.get("Password")
    return (username, password) if isinstance(username, str) and isinstance(password, str) else None


#: credentials a policy sent a device (``IssueCredentials``) whose answer never came
_UNCONFIRMED = (
    sa.select(tasks)
    .where(
        tasks.c.device_id == sa.bindparam("device"),
        tasks.c.status == TaskStatus.SENT,
        tasks.c.kind == "SetParameterValues",
        tasks.c.origin_kind == POLICY,
        tasks.c.purpose == CREDENTIALS,
    )
    .order_by(tasks.c.id.desc())
    .limit(1)
)


def unconfirmed_credentials(conn: Connection, device_id: str) -> queue.Task | None:
    """The latest ``IssueCredentials`` task sent to ``device_id`` and not answered: the device may have
    applied its credentials, and then authenticates with them (its id as user name)."""
    row = conn.execute(_UNCONFIRMED, {"device": device_id}).one_or_none()
    return queue.Task.from_row(row) if row is not None else None


def _fill(value: Any, root: str) -> Any:
    if isinstance(value, str):
        return value.replace("{root}", root)
    if isinstance(value, list):
        return [_fill(v, root) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, root) for k, v in value.items()}
    return value


def refresh(conn: Connection, device_id: str, path: str | None, count: str | None = None) -> list[int]:
    """Read again what an AddObject or DeleteObject changed on a device, so the store keeps up:
    the new instance's subtree (names, then values) and the table's ``NumberOfEntries``."""
    queued = []
    if path is not None:
        args = {"ParameterPath": path, "NextLevel": False}
        queued.append(
            queue.enqueue(
                conn,
                device_id,
                "GetParameterNames",
                args,
                origin=queue.Origin(REFRESH, purpose=DISCOVERING, step=DISCOVERY_BATCH),
            )
        )
    if count is not None and inventory.stored_types(conn, device_id, [count]):
        queued.append(
            queue.enqueue(
                conn,
                device_id,
                "GetParameterValues",
                {"ParameterNames": [count]},
                origin=queue.Origin(REFRESH),
            )
        )
    return queued


def after_names(conn: Connection, task: queue.Task, names: Iterable[str]) -> list[int]:
    """A discovery GetParameterNames was answered: read the values of its parameters, in batches."""
    origin = task.origin
    if origin is None or origin.purpose != DISCOVERING or origin.step is None:
        return []
    batch = origin.step
    values = dataclasses.replace(origin, purpose=VALUES, step=None)
    remembered = conn.execute(_REMEMBERED, {"device": task.device_id}).scalar()
    batch = min(batch, remembered or batch)
    leaves = sorted(n for n in names if n and not n.endswith("."))
    return [
        queue.enqueue(
            conn,
            task.device_id,
            "GetParameterValues",
            {"ParameterNames": leaves[i : i + batch]},
            origin=values,
        )
        for i in range(0, len(leaves), batch)
    ]


_REMEMBERED = sa.select(devices.c.discovery_batch).where(devices.c.id == sa.bindparam("device"))
_REMEMBER = (
    devices.update()
    .where(devices.c.id == sa.bindparam("device"))
    .values(discovery_batch=sa.bindparam("batch", type_=sa.Integer()))
)
_OPEN_BATCHES = (
    sa.select(tasks.c.id, tasks.c.args, tasks.c.status)
    .where(
        tasks.c.device_id == sa.bindparam("device"),
        _SAME_ORIGIN,
        tasks.c.purpose == VALUES,
        tasks.c.kind == "GetParameterValues",
        tasks.c.status == TaskStatus.PENDING,
    )
    .order_by(tasks.c.id)
)
_RESPLIT = (
    tasks.update()
    .where(tasks.c.id == sa.bindparam("task", type_=sa.BigInteger()))
    .values(args=sa.bindparam("new_args", type_=tasks.c.args.type), attempts=0)
)


def after_orphans(conn: Connection, device_id: str, orphans: Iterable[queue.Task]) -> int | None:
    """A session died right after a discovery GetParameterValues (no answer: the connection dropped,
    or the session timed out): the device may have crashed on the length of the request, as an agent
    seen in the field does above 31 names. Its batch is halved (down to 1) and remembered for the
    device, and the discovery's unread batches are split again, the one that died first.

    ``orphans``: what ``queue.requeue_orphans`` put back. Returns the new batch, None if none died.
    """
    died = [
        t
        for t in orphans
        if t.kind == "GetParameterValues"
        and t.purpose == VALUES
        and t.status == TaskStatus.PENDING
        and len(t.args.get("ParameterNames") or ()) > 1
    ]
    if not died:
        return None
    batch = max(1, min(len(t.args["ParameterNames"]) for t in died) // 2)
    remembered = conn.execute(_REMEMBERED, {"device": device_id}).scalar()
    batch = min(batch, remembered or batch)
    conn.execute(_REMEMBER, {"device": device_id, "batch": batch})
    for origin in sorted({t.origin for t in died if t.origin}, key=lambda o: (o.kind, o.name or "")):
        _resplit(conn, device_id, origin, batch)
    return batch


def _resplit(conn: Connection, device_id: str, origin: queue.Origin, batch: int) -> None:
    """The unread batches of a discovery again, ``batch`` names each, in the same order: the rows
    there are take the first batches (sent afresh), new ones the rest."""
    rows = conn.execute(_OPEN_BATCHES, {"device": device_id, "kind": origin.kind, "name": origin.name}).all()
    names = [n for row in rows for n in row.args.get("ParameterNames") or ()]
    chunks = [names[i : i + batch] for i in range(0, len(names), batch)]
    for row, chunk in zip(rows, chunks, strict=False):
        conn.execute(_RESPLIT, {"task": row.id, "new_args": {"ParameterNames": chunk}})
    for chunk in chunks[len(rows) :]:
        queue.enqueue(conn, device_id, "GetParameterValues", {"ParameterNames": chunk}, origin=origin)


def _discovery_batches(task: queue.Task) -> queue.Origin | None:
    """The origin of the value batches of the policy discovery ``task`` belongs to, if any.

    A policy's ``Discover`` reads the whole tree; a ``refresh`` (after AddObject) reads
    one instance and is not a discovery.
    """
    origin = task.origin
    if origin is None or origin.kind != POLICY:
        return None
    if task.kind == "GetParameterNames" and origin.purpose == DISCOVERING:
        return dataclasses.replace(origin, purpose=VALUES, step=None)
    if task.kind == "GetParameterValues" and origin.purpose == VALUES:
        return origin
    return None


def finishes_discovery(conn: Connection, task: queue.Task) -> bool:
    """Whether answering ``task`` (done or fault) leaves its policy discovery with nothing left to
    read: the device's tree is then known. Call it after ``after_names`` has queued the batches.

    A batch that faulted does not hold the discovery open: what could be read is read; a
    GetParameterNames that faulted read nothing.
    """
    batches = _discovery_batches(task)
    if batches is None or (task.kind == "GetParameterNames" and task.status == TaskStatus.FAULT):
        return False
    given = {"device": task.device_id, "kind": batches.kind, "name": batches.name, "task": task.id}
    return _OPEN_BATCH.first(conn, given) is None


def root_of(names: Iterable[str]) -> str:
    """The data-model root an Inform's parameters live under (``Device.`` unless they say otherwise)."""
    for name in names:
        head = name.split(".", 1)[0]
        if head in ("Device", "InternetGatewayDevice"):
            return head + "."
    return "Device."


def describe(policy: dict[str, Any]) -> str:
    """A policy in one line, for listings."""
    match = ", ".join(f"{k}={policy[f'match_{k}']}" for k in _MATCHES if policy.get(f"match_{k}") is not None)
    kinds = ", ".join(_describe_task(t) for t in policy["tasks"])
    return f"on {', '.join(policy['events'])}{' where ' + match if match else ''}: {kinds}"


def _describe_task(entry: dict[str, Any]) -> str:
    if entry["kind"] != DISCOVER:
        return str(entry["kind"])
    args = entry.get("args") or {}
    models = "".join(f"; {_model_name(m)}: {m['batch']}" for m in args.get("models") or ())
    return f"Discover (batch {args.get('batch', DISCOVERY_BATCH)}{models})"
