"""Profiles delivered over TR-069: one SetParameterValues of what differs from the phone's stored tree.

A phone managed by TR-069 (it has informed, and its tree is in the store) gets its
effective profile as parameter values: the map (``mapping``) turns the elements it
has a row for into TR-069 paths and values, and only the values that differ from
the stored tree are sent, in one SetParameterValues whose ParameterKey names the
profile version (``p-`` and 12 hex digits of a hash of the effective profile): the
phone reports it back as ``ManagementServer.ParameterKey``. When the phone answers,
the session stores the values it set, so the store then matches the profile.

A phone gets its profile without an operator's push when its tree becomes known:
``provision_discovered`` runs when a discovery (first contact, or a ``0 BOOTSTRAP``
after a factory reset) has read the last batch of values, in the same transaction,
so the SetParameterValues follows in the same session.

Elements without a row are served in flat profiles only (over HTTP/TFTP). A newer
assignment cancels the device's profile tasks still pending, so an edit that
reverts a value is not overtaken by the older task. Write-only values (SIP
passwords) read back empty from a phone, so they are sent again each time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from acs.jobs import queue
from acs.provisioning import flatprofile
from acs.provisioning.flatprofile import FlatProfile, Problem
from acs.provisioning.mapping import ParameterMap, Setting, changes, load_map
from acs.provisioning.store import device_record, devices_at, effective_profile, layers, require_profile
from acs.store import inventory
from acs.store.schema import TaskStatus

#: the origin kind (and ``created_by``) of the tasks this module queues
CREATED_BY = "profile"


@dataclass(slots=True)
class Plan:
    """What a device's profile means for it over TR-069."""

    device_id: str
    #: informed at least once and has a stored tree: SetParameterValues can reach it
    managed: bool
    parameter_key: str
    changes: list[Setting] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: elements with no TR-069 path (served in flat profiles only)
    unmapped: list[str] = field(default_factory=list)
    #: the phone's stored values of the paths the profile sets (for diffs)
    stored: dict[str, str | None] = field(default_factory=dict)
    task_id: int | None = None
    cancelled: list[int] = field(default_factory=list)

    def diff_json(self, *, show_secrets: bool = False) -> dict[str, Any]:
        """What the profile would change on the phone (``acs profile diff --json``, the NBI's diff)."""
        rows = []
        for s in self.changes:
            phone, profile = self.stored.get(s.path), s.value
            if not show_secrets and inventory.is_secret(s.path):
                phone, profile = inventory.redact(phone), inventory.redact(profile)
            rows.append(
                {"element": s.element, "path": s.path, "phone": phone, "profile": profile, "type": s.type}
            )
        return {
            "device": self.device_id,
            "managed": self.managed,
            "parameter_key": self.parameter_key,
            "changes": rows,
            "unmapped": self.unmapped,
            "problems": [str(p) for p in self.problems],
        }

    def outcome_json(self) -> dict[str, Any]:
        """What provisioning did for the device: the task it queued (None: nothing differed)."""
        return {
            "device": self.device_id,
            "task": self.task_id,
            "parameter_key": self.parameter_key,
            "changes": len(self.changes),
            "cancelled": self.cancelled,
        }


def parameter_key(profile: FlatProfile) -> str:
    """A short name for a profile version: the same effective profile, the same key (<= 32 chars)."""
    return "p-" + hashlib.sha256(flatprofile.render(profile)).hexdigest()[:12]


def stored_tree(conn: Connection, device_id: str) -> dict[str, dict[str, Any]]:
    return {p["path"]: p for p in inventory.get_parameters(conn, device_id) if not p["object"]}


def plan(conn: Connection, device: Mapping[str, Any] | str, table: ParameterMap | None = None) -> Plan:
    """The values a device's effective profile would change on the phone, compared with its stored tree."""
    dev = device_record(conn, device)
    profile = effective_profile(conn, dev)
    rows = stored_tree(conn, dev["id"])
    managed = dev.get("last_inform") is not None and bool(rows)
    result = Plan(dev["id"], managed, parameter_key(profile))
    if not managed:
        return result
    values = {path: row["value"] for path, row in rows.items()}
    translation = (table or load_map()).to_tr069(profile, values)
    result.problems = translation.problems
    result.unmapped = translation.unmapped
    for s in changes(translation.settings, values):
        if rows[s.path]["writable"] is False:
            result.problems.append(
                Problem(None, s.element, f"{s.path} is read-only on this phone; not sent", "warning")
            )
        else:
            result.changes.append(s)
    result.stored = {s.path: values.get(s.path) for s in translation.settings}
    return result


def provision(conn: Connection, device: Mapping[str, Any] | str, table: ParameterMap | None = None) -> Plan:
    """Queue the device's profile as one SetParameterValues of what differs (none when nothing does).

    Only for TR-069-managed devices; others get their profile when they resync.
    Profile tasks of the device still pending are cancelled first: this one supersedes them.
    """
    result = plan(conn, device, table)
    if not result.managed:
        return result
    for task in queue.list_tasks(
        conn, device_id=result.device_id, status=TaskStatus.PENDING, kind="SetParameterValues"
    ):
        if task.origin_kind == CREATED_BY:
            queue.cancel(conn, task.id)
            result.cancelled.append(task.id)
    if result.changes:
        result.task_id = queue.enqueue(
            conn,
            result.device_id,
            "SetParameterValues",
            {
                "ParameterList": [[s.path, s.value, s.type] for s in result.changes],
                "ParameterKey": result.parameter_key,
            },
            origin=queue.Origin(CREATED_BY),
        )
    return result


def provision_discovered(conn: Connection, device_id: str, table: ParameterMap | None = None) -> Plan | None:
    """The device's tree was just discovered: ``provision`` it, if any profile applies to it.

    Called by the session layer when ``policies.finishes_discovery`` says so. A device
    no profile applies to costs one query; one that matches its profile gets no task.
    """
    dev = device_record(conn, device_id)
    if not layers(conn, dev):
        return None
    return provision(conn, dev, table)


def provision_at(
    conn: Connection, level: str, match: str = "", table: ParameterMap | None = None
) -> list[Plan]:
    """``provision`` every TR-069-managed device an assignment at ``level``/``match`` reaches."""
    table = table or load_map()
    return [p for p in (provision(conn, dev, table) for dev in devices_at(conn, level, match)) if p.managed]


def provision_profile(conn: Connection, name: str, table: ParameterMap | None = None) -> list[Plan]:
    """``provision`` every TR-069-managed device profile ``name`` reaches (after it was edited), once each."""
    table = table or load_map()
    seen: set[str] = set()
    plans = []
    for where in require_profile(conn, name)["assignments"]:
        for dev in devices_at(conn, where["level"], where["match"]):
            if dev["id"] not in seen:
                seen.add(dev["id"])
                plan_ = provision(conn, dev, table)
                if plan_.managed:
                    plans.append(plan_)
    return plans


def stored_as_xml(conn: Connection, device_id: str, table: ParameterMap | None = None) -> FlatProfile:
    """The phone's stored values under their XML names (``acs device show --xml``)."""
    values = {path: row["value"] for path, row in stored_tree(conn, device_id).items()}
    return (table or load_map()).to_xml(values)
