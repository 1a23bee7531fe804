"""Profiles in the store: saved validated, assigned to levels, composed per device; encryption keys.

A profile is a named flat profile (the XML as the operator wrote it, comments
included) that applies where it is assigned: ``default`` (every device),
``model`` (a ProductClass, ``CP-8841-3PCC``), ``tag`` (devices with the tag: a
group) or ``device`` (one device id). A device's effective profile composes its
layers in that order, later values winning (within a level, lower ``priority``
first, then tag and profile name), then expands Cisco macros for the device.

Saving validates first: a profile with errors is refused with every problem by
line and element (``ProfileError``) and the store is left as it was.

Keys (``profile_keys``) are per device or per tag, set by the operator: the
AES-256-CBC passphrase (``Profile_Rule [--key ...]``) and the RFC 8188 IKM
(``IKM_HTTP_Encrypt_Content``). The CBC key-derivation digest is a setting per
model and firmware (``profile_key_digests``); without one, firmware older than
11.3(1) gets MD5 and the rest SHA-256, as docs/cisco-mpp.md
("Encryption") infers from Cisco's "tested against openssl" notes. Keys are never logged,
never in a repr, and kept sealed with the server key (``acs.store.secrets``).

Functions take a Connection inside the caller's transaction. Interface used by the
profile server and ``acs device import`` (keep stable): ``effective_profile``,
``profile_key``, ``ProfileKey``, ``assign``, ``save_profile``, ``ProfileError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from acs.provisioning import flatprofile
from acs.provisioning.flatprofile import FlatProfile, Problem
from acs.provisioning.macros import expand_profile
from acs.store import inventory
from acs.store.schema import (
    CBC_DIGESTS,
    KEY_SCOPES,
    PROFILE_LEVELS,
    device_tags,
    devices,
    profile_assignments,
    profile_key_digests,
    profile_keys,
    profiles,
    utcnow,
)
from acs.store.secrets import reveal

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: firmware from this version on is documented as "tested against openssl-1.1.1d" (SHA-256)
SHA256_FROM = (11, 3, 1)


class ProfileError(ValueError):
    """A profile request that cannot be done; ``problems`` holds a refused profile's problems."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SavedProfile:
    id: int
    name: str
    created: bool
    #: what was accepted but looks wrong (unknown names, duplicates)
    warnings: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Layer:
    """One profile in a device's composition: where it applies and what it says."""

    level: str
    match: str
    name: str
    priority: int
    profile: FlatProfile


@dataclass(frozen=True, slots=True)
class ProfileKey:
    """How to encrypt a device's profile: the CBC passphrase and digest, the RFC 8188 IKM."""

    scope: str  # "device" or "tag"
    match: str
    passphrase: str | None = field(default=None, repr=False)
    ikm: str | None = field(default=None, repr=False)
    digest: str = "sha256"


# --- profiles ---------------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):  # not match: "$" would let a final newline in
        raise ProfileError(
            f"profile name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter"
            " or a digit"
        )
    return name


def validate(xml: bytes | str) -> FlatProfile:
    """The profile parsed; ProfileError listing every problem when it has errors."""
    profile = flatprofile.parse(xml)
    if profile.errors:
        errors = profile.errors
        raise ProfileError(
            f"profile refused: {len(errors)} error{'s' if len(errors) > 1 else ''}: "
            + "; ".join(str(p) for p in errors),
            profile.problems,
        )
    return profile


def _text(xml: bytes | str) -> str:
    if isinstance(xml, str):
        return xml
    try:
        return xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"profile is not UTF-8 (byte {exc.start}); Cisco phones read UTF-8 only") from None


