"""The inventory: devices and their parameter trees, as Informs and RPC responses tell them.

Functions take a Connection inside the caller's transaction, so one CWMP
message is one transaction. Upserts write only rows whose value changed:
a periodic Inform that repeats the same values costs no writes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

from acs.cwmp import rpc, values
from acs.store.schema import device_tags, devices, events, parameters

#: parameter name suffix -> devices column, for the facts operators filter on
_DEVICE_FACTS = {
    ".DeviceInfo.SoftwareVersion": "software_version",
    ".DeviceInfo.HardwareVersion": "hardware_version",
    ".DeviceInfo.ProvisioningCode": "provisioning_code",
    ".ManagementServer.ConnectionRequestURL": "connection_request_url",
    ".ManagementServer.ParameterKey": "parameter_key",
    ".ManagementServer.UDPConnectionRequestAddress": "udp_connection_request_address",
    ".LAN.MACAddress": "mac",
    ".Ethernet.Interface.1.MACAddress": "mac",
}


#: the credentials the CPE checks connection requests with; the password is write-only on the CPE (it
#: reads back empty), so only a SetParameterValues by the ACS tells it
_CONNECTION_REQUEST_CREDENTIALS = {
    ".ManagementServer.ConnectionRequestUsername": "connection_request_username",
    ".ManagementServer.ConnectionRequestPassword": "connection_request_password",
}


def normalize_mac(text: str) -> str | None:
    """``00:56:2B:04:36:15`` / ``0056.2b04.3615`` / ``00562b043615`` -> ``00562b043615``."""
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")
    return digits if len(digits) == 12 and len(text) <= 17 else None


def device_facts(params: Iterable[rpc.ParameterValueStruct]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for p in params:
        for suffix, column in _DEVICE_FACTS.items():
            if p.Name.endswith(suffix):
                text = values.encode(p.Value, p.Type)
                facts[column] = normalize_mac(text) if column == "mac" else text
    if facts.get("mac", "") is None:
        del facts["mac"]
    return facts


def record_facts(
    conn: Connection, device_id: str, params: Iterable[rpc.ParameterValueStruct], *, written: bool
) -> None:
    """Keep the device row in step with values a GetParameterValuesResponse reported (``written``
    False) or a successful SetParameterValues wrote (True), such as a UDPConnectionRequestAddress
    that no Inform carries, or the connection-request credentials the ACS set."""
    params = list(params)
    facts = device_facts(params)
    if written:
        for p in params:
            for suffix, column in _CONNECTION_REQUEST_CREDENTIALS.items():
                if p.Name.endswith(suffix):
                    facts[column] = values.encode(p.Value, p.Type)
    if facts:
        conn.execute(devices.update().where(devices.c.id == device_id).values(**facts))


@functools.cache
def _upsert_statement(
    dialect_name: str,
    table: sa.Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    changed: tuple[str, ...],
    returning: tuple[str, ...] = (),
) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    where = None
    if changed:
        where = sa.or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in changed))
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={c: stmt.excluded[c] for c in update},
        where=where,
    )
    return stmt.returning(*(table.c[c] for c in returning)) if returning else stmt


def _upsert(
    conn: Connection,
    table: sa.Table,
    keys: tuple[str, ...],
    rows: list[dict[str, Any]],
    update: tuple[str, ...],
    changed: tuple[str, ...] = (),
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE on PostgreSQL and SQLite; rows whose ``changed`` columns
    match are left alone, so repeating a value costs no write.

    The rows (all with the same keys) go to the driver's executemany as they are, through SQL
    compiled once: SQLAlchemy's per-row parameter handling cost more than the database's work
    for a 100-value GetParameterValues batch.
    """
    if rows:
        sql, to_params = _prepared_upsert(conn.dialect, table, keys, update, changed, tuple(rows[0]))
        conn.exec_driver_sql(sql, [to_params(row) for row in rows])


@functools.cache
def _prepared_upsert(
    dialect: Dialect,
    table: sa.Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    changed: tuple[str, ...],
    columns: tuple[str, ...],
) -> tuple[str, Callable[[dict[str, Any]], Any]]:
    """The upsert's SQL for these columns, and the function that turns a row into its parameters
    (in the driver's paramstyle, each value through its column type's own conversion)."""
    stmt = _upsert_statement(dialect.name, table, keys, update, changed)
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    convert = {c: p for c in columns if (p := table.c[c].type.bind_processor(dialect)) is not None}

    def value(row: dict[str, Any], column: str) -> Any:
        v = row[column]
        return convert[column](v) if column in convert else v

    order = compiled.positiontup
    if order:
        return compiled.string, lambda row: tuple(value(row, c) for c in order)
    return compiled.string, lambda row: {c: value(row, c) for c in columns}


