"""``acs profile``: Cisco flat profiles, where they apply, how phones get them, and their keys."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from acs.cli.common import (
    database_only,
    db_option,
    echo_json,
    echo_table,
    open_secrets,
    open_store,
    secrets_key_option,
    show_time,
)
from acs.cli.device import find_device
from acs.provisioning import flatprofile, store, tr069
from acs.provisioning.flatprofile import Problem
from acs.provisioning.mapping import MapError, ParameterMap, load_map


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise click.ClickException(f"cannot read {path}: {e.strerror}") from None


def _problems(source: str, problems: list[Problem]) -> None:
    """Problems as ``FILE:LINE: <Element>: message``, on stderr: what editors jump to."""
    for p in problems:
        line = f":{p.line}" if p.line is not None else ""
        element = f" <{p.element}>" if p.element else ""
        click.echo(f"{source}{line}:{element} {p.severity}: {p.message}", err=True)


def _map_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--map",
        "map_path",
        envvar="ACS_PROFILE_MAP",
        default=None,
        metavar="FILE",
        help="TR-069 <-> XML map to use instead of the shipped one (env ACS_PROFILE_MAP).",
    )(f)


def _load_map(map_path: str | None) -> ParameterMap:
    try:
        return load_map(map_path)
    except MapError as e:
        raise click.ClickException(str(e)) from None


def _target(
    conn: Any, default: bool, model: str | None, tag: str | None, device_key: str | None
) -> tuple[str, str]:
    given = [(lvl, v) for lvl, v in (("model", model), ("tag", tag), ("device", device_key)) if v is not None]
    if default:
        given.append(("default", ""))
    if len(given) != 1:
        raise click.UsageError("give one of --default, --model, --tag or --device")
    level, match = given[0]
    if level == "device":
        match = find_device(conn, match)["id"]
    return level, match


def _target_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--default", is_flag=True, help="Every device (the first layer)."),
            click.option(
                "--model", metavar="PRODUCT_CLASS", help="Devices of this model, e.g. CP-8841-3PCC."
            ),
            click.option("--tag", help="Devices with this tag (a group)."),
            click.option("--device", "device_key", metavar="ID|MAC|SERIAL", help="One device."),
        ]
    ):
        f = option(f)
    return f


def _report(plans: list[tr069.Plan]) -> None:
    """What assigning or editing did to TR-069-managed phones."""
    queued = [p for p in plans if p.task_id is not None]
    for p in queued:
        click.echo(
            f"{p.device_id}: SetParameterValues of {len(p.changes)} value(s) queued "
            f"(task {p.task_id}, ParameterKey {p.parameter_key})"
        )
    same = len(plans) - len(queued)
    if same:
        click.echo(f"{same} TR-069-managed device(s) already have these values")


@click.group()
def profile() -> None:
    """Cisco MPP flat profiles (XML): create, assign to devices, models or tags, diff, export."""


def _save(
    db: str | None, name: str, path: str, description: str | None, create: bool, map_path: str | None = None
) -> None:
    data = _read(path)
    table = None if create else _load_map(map_path)
    source = "<stdin>" if path == "-" else path
    engine = open_store(db)
    try:
        with engine.begin() as conn:
            saved = store.save_profile(conn, name, data, description=description, create=create)
            plans = [] if table is None else tr069.provision_profile(conn, name, table)
    except store.ProfileError as e:
        _problems(source, e.problems)
        raise click.ClickException(
            str(e) if not e.problems else f"profile {name!r} refused; nothing changed"
        ) from None
    _problems(source, saved.warnings)
    click.echo(f"profile {name} {'created' if saved.created else 'saved'}")
    _report(plans)


@profile.command()
@db_option
@database_only
@click.argument("name")
@click.argument("path", metavar="FILE")
@click.option("--description", help="What the profile is for.")
def create(db: str | None, name: str, path: str, description: str | None) -> None:
    """Create profile NAME from an XML flat-profile FILE ('-': standard input).

    A malformed profile is refused with each problem as FILE:LINE: <Element>; unknown
    element names and duplicates are warnings and are kept.
    """
    _save(db, name, path, description, create=True)


@profile.command()
@db_option
@database_only
@click.argument("name")
@click.argument("path", metavar="FILE")
@click.option("--description", help="What the profile is for.")
@_map_option
def edit(db: str | None, name: str, path: str, description: str | None, map_path: str | None) -> None:
    """Replace profile NAME with FILE; TR-069-managed phones it applies to get the changes."""
    _save(db, name, path, description, create=False, map_path=map_path)


@profile.command("list")
@db_option
@database_only
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def list_(db: str | None, as_json: bool) -> None:
    """The profiles and where they apply."""
    with open_store(db).connect() as conn:
        rows = store.list_profiles(conn)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("name", "applies to", "updated", "description"),
        [
            (
                r["name"],
                ", ".join(_where(a) for a in r["assignments"]) or "(unassigned)",
                show_time(r["updated_at"]),
                r["description"],
            )
            for r in rows
        ],
    )


def _where(a: dict[str, Any]) -> str:
    return store.describe_target(a["level"], a["match"], a["priority"])


@profile.command()
@db_option
@database_only
@click.argument("name", required=False)
@click.option("--device", "device_key", metavar="ID|MAC|SERIAL", help="The effective profile of this device.")
@click.option("--show-secrets", is_flag=True, help="Show password values instead of a mask (with --device).")
def show(db: str | None, name: str | None, device_key: str | None, show_secrets: bool) -> None:
    """Show profile NAME as stored, or with --device the device's effective profile and its layers."""
    if (name is None) == (device_key is None):
        raise click.UsageError("give a profile NAME or --device")
    with open_store(db).connect() as conn:
        if name is not None:
            try:
                row = store.require_profile(conn, name)
            except store.ProfileError as e:
                raise click.ClickException(str(e)) from None
            click.echo(f"# applies to: {', '.join(_where(a) for a in row['assignments']) or '(unassigned)'}")
            click.echo(row["xml"].rstrip("\n"))
            return
        dev = find_device(conn, device_key or "")
        layers = store.layers(conn, dev["id"])
        effective = store.effective_profile(conn, dev["id"])
    names = ", ".join(f"{layer.name} ({_where(_layer_target(layer))})" for layer in layers) or "none"
    click.echo(_rendered(effective, f"{dev['id']}: layers {names}", show_secrets).decode().rstrip("\n"))