def save_profile(
    conn: Connection,
    name: str,
    xml: bytes | str,
    *,
    description: str | None = None,
    create: bool | None = None,
) -> SavedProfile:
    """Store a profile under ``name`` after validating it; nothing changes when it is refused.

    ``create=True`` refuses an existing name, ``create=False`` a missing one, ``None``
    creates or replaces.
    """
    check_name(name)
    text = _text(xml)
    parsed = validate(text)
    row = conn.execute(sa.select(profiles.c.id).where(profiles.c.name == name)).first()
    if row is not None and create is True:
        raise ProfileError(f"profile {name!r} exists already; use edit to change it")
    if row is None and create is False:
        raise ProfileError(f"no profile {name!r} (see `acs profile list`)")
    now = utcnow()
    values: dict[str, Any] = {"xml": text, "updated_at": now}
    if description is not None:
        values["description"] = description
    if row is None:
        new_id = conn.execute(
            profiles.insert().values(name=name, created_at=now, **values).returning(profiles.c.id)
        ).scalar_one()
        return SavedProfile(new_id, name, True, parsed.warnings)
    conn.execute(profiles.update().where(profiles.c.id == row.id).values(**values))
    return SavedProfile(row.id, name, False, parsed.warnings)


def get_profile(conn: Connection, name: str) -> dict[str, Any] | None:
    """A profile's row with its assignments (level, match, priority)."""
    row = conn.execute(sa.select(profiles).where(profiles.c.name == name)).mappings().first()
    if row is None:
        return None
    a = profile_assignments.c
    where = conn.execute(
        sa.select(a.level, a.match, a.priority).where(a.profile_id == row["id"]).order_by(a.level, a.match)
    ).mappings()
    return dict(row) | {"assignments": [dict(w) for w in where]}


def require_profile(conn: Connection, name: str) -> dict[str, Any]:
    found = get_profile(conn, name)
    if found is None:
        raise ProfileError(f"no profile {name!r} (see `acs profile list`)")
    return found


def list_profiles(conn: Connection) -> list[dict[str, Any]]:
    """Every profile with its assignments, by name (the XML left out)."""
    a = profile_assignments.c
    rows = conn.execute(
        sa.select(profiles.c.id, profiles.c.name, profiles.c.description, profiles.c.updated_at).order_by(
            profiles.c.name
        )
    ).mappings()
    out = [dict(r) | {"assignments": []} for r in rows]
    by_id = {r["id"]: r for r in out}
    for w in conn.execute(sa.select(a.profile_id, a.level, a.match, a.priority).order_by(a.level, a.match)):
        by_id[w.profile_id]["assignments"].append(
            {"level": w.level, "match": w.match, "priority": w.priority}
        )
    return out


def delete_profile(conn: Connection, name: str) -> None:
    """Remove a profile and its assignments (devices keep the values they were given)."""
    require_profile(conn, name)
    conn.execute(profiles.delete().where(profiles.c.name == name))


def _check_target(level: str, match: str) -> str:
    if level not in PROFILE_LEVELS:
        raise ProfileError(f"level {level!r}: use one of {', '.join(PROFILE_LEVELS)}")
    if level == "default":
        if match:
            raise ProfileError("the default level takes no match: it applies to every device")
        return ""
    if not match or not match.strip():
        what = {"model": "a ProductClass (CP-8841-3PCC)", "tag": "a tag", "device": "a device id"}[level]
        raise ProfileError(f"the {level} level needs {what}")
    return match


def describe_target(level: str, match: str, priority: int = 0) -> str:
    """Where an assignment applies, in words: ``default``, ``model CP-8841-3PCC (priority 2)``."""
    text = level if level == "default" else f"{level} {match}"
    return text + (f" (priority {priority})" if priority else "")


def assign(conn: Connection, name: str, level: str, match: str = "", *, priority: int = 0) -> None:
    """Apply profile ``name`` at ``level`` to ``match`` (device ids as ``inventory`` has them)."""
    match = _check_target(level, match)
    profile_id = require_profile(conn, name)["id"]
    a = profile_assignments.c
    conn.execute(
        profile_assignments.delete().where(a.profile_id == profile_id, a.level == level, a.match == match)
    )
    conn.execute(
        profile_assignments.insert().values(
            profile_id=profile_id, level=level, match=match, priority=priority
        )
    )


