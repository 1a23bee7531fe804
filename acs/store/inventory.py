"""The inventory: devices and their parameter trees, as Informs and RPC responses tell them.

Functions take a Connection inside the caller's transaction, so one CWMP
message is one transaction. Upserts write only rows whose value changed:
a periodic Inform that repeats the same values costs no writes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from acs.cwmp import rpc, values
from acs.store.prepared import Prepared
from acs.store.schema import (
    UTCDateTime,
    device_tags,
    devices,
    events,
    mac_conflicts,
    parameters,
    revisions,
    sessions,
    tasks,
    utcnow,
)

log = logging.getLogger(__name__)

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


#: the facts by the last part of their names: most parameters have none, the rest one or two
_FACTS_BY_NAME: dict[str, list[tuple[str, str]]] = {}
for _suffix, _column in _DEVICE_FACTS.items():
    _FACTS_BY_NAME.setdefault(_suffix.rpartition(".")[2], []).append((_suffix, _column))


def device_facts(params: Iterable[rpc.ParameterValueStruct]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for p in params:
        for suffix, column in _FACTS_BY_NAME.get(p.Name.rpartition(".")[2], ()):
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
    mac = facts.pop("mac", None)
    if facts:
        _set_facts(tuple(sorted(facts))).execute(conn, facts | {"device": device_id})
    if mac:
        claim_mac(conn, device_id, mac, now=utcnow(), source="parameters")


@functools.cache
def _set_facts(columns: tuple[str, ...]) -> Prepared:
    """The UPDATE of these device columns: a discovery's value batches each run one or none."""
    return Prepared(
        devices.update()
        .where(devices.c.id == sa.bindparam("device"))
        .values({c: sa.bindparam(c, type_=devices.c[c].type) for c in columns})
    )


@functools.cache
def _upsert_statement(
    dialect_name: str,
    table: sa.Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    changed: tuple[str, ...],
    returning: tuple[sa.ColumnElement[Any], ...] = (),
    first: tuple[str, ...] = (),
    recordset: tuple[str, ...] = (),
    kept: tuple[str, ...] = (),
) -> Any:
    """``first`` columns are written only while they are still NULL (a device's first Inform).
    ``kept`` columns keep their value when another row has the new one already (a MAC stays with
    the device that had it); the EXISTS runs only when the value changes. ``recordset``
    (PostgreSQL): the rows come as one JSON array of objects with these keys,
    ``INSERT ... SELECT ... FROM json_to_recordset(:rows)``."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    if recordset:
        rows = sa.cast(sa.bindparam("rows", type_=sa.Text), postgresql.JSON)
        found = sa.func.json_to_recordset(rows).table_valued(
            *(sa.column(c, table.c[c].type) for c in recordset)
        )
        stmt = stmt.from_select(recordset, sa.select(*found.render_derived(with_types=True).c))
    where = None
    if changed:
        where = sa.or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in changed))
    set_ = {c: stmt.excluded[c] for c in update}
    set_ |= {c: sa.func.coalesce(table.c[c], stmt.excluded[c]) for c in first}
    for c in kept:
        # written out: SQLAlchemy does not correlate a subquery with ON CONFLICT's row and excluded
        others = " AND ".join(f"other.{k} <> {table.name}.{k}" for k in keys)
        taken = sa.literal_column(
            f"EXISTS (SELECT 1 FROM {table.name} AS other WHERE other.{c} = excluded.{c} AND {others})",  # noqa: S608 - names of the schema's own
            sa.Boolean,
        )
        unchanged = table.c[c].is_not_distinct_from(stmt.excluded[c])
        set_[c] = sa.case((unchanged, table.c[c]), (taken, table.c[c]), else_=stmt.excluded[c])
    stmt = stmt.on_conflict_do_update(index_elements=[table.c[k] for k in keys], set_=set_, where=where)
    return stmt.returning(*returning) if returning else stmt


def _upsert(
    conn: Connection,
    table: sa.Table,
    keys: tuple[str, ...],
    rows: list[dict[str, Any]],
    update: tuple[str, ...],
    changed: tuple[str, ...] = (),
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE on PostgreSQL and SQLite; rows whose ``changed`` columns
    match are left alone, so repeating a value costs no write. A key given twice is written once,
    with its last row.

    Through SQL compiled once (``acs.store.prepared``): SQLAlchemy's per-row parameter handling
    cost more than the database's work for a 100-value GetParameterValues batch. SQLite gets the
    rows (all with the same keys) through the driver's executemany. PostgreSQL, where
    executemany runs one statement per row, gets one statement whose rows come as one JSON
    text (``json_to_recordset``): for ~600 rows, 7.8 -> ~4 ms of PostgreSQL's CPU and 4.4 ->
    ~1.1 ms of ours (arrays through ``unnest`` cost us 4 ms: psycopg dumps lists in Python).
    """
    if not rows:
        return
    columns = tuple(rows[0])
    if conn.dialect.name != "postgresql" or len(rows) == 1:
        _prepared_upsert(table, keys, update, changed, columns).executemany(conn, rows)
        return
    # one statement cannot update a row twice: one row per key, the last, as executemany leaves it
    rows = list({tuple(r[k] for k in keys): r for r in rows}.values())
    text = json.dumps(rows, default=_json_datetime, separators=(",", ":"))
    _prepared_bulk_upsert(table, keys, update, changed, columns).execute(conn, {"rows": text})


