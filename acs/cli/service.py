"""How ``acs device`` and ``acs task`` reach the ACS: its database, or its REST API.

The commands ask an ``Acs`` for what they show and print it; they never know which one they
have. ``Local`` calls the service functions on the store (``--db``), ``Remote`` the NBI's
endpoints over HTTP (``--api URL --token T``). Both answer with the JSON the API serves
(datetimes as RFC 3339 text), so a command prints the same either way. Both refuse in the
CLI's own words, as a ``click.ClickException`` (exit status 1).

``Remote`` uses the standard library's ``urllib``: a command makes a handful of plain JSON
requests, one after the other (connection requests a few at once, from threads), so a pooled
or asynchronous client would add a dependency and nothing the CLI needs.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import click
from sqlalchemy.engine import Engine

from acs.cli.common import API_URL_ENV, open_secrets, open_store, secrets_key_option
from acs.connreq import Options, blocking
from acs.jobs import queue
from acs.jobs.queue import Task
from acs.provisioning import preprovision
from acs.provisioning.preprovision import InventoryRow
from acs.store import connection_requests, inventory, secrets
from acs.store.schema import utcnow
from acs.usecases import tasks
from acs.usecases.encoding import jsonable

JSON = dict[str, Any]

API_TOKEN_ENV = "ACS_API_TOKEN"  # noqa: S105 - the variable's name, not a token
#: the API's largest page; longer listings are fetched page by page
API_PAGE = 1000
HTTP_TIMEOUT = 60.0
#: inventory rows per transaction on the database, per request through the API
IMPORT_BATCH = 500
#: connection requests the CLI has the API send at once
KICKS_AT_ONCE = 8


def no_device(key: str) -> click.ClickException:
    return click.ClickException(
        f"no device {key!r}: give a device id, a MAC or a serial number (see `acs device list`)"
    )


def nothing_queued(missing: list[str]) -> click.ClickException:
    return click.ClickException(
        f"no device {inventory.some(missing)}; nothing was queued (see `acs device list`)"
    )


def find_device(conn: Any, key: str) -> JSON:
    """The device an operator named by id, MAC or serial, or a click error saying how to name one
    (none by that key, or several that share it)."""
    try:
        dev = inventory.get_device(conn, key)
    except inventory.AmbiguousDevice as e:
        raise click.ClickException(str(e)) from None
    if dev is None:
        raise no_device(key)
    return dev


def no_task(task_id: int) -> click.ClickException:
    return click.ClickException(f"no task {task_id} (see `acs task list`)")


@dataclass(frozen=True)
class Selection:
    """Which devices a command is about: keys (ids, MACs, serials) and filters, all of which hold."""

    keys: tuple[str, ...] = ()
    product_class: str | None = None
    oui: str | None = None
    software_version: str | None = None
    tag: str | None = None
    seen_within: timedelta | None = None
    not_seen_for: timedelta | None = None
    all: bool = False

    @property
    def empty(self) -> bool:
        return not self.all and not self.keys and not any(self.filters().values())

    @property
    def one_device(self) -> str | None:
        """The key, when the selection is exactly one device named by the operator."""
        return self.keys[0] if len(self.keys) == 1 and not any(self.filters().values()) else None

    def filters(self) -> dict[str, Any]:
        """The filters as ``inventory.find_devices`` takes them (and the API's names, but for time)."""
        now = utcnow()
        return {
            "product_class": self.product_class,
            "oui": self.oui,
            "software_version": self.software_version,
            "tag": self.tag,
            "informed_after": now - self.seen_within if self.seen_within else None,
            "informed_before": now - self.not_seen_for if self.not_seen_for else None,
        }


@dataclass
class Queued:
    """What ``Acs.queue`` did: the job (None for one named device), the task ids, on which devices."""

    job: str | None
    tasks: list[int]
    devices: list[str]
    #: what came of asking each device for a session now (``--now``): as JSON, and in words
    connection_requests: list[JSON] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


class Acs(Protocol):
    """What the device and task commands ask of the ACS."""

    def ready(self) -> None:
        """Reach the ACS now, so that a refusal comes before a command prints anything."""

    def devices(self, selection: Selection, limit: int) -> list[JSON]: ...

    def device(self, key: str, params: str | None = None, show_secrets: bool = False) -> JSON: ...

    def events(self, key: str, limit: int) -> list[JSON]: ...

    def connection_requests(self, key: str, limit: int) -> list[JSON]: ...

    def retag(self, key: str, add: tuple[str, ...], remove: tuple[str, ...]) -> JSON: ...

    def set_credentials(
        self, key: str, username: str | None, password: str | None, connection_request: bool
    ) -> str: ...

    def kick(self, keys: tuple[str, ...]) -> list[JSON]:
        """Ask each device for a session now: what came of each (``KickResult.to_json``), in order."""
        ...

    def move(self, key: str, url: str | None, temporary: bool) -> str:
        """Send a phone's profile fetches to ``url`` (None: serve them here again); its id."""
        ...

    def mac_conflicts(self, resolved: bool) -> list[JSON]:
        """The MAC conflicts (``inventory.list_mac_conflicts``): open ones, or every one."""
        ...

    def resolve_mac_conflict(self, mac: str, keep: str) -> JSON:
        """Give ``mac`` to the device ``keep`` names (``MacResolved.to_json``)."""
        ...

    def import_devices(self, rows: list[InventoryRow], progress: Callable[[int], None]) -> JSON:
        """Create or update the devices of an inventory: ``created``, ``updated`` and ``refused``
        (each ``line`` and ``reason``); ``progress`` is told how many rows each batch had."""
        ...

    def queue(
        self,
        kind: str,
        args: JSON,
        selection: Selection,
        *,
        max_attempts: int,
        expires_in: timedelta | None,
        now: bool,
        complete_within: int | None = None,
    ) -> Queued: ...

    def tasks(
        self, *, device: str | None, status: str | None, kind: str | None, job: str | None, limit: int
    ) -> list[JSON]: ...

    def task(self, task_id: int) -> JSON: ...

    def follow(self, task_ids: list[int], job: str | None) -> list[JSON]:
        """The tasks as they are now (ids of one job or not), in the order of ``task_ids``."""
        ...

    def cancel(self, task_id: int) -> JSON: ...

    def retry(self, task_id: int) -> JSON: ...


# --- on the database --------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """As the API would serve it: datetimes as text."""
    return jsonable(value)


class Local:
    """The ACS's database, through the service functions (what ``acs serve`` and the API call).

    The store is opened at first use, so a command refuses bad options before it touches it; so is
    the secrets key, by what writes or reads a secret (``--secrets-key-file``)."""

    def __init__(self, db: str | Engine | None, key_file: str | None = None) -> None:
        self._db = db
        self._key_file = key_file
        self._secrets_open = False

    @functools.cached_property
    def engine(self) -> Engine:
        return self._db if isinstance(self._db, Engine) else open_store(self._db)

    def _secrets(self, *, required: bool = True) -> None:
        """Load the secrets key. Not ``required`` (connection requests: only devices with a password
        need it), a key that cannot be loaded is said by the devices that need it, as their outcome."""
        if self._secrets_open:
            return
        if required:
            open_secrets(self.engine, self._key_file)
        else:
            try:
                secrets.open_key(self.engine, self._key_file)
            except secrets.SecretsError as e:
                secrets.use(None, str(e))
        self._secrets_open = True

    def ready(self) -> None:
        self.engine  # noqa: B018 - opening the store is the check

    _find = staticmethod(find_device)

    def devices(self, selection: Selection, limit: int) -> list[JSON]:
        with self.engine.connect() as conn:
            try:
                rows = inventory.find_devices(
                    conn, keys=selection.keys, limit=limit, tags=True, **selection.filters()
                )
            except inventory.AmbiguousDevice as e:
                raise click.ClickException(str(e)) from None
        return [_plain(inventory.device_json(r)) for r in rows]

    def device(self, key: str, params: str | None = None, show_secrets: bool = False) -> JSON:
        with self.engine.connect() as conn:
            dev = inventory.device_json(self._find(conn, key))  # never the passwords
            kicks = connection_requests.history(conn, dev["id"], limit=1)
            dev["last_connection_request"] = kicks[0] if kicks else None
            dev["mac_conflicts"] = inventory.list_mac_conflicts(conn, device_id=dev["id"])
            if params is not None:
                paths = () if params == "." else (params,)
                dev["parameters"] = inventory.get_parameters(
                    conn, dev["id"], paths=paths, show_secrets=show_secrets
                )
        return _plain(dev)

    def events(self, key: str, limit: int) -> list[JSON]:
        with self.engine.connect() as conn:
            return _plain(inventory.get_events(conn, self._find(conn, key)["id"], limit))

    def connection_requests(self, key: str, limit: int) -> list[JSON]:
        with self.engine.connect() as conn:
            return _plain(connection_requests.history(conn, self._find(conn, key)["id"], limit))

    def retag(self, key: str, add: tuple[str, ...], remove: tuple[str, ...]) -> JSON:
        with self.engine.begin() as conn:
            dev = self._find(conn, key)
            return {"id": dev["id"], "tags": inventory.set_tags(conn, dev["id"], add, remove)}

    def set_credentials(
        self, key: str, username: str | None, password: str | None, connection_request: bool
    ) -> str:
        if password is not None:
            self._secrets()
        with self.engine.begin() as conn:
            dev = self._find(conn, key)
            if connection_request:
                connection_requests.set_credentials(conn, dev["id"], username, password)
            else:
                try:
                    inventory.set_credentials(conn, dev["id"], username, password)
                except ValueError as e:
                    raise click.ClickException(str(e)) from None
        return str(dev["id"])

    def kick(self, keys: tuple[str, ...]) -> list[JSON]:
        options = connreq_options()
        with self.engine.connect() as conn:
            ids = list(dict.fromkeys(find_device(conn, k)["id"] for k in keys))
        self._secrets(required=False)
        return [r.to_json() for r in blocking.kick(self.engine, ids, options)]

    def move(self, key: str, url: str | None, temporary: bool) -> str:
        with self.engine.begin() as conn:
            dev = find_device(conn, key)
            try:
                inventory.set_profile_redirect(conn, dev["id"], url, 302 if temporary else 301)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="URL") from None
        return str(dev["id"])

    def mac_conflicts(self, resolved: bool) -> list[JSON]:
        with self.engine.connect() as conn:
            return _plain(inventory.list_mac_conflicts(conn, resolved=resolved))

    def resolve_mac_conflict(self, mac: str, keep: str) -> JSON:
        normal = mac_argument(mac)
        with self.engine.begin() as conn:
            dev = find_device(conn, keep)
            try:
                done = inventory.resolve_mac_conflict(conn, normal, dev["id"], now=utcnow())
            except (inventory.NoMacConflict, ValueError) as e:
                raise click.ClickException(str(e)) from None
        return done.to_json()

    def import_devices(self, rows: list[InventoryRow], progress: Callable[[int], None]) -> JSON:
        if any(r.password is not None for r in rows):
            self._secrets()
        report = preprovision.import_inventory(self.engine, rows, batch_size=IMPORT_BATCH, progress=progress)
        refused = [{"line": p.line, "reason": p.reason} for p in report.problems]
        return {"created": report.created, "updated": report.updated, "refused": refused}

    def queue(
        self,
        kind: str,
        args: JSON,
        selection: Selection,
        *,
        max_attempts: int,
        expires_in: timedelta | None,
        now: bool,
        complete_within: int | None = None,
    ) -> Queued:
        kick_options = connreq_options() if now else None
        key = selection.one_device
        devices: tasks.Devices = (
            tasks.OneDevice(key)
            if key is not None
            else tasks.DeviceSelection(selection.keys, selection.filters())
        )
        options = tasks.Options(
            max_attempts=max_attempts,
            expires_at=utcnow() + expires_in if expires_in else None,
            complete_within=complete_within,
            origin=queue.Origin("cli"),
        )
        try:
            with self.engine.begin() as conn:
                queued = tasks.queue_task(conn, kind, args, devices, options)
        except tasks.UnknownDevice as e:
            raise nothing_queued(e.keys) from None
        except tasks.TaskError as e:
            raise click.ClickException(str(e)) from None
        done = Queued(queued.job_id, queued.task_ids, queued.device_ids)
        if kick_options is not None:
            self._secrets(required=False)
            results = blocking.kick(self.engine, done.devices, kick_options)
            done.connection_requests = [r.to_json() for r in results]
            done.said = [kick_line(r) for r in done.connection_requests]
        return done

    def tasks(
        self, *, device: str | None, status: str | None, kind: str | None, job: str | None, limit: int
    ) -> list[JSON]:
        with self.engine.connect() as conn:
            device_id = self._find(conn, device)["id"] if device is not None else None
            try:
                found = queue.list_tasks(
                    conn, device_id=device_id, status=status, kind=kind, job_id=job, limit=limit
                )
            except queue.QueueError as e:
                raise click.ClickException(str(e)) from None
        return [_plain(queue.task_json(t)) for t in found]

    def task(self, task_id: int) -> JSON:
        found = queue.get(self.engine, task_id)
        if found is None:
            raise no_task(task_id)
        return _plain(queue.task_json(found))

    def follow(self, task_ids: list[int], job: str | None) -> list[JSON]:
        with self.engine.connect() as conn:
            found = [queue.get(conn, i) for i in task_ids]
        return [_plain(queue.task_json(t)) for t in found if t is not None]

    def _transition(self, action: Callable[[Engine, int], Task], task_id: int) -> JSON:
        try:
            return _plain(queue.task_json(action(self.engine, task_id)))
        except queue.QueueError as e:
            raise click.ClickException(str(e)) from None

    def cancel(self, task_id: int) -> JSON:
        return self._transition(queue.cancel, task_id)

    def retry(self, task_id: int) -> JSON:
        return self._transition(queue.retry, task_id)