def _layer_target(layer: store.Layer) -> dict[str, Any]:
    return {"level": layer.level, "match": layer.match, "priority": layer.priority}


def _rendered(profile_: flatprofile.FlatProfile, comment: str, show_secrets: bool) -> bytes:
    shown = profile_ if show_secrets else flatprofile.mask_secrets(profile_)
    return flatprofile.render(shown, comment=comment.replace("--", "- -"))


@profile.command()
@db_option
@database_only
@click.argument("name")
@_target_options
@click.option("--priority", default=0, show_default=True, help="Order within a level: higher wins.")
@click.option("--no-push", is_flag=True, help="Do not queue SetParameterValues to TR-069-managed phones.")
@_map_option
def assign(
    db: str | None,
    name: str,
    default: bool,
    model: str | None,
    tag: str | None,
    device_key: str | None,
    priority: int,
    no_push: bool,
    map_path: str | None,
) -> None:
    """Apply profile NAME to every device, a model, a tag or one device.

    Each TR-069-managed phone it reaches gets one SetParameterValues of the values
    that differ from its stored tree; the others get the profile at their next resync.
    """
    table = _load_map(map_path)
    with open_store(db).begin() as conn:
        level, match = _target(conn, default, model, tag, device_key)
        try:
            store.assign(conn, name, level, match, priority=priority)
        except store.ProfileError as e:
            raise click.ClickException(str(e)) from None
        plans = [] if no_push else tr069.provision_at(conn, level, match, table)
    click.echo(f"profile {name} applies to {_where({'level': level, 'match': match, 'priority': priority})}")
    _report(plans)


@profile.command()
@db_option
@database_only
@click.argument("name")
@_target_options
def unassign(
    db: str | None, name: str, default: bool, model: str | None, tag: str | None, device_key: str | None
) -> None:
    """Stop applying profile NAME there (phones keep the values they were given)."""
    with open_store(db).begin() as conn:
        level, match = _target(conn, default, model, tag, device_key)
        try:
            removed = store.unassign(conn, name, level, match)
        except store.ProfileError as e:
            raise click.ClickException(str(e)) from None
    where = _where({"level": level, "match": match, "priority": 0})
    if not removed:
        raise click.ClickException(f"profile {name} was not assigned to {where}")
    click.echo(f"profile {name} no longer applies to {where}")


