"""``acs task``: queue RPCs for phones and follow them.

``acs task add KIND`` queues one RPC on the devices selected by ``--device``,
a filter or ``--csv``; with ``--wait`` it follows them to completion with a
progress bar. Tasks are committed before the command says they are queued.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click
from sqlalchemy.engine import Engine

from acs.cli.common import Duration, db_option, echo_json, echo_table, open_store, show_time
from acs.cli.device import connreq_options, device_filters, find_device, kick_devices, select_devices
from acs.cwmp.faults import describe
from acs.cwmp.values import TYPES
from acs.jobs import queue
from acs.jobs.requests import redacted
from acs.store import inventory
from acs.store.schema import TASK_STATUSES, utcnow

FINAL = ("done", "fault", "expired", "cancelled")
#: short names operators type for TR-069's Download FileTypes
FILE_TYPES = {
    "firmware": "1 Firmware Upgrade Image",
    "web-content": "2 Web Content",
    "config": "3 Vendor Configuration File",
    "tone": "4 Tone File",
    "ringer": "5 Ringer File",
    "stored-firmware": "6 Stored Firmware Image",
}
UPLOAD_TYPES = {"config": "1 Vendor Configuration File", "log": "2 Vendor Log File"}


@click.group()
def task() -> None:
    """Tasks: RPCs queued for devices, sent at their next session."""


@task.group()
def add() -> None:
    """Queue an RPC on one device or many (a filter, or a CSV of MACs/serials)."""


def _task_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        db_option,
        device_filters,
        click.option(
            "--csv",
            "csv_file",
            type=click.File("r", encoding="utf-8-sig"),
            help="A CSV file whose first column (or 'mac', 'serial' or 'id' column) names devices.",
        ),
        click.option("--all", "all_devices", is_flag=True, help="Every device the ACS knows."),
        click.option(
            "--max-attempts",
            default=3,
            show_default=True,
            type=click.IntRange(1),
            help="Sessions in which to send it before giving up.",
        ),
        click.option("--expires", type=Duration(), help="Give up if not sent within this long, e.g. 1d."),
        click.option(
            "--wait",
            "wait",
            type=float,
            is_flag=False,
            flag_value=300.0,
            default=None,
            metavar="[SECONDS]",
            help="Follow the tasks until they complete (default 300 s).",
        ),
        click.option(
            "--now",
            is_flag=True,
            help="Then send each device a connection request, so that it opens a session now "
            "(HTTP Digest, or UDP; settings from ACS_CONNREQ_* variables).",
        ),
        click.option("--json", "as_json", is_flag=True, help="JSON output."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _csv_keys(handle: Any) -> list[str]:
    rows = [r for r in csv.reader(handle) if r and any(c.strip() for c in r)]
    if not rows:
        raise click.BadParameter("the CSV file is empty", param_hint="--csv")
    header = [c.strip().lower() for c in rows[0]]
    column = next((header.index(n) for n in ("mac", "serial", "serial_number", "id") if n in header), None)
    if column is None:
        return [r[0].strip() for r in rows if r[0].strip()]
    return [r[column].strip() for r in rows[1:] if len(r) > column and r[column].strip()]


def _queue(kind: str, args: dict[str, Any], opts: dict[str, Any]) -> None:
    """Resolve the targets, queue one task per device in one transaction, report, maybe wait."""
    engine = open_store(opts["db"])
    keys = tuple(opts["keys"]) + tuple(_csv_keys(opts["csv_file"]) if opts["csv_file"] else ())
    filters = {
        k: opts[k] for k in ("product_class", "oui", "software_version", "tag", "seen_within", "not_seen_for")
    }
    if not keys and not any(filters.values()) and not opts["all_devices"]:
        raise click.UsageError(
            "say which devices: --device, a filter (--product-class, --tag, ...), --csv FILE or --all"
        )
    expires = utcnow() + opts["expires"] if opts["expires"] else None
    kick_options = connreq_options() if opts["now"] else None
    with engine.begin() as conn:
        targets = select_devices(conn, keys=keys, **filters)
        if keys:
            found = {v for t in targets for v in (t["id"], t["serial_number"], t["mac"]) if v}
            missing = [k for k in keys if k not in found and inventory.normalize_mac(k) not in found]
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                raise click.ClickException(f"no device {shown}; nothing was queued (see `acs device list`)")
        if not targets:
            raise click.ClickException("no device matches; nothing was queued")
        try:
            queued = queue.enqueue_job(
                conn,
                [t["id"] for t in targets],
                kind,
                args,
                job_id=queue.new_job_id() if len(targets) > 1 else None,
                max_attempts=opts["max_attempts"],
                expires_at=expires,
                created_by="cli",
            )
        except queue.QueueError as e:
            raise click.ClickException(str(e)) from None
    job, ids = queued["job"], queued["tasks"]
    if not opts["as_json"]:
        where = targets[0]["id"] if len(targets) == 1 else f"{len(targets)} devices (job {job})"
        first = f"task {ids[0]}" if len(ids) == 1 else f"{len(ids)} tasks ({ids[0]}..{ids[-1]})"
        when = (
            "asking the device for a session now"
            if opts["now"]
            else "it is sent at the device's next session"
        )
        click.echo(f"queued {kind} as {first} for {where}; {when}")
    kicks = (
        kick_devices(engine, [t["id"] for t in targets], kick_options, err=opts["as_json"])
        if opts["now"]
        else []
    )
    if opts["as_json"] and opts["wait"] is None:
        echo_json(queued | ({"connection_requests": kicks} if opts["now"] else {}))
    if opts["wait"] is not None:
        _wait(engine, ids, opts["wait"], as_json=opts["as_json"])


def _wait(engine: Engine, ids: list[int], timeout: float, *, as_json: bool) -> None:
    deadline = time.monotonic() + timeout
    done: dict[int, queue.Task] = {}
    # the bar goes to stderr: stdout carries the outcome (and stays valid JSON with --json)
    with click.progressbar(
        length=len(ids), label="waiting", file=click.get_text_stream("stderr"), show_pos=True
    ) as bar:
        while len(done) < len(ids) and time.monotonic() < deadline:
            with engine.connect() as conn:
                for task_id in ids:
                    if task_id not in done:
                        t = queue.get(conn, task_id)
                        if t is not None and t.status in FINAL:
                            done[task_id] = t
                            bar.update(1)
            if len(done) < len(ids):
                time.sleep(0.25)
    tasks = [done.get(i) or queue.get(engine, i) for i in ids]
    if as_json:
        echo_json([queue.task_json(t) for t in tasks if t is not None])
    else:
        counts: dict[str, int] = {}
        for t in tasks:
            if t is not None:
                counts[t.status] = counts.get(t.status, 0) + 1
        click.echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for t in tasks:
            if t is not None and t.status == "fault":
                click.echo(
                    f"task {t.id} ({t.device_id}): fault {t.fault_code} {describe(t.fault_code)}"
                    f"{': ' + t.fault_string if t.fault_string else ''}"
                )
        if len(tasks) == 1 and tasks[0] is not None and tasks[0].status == "done":
            click.echo(json.dumps(tasks[0].result, indent=2))
    if len(done) < len(ids):
        raise click.ClickException(
            f"{len(ids) - len(done)} task(s) not complete after {timeout:g} s; "
            "they stay queued (see `acs task list`)"
        )
    if any(t.status != "done" for t in done.values()):
        raise SystemExit(1)


# --- one subcommand per RPC ---------------------------------------------------------------


@add.command("get-rpc-methods")
@_task_options
def get_rpc_methods(**opts: Any) -> None:
    """GetRPCMethods: which RPCs the device supports."""
    _queue("GetRPCMethods", {}, opts)


@add.command("get-names")
@click.argument("path", default="Device.")
@click.option("--next-level", is_flag=True, help="Only the immediate children of PATH.")
@_task_options
def get_names(path: str, next_level: bool, **opts: Any) -> None:
    """GetParameterNames under PATH (default Device.)."""
    _queue("GetParameterNames", {"ParameterPath": path, "NextLevel": next_level}, opts)


@add.command("get-values")
@click.argument("names", nargs=-1, required=True)
@_task_options
def get_values(names: tuple[str, ...], **opts: Any) -> None:
    """GetParameterValues of NAMES (full names, or partial paths ending in '.')."""
    _queue("GetParameterValues", {"ParameterNames": list(names)}, opts)


def _assignment(text: str) -> list[str]:
    name, sep, value = text.partition("=")
    name, _, kind = name.partition(":")
    if not sep or not name:
        raise click.BadParameter(f"{text!r}: expected NAME=VALUE or NAME:TYPE=VALUE")
    if kind and kind not in TYPES:
        raise click.BadParameter(f"{text!r}: unknown type {kind!r}; one of {', '.join(TYPES)}")
    return [name, value, kind]


@add.command("set-values")
@click.argument("assignments", nargs=-1, required=True, metavar="NAME[:TYPE]=VALUE...")
@click.option("--parameter-key", default=None, help="ParameterKey (default acs-<task id>).")
@_task_options
def set_values(assignments: tuple[str, ...], parameter_key: str | None, **opts: Any) -> None:
    """SetParameterValues. Without :TYPE the type stored for the parameter is used (else string)."""
    args: dict[str, Any] = {"ParameterList": [_assignment(a) for a in assignments]}
    if parameter_key is not None:
        args["ParameterKey"] = parameter_key
    _queue("SetParameterValues", args, opts)


@add.command("get-attributes")
@click.argument("names", nargs=-1, required=True)
@_task_options
def get_attributes(names: tuple[str, ...], **opts: Any) -> None:
    """GetParameterAttributes of NAMES."""
    _queue("GetParameterAttributes", {"ParameterNames": list(names)}, opts)


@add.command("set-attributes")
@click.argument("names", nargs=-1, required=True)
@click.option("--notification", type=click.IntRange(0, 6), help="0 off, 1 passive, 2 active (3-6: CWMP 1.4).")
@click.option("--access-list", default=None, help="Comma-separated, e.g. Subscriber; '' for ACS only.")
@_task_options
def set_attributes(
    names: tuple[str, ...], notification: int | None, access_list: str | None, **opts: Any
) -> None:
    """SetParameterAttributes on NAMES (a partial path covers its subtree)."""
    if notification is None and access_list is None:
        raise click.UsageError("give --notification and/or --access-list")
    items = [
        {
            "Name": n,
            "NotificationChange": notification is not None,
            "Notification": notification or 0,
            "AccessListChange": access_list is not None,
            "AccessList": [a for a in (access_list or "").split(",") if a],
        }
        for n in names
    ]
    _queue("SetParameterAttributes", {"ParameterList": items}, opts)


@add.command("add-object")
@click.argument("object_name", metavar="OBJECT.")
@click.option("--parameter-key", default=None)
@_task_options
def add_object(object_name: str, parameter_key: str | None, **opts: Any) -> None:
    """AddObject: a new instance of a table, e.g. Device.Services.VoiceService.1.CallControl.Line."""
    if not object_name.endswith("."):
        object_name += "."
    _queue("AddObject", {"ObjectName": object_name} | _key("ParameterKey", parameter_key), opts)


@add.command("delete-object")
@click.argument("object_name", metavar="OBJECT.N.")
@click.option("--parameter-key", default=None)
@_task_options
def delete_object(object_name: str, parameter_key: str | None, **opts: Any) -> None:
    """DeleteObject: remove one instance, e.g. Device.Services.VoiceService.1.CallControl.Line.3."""
    if not object_name.endswith("."):
        object_name += "."
    _queue("DeleteObject", {"ObjectName": object_name} | _key("ParameterKey", parameter_key), opts)


def _key(name: str, value: str | None) -> dict[str, str]:
    return {name: value} if value is not None else {}


@add.command()
@click.option("--command-key", default=None, help="CommandKey (default acs-<task id>).")
@_task_options
def reboot(command_key: str | None, **opts: Any) -> None:
    """Reboot; done when the device informs "M Reboot" after it."""
    _queue("Reboot", _key("CommandKey", command_key), opts)


@add.command("factory-reset")
@_task_options
def factory_reset(**opts: Any) -> None:
    """FactoryReset: the device comes back with 0 BOOTSTRAP."""
    _queue("FactoryReset", {}, opts)


@add.command()
@click.argument("url")
@click.option(
    "--file-type",
    default="firmware",
    show_default=True,
    help=f"{', '.join(FILE_TYPES)}, or a TR-069 FileType string.",
)
@click.option("--username", default="", help="File server user name.")
@click.option("--password", default="", help="File server password.")
@click.option("--file-size", default=0, type=click.IntRange(0), help="Bytes (0: unknown).")
@click.option("--target-file-name", default="")
@click.option("--delay", default=0, type=click.IntRange(0), help="DelaySeconds.")
@click.option("--success-url", default="")
@click.option("--failure-url", default="")
@click.option("--command-key", default=None)
@_task_options
def download(
    url: str,
    file_type: str,
    username: str,
    password: str,
    file_size: int,
    target_file_name: str,
    delay: int,
    success_url: str,
    failure_url: str,
    command_key: str | None,
    **opts: Any,
) -> None:
    """Download: firmware, a configuration file, a tone or ringer file; done at TransferComplete."""
    args = {
        "URL": url,
        "FileType": FILE_TYPES.get(file_type, file_type),
        "Username": username,
        "Password": password,
        "FileSize": file_size,
        "TargetFileName": target_file_name,
        "DelaySeconds": delay,
        "SuccessURL": success_url,
        "FailureURL": failure_url,
    } | _key("CommandKey", command_key)
    _queue("Download", args, opts)


@add.command()
@click.argument("url")
@click.option(
    "--file-type",
    default="config",
    show_default=True,
    help=f"{', '.join(UPLOAD_TYPES)}, or a TR-069 FileType string.",
)
@click.option("--username", default="")
@click.option("--password", default="")
@click.option("--delay", default=0, type=click.IntRange(0))
@click.option("--command-key", default=None)
@_task_options
def upload(
    url: str, file_type: str, username: str, password: str, delay: int, command_key: str | None, **opts: Any
) -> None:
    """Upload: the device sends its configuration or log file to URL."""
    args = {
        "URL": url,
        "FileType": UPLOAD_TYPES.get(file_type, file_type),
        "Username": username,
        "Password": password,
        "DelaySeconds": delay,
    } | _key("CommandKey", command_key)
    _queue("Upload", args, opts)


@add.command("schedule-inform")
@click.option("--delay", required=True, type=Duration(), help="When the device should inform, e.g. 10m.")
@click.option("--command-key", default=None)
@_task_options
def schedule_inform(delay: timedelta, command_key: str | None, **opts: Any) -> None:
    """ScheduleInform: the device opens a session (3 SCHEDULED) after the delay."""
    _queue(
        "ScheduleInform", {"DelaySeconds": int(delay.total_seconds())} | _key("CommandKey", command_key), opts
    )


# --- following tasks ------------------------------------------------------------------------


@task.command("list")
@db_option
@click.option("--device", "-d", "key", default=None, metavar="ID|MAC|SERIAL")
@click.option("--status", type=click.Choice(TASK_STATUSES))
@click.option("--kind", default=None)
@click.option("--job", default=None, help="Tasks of one bulk job.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True)
def list_(
    db: str | None,
    key: str | None,
    status: str | None,
    kind: str | None,
    job: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List tasks, newest first."""
    engine = open_store(db)
    with engine.connect() as conn:
        device_id = find_device(conn, key)["id"] if key is not None else None
        try:
            tasks = queue.list_tasks(
                conn, device_id=device_id, status=status, kind=kind, job_id=job, limit=limit
            )
        except queue.QueueError as e:
            raise click.ClickException(str(e)) from None
    if as_json:
        echo_json([queue.task_json(t) for t in tasks])
        return
    echo_table(
        ("id", "device", "kind", "status", "created", "fault"),
        [
            (
                t.id,
                t.device_id,
                t.kind,
                t.status,
                show_time(t.created_at),
                f"{t.fault_code} {t.fault_meaning}" if t.fault_code else "",
            )
            for t in tasks
        ],
    )