_UTC, _POSTGRESQL = UTCDateTime(), postgresql.dialect()


def _json_datetime(value: Any) -> str:
    """Datetimes in ``json_to_recordset``'s rows, through ``UTCDateTime`` as a bound one would go
    (naive ones refused, aware ones in UTC)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{value!r} cannot go in a JSON row")
    utc = _UTC.process_bind_param(value, _POSTGRESQL)
    assert utc is not None
    return utc.isoformat()


@functools.cache
def _prepared_bulk_upsert(
    table: sa.Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    changed: tuple[str, ...],
    columns: tuple[str, ...],
) -> Prepared:
    """PostgreSQL's upsert of many rows in one statement, given as one JSON text."""
    return Prepared(_upsert_statement("postgresql", table, keys, update, changed, recordset=columns))


@functools.cache
def _prepared_upsert(
    table: sa.Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    changed: tuple[str, ...],
    columns: tuple[str, ...],
    returning: tuple[sa.ColumnElement[Any], ...] = (),
    first: tuple[str, ...] = (),
    kept: tuple[str, ...] = (),
) -> Prepared:
    """The upsert of rows that carry these ``columns``, for either dialect."""
    return Prepared(
        lambda dialect: _upsert_statement(dialect, table, keys, update, changed, returning, first, kept=kept),
        columns=columns,
    )


#: the device columns record_device returns
RECORDED = ("id", "oui", "product_class", "software_version", "first_inform")
#: and, read in the same statement, whether the device has sessions still open (its new Inform
#: ends them) and tasks sent and never answered (those of a session that died, which go back to
#: the queue): mostly neither, and the session then skips those statements. (The device is a
#: parameter, not a correlation: SQLite's RETURNING names columns unqualified.)
_DEVICE_STATE = (
    sa.exists()
    .where(sessions.c.device_id == sa.bindparam("device"), sessions.c.status == "open")
    .label("open_sessions"),
    sa.exists()
    .where(
        tasks.c.device_id == sa.bindparam("device"), tasks.c.status == "sent", tasks.c.answered_at.is_(None)
    )
    .label("sent_tasks"),
)
#: and the policies' revision, so that their cached copy is known current without a statement
_POLICIES_REVISION = (
    sa.select(revisions.c.revision)
    .where(revisions.c.name == "policies")
    .scalar_subquery()
    .label("policies_revision")
)
#: and the MAC it has after the upsert: not the Inform's when another device has that one
_RECORD_RETURNING = (
    *(devices.c[c] for c in RECORDED),
    devices.c.mac,
    *_DEVICE_STATE,
    _POLICIES_REVISION,
)


