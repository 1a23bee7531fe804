"""Queue an RPC on one device or on a selection of devices: the one place the job-id rule lives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from acs.jobs import queue
from acs.store import inventory


@dataclass(frozen=True)
class OneDevice:
    """One device named by its id, MAC or serial number: its task is a plain task (no job)."""

    key: str


@dataclass(frozen=True)
class DeviceSelection:
    """Devices chosen by keys and filters (``inventory.find_devices`` names), all of which hold.

    Whatever it matches, even one device, is queued as one job, so it can be followed as one.
    """

    keys: Sequence[str] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)


Devices = OneDevice | DeviceSelection


@dataclass(frozen=True)
class Options:
    """How a task is run: attempts, when it expires, how long a completion may take, who asked."""

    max_attempts: int = 3
    expires_at: datetime | None = None
    complete_within: int | None = None
    origin: queue.Origin | None = None


@dataclass(frozen=True)
class Queued:
    """What was queued: the job (None for one named device), its task ids and their devices, in order."""

    job_id: str | None
    task_ids: list[int]
    device_ids: list[str]


class TaskError(Exception):
    """A request to queue that cannot be done; nothing was queued."""


class UnknownDevice(TaskError):
    """Keys that name no known device."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        super().__init__(f"no device {inventory.some(self.keys)}; nothing was queued")


class NoDeviceMatches(TaskError):
    """A selection that matches no device."""

    def __init__(self) -> None:
        super().__init__("no device matches; nothing was queued")


class AmbiguousDevice(TaskError):
    """A MAC or serial number several devices share: which one was meant is never guessed."""

    def __init__(self, cause: inventory.AmbiguousDevice) -> None:
        self.key = cause.key
        self.device_ids = cause.device_ids
        super().__init__(str(cause))


class BadArguments(TaskError):
    """Arguments, options or kind the queue refuses (its message says what is allowed)."""

    def __init__(self, kind: str, cause: queue.QueueError) -> None:
        self.kind = kind
        self.about_complete_within = "complete_within" in str(cause)
        super().__init__(str(cause))


def _targets(conn: Connection, devices: Devices) -> list[str]:
    try:
        if isinstance(devices, OneDevice):
            dev = inventory.get_device(conn, devices.key)
            if dev is None:
                raise UnknownDevice([devices.key])
            return [dev["id"]]
        found = inventory.find_devices(conn, **{**devices.filters, "keys": tuple(devices.keys)})
    except inventory.AmbiguousDevice as e:
        raise AmbiguousDevice(e) from None
    missing = inventory.unmatched_keys(found, devices.keys)
    if missing:
        raise UnknownDevice(missing)
    if not found:
        raise NoDeviceMatches()
    return [t["id"] for t in found]


def job_id_for(devices: Devices) -> str | None:
    """The job-id rule: a selection is one job (a new id) even when it matches one device, so its
    caller can always follow it as a job; one device named on its own is a plain task (None)."""
    return None if isinstance(devices, OneDevice) else queue.new_job_id()


def queue_task(
    conn: Connection, kind: str, args: Mapping[str, Any] | None, devices: Devices, options: Options
) -> Queued:
    """Queue ``kind`` with ``args`` on ``devices`` in ``conn``'s transaction, all or nothing.

    Raises UnknownDevice, NoDeviceMatches, AmbiguousDevice or BadArguments; nothing is written then.
    """
    device_ids = _targets(conn, devices)
    try:
        queued = queue.enqueue_job(
            conn,
            device_ids,
            kind,
            args,
            job_id=job_id_for(devices),
            max_attempts=options.max_attempts,
            expires_at=options.expires_at,
            origin=options.origin,
            complete_within=options.complete_within,
        )
    except queue.QueueError as e:
        raise BadArguments(kind, e) from None
    return Queued(queued["job"], list(queued["tasks"]), device_ids)