@task.command()
@db_option
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(db: str | None, task_id: int, as_json: bool) -> None:
    """Show a task: its RPC, status, timestamps, the response or the fault in words."""
    engine = open_store(db)
    t = queue.get(engine, task_id)
    if t is None:
        raise click.ClickException(f"no task {task_id} (see `acs task list`)")
    if as_json:
        echo_json(queue.task_json(t))
        return
    lines = [
        ("task", t.id),
        ("device", t.device_id),
        ("kind", t.kind),
        ("status", t.status),
        ("arguments", json.dumps(redacted(t.args))),
        ("command key", t.command_key),
        ("job", t.job_id),
        ("attempts", f"{t.attempts} of {t.max_attempts}"),
        ("created", show_time(t.created_at)),
        ("sent", show_time(t.sent_at)),
        ("session", t.session_id),
        ("answered", show_time(t.answered_at)),
        ("completed", show_time(t.completed_at)),
        ("expires", show_time(t.expires_at)),
    ]
    if t.fault_code is not None:
        lines.append(("fault", f"{t.fault_code} {describe(t.fault_code)}"))
        lines.append(("fault string", t.fault_string))
    for label, value in lines:
        click.echo(f"{label:<12}  {value if value not in (None, '') else '-'}")
    if t.result is not None:
        click.echo("result:")
        click.echo(json.dumps(t.result, indent=2))


def _each(
    engine: Engine, ids: tuple[int, ...], action: Callable[[Engine, int], queue.Task], verb: str
) -> None:
    failed = False
    for task_id in ids:
        try:
            t = action(engine, task_id)
            click.echo(f"task {t.id} {verb}: now {t.status}")
        except queue.QueueError as e:
            click.echo(f"acs: {e}", err=True)
            failed = True
    if failed:
        raise SystemExit(1)


@task.command()
@db_option
@click.argument("ids", nargs=-1, required=True, type=int)
def cancel(db: str | None, ids: tuple[int, ...]) -> None:
    """Cancel pending or sent tasks."""
    _each(open_store(db), ids, queue.cancel, "cancelled")


@task.command()
@db_option
@click.argument("ids", nargs=-1, required=True, type=int)
def retry(db: str | None, ids: tuple[int, ...]) -> None:
    """Queue failed, expired or cancelled tasks again."""
    _each(open_store(db), ids, queue.retry, "queued again")
