"""``acs task``: queue RPCs for phones and follow them.

``acs task add KIND`` queues one RPC on the devices selected by ``--device``,
a filter or ``--csv``; with ``--wait`` it follows them to completion with a
progress bar. Tasks are committed before the command says they are queued.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from acs.cli.common import Duration, echo_json, echo_table, show_time
from acs.cli.device import device_filters
from acs.cli.service import Acs, Selection, service_options
from acs.cwmp.values import TYPES
from acs.jobs import queue
from acs.store.schema import TASK_STATUSES, TaskStatus

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
        service_options,
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


def _complete_within_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--complete-within``, for the RPCs whose outcome comes in a later event."""
    return click.option(
        "--complete-within",
        type=Duration(),
        help="A fault if the device has not completed it this long after its response, e.g. 10m "
        "(default: Reboot, FactoryReset, ScheduleInform 10m (after DelaySeconds); Download, Upload 1h).",
    )(f)


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
    """Queue one task per selected device in one transaction, report, maybe wait."""
    acs: Acs = opts["acs"]
    keys = tuple(opts["keys"]) + tuple(_csv_keys(opts["csv_file"]) if opts["csv_file"] else ())
    filters = {
        k: opts[k] for k in ("product_class", "oui", "software_version", "tag", "seen_within", "not_seen_for")
    }
    selection = Selection(keys, all=opts["all_devices"], **filters)
    if selection.empty:
        raise click.UsageError(
            "say which devices: --device, a filter (--product-class, --tag, ...), --csv FILE or --all"
        )
    within = opts.get("complete_within")
    complete_within = int(within.total_seconds()) if within is not None else None
    try:  # checked here, so that a bad argument is refused in the same words on --db and --api
        args = queue.check_args(kind, args)
        queue.check_complete_within(kind, complete_within)
    except queue.QueueError as e:
        raise click.ClickException(str(e)) from None
    queued = acs.queue(
        kind,
        args,
        selection,
        max_attempts=opts["max_attempts"],
        expires_in=opts["expires"],
        now=opts["now"],
        complete_within=complete_within,
    )
    job, ids = queued.job, queued.tasks
    if not opts["as_json"]:
        where = (
            queued.devices[0]
            if job is None
            else f"{len(ids)} device{'s' if len(ids) != 1 else ''} (job {job})"
        )
        first = f"task {ids[0]}" if len(ids) == 1 else f"{len(ids)} tasks ({ids[0]}..{ids[-1]})"
        when = (
            "asking the device for a session now"
            if opts["now"]
            else "it is sent at the device's next session"
        )
        click.echo(f"queued {kind} as {first} for {where}; {when}")
    for line in queued.said:  # what came of --now; on stderr when stdout is JSON
        click.echo(line, err=opts["as_json"])
    if opts["as_json"] and opts["wait"] is None:
        shown: dict[str, Any] = {"job": job, "tasks": ids}
        echo_json(shown | ({"connection_requests": queued.connection_requests} if opts["now"] else {}))
    if opts["wait"] is not None:
        _wait(acs, ids, job, opts["wait"], as_json=opts["as_json"])


