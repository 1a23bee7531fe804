"""``acs device``: find phones and see what the ACS knows of them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy.engine import Engine

from acs.cli.common import Duration, echo_json, echo_table, read_password, show_time
from acs.cli.service import Acs, Local, Selection, find_device, kick_line, service_options
from acs.provisioning import flatprofile, preprovision, tr069
from acs.provisioning.mapping import MapError


def device_filters(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options that select devices, shared by ``device list`` and ``task add``."""
    options = [
        click.option(
            "--device",
            "-d",
            "keys",
            multiple=True,
            metavar="ID|MAC|SERIAL",
            help="A device by id, MAC (any notation) or serial number; repeat for more.",
        ),
        click.option("--product-class", help="Only this ProductClass (model), e.g. CP-8841-3PCC."),
        click.option("--oui", help="Only this manufacturer OUI, e.g. 00562B."),
        click.option("--software-version", help="Only phones reporting this SoftwareVersion."),
        click.option("--tag", help="Only devices with this tag."),
        click.option("--seen-within", type=Duration(), help="Informed within this long, e.g. 1h."),
        click.option("--not-seen-for", type=Duration(), help="Not informed for at least this long, e.g. 1d."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group()
def device() -> None:
    """Devices (phones and other CPEs) the ACS knows."""


@device.command("list")
@service_options
@device_filters
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def list_(acs: Acs, limit: int, as_json: bool, keys: tuple[str, ...], **filters: Any) -> None:
    """List devices, filtered by id, MAC, serial, model, tag or when they last informed."""
    rows = acs.devices(Selection(keys, **filters), limit)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "mac", "model", "software", "ip", "last inform"),
        [
            (
                r["id"],
                r["mac"],
                r["product_class"],
                r["software_version"],
                r["ip"],
                show_time(r["last_inform"]),
            )
            for r in rows
        ],
    )


@device.command()
@service_options
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.option(
    "--params",
    "prefix",
    default=None,
    metavar="PATH",
    help="Show the stored parameters: PATH is a name, or a partial path ending in '.' "
    "(e.g. Device.DeviceInfo.); '.' shows all.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@click.option(
    "--show-secrets", is_flag=True, help="Show the values of password parameters instead of a mask."
)
@click.option(
    "--xml",
    "as_xml",
    is_flag=True,
    help="The stored values under their Cisco flat-profile names, as XML (see acs profile; --db only).",
)
def show(acs: Acs, key: str, prefix: str | None, as_json: bool, show_secrets: bool, as_xml: bool) -> None:
    """Show a device's facts and, with --params, its stored parameter tree (passwords masked)."""
    if as_xml:
        if not isinstance(acs, Local):
            raise click.UsageError("--xml reads the database: give --db (or no --api)")
        _show_xml(acs.engine, key, show_secrets)
        return
    dev = acs.device(key, prefix, show_secrets)
    params = dev.pop("parameters", [])
    if as_json:
        echo_json(dev | ({"parameters": params} if prefix is not None else {}))
        return
    width = max(len(k) for k in dev)
    for k, v in dev.items():
        shown = (
            show_time(v)
            if k
            in (
                "first_inform",
                "last_inform",
                "last_boot",
                "last_bootstrap",
                "created_at",
                "last_profile_fetch",
            )
            else _conflict_lines(dev["id"], v)
            if k == "mac_conflicts"
            else (", ".join(v) if isinstance(v, list) else _kick_line(v) if isinstance(v, dict) else v)
        )
        click.echo(f"{k.replace('_', ' '):<{width}}  {shown if shown not in (None, '') else '-'}")
    if prefix is not None:
        click.echo()
        if not params:
            click.echo(f"no parameters stored under {prefix!r}")
        echo_table(
            ("path", "value", "type", "writable"),
            [
                (p["path"], p["value"], p["type"], {True: "rw", False: "ro"}.get(p["writable"]))
                for p in params
            ],
        )


def _conflict_lines(device_id: str, conflicts: list[dict[str, Any]]) -> str:
    """``device show``'s words for the device's open MAC conflicts, one after the other."""
    said = []
    for c in conflicts:
        reports = f"{c['reports']} report{'' if c['reports'] == 1 else 's'}"
        seen = f"{c['source']}, {reports} since {show_time(c['first_seen_at'])}"
        if c["claimant_id"] == device_id:
            said.append(f"{c['mac']} is {c['holder_id']}'s: refused to this device ({seen})")
        else:
            said.append(f"{c['mac']} stays here: {c['claimant_id']} reported it too ({seen})")
    return "; ".join(said)