def mac_argument(mac: str) -> str:
    """A MAC as the operator typed it, in the store's notation; a usage error if it is none."""
    normal = inventory.normalize_mac(mac)
    if normal is None:
        raise click.BadParameter(f"{mac!r} is not a MAC address; give 12 hex digits, e.g. 00:56:2B:04:36:15")
    return normal


def kick_line(result: JSON) -> str:
    """What a command says of a connection request (``KickResult.to_json``)."""
    return f"connection request to {result['device_id']}: {result['summary']}"


def connreq_options() -> Options:
    """Connection-request settings from ``ACS_CONNREQ_*``, or a click error naming the bad variable."""
    try:
        return Options.from_env()
    except ValueError as e:
        raise click.ClickException(str(e)) from None


# --- over the REST API ------------------------------------------------------------------------------------


class Problem(Exception):
    """An RFC 9457 problem the API answered with."""

    def __init__(self, status: int, body: JSON) -> None:
        super().__init__(body.get("detail") or body.get("title") or f"HTTP {status}")
        self.status = status
        self.detail: str = str(self)
        self.field: str | None = body.get("field")
        self.allowed: str | None = body.get("allowed")

    def words(self) -> click.ClickException:
        """The problem as the CLI says things."""
        if self.status == 401:
            return click.ClickException(
                f"the API refused the token ({self.detail}): give a token made with `acs token create` "
                f"(--token or {API_TOKEN_ENV})"
            )
        hint = f" (allowed: {self.allowed})" if self.allowed and self.status in (400, 403) else ""
        return click.ClickException(f"{self.detail}{hint}")