def _wait(acs: Acs, ids: list[int], job: str | None, timeout: float, *, as_json: bool) -> None:
    deadline = time.monotonic() + timeout
    tasks: list[dict[str, Any]] = []
    # the bar goes to stderr: stdout carries the outcome (and stays valid JSON with --json)
    with click.progressbar(length=len(ids), label="waiting", file=sys.stderr, show_pos=True) as bar:
        finished = 0
        while True:
            tasks = acs.follow(ids, job)
            now_finished = sum(t["status"] in queue.FINAL for t in tasks)
            bar.update(now_finished - finished)
            finished = now_finished
            if finished == len(ids) or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
    if as_json:
        echo_json(tasks)
    else:
        counts: dict[str, int] = {}
        for t in tasks:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        click.echo(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for t in tasks:
            if t["status"] in (TaskStatus.FAULT, TaskStatus.EXPIRED, TaskStatus.CANCELLED):
                click.echo(f"task {t['id']} ({t['device_id']}): {outcome(t)}")
        if len(tasks) == 1 and tasks[0]["status"] == TaskStatus.DONE:
            click.echo(json.dumps(tasks[0]["result"], indent=2))
    if finished < len(ids):
        raise click.ClickException(
            f"{len(ids) - finished} task(s) not complete after {timeout:g} s; "
            "they stay queued (see `acs task list`)"
        )
    if any(t["status"] != TaskStatus.DONE for t in tasks):
        raise SystemExit(1)


def fault_words(t: dict[str, Any]) -> str:
    """A fault as operators read it: ``9005 Invalid parameter name``, or, with no CWMP code, what
    happened ("the device did not come back with 1 BOOT within 10 minutes of its RebootResponse")."""
    if t["fault_code"] is None:
        return str(t["fault_meaning"] or t["fault_string"] or "no code and no words recorded")
    return f"{t['fault_code']} {t['fault_meaning']}"


def outcome(t: dict[str, Any]) -> str:
    """What became of a task that did not end done, in words."""
    if t["status"] == TaskStatus.FAULT:
        said = t["fault_string"] if t["fault_code"] is not None and t["fault_string"] else None
        return f"fault {fault_words(t)}" + (f": {said}" if said else "")
    if t["status"] == TaskStatus.EXPIRED:
        return f"expired: not sent before {show_time(t['expires_at'])} (its expiry)"
    if t["status"] == TaskStatus.CANCELLED:
        return f"cancelled{' after it was sent' if t['sent_at'] else ''}, at {show_time(t['completed_at'])}"
    return str(t["status"])


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
@_complete_within_option
def reboot(command_key: str | None, **opts: Any) -> None:
    """Reboot; done when the device comes back with 1 BOOT (M Reboot with its CommandKey, or not)."""
    _queue("Reboot", _key("CommandKey", command_key), opts)


@add.command("factory-reset")
@_task_options
@_complete_within_option
def factory_reset(**opts: Any) -> None:
    """FactoryReset; done when the device comes back with 0 BOOTSTRAP."""
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
@_complete_within_option
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
@_complete_within_option
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
@_complete_within_option
def schedule_inform(delay: timedelta, command_key: str | None, **opts: Any) -> None:
    """ScheduleInform: the device opens a session (3 SCHEDULED) after the delay."""
    _queue(
        "ScheduleInform", {"DelaySeconds": int(delay.total_seconds())} | _key("CommandKey", command_key), opts
    )


# --- following tasks ------------------------------------------------------------------------


@task.command("list")
@service_options
@click.option("--device", "-d", "key", default=None, metavar="ID|MAC|SERIAL")
@click.option("--status", type=click.Choice(TASK_STATUSES))
@click.option("--kind", default=None)
@click.option("--job", default=None, help="Tasks of one bulk job.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True)
def list_(
    acs: Acs,
    key: str | None,
    status: str | None,
    kind: str | None,
    job: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List tasks, newest first."""
    if kind is not None:
        try:
            queue.check_kind(kind)
        except queue.QueueError as e:
            raise click.ClickException(str(e)) from None
    tasks = acs.tasks(device=key, status=status, kind=kind, job=job, limit=limit)
    if as_json:
        echo_json(tasks)
        return
    echo_table(
        ("id", "device", "kind", "status", "created", "fault"),
        [
            (
                t["id"],
                t["device_id"],
                t["kind"],
                t["status"],
                show_time(t["created_at"]),
                fault_words(t) if t["status"] == TaskStatus.FAULT else "",
            )
            for t in tasks
        ],
    )


@task.command()
@service_options
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(acs: Acs, task_id: int, as_json: bool) -> None:
    """Show a task: its RPC, status, timestamps, the response or the fault in words."""
    t = acs.task(task_id)
    if as_json:
        echo_json(t)
        return
    lines = [
        ("task", t["id"]),
        ("device", t["device_id"]),
        ("kind", t["kind"]),
        ("status", t["status"]),
        ("arguments", json.dumps(t["args"])),
        ("command key", t["command_key"]),
        ("job", t["job_id"]),
        ("attempts", f"{t['attempts']} of {t['max_attempts']}"),
        ("created", show_time(t["created_at"])),
        ("sent", show_time(t["sent_at"])),
        ("session", t["session_id"]),
        ("answered", show_time(t["answered_at"])),
        ("completed", show_time(t["completed_at"])),
        ("expires", show_time(t["expires_at"])),
    ]
    if t["complete_within"] is not None or t["deadline_at"] is not None:
        within = t["complete_within"]
        lines.append(("within", queue.duration(within) if within else "the default"))
        lines.append(("deadline", show_time(t["deadline_at"])))
    if t["status"] == TaskStatus.FAULT:
        lines.append(("fault", fault_words(t)))
        if t["fault_code"] is not None:
            lines.append(("fault string", t["fault_string"]))
    elif t["status"] in (TaskStatus.EXPIRED, TaskStatus.CANCELLED):
        lines.append(("outcome", outcome(t)))
    for label, value in lines:
        click.echo(f"{label:<12}  {value if value not in (None, '') else '-'}")
    if t["result"] is not None:
        click.echo("result:")
        click.echo(json.dumps(t["result"], indent=2))


def _each(acs: Acs, ids: tuple[int, ...], action: Callable[[int], dict[str, Any]], verb: str) -> None:
    failed = False
    for task_id in ids:
        try:
            t = action(task_id)
            click.echo(f"task {t['id']} {verb}: now {t['status']}")
        except click.ClickException as e:
            click.echo(f"acs: {e.message}", err=True)
            failed = True
    if failed:
        raise SystemExit(1)


@task.command()
@service_options
@click.argument("ids", nargs=-1, required=True, type=int)
def cancel(acs: Acs, ids: tuple[int, ...]) -> None:
    """Cancel pending or sent tasks."""
    _each(acs, ids, acs.cancel, "cancelled")


@task.command()
@service_options
@click.argument("ids", nargs=-1, required=True, type=int)
def retry(acs: Acs, ids: tuple[int, ...]) -> None:
    """Queue failed, expired or cancelled tasks again."""
    _each(acs, ids, acs.retry, "queued again")