def _show_xml(engine: Engine, key: str, show_secrets: bool) -> None:
    with engine.connect() as conn:
        dev = find_device(conn, key)
        try:
            xml = tr069.stored_as_xml(conn, dev["id"])
        except MapError as e:
            raise click.ClickException(str(e)) from None
    shown = xml if show_secrets else flatprofile.mask_secrets(xml)
    click.echo(flatprofile.render(shown, comment=f"{dev['id']}: stored values").decode(), nl=False)


@device.command()
@service_options
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.option("--username", default=None, help="The user name.")
@click.option(
    "--password",
    default=None,
    help="Its password (prompted when not given); on the command line every local user sees it (ps).",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (its first line)."
)
@click.option("--clear", is_flag=True, help="Remove them.")
@click.option(
    "--connection-request",
    is_flag=True,
    help="Set the ConnectionRequestUsername/Password the device checks connection requests with, "
    "when known out of band (a SetParameterValues of them through the ACS records them by itself).",
)
def credentials(
    acs: Acs,
    key: str,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    clear: bool,
    connection_request: bool,
) -> None:
    """Set the credentials a device authenticates to the ACS with (ManagementServer.Username/Password);
    with --connection-request, those the ACS answers the device's connection-request challenge with.

    Without --connection-request, --clear makes the device use the server's shared credentials again.
    The password is kept sealed with the server's secrets key (--secrets-key-file).
    """
    if clear == (username is not None):
        raise click.UsageError("give --username (and --password), or --clear")
    if username is not None:
        password = read_password(password, password_stdin)
    device_id = acs.set_credentials(key, username, password, connection_request)
    if connection_request:
        said = "forgotten" if clear else f"set: user name {username!r}"
        click.echo(f"{device_id}: connection-request credentials {said}")
    elif clear:
        click.echo(f"{device_id} uses the shared CPE credentials again")
    else:
        click.echo(f"{device_id} authenticates as {username!r}")


@device.command()
@service_options
@click.argument("keys", nargs=-1, required=True, metavar="ID|MAC|SERIAL...")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def kick(acs: Acs, keys: tuple[str, ...], as_json: bool) -> None:
    """Send devices a connection request: each opens a session now and gets its queued tasks.

    HTTP Digest to the ConnectionRequestURL first; UDP (TR-069 Annex G) when HTTP cannot reach a
    device that reported a UDPConnectionRequestAddress. Exits 1 if any request did not get through.
    On the database, settings: ACS_CONNREQ_TIMEOUT (s, default 5), ACS_CONNREQ_MIN_INTERVAL (s between
    two requests to one device, default 5), ACS_CONNREQ_CONCURRENCY (default 50), ACS_CONNREQ_ALLOW_BASIC
    (0/1); through the API (--api), the server sends them with its own.
    """
    results = acs.kick(keys)
    for r in results:
        click.echo(kick_line(r), err=as_json)
    if as_json:
        echo_json(results)
    if any(r["outcome"] != "sent" for r in results):
        raise SystemExit(1)


@device.command("connection-requests")
@service_options
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def connection_requests_(acs: Acs, key: str, limit: int, as_json: bool) -> None:
    """The connection requests sent to a device and what came of each, newest first."""
    rows = acs.connection_requests(key, limit)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("requested", "method", "outcome", "seconds", "detail"),
        [
            (show_time(r["requested_at"]), r["method"], r["outcome"], _seconds(r["elapsed"]), r["detail"])
            for r in rows
        ],
    )


def _seconds(elapsed: float | None) -> str:
    return "" if elapsed is None else f"{elapsed:.3f}"


def _kick_line(row: dict[str, Any]) -> str:
    """``device show``'s line for the latest connection request."""
    how = f"{row['method'].upper()} " if row["method"] else ""
    return f"{show_time(row['requested_at'])} {how}{row['outcome']}: {row['detail']}"


@device.command()
@service_options
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def events(acs: Acs, key: str, limit: int, as_json: bool) -> None:
    """The events a device informed (0 BOOTSTRAP, 1 BOOT, M Reboot...), newest first, and those the ACS
    recorded on it (ACS MAC CONFLICT, ACS MAC RESOLVED: the command key says which MAC and device)."""
    rows = acs.events(key, limit)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("received", "event", "command key", "session"),
        [(show_time(r["received_at"]), r["code"], r["command_key"], r["session_id"]) for r in rows],
    )