def unassign(conn: Connection, name: str, level: str, match: str = "") -> bool:
    """Remove one assignment; False when there was none."""
    match = _check_target(level, match)
    profile_id = require_profile(conn, name)["id"]
    a = profile_assignments.c
    done = conn.execute(
        profile_assignments.delete().where(a.profile_id == profile_id, a.level == level, a.match == match)
    )
    return done.rowcount > 0


def device_record(conn: Connection, device: Mapping[str, Any] | str) -> dict[str, Any]:
    """A device row with its tags, from a row or from an id, MAC or serial (ProfileError if unknown)."""
    if isinstance(device, str):
        found = inventory.get_device(conn, device)
        if found is None:
            raise ProfileError(f"no device {device!r}")
        return found
    if "tags" not in device:
        tags = conn.execute(sa.select(device_tags.c.tag).where(device_tags.c.device_id == device["id"]))
        return dict(device) | {"tags": sorted(tags.scalars())}
    return dict(device)


def layers(conn: Connection, device: Mapping[str, Any] | str) -> list[Layer]:
    """The profiles that apply to a device, in the order they compose (the last one wins)."""
    dev = device_record(conn, device)
    a = profile_assignments.c
    targets = [
        sa.and_(a.level == "default"),
        sa.and_(a.level == "model", a.match == (dev.get("product_class") or "")),
        sa.and_(a.level == "tag", a.match.in_(dev["tags"])),
        sa.and_(a.level == "device", a.match == dev["id"]),
    ]
    rows = conn.execute(
        sa.select(a.level, a.match, a.priority, profiles.c.name, profiles.c.xml)
        .join(profiles, profiles.c.id == a.profile_id)
        .where(sa.or_(*targets))
    ).all()
    order = {level: i for i, level in enumerate(PROFILE_LEVELS)}
    rows = sorted(rows, key=lambda r: (order[r.level], r.priority, r.match, r.name))
    return [
        Layer(r.level, r.match, r.name, r.priority, flatprofile.parse(r.xml, check_names=False)) for r in rows
    ]


def effective_profile(
    conn: Connection, device_id: str | Mapping[str, Any], *, expand: bool = True
) -> FlatProfile:
    """The device's composed profile (default -> model -> tag -> device), macros expanded for it.

    Empty when nothing is assigned. ``device_id`` may also be a device row.
    """
    dev = device_record(conn, device_id)
    composed = flatprofile.compose(layer.profile for layer in layers(conn, dev))
    return expand_profile(composed, dev) if expand else composed


# --- keys -------------------------------------------------------------------------------------


def set_key(
    conn: Connection, scope: str, match: str, *, passphrase: str | None = None, ikm: str | None = None
) -> None:
    """Set (or with both None, remove) the keys of a device id or a tag; a key given as "" is removed."""
    if scope not in KEY_SCOPES:
        raise ProfileError(f"keys are set per {' or per '.join(KEY_SCOPES)}, not per {scope!r}")
    if not match:
        raise ProfileError(f"a {scope} key needs a {scope}")
    k = profile_keys.c
    current = (
        conn.execute(sa.select(profile_keys).where(k.scope == scope, k.match == match)).mappings().first()
    )
    new = {
        "passphrase": passphrase if passphrase is not None else (current["passphrase"] if current else None),
        "ikm": ikm if ikm is not None else (current["ikm"] if current else None),
    }
    new = {name: value or None for name, value in new.items()}
    conn.execute(profile_keys.delete().where(k.scope == scope, k.match == match))
    if any(new.values()):
        conn.execute(profile_keys.insert().values(scope=scope, match=match, updated_at=utcnow(), **new))


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    """Which devices and tags have keys, and of which kind: never the keys themselves."""
    k = profile_keys.c
    rows = conn.execute(sa.select(profile_keys).order_by(k.scope, k.match)).mappings()
    return [
        {
            "scope": r["scope"],
            "match": r["match"],
            "aes256cbc": r["passphrase"] is not None,
            "aes128gcm": r["ikm"] is not None,
            "updated_at": r["updated_at"],
        }
        for r in rows
    ]