@profile.command()
@db_option
@database_only
@click.argument("name")
def delete(db: str | None, name: str) -> None:
    """Delete profile NAME and its assignments."""
    with open_store(db).begin() as conn:
        try:
            store.delete_profile(conn, name)
        except store.ProfileError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"profile {name} deleted")


@profile.command()
@db_option
@database_only
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@click.option("--show-secrets", is_flag=True, help="Show password values instead of a mask.")
@_map_option
def diff(db: str | None, key: str, as_json: bool, show_secrets: bool, map_path: str | None) -> None:
    """What the device's effective profile would change on the phone (against its stored tree)."""
    table = _load_map(map_path)
    with open_store(db).connect() as conn:
        dev = find_device(conn, key)
        plan = tr069.plan(conn, dev, table)
    shown = plan.diff_json(show_secrets=show_secrets)
    rows = shown["changes"]
    if as_json:
        echo_json(shown)
        return
    if not plan.managed:
        click.echo(
            f"{plan.device_id} has no stored tree (it has not informed, or not been discovered): "
            "it gets its profile when it resyncs (HTTP/TFTP)"
        )
        return
    if not rows:
        click.echo(f"{plan.device_id} matches its profile ({plan.parameter_key})")
    else:
        echo_table(
            ("element", "path", "phone", "profile"),
            [(r["element"], r["path"], r["phone"], r["profile"]) for r in rows],
        )
    for p in plan.problems:
        click.echo(f"note: {p}", err=True)
    if plan.unmapped:
        click.echo(f"{len(plan.unmapped)} element(s) have no TR-069 path: flat profile only", err=True)


@profile.command()
@db_option
@database_only
@click.argument("key", metavar="ID|MAC|SERIAL")
@_map_option
def push(db: str | None, key: str, map_path: str | None) -> None:
    """Queue the device's profile now (what differs from its stored tree), e.g. after a rediscovery."""
    table = _load_map(map_path)
    with open_store(db).begin() as conn:
        dev = find_device(conn, key)
        plan = tr069.provision(conn, dev, table)
    if not plan.managed:
        raise click.ClickException(f"{plan.device_id} has no stored tree yet: nothing to compare with")
    _report([plan])


@profile.command()
@db_option
@database_only
@click.argument("key", metavar="ID|MAC|SERIAL")
@click.option("-o", "--output", default="-", metavar="FILE", help="Write here instead of standard output.")
@click.option("--phone", is_flag=True, help="What the phone reported (its stored values under XML names).")
@click.option("--device-wrapper", is_flag=True, help="Wrap in <device>, as phone exports are.")
@_map_option
def export(
    db: str | None, key: str, output: str, phone: bool, device_wrapper: bool, map_path: str | None
) -> None:
    """Write the device's effective flat profile (or, with --phone, what the phone reported) as XML."""
    table = _load_map(map_path) if phone else None
    with open_store(db).connect() as conn:
        dev = find_device(conn, key)
        if phone:
            content = tr069.stored_as_xml(conn, dev["id"], table)
            note = f"{dev['id']}: values the phone reported over TR-069"
        else:
            content = store.effective_profile(conn, dev["id"])
            note = f"{dev['id']}: effective profile"
    data = flatprofile.render(content, device_wrapper=device_wrapper, comment=note)
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        with open(output, "wb") as f:
            f.write(data)
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror}") from None
    click.echo(f"wrote {output} ({len(content)} elements)", err=True)


# --- keys -------------------------------------------------------------------------------------


@profile.group()
def key() -> None:
    """Keys profiles are encrypted with, per device or per tag (never shown)."""


def _key_target(conn: Any, tag: str | None, device_key: str | None) -> tuple[str, str]:
    if (tag is None) == (device_key is None):
        raise click.UsageError("give --device or --tag")
    if device_key is not None:
        return "device", find_device(conn, device_key)["id"]
    return "tag", tag or ""