#: the device columns record_device returns
RECORDED = ("id", "oui", "product_class", "software_version", "first_inform")


def record_device(
    conn: Connection,
    device_id: str,
    inform: rpc.Inform,
    *,
    version: str,
    remote_addr: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Store who the device is, from its Inform; returns what policies match on (``RECORDED``).

    ``first_inform`` is ``now`` when this Inform was the device's first.
    """
    codes = set(inform.event_codes)
    dev = inform.DeviceId
    row: dict[str, Any] = {
        "id": device_id,
        "oui": dev.OUI.upper(),
        "product_class": dev.ProductClass,
        "serial_number": dev.SerialNumber,
        "manufacturer": dev.Manufacturer,
        "cwmp_version": version,
        "ip": remote_addr,
        "last_inform": now,
        **device_facts(inform.ParameterList),
    }
    if "1 BOOT" in codes:
        row["last_boot"] = now
    if "0 BOOTSTRAP" in codes:
        row["last_bootstrap"] = now
    update = tuple(c for c in row if c != "id")
    stmt = _upsert_statement(conn.dialect.name, devices, ("id",), update, (), returning=RECORDED)
    return dict(conn.execute(stmt, row | {"first_inform": now, "created_at": now}).mappings().one())


_RECORD_EVENT = events.insert()
_STORED_VALUES = sa.select(parameters.c.path, parameters.c.value, parameters.c.type).where(
    parameters.c.device_id == sa.bindparam("device"),
    parameters.c.path.in_(sa.bindparam("paths", expanding=True)),
)


def record_report(
    conn: Connection, device_id: str, inform: rpc.Inform, *, session_id: str | None, now: datetime
) -> None:
    """Store what an Inform reports: its events and the parameters it carried.

    ``0 BOOTSTRAP`` means a new or factory-reset device: the stored tree is
    forgotten before the Inform's parameters are written.
    """
    bootstrap = "0 BOOTSTRAP" in inform.event_codes
    if bootstrap:
        conn.execute(parameters.delete().where(parameters.c.device_id == device_id))
    if inform.Event:
        conn.execute(
            _RECORD_EVENT,
            [
                {
                    "device_id": device_id,
                    "session_id": session_id,
                    "code": e.EventCode,
                    "command_key": e.CommandKey,
                    "received_at": now,
                }
                for e in inform.Event
            ],
        )
    store_values(conn, device_id, inform.ParameterList, now, skip_unchanged=not bootstrap)


def _store_tree(
    conn: Connection,
    device_id: str,
    now: datetime,
    fields: dict[str, dict[str, Any]],
    changed: tuple[str, ...],
    also: tuple[str, ...] = (),
) -> None:
    """Upsert some columns of a device's parameter rows, by path; a row is written only when one of
    its ``changed`` columns differs (``also`` columns are written with them)."""
    rows = [
        {"device_id": device_id, "path": path, "object": path.endswith("."), "read_at": now} | values
        for path, values in fields.items()
        if path
    ]
    _upsert(conn, parameters, ("device_id", "path"), rows, changed + also, changed=changed)


def store_values(
    conn: Connection,
    device_id: str,
    params: Iterable[rpc.ParameterValueStruct],
    now: datetime,
    *,
    skip_unchanged: bool = False,
) -> None:
    """Upsert parameter values (GetParameterValuesResponse, Inform, a successful SetParameterValues).

    ``skip_unchanged``: read the stored values first and write only those that differ. A periodic
    Inform repeats the same values: one read and a write of the few that moved (UpTime) cost
    less than an upsert of every row.
    """
    fields = {
        p.Name: {"value": values.encode(p.Value, p.Type), "type": p.Type or values.infer_type(p.Value)}
        for p in params
    }
    if skip_unchanged and fields:
        for path, value, kind in conn.execute(_STORED_VALUES, {"device": device_id, "paths": list(fields)}):
            if fields[path] == {"value": value, "type": kind}:
                del fields[path]
    _store_tree(conn, device_id, now, fields, ("value", "type"), also=("read_at",))


def store_names(
    conn: Connection, device_id: str, infos: Iterable[rpc.ParameterInfoStruct], now: datetime
) -> None:
    """Upsert the paths a GetParameterNamesResponse lists, with their writability."""
    _store_tree(
        conn, device_id, now, {i.Name: {"writable": i.Writable} for i in infos}, ("writable", "object")
    )


def store_attributes(
    conn: Connection, device_id: str, attrs: Iterable[rpc.ParameterAttributeStruct], now: datetime
) -> None:
    """Upsert the notification and access list a GetParameterAttributesResponse reports."""
    fields = {a.Name: {"notification": a.Notification, "access_list": ",".join(a.AccessList)} for a in attrs}
    _store_tree(conn, device_id, now, fields, ("notification", "access_list"))


def _subtree(device_id: str, path: str) -> Any:
    c = parameters.c
    if not path.endswith("."):
        return sa.and_(c.device_id == device_id, c.path == path)
    return sa.and_(c.device_id == device_id, c.path.startswith(path, autoescape=True))


def set_attributes(
    conn: Connection, device_id: str, items: Iterable[rpc.SetParameterAttributesStruct]
) -> None:
    """Apply a successful SetParameterAttributes to the stored tree (a partial path covers its subtree)."""
    for item in items:
        change: dict[str, Any] = {}
        if item.NotificationChange:
            change["notification"] = item.Notification
        if item.AccessListChange:
            change["access_list"] = ",".join(item.AccessList)
        if change:
            conn.execute(parameters.update().where(_subtree(device_id, item.Name)).values(**change))


def add_object(conn: Connection, device_id: str, object_name: str, instance: int, now: datetime) -> None:
    path = f"{object_name}{instance}."
    _upsert(
        conn,
        parameters,
        ("device_id", "path"),
        [{"device_id": device_id, "path": path, "object": True, "writable": True, "read_at": now}],
        ("object", "read_at"),
    )


def delete_object(conn: Connection, device_id: str, object_name: str) -> None:
    conn.execute(parameters.delete().where(_subtree(device_id, object_name)))


def get_device(conn: Connection, key: str) -> dict[str, Any] | None:
    """A device by id, MAC (any notation) or serial number, with its tags."""
    c = devices.c
    mac = normalize_mac(key)
    cond = sa.or_(c.id == key, c.serial_number == key, *([c.mac == mac] if mac else []))
    row = conn.execute(sa.select(devices).where(cond).limit(1)).mappings().first()
    if row is None:
        return None
    tags = conn.execute(sa.select(device_tags.c.tag).where(device_tags.c.device_id == row["id"])).scalars()
    return dict(row) | {"tags": sorted(tags)}


def get_parameters(conn: Connection, device_id: str, prefix: str = "") -> list[dict[str, Any]]:
    c = parameters.c
    q = sa.select(parameters).where(c.device_id == device_id).order_by(c.path)
    if prefix:
        q = q.where(c.path.startswith(prefix, autoescape=True))
    return [dict(r) for r in conn.execute(q).mappings()]


def find_devices(
    conn: Connection,
    *,
    keys: Iterable[str] = (),
    product_class: str | None = None,
    oui: str | None = None,
    software_version: str | None = None,
    tag: str | None = None,
    informed_after: datetime | None = None,
    informed_before: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Devices matching every filter; ``keys`` are ids, MACs (any notation) or serial numbers.

    With no filter at all, every device. Ordered by id, so pages and bulk jobs are stable.
    """
    c = devices.c
    q = sa.select(devices).order_by(c.id)
    keys = list(keys)
    if keys:
        macs = [m for m in (normalize_mac(k) for k in keys) if m]
        q = q.where(sa.or_(c.id.in_(keys), c.serial_number.in_(keys), c.mac.in_(macs)))
    if product_class is not None:
        q = q.where(c.product_class == product_class)
    if oui is not None:
        q = q.where(c.oui == oui.upper())
    if software_version is not None:
        q = q.where(c.software_version == software_version)
    if tag is not None:
        tagged = sa.select(device_tags.c.device_id).where(device_tags.c.tag == tag)
        q = q.where(c.id.in_(tagged))
    if informed_after is not None:
        q = q.where(c.last_inform >= informed_after)
    if informed_before is not None:
        q = q.where(sa.or_(c.last_inform < informed_before, c.last_inform.is_(None)))
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def set_credentials(conn: Connection, device_id: str, username: str | None, password: str | None) -> None:
    """Give a device its own CPE credentials (None, None: back to the shared ones).

    Raises ValueError naming the device that already uses the user name.
    """
    if username is not None:
        owner = conn.execute(
            sa.select(devices.c.id).where(devices.c.username == username, devices.c.id != device_id)
        ).scalar_one_or_none()
        if owner is not None:
            raise ValueError(f"user name {username!r} is already used by device {owner}")
    conn.execute(
        devices.update().where(devices.c.id == device_id).values(username=username, password=password)
    )


def get_events(conn: Connection, device_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The device's latest events, newest first, with the session each came in."""
    c = events.c
    q = sa.select(events).where(c.device_id == device_id).order_by(c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def stored_types(conn: Connection, device_id: str, paths: Iterable[str]) -> dict[str, str]:
    """The xsi types the store knows for these parameters of a device."""
    c = parameters.c
    q = sa.select(c.path, c.type).where(
        c.device_id == device_id, c.path.in_(list(paths)), c.type.is_not(None)
    )
    return {path: kind for path, kind in conn.execute(q)}


def entries_count(table: str) -> str:
    """The ``...NumberOfEntries`` parameter that counts a table's instances (TR-106 naming)."""
    return table.rstrip(".") + "NumberOfEntries"


#: words that make a parameter's value a secret (SIP AuthPassword, Wi-Fi KeyPassphrase, PreSharedKey...)
SECRET_WORDS = ("Password", "Passphrase", "PreSharedKey", "Secret")
MASK = "********"


def is_secret(path: str) -> bool:
    """Whether a parameter holds a secret, by the last part of its name."""
    last = path.rstrip(".").rpartition(".")[2]
    return any(word in last for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """What to show for a secret: a mask when it is set, nothing when it is empty."""
    return MASK if value not in (None, "") else value


def set_tags(
    conn: Connection, device_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> list[str]:
    """Add and remove a device's tags; returns its tags after."""
    c = device_tags.c
    removing = list(remove)
    if removing:
        conn.execute(device_tags.delete().where(c.device_id == device_id, c.tag.in_(removing)))
    adding = [{"device_id": device_id, "tag": t} for t in dict.fromkeys(add) if t not in removing]
    if adding:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(device_tags).on_conflict_do_nothing(), adding)
    return sorted(conn.execute(sa.select(c.tag).where(c.device_id == device_id)).scalars())


# --- the profile server (phones that resync by Profile_Rule) ------------------------------------

REDIRECT_STATUSES = (301, 302)


def find_phone(conn: Connection, macs: Iterable[str], serials: Iterable[str]) -> dict[str, Any] | None:
    """The first device found by these MACs, then these serial numbers (the one that informed last
    when several share a key)."""
    c = devices.c
    for column, keys in ((c.mac, macs), (c.serial_number, serials)):
        for key in keys:
            q = (
                sa.select(devices)
                .where(column == key)
                .order_by(c.last_inform.desc().nulls_last(), c.created_at.desc())
                .limit(1)
            )
            row = conn.execute(q).mappings().first()
            if row is not None:
                return dict(row)
    return None


def record_profile_fetch(
    conn: Connection,
    device: dict[str, Any],
    *,
    now: datetime,
    ip: str | None = None,
    mac: str | None = None,
    model: str | None = None,
    vendor: str | None = None,
    firmware: str | None = None,
) -> dict[str, Any]:
    """Store what a profile fetch tells of a device: when and from where; and from its User-Agent
    what the store does not know yet (MAC, model, vendor). The firmware is taken only for devices
    that never informed over TR-069: an Inform reports the full SoftwareVersion, which the
    User-Agent's short one (11.0.1) must not overwrite. Returns the columns it set."""
    values: dict[str, Any] = {"last_profile_fetch": now}
    if ip:
        values["ip"] = ip
    for column, value in (("mac", mac), ("product_class", model), ("manufacturer", vendor)):
        if value and not device.get(column):
            values[column] = value
    if firmware and device.get("last_inform") is None:
        values["software_version"] = firmware
    conn.execute(devices.update().where(devices.c.id == device["id"]).values(**values))
    return values


def set_profile_redirect(conn: Connection, device_id: str, url: str | None, status: int = 301) -> None:
    """Send a device's profile fetches to another provisioning server (None: serve them here again).

    ``url`` ending in ``/`` is a server, to which the phone's path is appended; otherwise the
    profile's full URL. ValueError for anything a phone could not follow.
    """
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"{url!r} is not an http:// or https:// URL; give the new server "
                "(http://prov.example.net:7567/) or the full URL of the profile"
            )
        if status not in REDIRECT_STATUSES:
            raise ValueError(f"redirect status {status} is not 301 (moved) or 302 (moved for now)")
    conn.execute(
        devices.update()
        .where(devices.c.id == device_id)
        .values(profile_redirect=url, profile_redirect_status=status if url else None)
    )
