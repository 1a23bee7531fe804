"""Parameter values: xsi:type <-> Python, lenient in and strict out.

A parameter value is kept as ``(value, type)`` where ``type`` is the xsi:type
local name (``string``, ``unsignedInt``, ...). Reading coerces the text to a
Python value when it can; text that does not fit its declared type is kept as
the string it came as, so nothing a CPE reports is lost or refused.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

#: xsi:type local names and their Python form. ``base64Binary`` is folded into ``base64``.
TYPES = (
    "string",
    "int",
    "unsignedInt",
    "long",
    "unsignedLong",
    "boolean",
    "dateTime",
    "base64",
    "hexBinary",
    "decimal",
)

#: what each type is written as. base64 is SOAP-ENC's type: ``xsd:base64`` does not
#: exist in XML Schema, and a validating reader refuses it.
XSI_TYPE = {t: f"xsd:{t}" for t in TYPES} | {"base64": "SOAP-ENC:base64"}

_INT_RANGES = {
    "int": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsignedLong": (0, 2**64 - 1),
}
_ALIASES = {
    "base64Binary": "base64",
    "integer": "long",
    "short": "int",
    "byte": "int",
    "unsignedShort": "unsignedInt",
    "unsignedByte": "unsignedInt",
    "double": "decimal",
    "float": "decimal",
}

#: written without exponent, 1E-999999999 would take a gigabyte; no parameter needs 1000 places
_MAX_DECIMAL_EXPONENT = 1000

#: TR-106's Unknown Time: a dateTime the CPE cannot tell.
UNKNOWN_TIME = datetime(1, 1, 1, tzinfo=UTC)

_DATETIME = re.compile(r"\s*(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?\s*\Z")


_TYPE_NAMES: dict[str | None, str] = {}


def type_name(xsi_type: str | None) -> str:
    """The local name of an xsi:type, whatever its prefix (``xs:``, ``ns1:``, none); string if absent."""
    try:
        return _TYPE_NAMES[xsi_type]
    except KeyError:
        pass
    local = (xsi_type or "").rpartition(":")[2].rpartition("}")[2]
    local = _ALIASES.get(local, local)
    kind = local if local in TYPES else "string"
    if len(_TYPE_NAMES) < 1024:  # memoised: a few spellings recur in every message
        _TYPE_NAMES[xsi_type] = kind
    return kind


def parse_datetime(text: str) -> datetime | None:
    """An xsd:dateTime as a datetime; None when it is not one (CPE clocks send odd things).

    A value without a zone stays naive: TR-106 uses that for time since boot.
    """
    m = _DATETIME.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        micro = int((fraction or ".0")[1:7].ljust(6, "0"))
        tz = None
        if zone == "Z":
            tz = UTC
        elif zone:
            sign = -1 if zone[0] == "-" else 1
            hours, minutes = int(zone[1:3]), int(zone[-2:])
            tz = UTC if hours == minutes == 0 else timezone(timedelta(minutes=sign * (hours * 60 + minutes)))
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)
    except (ValueError, OverflowError):  # a year of 20 digits overflows before it is out of range
        return None


def format_datetime(value: datetime | None) -> str:
    """xsd:dateTime text: UTC with ``Z``; naive values (relative time) without a zone."""
    if value is None:
        value = UNKNOWN_TIME
    zone = ""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC)
            zone = "Z"
        except OverflowError:  # 0001-01-01T01:00+02:00 or 9999-12-31T23:00-05:00 have no UTC datetime
            minutes = round(value.utcoffset().total_seconds() / 60)  # type: ignore[union-attr]
            zone = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    text = (
        value.strftime("%Y-%m-%dT%H:%M:%S")
        if value.year >= 1000
        else (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        )
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + zone


def parse_bool(text: str) -> bool | None:
    """``1``/``0``/``true``/``false`` in any case; None for anything else."""
    t = text.strip().lower()
    if t in ("1", "true"):
        return True
    if t in ("0", "false"):
        return False
    return None


def decode(text: str | None, xsi_type: str | None) -> tuple[Any, str]:
    """Text of a ``Value`` element and its xsi:type -> (Python value, type name)."""
    kind = type_name(xsi_type)
    text = text or ""
    if kind == "string":
        return text, kind
    value = _decoders[kind](text.strip())
    return (text if value is None else value), kind


def _int(kind: str) -> Any:
    low, high = _INT_RANGES[kind]

    def decode_int(text: str) -> int | None:
        try:
            n = int(text)
        except ValueError:
            return None
        return n if low <= n <= high else None

    return decode_int


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _hex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


_decoders = {k: _int(k) for k in _INT_RANGES} | {
    "boolean": parse_bool,
    "dateTime": parse_datetime,
    "base64": _base64,
    "hexBinary": _hex,
    "decimal": _decimal,
}


def infer_type(value: Any) -> str:
    """The xsi:type a Python value is written as when no type is given."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return "int"
        return "long" if value < 2**63 else "unsignedLong"
    if isinstance(value, datetime):
        return "dateTime"
    if isinstance(value, bytes | bytearray):
        return "base64"
    if isinstance(value, Decimal | float):
        return "decimal"
    return "string"


def encode(value: Any, kind: str) -> str:
    """A Python value as the text of a ``Value`` of this type."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex() if kind == "hexBinary" else base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal | float):
        # xsd:decimal has no exponent, NaN or infinity: str() would write 1E+3 or 2.5e-07
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite() or abs(int(number.as_tuple().exponent)) > _MAX_DECIMAL_EXPONENT:
            raise ValueError(f"{value} cannot be written as an xsd:decimal")
        return format(number, "f")
    if value is None:
        return ""
    return str(value)