@key.command("set")
@db_option
@database_only
@secrets_key_option
@click.option("--device", "device_key", metavar="ID|MAC|SERIAL", help="This device's keys.")
@click.option("--tag", help="The keys of devices with this tag (a device's own keys come first).")
@click.option(
    "--cbc", is_flag=True, help="Set the AES-256-CBC passphrase (Profile_Rule [--key ...]); prompted."
)
@click.option("--gcm", is_flag=True, help="Set the RFC 8188 IKM (IKM_HTTP_Encrypt_Content); prompted.")
def key_set(
    db: str | None,
    device_key: str | None,
    tag: str | None,
    cbc: bool,
    gcm: bool,
    secrets_key_file: str | None,
) -> None:
    """Set a key, read from the terminal (or standard input) and never echoed.

    It is kept sealed with the server's secrets key (--secrets-key-file)."""
    if not (cbc or gcm):
        raise click.UsageError("give --cbc, --gcm or both")
    passphrase = (
        click.prompt("AES-256-CBC passphrase", hide_input=True, confirmation_prompt=True) if cbc else None
    )
    ikm = click.prompt("RFC 8188 IKM", hide_input=True, confirmation_prompt=True) if gcm else None
    engine = open_store(db)
    open_secrets(engine, secrets_key_file)
    with engine.begin() as conn:
        scope, match = _key_target(conn, tag, device_key)
        try:
            store.set_key(conn, scope, match, passphrase=passphrase, ikm=ikm)
        except store.ProfileError as e:
            raise click.ClickException(str(e)) from None
    kinds = " and ".join(k for k, given in (("AES-256-CBC", cbc), ("aes128gcm", gcm)) if given)
    click.echo(f"{kinds} key set for {scope} {match}")


@key.command("clear")
@db_option
@database_only
@click.option("--device", "device_key", metavar="ID|MAC|SERIAL")
@click.option("--tag")
def key_clear(db: str | None, device_key: str | None, tag: str | None) -> None:
    """Remove the keys of a device or tag: its profiles are served unencrypted."""
    with open_store(db).begin() as conn:
        scope, match = _key_target(conn, tag, device_key)
        store.set_key(conn, scope, match, passphrase="", ikm="")
    click.echo(f"keys of {scope} {match} removed")


@key.command("list")
@db_option
@database_only
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def key_list(db: str | None, as_json: bool) -> None:
    """Which devices and tags have keys (the keys themselves are never shown), and the digest rules."""
    with open_store(db).connect() as conn:
        keys, digests = store.list_keys(conn), store.list_digests(conn)
    if as_json:
        echo_json({"keys": keys, "digests": digests})
        return
    yes = {True: "yes", False: "-"}
    echo_table(
        ("scope", "match", "aes-256-cbc", "aes128gcm", "updated"),
        [
            (k["scope"], k["match"], yes[k["aes256cbc"]], yes[k["aes128gcm"]], show_time(k["updated_at"]))
            for k in keys
        ],
    )
    if digests:
        click.echo()
        echo_table(
            ("model", "firmware prefix", "cbc digest"),
            [(d["product_class"] or "any", d["software_prefix"] or "any", d["digest"]) for d in digests],
        )


@key.command("digest")
@db_option
@database_only
@click.argument("digest", type=click.Choice(["md5", "sha256", "remove"]))
@click.option("--model", default="", metavar="PRODUCT_CLASS", help="Only this model (default: any).")
@click.option("--firmware", default="", metavar="PREFIX", help="SoftwareVersion prefix, e.g. sip88xx.11-2.")
def key_digest(db: str | None, digest: str, model: str, firmware: str) -> None:
    """The AES-256-CBC key-derivation digest phones of a model/firmware expect.

    Without a rule: MD5 before firmware 11.3(1), SHA-256 from it on (openssl's default since 1.1.0).
    """
    with open_store(db).begin() as conn:
        store.set_digest(
            conn, None if digest == "remove" else digest, product_class=model, software_prefix=firmware
        )
    where = f"model {model or 'any'}, firmware {firmware + '*' if firmware else 'any'}"
    click.echo(f"{where}: rule removed" if digest == "remove" else f"{where}: {digest}")