class Remote:
    """The REST API of an ``acs serve`` (the endpoints of its /openapi.json), with an API token."""

    def __init__(self, url: str, token: str, timeout: float = HTTP_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def ready(self) -> None:
        pass  # the first request says whether the API answers

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        """One request; the JSON answered, or ``Problem``. Lists in ``query`` repeat the parameter."""
        pairs = [
            (k, _query_value(v))
            for k, value in (query or {}).items()
            if value is not None
            for v in (value if isinstance(value, list | tuple) else [value])
        ]
        target = self.url + path + (f"?{urllib.parse.urlencode(pairs)}" if pairs else "")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data, headers, method=method)  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"detail": f"HTTP {e.code} {e.reason} from {self.url}"}
            raise Problem(e.code, problem if isinstance(problem, dict) else {}) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise click.ClickException(f"cannot reach the ACS API at {self.url}: {reason}") from None
        return json.loads(raw) if raw else None

    def _call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        device: str | None = None,
    ) -> Any:
        """``call``, with problems in the CLI's words; a 404 for ``device`` is its "no device"."""
        try:
            return self.call(method, path, query, body)
        except Problem as e:
            if device is not None and e.status == 404 and e.field in ("path.device", "query.device"):
                raise no_device(device) from None
            raise e.words() from None

    def _about_device(self, key: str, method: str, path: str, **kwargs: Any) -> Any:
        """A call on ``/devices/{key}...``."""
        return self._call(method, f"/devices/{_segment(key)}{path}", device=key, **kwargs)

    def _pages(self, path: str, query: dict[str, Any], limit: int, device: str | None = None) -> list[JSON]:
        """Up to ``limit`` items of a listing, a page at a time."""
        rows: list[JSON] = []
        while len(rows) < limit:
            size = min(API_PAGE, limit - len(rows))
            page = self._call("GET", path, query | {"limit": size, "offset": len(rows)}, device=device)
            rows += page
            if len(page) < size:
                break
        return rows

    def devices(self, selection: Selection, limit: int) -> list[JSON]:
        return self._pages("/devices", _filter_json(selection), limit)

    def device(self, key: str, params: str | None = None, show_secrets: bool = False) -> JSON:
        query = {"parameters": params, "show_secrets": "true" if show_secrets else None}
        found: JSON = self._about_device(key, "GET", "", query=query)
        return found

    def events(self, key: str, limit: int) -> list[JSON]:
        return self._pages(f"/devices/{_segment(key)}/events", {}, limit, device=key)

    def connection_requests(self, key: str, limit: int) -> list[JSON]:
        return self._pages(f"/devices/{_segment(key)}/connection-requests", {}, limit, device=key)

    def retag(self, key: str, add: tuple[str, ...], remove: tuple[str, ...]) -> JSON:
        changed: JSON = self._about_device(
            key, "POST", "/tags", body={"add": list(add), "remove": list(remove)}
        )
        return changed

    def set_credentials(
        self, key: str, username: str | None, password: str | None, connection_request: bool
    ) -> str:
        body = {"username": username, "password": password, "connection_request": connection_request}
        return str(self._about_device(key, "PUT", "/credentials", body=body)["id"])

    def kick(self, keys: tuple[str, ...]) -> list[JSON]:
        named = [self._about_device(k, "GET", "", query={"fields": "id"})["id"] for k in keys]
        return self._kick_ids(list(dict.fromkeys(named)))

    def _kick_ids(self, device_ids: list[str]) -> list[JSON]:
        """``POST /devices/{id}/connection-request`` for each, a few at once (each may wait for its
        device's answer, or for its turn under the server's per-device interval)."""
        if not device_ids:
            return []

        def kick(device_id: str) -> JSON:
            result: JSON = self._about_device(device_id, "POST", "/connection-request")
            return result

        with ThreadPoolExecutor(max_workers=min(len(device_ids), KICKS_AT_ONCE)) as pool:
            return list(pool.map(kick, device_ids))

    def move(self, key: str, url: str | None, temporary: bool) -> str:
        body = {"url": url, "temporary": temporary}
        try:
            return str(self.call("PUT", f"/devices/{_segment(key)}/profile-redirect", body=body)["id"])
        except Problem as e:
            if e.status == 400 and e.field == "body.url":
                raise click.BadParameter(e.detail, param_hint="URL") from None
            raise (no_device(key) if e.status == 404 and e.field == "path.device" else e.words()) from None

    def mac_conflicts(self, resolved: bool) -> list[JSON]:
        return self._pages("/mac-conflicts", {"resolved": "true" if resolved else None}, 1 << 31)

    def resolve_mac_conflict(self, mac: str, keep: str) -> JSON:
        normal = mac_argument(mac)
        try:
            done: JSON = self.call("POST", f"/mac-conflicts/{normal}/resolve", body={"keep": keep})
        except Problem as e:
            if e.status == 404 and e.field == "body.keep":
                raise no_device(keep) from None
            raise (click.ClickException(e.detail) if e.status in (400, 404) else e.words()) from None
        return done

    def import_devices(self, rows: list[InventoryRow], progress: Callable[[int], None]) -> JSON:
        done: JSON = {"created": 0, "updated": 0, "refused": []}
        for start in range(0, len(rows), IMPORT_BATCH):
            batch = rows[start : start + IMPORT_BATCH]
            answer = self._call(
                "POST", "/devices/import", body={"devices": [_inventory_json(r) for r in batch]}
            )
            done["created"] += answer["created"]
            done["updated"] += answer["updated"]
            done["refused"] += [
                {"line": batch[p["index"]].line, "reason": p["reason"]} for p in answer["refused"]
            ]
            progress(len(batch))
        return done

    def queue(
        self,
        kind: str,
        args: JSON,
        selection: Selection,
        *,
        max_attempts: int,
        expires_in: timedelta | None,
        now: bool,
        complete_within: int | None = None,
    ) -> Queued:
        options: JSON = {"kind": kind, "args": args, "max_attempts": max_attempts}
        if expires_in:
            options["expires_at"] = (utcnow() + expires_in).isoformat()
        if complete_within is not None:
            options["complete_within"] = complete_within
        key = selection.one_device
        if key is not None:
            try:
                made = self.call(
                    "POST", f"/devices/{_segment(key)}/tasks", body=options | {"connection_request": now}
                )
            except Problem as e:
                missing = e.status == 404 and e.field == "path.device"
                raise (nothing_queued([key]) if missing else e.words()) from None
            done = Queued(None, [made["id"]], [made["device_id"]])
            if now:
                kick = made.get("connection_request") or {}
                done.connection_requests = [kick | {"device_id": made["device_id"]}]
                done.said = [kick_line(r) for r in done.connection_requests]
            return done
        devices = _filter_json(selection) | ({"all": True} if selection.all else {})
        try:
            queued = self.call("POST", "/tasks", body=options | {"devices": devices})
        except Problem as e:
            if e.status == 404 and e.field == "body.devices.key":
                raise click.ClickException(f"{e.detail} (see `acs device list`)") from None
            raise (click.ClickException(e.detail) if e.status == 404 else e.words()) from None
        done = Queued(queued["job"], queued["tasks"], [])
        if now:  # the job's tasks are in device order: kick their devices, as on the database
            done.devices = [t["device_id"] for t in self.follow(done.tasks, done.job)]
            done.connection_requests = self._kick_ids(done.devices)
            done.said = [kick_line(r) for r in done.connection_requests]
        return done

    def tasks(
        self, *, device: str | None, status: str | None, kind: str | None, job: str | None, limit: int
    ) -> list[JSON]:
        query = {"device": device, "status": status, "kind": kind, "job": job}
        return self._pages("/tasks", query, limit, device=device)

    def task(self, task_id: int) -> JSON:
        try:
            found: JSON = self.call("GET", f"/tasks/{task_id}")
        except Problem as e:
            raise (no_task(task_id) if e.status == 404 else e.words()) from None
        return found

    def follow(self, task_ids: list[int], job: str | None) -> list[JSON]:
        if job is None:
            return [self.task(i) for i in task_ids]
        by_id = {t["id"]: t for t in self._pages("/tasks", {"job": job}, len(task_ids))}
        return [by_id[i] for i in task_ids if i in by_id]

    def _transition(self, task_id: int, action: str) -> JSON:
        try:
            changed: JSON = self.call("POST", f"/tasks/{task_id}/{action}")
        except Problem as e:
            if e.status == 404:
                raise click.ClickException(f"no task {task_id}") from None
            raise click.ClickException(e.detail) from None
        return changed

    def cancel(self, task_id: int) -> JSON:
        return self._transition(task_id, "cancel")

    def retry(self, task_id: int) -> JSON:
        return self._transition(task_id, "retry")