def record_device(
    conn: Connection,
    device_id: str,
    inform: rpc.Inform,
    *,
    version: str,
    remote_addr: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Store who the device is, from its Inform; returns what policies match on (``RECORDED``),
    ``open_sessions`` and ``sent_tasks`` (``_DEVICE_STATE``), and ``policies_revision``.

    ``first_inform`` is ``now`` when this Inform was the device's first; a device pre-registered
    by its MAC or serial number is then merged into it (``adopt_preregistered``). A MAC another
    device has stays with it: this device keeps its own (``mac``), and the conflict is recorded
    (``claim_mac``). The upsert itself refuses it, so a periodic Inform costs no statement more.
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
    row |= {"first_inform": now, "created_at": now}
    kept = ("mac",) if "mac" in row else ()
    upsert = _prepared_upsert(
        devices, ("id",), update, (), tuple(row), _RECORD_RETURNING, ("first_inform",), kept
    )
    stored = upsert.first_mapping(conn, row | {"device": device_id})
    assert stored is not None  # an upsert returns its row
    first = stored["first_inform"] == now
    if first:
        adopt_preregistered(conn, device_id, row["serial_number"], row.get("mac"))
    reported = row.get("mac")
    # refused by the upsert, or written by a first Inform's INSERT (which the guard does not see)
    if reported and (stored["mac"] != reported or first):
        holder = _mac_holder(conn, reported, device_id)
        if holder is not None:
            if stored["mac"] == reported:
                conn.execute(devices.update().where(devices.c.id == device_id).values(mac=None))
                stored["mac"] = None
            _record_conflict(conn, reported, device_id, holder, now=now, source="inform")
    return stored


_RECORD_EVENT = Prepared(
    events.insert(), columns=("device_id", "session_id", "code", "command_key", "received_at")
)
_STORED_VALUES = Prepared(
    sa.select(parameters.c.path, parameters.c.value, parameters.c.type).where(
        parameters.c.device_id == sa.bindparam("device"),
        parameters.c.path.in_(sa.bindparam("paths", expanding=True)),
    )
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
        _RECORD_EVENT.executemany(
            conn,
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


_TREE_KEYS = ("device_id", "path")


def _store_tree(
    conn: Connection, rows: list[dict[str, Any]], changed: tuple[str, ...], also: tuple[str, ...] = ()
) -> None:
    """Upsert some columns of a device's parameter rows, by path; a row is written only when one of
    its ``changed`` columns differs (``also`` columns are written with them).

    Every row carries ``device_id``, ``path``, ``object`` and ``read_at`` and the same other
    columns, in the same order; a path given twice is written twice, the last one winning.
    Callers make each row as one dict literal: 1,300 of them per new Cisco phone.
    """
    _upsert(conn, parameters, _TREE_KEYS, rows, changed + also, changed=changed)


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
    encode, infer_type = values.encode, values.infer_type
    fields = {
        p.Name: (v if type(v := p.Value) is str else encode(v, p.Type), p.Type or infer_type(v))
        for p in params
    }
    if skip_unchanged and fields:
        for path, value, kind in _STORED_VALUES.all(conn, {"device": device_id, "paths": list(fields)}):
            if fields.get(path) == (value, kind):
                del fields[path]
    rows = [
        {
            "device_id": device_id,
            "path": path,
            "object": path.endswith("."),
            "read_at": now,
            "value": value,
            "type": kind,
        }
        for path, (value, kind) in fields.items()
        if path
    ]
    _store_tree(conn, rows, ("value", "type"), also=("read_at",))


def store_names(
    conn: Connection, device_id: str, infos: Iterable[rpc.ParameterInfoStruct], now: datetime
) -> None:
    """Upsert the paths a GetParameterNamesResponse lists, with their writability."""
    rows = [
        {
            "device_id": device_id,
            "path": i.Name,
            "object": i.Name.endswith("."),
            "read_at": now,
            "writable": i.Writable,
        }
        for i in infos
        if i.Name
    ]
    _store_tree(conn, rows, ("writable", "object"))


def store_attributes(
    conn: Connection, device_id: str, attrs: Iterable[rpc.ParameterAttributeStruct], now: datetime
) -> None:
    """Upsert the notification and access list a GetParameterAttributesResponse reports."""
    rows = [
        {
            "device_id": device_id,
            "path": a.Name,
            "object": a.Name.endswith("."),
            "read_at": now,
            "notification": a.Notification,
            "access_list": ",".join(a.AccessList),
        }
        for a in attrs
        if a.Name
    ]
    _store_tree(conn, rows, ("notification", "access_list"))


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


#: What never leaves the store through a listing, the CLI or the API: the device's two passwords.
SECRET_FIELDS = ("password", "connection_request_password")
#: A device as operators and API clients see it: its columns less the secrets, and its tags.
DEVICE_FIELDS = (*(c.name for c in devices.c if c.name not in SECRET_FIELDS), "tags")
#: What device listings sort by ("-" in front: descending).
SORT_FIELDS = (
    "id",
    "mac",
    "serial_number",
    "product_class",
    "oui",
    "software_version",
    "ip",
    "first_inform",
    "last_inform",
    "last_boot",
    "created_at",
)


@dataclass(frozen=True)
class ParameterMatch:
    """A stored parameter's value equals ``value`` (or, with ``prefix``, starts with it)."""

    path: str
    value: str
    prefix: bool = False

    @classmethod
    def parse(cls, text: str, *, prefix: bool = False) -> ParameterMatch:
        """``Device.DeviceInfo.ModelName=CP-8841``: the first ``=`` ends the path (names have none)."""
        path, sep, value = text.partition("=")
        if not sep or not path:
            raise ValueError(f"{text!r}: expected PATH=VALUE, e.g. Device.DeviceInfo.ModelName=CP-8841-3PCC")
        return cls(path, value, prefix)


def device_json(row: dict[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
    """A device as the CLI's ``--json`` and the API show it: no secrets; with ``fields``, only those
    (and always the id)."""
    wanted = DEVICE_FIELDS if fields is None else ("id", *(f for f in fields if f != "id"))
    return {k: row[k] for k in wanted if k in row}


class AmbiguousDevice(LookupError):
    """A MAC or serial number that several devices share (two models that report one MAC): which
    one was meant is never guessed. ``device_ids``: the devices it names."""

    def __init__(self, key: str, device_ids: Iterable[str]) -> None:
        self.key = key
        self.device_ids = sorted(device_ids)
        super().__init__(
            f"{key!r} names {len(self.device_ids)} devices: {', '.join(self.device_ids)}; "
            "give the id of the one you mean"
        )


#: how many devices one MAC or serial number is looked up among: more would be shown as "and more"
_NAMED_AT_MOST = 100


def _key_condition(key: str) -> sa.ColumnElement[bool]:
    """Devices a key may name: its id, serial number or MAC (any notation)."""
    c = devices.c
    mac = normalize_mac(key)
    return sa.or_(c.id == key, *([c.serial_number == key] if key else []), *([c.mac == mac] if mac else []))


def _the_one(key: str, rows: list[Any]) -> Any | None:
    """Of the rows a key matches, the one it names: the device with that id, else the only one with
    that serial number or MAC; AmbiguousDevice when several have it."""
    exact = [r for r in rows if r["id"] == key]
    if exact:
        return exact[0]
    if len(rows) > 1:
        raise AmbiguousDevice(key, [r["id"] for r in rows])
    return rows[0] if rows else None


def get_device(conn: Connection, key: str) -> dict[str, Any] | None:
    """A device by id, MAC (any notation) or serial number, with its tags; None if it names none.

    Raises AmbiguousDevice for a MAC or serial number several devices share (an id always names one).
    """
    c = devices.c
    first = sa.case((c.id == key, 0), else_=1)
    q = sa.select(devices).where(_key_condition(key)).order_by(first, c.id).limit(_NAMED_AT_MOST)
    row = _the_one(key, list(conn.execute(q).mappings()))
    if row is None:
        return None
    tags = conn.execute(sa.select(device_tags.c.tag).where(device_tags.c.device_id == row["id"])).scalars()
    return dict(row) | {"tags": sorted(tags)}


def get_parameters(
    conn: Connection,
    device_id: str,
    prefix: str = "",
    *,
    paths: Iterable[str] = (),
    show_secrets: bool = True,
) -> list[dict[str, Any]]:
    """A device's stored parameters under ``prefix`` ("" or "." for all), ordered by path.

    ``paths`` narrows them to these names (one ending in "." stands for its subtree); without
    ``show_secrets`` the values of password parameters are masked.
    """
    c = parameters.c
    q = sa.select(parameters).where(c.device_id == device_id).order_by(c.path)
    if prefix not in ("", "."):
        q = q.where(c.path.startswith(prefix, autoescape=True))
    wanted = list(paths)
    if wanted:
        subtree = [c.path.startswith(p, autoescape=True) for p in wanted if p.endswith(".")]
        q = q.where(sa.or_(c.path.in_([p for p in wanted if not p.endswith(".")]), *subtree))
    rows = [dict(r) for r in conn.execute(q).mappings()]
    if not show_secrets:
        for r in rows:
            if is_secret(r["path"]):
                r["value"] = redact(r["value"])
    return rows


def resolve_keys(conn: Connection, keys: Iterable[str]) -> list[str]:
    """The ids of the devices these keys (ids, MACs in any notation, serial numbers) name, in the
    keys' order; keys that name none are left out (see ``unmatched_keys``). AmbiguousDevice for
    a MAC or serial number several devices share."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    c = devices.c
    macs = {k: normalize_mac(k) for k in keys}
    found = conn.execute(
        sa.select(c.id, c.serial_number, c.mac).where(
            sa.or_(
                c.id.in_(keys),
                c.serial_number.in_([k for k in keys if k]),
                c.mac.in_([m for m in macs.values() if m]),
            )
        )
    ).mappings()
    by: dict[str, list[Any]] = {}
    for row in found:
        for value in {row["id"], row["serial_number"], row["mac"]} - {None, ""}:
            by.setdefault(value, []).append(row)
    ids: list[str] = []
    for key in keys:
        mac = macs[key]
        rows = {r["id"]: r for r in by.get(key, []) + (by.get(mac, []) if mac else [])}
        one = _the_one(key, sorted(rows.values(), key=lambda r: r["id"]))
        if one is not None:
            ids.append(one["id"])
    return list(dict.fromkeys(ids))


def _device_conditions(
    *,
    key_ids: Iterable[str] | None = None,
    ids: Iterable[str] = (),
    macs: Iterable[str] = (),
    serials: Iterable[str] = (),
    product_class: str | None = None,
    oui: str | None = None,
    software_version: str | None = None,
    tag: str | None = None,
    informed_after: datetime | None = None,
    informed_before: datetime | None = None,
    params: Iterable[ParameterMatch] = (),
) -> list[sa.ColumnElement[bool]]:
    c = devices.c
    where: list[sa.ColumnElement[bool]] = []
    if key_ids is not None:
        where.append(c.id.in_(list(key_ids)))
    if ids := list(ids):
        where.append(c.id.in_(ids))
    if macs := list(macs):
        where.append(c.mac.in_([normalize_mac(m) or m for m in macs]))
    if serials := list(serials):
        where.append(c.serial_number.in_(serials))
    if product_class is not None:
        where.append(c.product_class == product_class)
    if oui is not None:
        where.append(c.oui == oui.upper())
    if software_version is not None:
        where.append(c.software_version == software_version)
    if tag is not None:
        where.append(c.id.in_(sa.select(device_tags.c.device_id).where(device_tags.c.tag == tag)))
    if informed_after is not None:
        where.append(c.last_inform >= informed_after)
    if informed_before is not None:
        where.append(sa.or_(c.last_inform < informed_before, c.last_inform.is_(None)))
    p = parameters.c
    for match in params:
        value = p.value.startswith(match.value, autoescape=True) if match.prefix else p.value == match.value
        where.append(sa.exists().where(p.device_id == c.id, p.path == match.path, value))
    return where


def find_devices(
    conn: Connection,
    *,
    sort: str = "id",
    limit: int | None = None,
    offset: int = 0,
    tags: bool = False,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Devices matching every filter (see ``count_devices``); ``keys`` are ids, MACs (any notation)
    or serial numbers, each naming one device (AmbiguousDevice otherwise: see ``resolve_keys``),
    ``ids``/``macs``/``serials`` one kind of each (``macs``: every device with one of them).

    With no filter at all, every device. Ordered by ``sort`` (a SORT_FIELDS name, "-" in front for
    descending) and then id, so pages and bulk jobs are stable. ``tags``: each row gets its tags.
    """
    c = devices.c
    column, descending = sort.removeprefix("-"), sort.startswith("-")
    if column not in SORT_FIELDS:
        raise ValueError(f"cannot sort by {sort!r}; allowed: {', '.join(SORT_FIELDS)} (- for descending)")
    order = c[column].desc() if descending else c[column].asc()
    where = _device_conditions(**_keys_resolved(conn, filters))
    q = sa.select(devices).where(*where).order_by(order, c.id).offset(offset or None)
    if limit is not None:
        q = q.limit(limit)
    rows = [dict(r) for r in conn.execute(q).mappings()]
    if tags:
        by_device: dict[str, list[str]] = {r["id"]: [] for r in rows}
        t = device_tags.c
        for start in range(0, len(rows), 500):
            chunk = [r["id"] for r in rows[start : start + 500]]
            query = sa.select(t.device_id, t.tag).where(t.device_id.in_(chunk)).order_by(t.tag)
            for device_id, tag in conn.execute(query):
                by_device[device_id].append(tag)
        for r in rows:
            r["tags"] = by_device[r["id"]]
    return rows


def unmatched_keys(rows: Iterable[dict[str, Any]], keys: Iterable[str]) -> list[str]:
    """The ``keys`` (ids, MACs in any notation, serials) that name none of the device ``rows``."""
    found = {v for r in rows for v in (r["id"], r["serial_number"], r["mac"]) if v}
    return [k for k in keys if k not in found and normalize_mac(k) not in found]


def some(names: list[str], shown: int = 5) -> str:
    """The first few of ``names``, and how many more: for messages about a long list."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def count_devices(conn: Connection, **filters: Any) -> int:
    """How many devices match the filters of ``find_devices``."""
    where = _device_conditions(**_keys_resolved(conn, filters))
    return conn.execute(sa.select(sa.func.count()).select_from(devices).where(*where)).scalar_one()


def _keys_resolved(conn: Connection, filters: dict[str, Any]) -> dict[str, Any]:
    """The filters with ``keys`` given as the ids they name (``key_ids``)."""
    keys = list(filters.get("keys") or ())
    rest = {k: v for k, v in filters.items() if k != "keys"}
    return rest | ({"key_ids": resolve_keys(conn, keys)} if keys else {})


def delete_device(conn: Connection, device_id: str) -> bool:
    """Forget a device: its tree, tags, events, sessions and tasks go with it. False if unknown."""
    return conn.execute(devices.delete().where(devices.c.id == device_id)).rowcount > 0


def preregister(
    conn: Connection,
    *,
    mac: str | None = None,
    serial_number: str | None = None,
    oui: str | None = None,
    product_class: str | None = None,
    tags: Iterable[str] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Make a device known before it ever informs, so tags, credentials and tasks can wait for it.

    With product class and serial number (and the OUI, by default the MAC's first half) its id
    is the one its Inform will carry (``OUI-ProductClass-SerialNumber``), as ``acs device
    import`` makes it; otherwise the id is a placeholder (``mac:...`` or
    ``serial:...``) that the device's first Inform replaces, keeping what was given to it
    (``adopt_preregistered``). ValueError names what is missing, malformed or taken.
    """
    if mac is not None:
        normal = normalize_mac(mac)
        if normal is None:
            raise ValueError(f"mac {mac!r} is not a MAC address; give 12 hex digits, e.g. 00:56:2B:04:36:15")
        mac = normal
    if not mac and not serial_number:
        raise ValueError("give mac or serial_number: how the device will be recognised when it informs")
    oui = oui or (mac[:6] if mac else None)  # a MAC starts with its maker's OUI, as the import assumes
    if oui and product_class and serial_number:
        device_id = rpc.device_key(oui, product_class, serial_number)
    else:
        device_id = f"serial:{serial_number}" if serial_number else f"mac:{mac}"
    c = devices.c
    taken = sa.or_(
        c.id == device_id,
        *([c.serial_number == serial_number] if serial_number else []),
        *([c.mac == mac] if mac else []),
    )
    other = conn.execute(sa.select(c.id).where(taken).limit(1)).scalar_one_or_none()
    if other is not None:
        raise ValueError(f"device {other} is already known with this id, serial number or MAC")
    row = {
        "id": device_id,
        "oui": (oui or "").upper(),
        "product_class": product_class,
        "serial_number": serial_number or "",
        "mac": mac,
        "created_at": now or utcnow(),
    }
    conn.execute(devices.insert(), row)
    set_tags(conn, device_id, add=tags)
    device = get_device(conn, device_id)
    assert device is not None
    return device


def adopt_preregistered(conn: Connection, device_id: str, serial_number: str, mac: str | None) -> list[str]:
    """A device's first Inform: merge the pre-registered placeholders that name it (by serial number
    or MAC) into it: their tags, their queued tasks and their CPE credentials. Returns their ids."""
    c = devices.c
    same = [c.serial_number == serial_number] if serial_number else []
    same += [c.mac == mac] if mac else []
    if not same:
        return []
    placeholder = sa.or_(c.id.startswith("mac:"), c.id.startswith("serial:"))
    q = sa.select(devices).where(c.first_inform.is_(None), placeholder, sa.or_(*same))
    placeholders = [dict(r) for r in conn.execute(q).mappings()]
    for old in placeholders:
        tags = conn.execute(sa.select(device_tags.c.tag).where(device_tags.c.device_id == old["id"]))
        set_tags(conn, device_id, add=tags.scalars())
        conn.execute(tasks.update().where(tasks.c.device_id == old["id"]).values(device_id=device_id))
        conn.execute(devices.delete().where(c.id == old["id"]))
        if old["username"] is not None:
            conn.execute(
                devices.update()
                .where(c.id == device_id, c.username.is_(None))
                .values(username=old["username"], password=old["password"])
            )
    return [old["id"] for old in placeholders]


def set_credentials(conn: Connection, device_id: str, username: str | None, password: str | None) -> None:
    """Give a device its own CPE credentials (None, None: back to the shared ones).

    From then on only they open sessions for it: the shared credentials no longer speak for it.
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
    credentials_changed(conn)


_BUMP_CREDENTIALS = (
    revisions.update().where(revisions.c.name == "credentials").values(revision=revisions.c.revision + 1)
)


def credentials_changed(conn: Connection) -> None:
    """Devices' own credentials changed (in this transaction): server processes forget the user names
    they remember no device has (``acs.web.auth.UnknownUsers``). Call it wherever they are written."""
    conn.execute(_BUMP_CREDENTIALS)


_PLACEHOLDER = sa.or_(devices.c.id.startswith("mac:"), devices.c.id.startswith("serial:"))
_SPEAKER = Prepared(
    sa.select(devices.c.username.is_not(None), devices.c.first_inform.is_not(None)).where(
        devices.c.id == sa.bindparam("device")
    )
)


@dataclass(frozen=True, slots=True)
class Known:
    """What the store knows of the device an opening Inform names, before anything is written."""

    #: the device, or a placeholder its first Inform would adopt (``adopt_preregistered``), is known
    known: bool
    #: the ids of those rows that have credentials of their own: only those credentials speak for it
    owners: frozenset[str]


def known_as(conn: Connection, device_id: str, serial_number: str, mac: str | None) -> Known:
    """Whether the device an Inform names is known, and whose own credentials speak for it: its own
    row's, or, before its first Inform, those of the placeholders pre-registered by its serial number
    or MAC that this Inform would adopt. A periodic Inform of a known device costs one lookup by key."""
    row = _SPEAKER.first(conn, {"device": device_id})
    owners = {device_id} if row is not None and row[0] else set()
    if row is not None and row[1]:
        return Known(True, frozenset(owners))  # it has informed: no placeholder is adopted any more
    same = [devices.c.serial_number == serial_number] if serial_number else []
    same += [devices.c.mac == mac] if mac else []
    if same:
        q = sa.select(devices.c.id, devices.c.username.is_not(None)).where(
            devices.c.first_inform.is_(None), _PLACEHOLDER, sa.or_(*same)
        )
        found = conn.execute(q).all()
        owners |= {placeholder for placeholder, own in found if own}
        if found:
            return Known(True, frozenset(owners))
    return Known(row is not None, frozenset(owners))


def session_ref(session_id: str | None) -> str | None:
    """What a session is shown as: a digest of its id, never the id itself.

    The id is the session's cookie, which lets whoever holds it speak in the CPE's name for
    the rest of the session; listings (CLI, API) name sessions by this instead.
    """
    if session_id is None:
        return None
    return hashlib.sha256(session_id.encode()).hexdigest()[:16]


def get_events(conn: Connection, device_id: str, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """The device's latest events, newest first, with the session each came in."""
    c = events.c
    q = sa.select(events).where(c.device_id == device_id).order_by(c.id.desc()).limit(limit)
    rows = [dict(r) for r in conn.execute(q.offset(offset or None)).mappings()]
    for r in rows:
        r["session_id"] = session_ref(r["session_id"])
    return rows


def get_sessions(conn: Connection, device_id: str, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """The device's latest CWMP sessions, newest first (without the state they keep)."""
    c = sessions.c
    q = (
        sa.select(c.id, c.started_at, c.last_message_at, c.ended_at, c.status, c.remote_addr, c.cwmp_ns)
        .where(c.device_id == device_id)
        .order_by(c.started_at.desc(), c.id)
        .limit(limit)
        .offset(offset or None)
    )
    rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["id"] = session_ref(r["id"])
    return rows


def stored_types(conn: Connection, device_id: str, paths: Iterable[str]) -> dict[str, str]:
    """The xsi types the store knows for these parameters of a device."""
    c = parameters.c
    q = sa.select(c.path, c.type).where(
        c.device_id == device_id, c.path.in_(list(paths)), c.type.is_not(None)
    )
    return {path: kind for path, kind in conn.execute(q)}


def stored_values(conn: Connection, device_id: str, paths: Iterable[str]) -> dict[str, str | None]:
    """The values the store holds for these parameters of a device (as text), by path."""
    rows = _STORED_VALUES.all(conn, {"device": device_id, "paths": list(paths)})
    return {path: value for path, value, _ in rows}


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


def find_phone(
    conn: Connection, macs: Iterable[str], serials: Iterable[str], model: str | None = None
) -> dict[str, Any] | None:
    """The device found by the first of these MACs, then of these serial numbers, that names one.

    When several devices share it, the phone's ``model`` (from its User-Agent) tells them apart;
    else AmbiguousDevice: serving one phone another's profile (its SIP credentials) is worse than
    serving none."""
    c = devices.c
    for column, keys in ((c.mac, macs), (c.serial_number, serials)):
        for key in keys:
            q = sa.select(devices).where(column == key).order_by(c.id).limit(_NAMED_AT_MOST)
            rows = [dict(r) for r in conn.execute(q).mappings()]
            if len(rows) > 1 and model:
                rows = [r for r in rows if r["product_class"] == model] or rows
            if len(rows) > 1:
                raise AmbiguousDevice(key, [r["id"] for r in rows])
            if rows:
                return rows[0]
    return None


def profile_fetch_facts(
    device: dict[str, Any],
    *,
    now: datetime,
    ip: str | None = None,
    mac: str | None = None,
    model: str | None = None,
    vendor: str | None = None,
    firmware: str | None = None,
) -> dict[str, Any]:
    """What a profile fetch tells of a device: when and from where; and from its User-Agent what the
    store does not know yet (MAC, model, vendor). The firmware is taken only for devices that never
    informed over TR-069: an Inform reports the full SoftwareVersion, which the User-Agent's short
    one (11.0.1) must not overwrite. The device columns to set."""
    values: dict[str, Any] = {"last_profile_fetch": now}
    if ip:
        values["ip"] = ip
    for column, value in (("mac", mac), ("product_class", model), ("manufacturer", vendor)):
        if value and not device.get(column):
            values[column] = value
    if firmware and device.get("last_inform") is None:
        values["software_version"] = firmware
    return values


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
    """Store what a profile fetch tells of a device (``profile_fetch_facts``); a MAC another device
    has is not taken (``claim_mac``). Returns the columns it set."""
    values = profile_fetch_facts(
        device, now=now, ip=ip, mac=mac, model=model, vendor=vendor, firmware=firmware
    )
    told = values.pop("mac", None)
    conn.execute(devices.update().where(devices.c.id == device["id"]).values(**values))
    if told and claim_mac(conn, device["id"], told, now=now, source="profile fetch"):
        values["mac"] = told
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


# --- MAC conflicts: a MAC stays with the device that had it ------------------------------------------

#: what reported a MAC: an Inform, a GetParameterValues answer, a profile fetch's User-Agent, a MAC two
#: devices shared before migration 0012; ``operator``: the device an operator took it from
MAC_SOURCES = ("inform", "parameters", "profile fetch", "upgrade", "operator")
#: the events recorded on the devices of a conflict (beside those the devices informed)
MAC_CONFLICT_EVENT, MAC_RESOLVED_EVENT = "ACS MAC CONFLICT", "ACS MAC RESOLVED"


def _mac_holder(conn: Connection, mac: str, device_id: str) -> str | None:
    """Another device that has ``mac`` (the first created), or None."""
    c = devices.c
    q = sa.select(c.id).where(c.mac == mac, c.id != device_id).order_by(c.created_at, c.id).limit(1)
    return conn.execute(q).scalar_one_or_none()


def claim_mac(conn: Connection, device_id: str, mac: str, *, now: datetime, source: str) -> bool:
    """A device reports ``mac`` (``source``): it gets it unless another device has it; then the MAC
    stays there and the conflict is recorded (``_record_conflict``). Whether it got it."""
    holder = _mac_holder(conn, mac, device_id)
    if holder is None:
        conn.execute(
            devices.update()
            .where(devices.c.id == device_id, devices.c.mac.is_distinct_from(mac))
            .values(mac=mac)
        )
        return True
    _record_conflict(conn, mac, device_id, holder, now=now, source=source)
    return False


def _record_conflict(
    conn: Connection, mac: str, claimant: str, holder: str, *, now: datetime, source: str
) -> None:
    """Count a refused report of ``mac`` by ``claimant``. The first one (a new conflict) is an event on
    both devices and a WARNING line; a conflict an operator resolved stays quiet."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    c = mac_conflicts.c
    stmt = dialect.insert(mac_conflicts).values(
        mac=mac,
        claimant_id=claimant,
        holder_id=holder,
        source=source,
        first_seen_at=now,
        last_seen_at=now,
        reports=1,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.mac, c.claimant_id],
        set_={"last_seen_at": now, "reports": c.reports + 1, "holder_id": holder},
    ).returning(c.first_seen_at)
    if conn.execute(stmt).scalar_one() != now:
        return
    _mac_event(conn, claimant, MAC_CONFLICT_EVENT, f"{mac} held by {holder}", now)
    _mac_event(conn, holder, MAC_CONFLICT_EVENT, f"{mac} claimed by {claimant}", now)
    log.warning(
        "MAC conflict: device %s reported MAC %s (%s), which device %s has; the MAC stays with %s "
        "(its profile is served to it, not to %s): `acs device mac-conflict resolve %s --keep DEVICE`",
        claimant,
        mac,
        source,
        holder,
        holder,
        claimant,
        mac,
    )


def _mac_event(conn: Connection, device_id: str, code: str, detail: str, now: datetime) -> None:
    """An event the ACS records on a device (``command_key`` says what), beside those it informed."""
    conn.execute(events.insert().values(device_id=device_id, code=code, command_key=detail, received_at=now))


#: a conflict as the CLI's ``--json`` and the API show it
MAC_CONFLICT_FIELDS = tuple(c.name for c in mac_conflicts.c)


def list_mac_conflicts(
    conn: Connection,
    *,
    device_id: str | None = None,
    resolved: bool = False,
    mac: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """MAC conflicts, by MAC and claimant: the open ones (``resolved``: those an operator settled too),
    of one device (as claimant or holder) or one MAC."""
    c = mac_conflicts.c
    q = sa.select(mac_conflicts).order_by(c.mac, c.claimant_id).limit(limit).offset(offset or None)
    if not resolved:
        q = q.where(c.resolved_at.is_(None))
    if device_id is not None:
        q = q.where(sa.or_(c.claimant_id == device_id, c.holder_id == device_id))
    if mac is not None:
        q = q.where(c.mac == mac)
    return [dict(r) for r in conn.execute(q).mappings()]


@dataclass(frozen=True)
class MacResolved:
    """What ``resolve_mac_conflict`` did: ``kept`` has the MAC, ``lost`` reported it and do not."""

    mac: str
    kept: str
    lost: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"mac": self.mac, "kept": self.kept, "lost": self.lost}


class NoMacConflict(LookupError):
    """No conflict over this MAC to resolve."""


def resolve_mac_conflict(conn: Connection, mac: str, keep: str, *, now: datetime) -> MacResolved:
    """An operator settles who has ``mac``: device ``keep`` (one that has or claims it) gets it; every
    other one that had it loses it, and its later reports are refused without another alarm (the
    conflict stays, resolved). An event on each. NoMacConflict when none is open over the MAC;
    ValueError when ``keep`` has no part in it."""
    c = mac_conflicts.c
    open_ = list_mac_conflicts(conn, mac=mac)
    if not open_:
        raise NoMacConflict(f"no open conflict over MAC {mac} (see `acs device mac-conflict list`)")
    holders = list(conn.execute(sa.select(devices.c.id).where(devices.c.mac == mac)).scalars())
    involved = sorted({*holders, *(r["claimant_id"] for r in open_), *(r["holder_id"] for r in open_)})
    if keep not in involved:
        raise ValueError(
            f"device {keep} has no part in the conflict over MAC {mac}; keep one of {', '.join(involved)}"
        )
    lost = [d for d in involved if d != keep]
    conn.execute(devices.update().where(devices.c.mac == mac, devices.c.id != keep).values(mac=None))
    conn.execute(devices.update().where(devices.c.id == keep).values(mac=mac))
    conn.execute(mac_conflicts.delete().where(c.mac == mac, c.claimant_id == keep))
    conn.execute(
        mac_conflicts.update()
        .where(c.mac == mac, c.claimant_id.in_(lost))
        .values(holder_id=keep, resolved_at=now)
    )
    recorded = set(conn.execute(sa.select(c.claimant_id).where(c.mac == mac)).scalars())
    for device_id in lost:
        if device_id not in recorded:  # it had the MAC: its reports of it are refused from now on
            conn.execute(
                mac_conflicts.insert().values(
                    mac=mac,
                    claimant_id=device_id,
                    holder_id=keep,
                    source="operator",
                    first_seen_at=now,
                    last_seen_at=now,
                    reports=0,
                    resolved_at=now,
                )
            )
    for device_id in involved:
        _mac_event(conn, device_id, MAC_RESOLVED_EVENT, f"{mac} kept by {keep}", now)
    return MacResolved(mac, keep, lost)
