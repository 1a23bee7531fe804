"""Pre-provisioning: devices created from an inventory file before they first connect.

A provider scans the boxes before shipping them (MAC, serial number, model) and
imports the list, so that each phone gets its own profile at its first resync and
is recognised at its first Inform. A device's id is what its Inform will say,
``OUI-ProductClass-SerialNumber``: the OUI is the MAC's first six hex digits unless
the file gives one (``oui`` column), the ProductClass is the model.

Reading the file is pure (``read_inventory``); ``import_inventory`` writes the rows in
batches, one transaction each. A bad row is reported with its line number and the
reason, and never stops the good ones. A row's ``profile`` becomes the device's own
(device level of the composition, in place of the one an earlier import gave), its
``group`` adds tags (the tag level); a device that already informs over TR-069 gets
what changed as one SetParameterValues. Importing the same file again updates the same
devices: it is how a corrected file is applied.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from acs.cwmp import rpc
from acs.provisioning import tr069
from acs.store import inventory
from acs.store.inventory import normalize_mac
from acs.store.schema import device_tags, devices, profile_assignments, profiles, utcnow

REQUIRED = ("mac", "serial", "model")
OPTIONAL = ("oui", "group", "profile", "username", "password")
#: header spellings seen in inventory exports -> the column they mean
ALIASES = {
    "mac_address": "mac",
    "macaddress": "mac",
    "serial_number": "serial",
    "serialnumber": "serial",
    "sn": "serial",
    "product_class": "model",
    "productclass": "model",
    "groups": "group",
    "tag": "group",
    "tags": "group",
    "user": "username",
}
_TOKEN = re.compile(r"^[A-Za-z0-9._:/+-]{1,64}$")
_OUI = re.compile(r"^[0-9A-Fa-f]{6}$")
_GROUP_SEPARATORS = re.compile(r"[;\s]+")


class InventoryError(ValueError):
    """A file that cannot be read as an inventory at all (no header, a required column missing)."""


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """One phone of the inventory, checked: what the import writes."""

    line: int
    mac: str
    serial: str
    model: str
    oui: str
    groups: tuple[str, ...] = ()
    profile: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def device_id(self) -> str:
        return rpc.device_key(self.oui, self.model, self.serial)


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated


def _column(name: str) -> str:
    key = re.sub(r"[\s-]+", "_", name.strip().lower())
    return ALIASES.get(key, key)


def _dialect(header: str) -> type[csv.Dialect] | csv.Dialect:
    """Comma-separated, or what the header line shows (semicolons from spreadsheets, tabs)."""
    for delimiter in (",", ";", "\t"):
        if delimiter in header:
            return type("Inventory", (csv.excel,), {"delimiter": delimiter})
    return csv.excel


def _check(values: dict[str, str], line: int) -> InventoryRow:
    """A row as an InventoryRow; ValueError naming what is wrong and what is allowed."""
    mac = normalize_mac(values.get("mac", ""))
    if mac is None:
        raise ValueError(f"mac {values.get('mac', '')!r} is not a MAC address (12 hex digits, any notation)")
    for column in ("serial", "model"):
        if not _TOKEN.match(values.get(column, "")):
            raise ValueError(
                f"{column} {values.get(column, '')!r} must be 1 to 64 letters, digits or ._:/+- (no spaces)"
            )
    oui = values.get("oui") or mac[:6]
    if not _OUI.match(oui):
        raise ValueError(f"oui {oui!r} must be 6 hex digits (the manufacturer's, as the Inform gives it)")
    username, password = values.get("username") or None, values.get("password") or None
    if (username is None) != (password is None):
        raise ValueError("give username and password together, or neither")
    groups = tuple(dict.fromkeys(g for g in _GROUP_SEPARATORS.split(values.get("group", "")) if g))
    return InventoryRow(
        line=line,
        mac=mac,
        serial=values["serial"],
        model=values["model"],
        oui=oui.upper(),
        groups=groups,
        profile=values.get("profile") or None,
        username=username,
        password=password,
    )


def read_inventory(text: str) -> tuple[list[InventoryRow], list[RowProblem]]:
    """The rows of an inventory CSV, and the problems of the rows that are not good.

    The first line names the columns (any order, any case): ``mac``, ``serial``,
    ``model`` and optionally ``oui``, ``group`` (tags, several separated by spaces or
    ``;``), ``profile``, ``username`` and ``password``. Blank lines and lines starting
    with ``#`` are skipped. A MAC, device or user name given twice: the later line is
    the problem. InventoryError when the header is unusable.
    """
    lines = io.StringIO(text.removeprefix("\ufeff"), newline="")  # a spreadsheet's byte order mark
    header_line, header_no = "", 0
    for header_no, header_line in enumerate(lines, 1):  # noqa: B007 - the loop finds the header
        if header_line.strip() and not header_line.lstrip().startswith("#"):
            break
    else:
        raise InventoryError("the file is empty; the first line names the columns: mac,serial,model,...")
    dialect = _dialect(header_line)
    header = [_column(c) for c in next(csv.reader([header_line], dialect))]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InventoryError(
            f"no {', '.join(missing)} column in the header {header_line.strip()!r}; "
            f"required: {', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)}"
        )
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InventoryError(
            f"unknown column {', '.join(map(repr, unknown))}; "
            f"columns are {', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)}"
        )
    reader = csv.reader(lines, dialect)
    records: list[tuple[int, dict[str, str]]] = []
    problems: list[RowProblem] = []
    done = 0  # lines the reader has consumed
    for record in reader:
        start, done = header_no + done + 1, reader.line_num
        if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
            continue
        if len(record) > len(header) or any(c in REQUIRED for c in header[len(record) :]):
            problems.append(RowProblem(start, f"{len(record)} fields where the header has {len(header)}"))
            continue
        record += [""] * (len(header) - len(record))  # trailing empty optional fields left out
        records.append((start, {k: v.strip() for k, v in zip(header, record, strict=True)}))
    rows, refused = check_rows(records)
    return rows, sorted(problems + refused, key=lambda p: p.line)


def check_rows(
    records: Iterable[tuple[int, dict[str, str]]], where: str = "on line"
) -> tuple[list[InventoryRow], list[RowProblem]]:
    """Rows as ``(line, {column: text})`` checked, and the problems of the others: a malformed value,
    or a MAC, device or user name an earlier row has ("is also ``where`` N")."""
    rows: list[InventoryRow] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[str, str], int] = {}
    for line, values in records:
        try:
            row = _check(values, line)
        except ValueError as e:
            problems.append(RowProblem(line, str(e)))
            continue
        keys = (("MAC", row.mac), ("device", row.device_id), ("user name", row.username))
        twice = [
            f"{what} {value} is also {where} {seen[(what, value)]}"
            for what, value in keys
            if value is not None and (what, value) in seen
        ]
        if twice:
            problems.append(RowProblem(line, "; ".join(twice)))
            continue
        for what, value in keys:
            if value is not None:
                seen[(what, value)] = line
        rows.append(row)
    return rows, problems


def _insert(conn: Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


#: the device columns an inventory row sets; credentials only when the row gives them
_FACTS = ("oui", "product_class", "serial_number", "mac")


def _conflicts(conn: Connection, rows: Sequence[InventoryRow]) -> dict[int, str]:
    """Rows whose MAC or user name another device already has: line -> reason."""
    c = devices.c
    by_id = {r.device_id: r for r in rows}
    reasons: dict[int, str] = {}
    macs = {r.mac: r for r in rows}
    for owner, mac in conn.execute(sa.select(c.id, c.mac).where(c.mac.in_(list(macs)))):
        row = macs[mac]
        if owner != row.device_id and owner not in by_id:
            reasons[row.line] = f"MAC {mac} belongs to device {owner} already"
    wanted = {r.profile for r in rows if r.profile is not None}
    if wanted:
        known = set(conn.execute(sa.select(profiles.c.name).where(profiles.c.name.in_(wanted))).scalars())
        for row in rows:
            if row.profile is not None and row.profile not in known:
                reasons.setdefault(row.line, f"no profile {row.profile!r} (see `acs profile list`)")
    names = {r.username: r for r in rows if r.username is not None}
    if names:
        for owner, name in conn.execute(sa.select(c.id, c.username).where(c.username.in_(list(names)))):
            row = names[name]
            if owner != row.device_id:
                reasons.setdefault(row.line, f"user name {name!r} is already used by device {owner}")
    return reasons


def _write(conn: Connection, rows: Sequence[InventoryRow], report: ImportReport) -> None:
    """Upsert one batch of checked rows, after refusing those that clash with other devices."""
    bad = _conflicts(conn, rows)
    report.problems.extend(RowProblem(line, reason) for line, reason in bad.items())
    rows = [r for r in rows if r.line not in bad]
    if not rows:
        return
    ids = [r.device_id for r in rows]
    existing = set(conn.execute(sa.select(devices.c.id).where(devices.c.id.in_(ids))).scalars())
    now = utcnow()
    for with_credentials in (False, True):
        chunk = [r for r in rows if (r.username is not None) == with_credentials]
        if not chunk:
            continue
        stmt = _insert(conn, devices)
        update = _FACTS + (("username", "password") if with_credentials else ())
        stmt = stmt.on_conflict_do_update(
            index_elements=[devices.c.id], set_={col: stmt.excluded[col] for col in update}
        )
        conn.execute(
            stmt,
            [
                {
                    "id": r.device_id,
                    "oui": r.oui,
                    "product_class": r.model,
                    "serial_number": r.serial,
                    "mac": r.mac,
                    "created_at": now,
                    **({"username": r.username, "password": r.password} if with_credentials else {}),
                }
                for r in chunk
            ],
        )
        if with_credentials:
            inventory.credentials_changed(conn)
    tags = [{"device_id": r.device_id, "tag": tag} for r in rows for tag in r.groups]
    if tags:
        conn.execute(_insert(conn, device_tags).on_conflict_do_nothing(), tags)
    _assign_profiles(conn, [r for r in rows if r.profile is not None])
    managed = conn.execute(
        sa.select(devices.c.id).where(devices.c.id.in_(ids), devices.c.last_inform.is_not(None))
    ).scalars()
    for device_id in managed:  # phones that inform over TR-069 get what changed at their next session
        tr069.provision(conn, device_id)
    report.created += sum(1 for i in ids if i not in existing)
    report.updated += sum(1 for i in ids if i in existing)


def _assign_profiles(conn: Connection, rows: Sequence[InventoryRow]) -> None:
    """Each row's profile becomes its device's own (device level), in place of the one before."""
    if not rows:
        return
    a = profile_assignments.c
    conn.execute(
        profile_assignments.delete().where(a.level == "device", a.match.in_([r.device_id for r in rows]))
    )
    ids = dict(
        conn.execute(
            sa.select(profiles.c.name, profiles.c.id).where(profiles.c.name.in_({r.profile for r in rows}))
        ).all()
    )
    conn.execute(
        profile_assignments.insert(),
        [
            {"profile_id": ids[r.profile], "level": "device", "match": r.device_id, "priority": 0}
            for r in rows
        ],
    )


def import_rows(conn: Connection, rows: Sequence[InventoryRow]) -> ImportReport:
    """Create or update a device per row, in the caller's transaction (one batch: the REST API's
    ``POST /devices/import``)."""
    report = ImportReport()
    _write(conn, rows, report)
    report.problems.sort(key=lambda p: p.line)
    return report


def import_inventory(
    engine: Engine,
    rows: Iterable[InventoryRow],
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create or update a device per row, ``batch_size`` rows per transaction.

    A row whose MAC or user name belongs to another device is refused (in the
    report's problems), the others are kept. ``progress`` is called with the number
    of rows done after each batch.
    """
    report = ImportReport()
    batch: list[InventoryRow] = []

    def flush() -> None:
        with engine.begin() as conn:
            _write(conn, batch, report)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    report.problems.sort(key=lambda p: p.line)
    return report