def _inventory_json(row: InventoryRow) -> JSON:
    """An inventory row as ``POST /devices/import`` takes it (``InventoryDevice``)."""
    return {
        "mac": row.mac,
        "serial_number": row.serial,
        "product_class": row.model,
        "oui": row.oui,
        "tags": list(row.groups),
        "profile": row.profile,
        "username": row.username,
        "password": row.password,
    }


def _segment(key: str) -> str:
    return urllib.parse.quote(key, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _filter_json(selection: Selection) -> JSON:
    """The selection as the API's device filter (GET /devices' query, POST /tasks' ``devices``)."""
    f = selection.filters()
    shown = {
        "key": list(selection.keys) or None,
        "product_class": f["product_class"],
        "oui": f["oui"],
        "software_version": f["software_version"],
        "tag": f["tag"],
        "last_inform_after": f["informed_after"].isoformat() if f["informed_after"] else None,
        "last_inform_before": f["informed_before"].isoformat() if f["informed_before"] else None,
    }
    return {k: v for k, v in shown.items() if v is not None}


# --- choosing one -----------------------------------------------------------------------------------------


def service_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--db``, or ``--api`` with ``--token``: where the command finds the ACS, handed to it as ``acs``."""

    @functools.wraps(f)
    def command(
        *args: Any,
        db: str | None,
        api: str | None,
        token: str | None,
        secrets_key_file: str | None,
        **kwargs: Any,
    ) -> Any:
        return f(*args, acs=connect(db, api, token, secrets_key_file), **kwargs)

    options = [
        click.option(
            "--db",
            envvar="ACS_DATABASE_URL",
            default=None,
            metavar="URL",
            help="Database URL (default sqlite:///./acs.db; env ACS_DATABASE_URL).",
        ),
        click.option(
            "--api",
            envvar=API_URL_ENV,
            default=None,
            metavar="URL",
            help=f"Work through the REST API of an acs serve, e.g. http://acs:7557 (env {API_URL_ENV}).",
        ),
        click.option(
            "--token",
            envvar=API_TOKEN_ENV,
            default=None,
            metavar="TOKEN",
            help=f"API token for --api, made with `acs token create` (env {API_TOKEN_ENV}).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return secrets_key_option(command)


def connect(db: str | None, api: str | None, token: str | None, key_file: str | None = None) -> Acs:
    """The ACS a command works on: the API when ``--api`` (or ``ACS_API_URL``) is given, else the
    database; ``--db`` on the command line wins over ``ACS_API_URL``, as for the database-only
    commands (``common.database_only``)."""
    if api is None:
        return Local(db, key_file)
    ctx = click.get_current_context()
    if db is not None and ctx.get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE:
        if ctx.get_parameter_source("api") is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("give --db or --api, not both")
        return Local(db, key_file)
    if not token:
        raise click.UsageError(
            f"--api needs an API token: --token or {API_TOKEN_ENV} (see `acs token create`)"
        )
    if not api.startswith(("http://", "https://")):
        raise click.UsageError(f"--api {api!r}: give the API's http:// or https:// URL, e.g. http://acs:7557")
    return Remote(api, token)