def _retag(acs: Acs, key: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
    if any(not t.strip() for t in add + remove):
        raise click.UsageError("a tag cannot be empty")
    now = acs.retag(key, add, remove)
    click.echo(f"{now['id']}: tags {', '.join(now['tags']) or '(none)'}")


@device.command()
@service_options
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.argument("tags", nargs=-1, required=True)
def tag(acs: Acs, key: str, tags: tuple[str, ...]) -> None:
    """Add tags to a device; policies and filters (--tag) match on them."""
    _retag(acs, key, add=tags)


@device.command()
@service_options
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.argument("tags", nargs=-1, required=True)
def untag(acs: Acs, key: str, tags: tuple[str, ...]) -> None:
    """Remove tags from a device."""
    _retag(acs, key, remove=tags)


@device.command("import")
@service_options
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--json", "as_json", is_flag=True, help="The outcome as JSON (problems included).")
def import_(acs: Acs, file: Any, as_json: bool) -> None:
    """Create or update devices from an inventory CSV, before they first connect.

    The header names the columns: mac, serial, model (the ProductClass), and optionally
    oui (default: the MAC's first 6 hex digits), group (tags, separated by spaces or ;),
    profile, username and password (the device's own credentials). Each device gets the
    id its Inform will give, OUI-ProductClass-Serial. Bad rows are reported with their
    line number and the others kept; the exit status is 1 when a row was refused.
    Importing again updates the same devices.
    """
    try:
        text = file.read()
    except UnicodeDecodeError as e:
        raise click.ClickException(f"{file.name}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        rows, problems = preprovision.read_inventory(text)
    except preprovision.InventoryError as e:
        raise click.ClickException(f"{file.name}: {e}") from None
    acs.ready()
    with click.progressbar(length=len(rows), label="importing", file=sys.stderr, show_pos=True) as bar:
        done = acs.import_devices(rows, bar.update)
    refused = sorted(
        [{"line": p.line, "reason": p.reason} for p in problems] + done["refused"], key=lambda p: p["line"]
    )
    if as_json:
        echo_json({"created": done["created"], "updated": done["updated"], "refused": refused})
    else:
        for p in refused:
            click.echo(f"{file.name}:{p['line']}: {p['reason']}", err=True)
        click.echo(
            f"{done['created']} devices created, {done['updated']} updated, {len(refused)} rows refused"
        )
    if refused:
        raise SystemExit(1)


@device.command()
@service_options
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.argument("url", required=False)
@click.option("--temporary", is_flag=True, help="Answer 302 (moved for now) instead of 301 (moved).")
@click.option("--clear", is_flag=True, help="Serve the phone's profile here again.")
def move(acs: Acs, key: str, url: str | None, temporary: bool, clear: bool) -> None:
    """Send a phone's profile fetches to another provisioning server (HTTP 301, or 302 with --temporary).

    URL is the new server (http://prov2.example.net:7567/: the phone's path is appended)
    or the full URL of its profile. The phone retries there at once.
    """
    if clear == (url is not None):
        raise click.UsageError("give the URL the phone moves to, or --clear")
    device_id = acs.move(key, url, temporary)
    if clear:
        click.echo(f"{device_id} fetches its profile here again")
    else:
        click.echo(f"{device_id} is sent to {url} ({302 if temporary else 301})")


@device.group("mac-conflict")
def mac_conflict() -> None:
    """Devices that reported a MAC another device has: the MAC stayed with the device that had it.

    The profile server finds a phone by its MAC: a device that could take another's MAC by
    reporting it would be served that phone's profile. So a MAC stays with the device that had
    it, and the conflict waits here for an operator (a phone replaced under the same MAC, two
    models whose firmware reports one MAC, or a device that lies).
    """


@mac_conflict.command("list")
@service_options
@click.option("--all", "everything", is_flag=True, help="Resolved conflicts too.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def mac_conflict_list(acs: Acs, everything: bool, as_json: bool) -> None:
    """The open MAC conflicts (with --all, the resolved ones too): which device has the MAC, which
    one reported it, by what and how often."""
    rows = acs.mac_conflicts(everything)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("mac", "has it", "reported by", "source", "reports", "first seen", "last seen", "resolved"),
        [
            (
                r["mac"],
                r["holder_id"],
                r["claimant_id"],
                r["source"],
                r["reports"],
                show_time(r["first_seen_at"]),
                show_time(r["last_seen_at"]),
                show_time(r["resolved_at"]) if r["resolved_at"] else "",
            )
            for r in rows
        ],
    )


@mac_conflict.command("resolve")
@service_options
@click.argument("mac")
@click.option(
    "--keep",
    required=True,
    metavar="ID|SERIAL",
    help="The device that keeps the MAC: the one that has it, or one that reported it.",
)
def mac_conflict_resolve(acs: Acs, mac: str, keep: str) -> None:
    """Settle who has MAC: the device --keep names gets it (its profile is served for that MAC), every
    other one loses it, and their later reports of it are refused without another alarm."""
    done = acs.resolve_mac_conflict(mac, keep)
    lost = ", ".join(done["lost"])
    click.echo(
        f"{done['mac']} is {done['kept']}'s; {lost} {'has' if len(done['lost']) == 1 else 'have'} it no more"
    )