def set_digest(
    conn: Connection, digest: str | None, *, product_class: str = "", software_prefix: str = ""
) -> None:
    """The CBC key-derivation digest for a model and/or firmware prefix ("" = any); None removes the rule."""
    if digest is not None and digest not in CBC_DIGESTS:
        raise ProfileError(f"digest {digest!r}: use {' or '.join(CBC_DIGESTS)}")
    d = profile_key_digests.c
    conn.execute(
        profile_key_digests.delete().where(
            d.product_class == product_class, d.software_prefix == software_prefix
        )
    )
    if digest is not None:
        conn.execute(
            profile_key_digests.insert().values(
                product_class=product_class, software_prefix=software_prefix, digest=digest
            )
        )


def list_digests(conn: Connection) -> list[dict[str, Any]]:
    d = profile_key_digests.c
    return [
        dict(r)
        for r in conn.execute(
            sa.select(profile_key_digests).order_by(d.product_class, d.software_prefix)
        ).mappings()
    ]


def firmware_version(software_version: str) -> tuple[int, ...] | None:
    """``sip88xx.11-3-2MPP0001-609`` -> (11, 3, 2); ``11.0.1`` (a User-Agent's) -> (11, 0, 1)."""
    m = re.search(r"(?:^|\.)(\d+)[-.](\d+)[-.](\d+)", software_version or "")
    return tuple(int(g) for g in m.groups()) if m else None


def default_digest(software_version: str | None) -> str:
    """MD5 before 11.3(1), SHA-256 from it on or when the version cannot be read."""
    version = firmware_version(software_version or "")
    return "md5" if version is not None and version < SHA256_FROM else "sha256"


def digest_for(conn: Connection, device: Mapping[str, Any]) -> str:
    """The digest a device's model and firmware take: the most specific rule, else ``default_digest``."""
    product_class = device.get("product_class") or ""
    software = device.get("software_version") or ""
    d = profile_key_digests.c
    rules = conn.execute(sa.select(profile_key_digests).where(d.product_class.in_(["", product_class]))).all()
    fitting = [r for r in rules if software.startswith(r.software_prefix)]
    if not fitting:
        return default_digest(software)
    best = max(fitting, key=lambda r: (r.product_class != "", len(r.software_prefix)))
    return best.digest


def profile_key(conn: Connection, device: Mapping[str, Any] | str) -> ProfileKey | None:
    """The keys a device's profile is encrypted with: its own, else its first tag's (by name); None."""
    dev = device_record(conn, device)
    k = profile_keys.c
    rows = conn.execute(
        sa.select(profile_keys).where(
            sa.or_(
                sa.and_(k.scope == "device", k.match == dev["id"]),
                sa.and_(k.scope == "tag", k.match.in_(dev["tags"])),
            )
        )
    ).mappings()
    found = sorted(rows, key=lambda r: (r["scope"] != "device", r["match"]))
    if not found:
        return None
    row = found[0]
    return ProfileKey(
        row["scope"], row["match"], reveal(row["passphrase"]), reveal(row["ikm"]), digest_for(conn, dev)
    )


def devices_at(conn: Connection, level: str, match: str = "") -> list[dict[str, Any]]:
    """The devices an assignment at ``level``/``match`` reaches."""
    match = _check_target(level, match)
    if level == "default":
        return inventory.find_devices(conn)
    if level == "model":
        return inventory.find_devices(conn, product_class=match)
    if level == "tag":
        return inventory.find_devices(conn, tag=match)
    return [dict(r) for r in conn.execute(sa.select(devices).where(devices.c.id == match)).mappings()]
