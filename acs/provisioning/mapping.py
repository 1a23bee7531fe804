"""The TR-069 <-> flat-profile map: which parameter an XML element sets, and how its value converts.

The table is data, ``data/tr069-xml-map.csv`` (its header says where each row comes
from and what was left out); ``ACS_PROFILE_MAP`` names a file of the same form
that replaces it. One row pairs an element pattern with a path pattern:
``Proxy_{n}_`` <-> ``...SIP.Network.{n}.ProxyServer`` (``{n}``: the same index on both
sides), ``SIP_T1`` <-> ``...SIP.Network.{*}.TimerT1`` (``{*}``: every instance the
phone has). Pure: the caller passes the phone's stored tree.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from acs.provisioning.flatprofile import Element, FlatProfile, Problem

MAP_ENV = "ACS_PROFILE_MAP"
CONVERSIONS = ("text", "yesno", "not_yesno", "seconds_ms", "tos", "host", "port", "transport")
TYPES = ("string", "boolean", "unsignedInt", "int")
DEFAULT_SIP_PORT = "5060"
_YES = {"yes", "enable", "enabled", "1", "true", "on"}
_NO = {"no", "disable", "disabled", "0", "false", "off"}
_TRANSPORTS = ("UDP", "TCP", "TLS")


class MapError(ValueError):
    """A map file that cannot be used; the message names the line and what is wrong."""


class ConversionError(ValueError):
    """A value that does not convert (``abc`` for an unsignedInt, ``AUTO`` as a TR-104 transport)."""


def _pattern(text: str) -> re.Pattern[str]:
    escaped = re.escape(text).replace(r"\{n\}", r"(?P<n>[0-9]+)").replace(r"\{\*\}", r"(?P<i>[0-9]+)")
    return re.compile(escaped)


@dataclass(frozen=True, slots=True)
class Rule:
    element: str
    path: str
    type: str
    conversion: str
    source: str = ""
    element_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    path_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "element_re", _pattern(self.element))
        object.__setattr__(self, "path_re", _pattern(self.path))

    @property
    def every_instance(self) -> bool:
        return "{*}" in self.path

    # --- values --------------------------------------------------------------------------

    def to_tr069(self, value: str) -> str:
        """The TR-069 value (as text of ``type``) for an XML value; ConversionError if it has none."""
        converted = _TO_TR069[self.conversion](value)
        if self.type == "unsignedInt" and not converted.isdigit():
            raise ConversionError(f"{value!r} is not a whole number of 0 or more")
        if self.type == "int" and not re.fullmatch(r"-?[0-9]+", converted):
            raise ConversionError(f"{value!r} is not a whole number")
        return converted

    def to_xml(self, value: str) -> str:
        """The XML value for a TR-069 value (``host``/``port`` rows are joined by ``ParameterMap``)."""
        return _TO_XML[self.conversion](value)


def _yesno(value: str) -> str:
    word = value.strip().lower()
    if word in _YES:
        return "true"
    if word in _NO:
        return "false"
    raise ConversionError(f"{value!r} is not Yes or No")


def _seconds_to_ms(value: str) -> str:
    try:
        ms = Decimal(value.strip()) * 1000
    except InvalidOperation:
        raise ConversionError(f"{value!r} is not a number of seconds") from None
    if ms != ms.to_integral_value() or ms < 0:
        raise ConversionError(f"{value!r} seconds is not a whole number of milliseconds")
    return str(int(ms))


def _ms_to_seconds(value: str) -> str:
    try:
        seconds = Decimal(value) / 1000
    except InvalidOperation:
        return value
    return format(seconds.normalize(), "f")


def _tos_to_dscp(value: str) -> str:
    text = value.strip().lower()
    try:
        tos = int(text, 16) if text.startswith("0x") else int(text)
    except ValueError:
        raise ConversionError(f"{value!r} is not a TOS byte (0x00-0xff)") from None
    if not 0 <= tos <= 255:
        raise ConversionError(f"{value!r} is not a TOS byte (0x00-0xff)")
    return str(tos >> 2)


def _dscp_to_tos(value: str) -> str:
    return f"0x{int(value) << 2:02x}" if value.isdigit() and int(value) < 64 else value


def split_host_port(value: str) -> tuple[str, str]:
    """``sip.example.net:5061`` -> (host, port); ``[2001:db8::1]:5060`` too; port 5060 when absent."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, port or DEFAULT_SIP_PORT
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port or DEFAULT_SIP_PORT
    return text, DEFAULT_SIP_PORT


def join_host_port(host: str, port: str | None) -> str:
    if not host or port in (None, "", DEFAULT_SIP_PORT):
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _transport(value: str) -> str:
    word = value.strip().upper()
    if word not in _TRANSPORTS:
        raise ConversionError(f"{value!r} has no TR-104 transport; use UDP, TCP or TLS")
    return word


_TO_TR069 = {
    "text": lambda v: v,
    "yesno": _yesno,
    "not_yesno": lambda v: "false" if _yesno(v) == "true" else "true",
    "seconds_ms": _seconds_to_ms,
    "tos": _tos_to_dscp,
    "host": lambda v: split_host_port(v)[0],
    "port": lambda v: split_host_port(v)[1],
    "transport": _transport,
}


def _bool_text(value: str) -> bool:
    return value.strip().lower() in ("true", "1")


_TO_XML = {
    "text": lambda v: v,
    "yesno": lambda v: "Yes" if _bool_text(v) else "No",
    "not_yesno": lambda v: "No" if _bool_text(v) else "Yes",
    "seconds_ms": _ms_to_seconds,
    "tos": _dscp_to_tos,
    "host": lambda v: v,
    "port": lambda v: v,
    "transport": lambda v: v,
}


def same_value(a: str | None, b: str | None, kind: str) -> bool:
    """Whether two TR-069 values of ``kind`` are equal (``1`` and ``true`` are one boolean)."""
    if a is None or b is None:
        return a == b
    if kind == "boolean":
        return _bool_text(a) == _bool_text(b)
    if kind in ("unsignedInt", "int"):
        try:
            return int(a) == int(b)
        except ValueError:
            return a == b
    return a == b


@dataclass(frozen=True, slots=True)
class Setting:
    """One TR-069 value a profile asks for: the path, its value as text, its xsi type, and why."""

    path: str
    value: str
    type: str
    element: str


@dataclass(slots=True)
class Translation:
    """A profile in TR-069 terms: the settings, what could not be converted, and what has no path."""

    settings: list[Setting] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: elements the map has no row for: served in flat profiles, never sent over TR-069
    unmapped: list[str] = field(default_factory=list)


class ParameterMap:
    """The rows of one map file, with lookups both ways."""

    def __init__(self, rules: Iterable[Rule], origin: str = "") -> None:
        self.rules = tuple(rules)
        self.origin = origin

    def rules_for(self, element: str) -> list[tuple[Rule, str | None]]:
        """The rows an element name matches, each with its index (``Proxy_2_`` -> ``"2"``)."""
        found = []
        for rule in self.rules:
            m = rule.element_re.fullmatch(element)
            if m:
                found.append((rule, m.groupdict().get("n")))
        return found

    def to_tr069(self, profile: FlatProfile, tree: Collection[str]) -> Translation:
        """The settings a profile makes on a phone whose stored tree has the paths ``tree``.

        Rows whose path the phone lacks are skipped with a warning (a 2-line phone
        given ``Proxy_5_``); elements marked ``preserve-value="y"`` keep the phone's
        value and set nothing.
        """
        out = Translation()
        instances = _instances(tree)
        for e in profile.effective():
            rules = self.rules_for(e.name)
            if not rules:
                out.unmapped.append(e.name)
                continue
            if e.attributes.get("preserve-value") == "y":
                continue
            for rule, n in rules:
                try:
                    value = rule.to_tr069(e.value)
                except ConversionError as exc:
                    out.problems.append(Problem(e.line, e.name, f"not sent over TR-069: {exc}", "warning"))
                    break
                if rule.every_instance:
                    head = rule.path.split("{*}")[0]
                    paths = [rule.path.replace("{*}", i) for i in instances.get(head, [])]
                    paths = [p for p in paths if p in tree]
                else:
                    paths = [rule.path.replace("{n}", n or "")]
                    paths = [p for p in paths if p in tree]
                if not paths:
                    where = rule.path.replace("{n}", n or "")
                    out.problems.append(
                        Problem(e.line, e.name, f"the phone has no {where}; not sent", "warning")
                    )
                    continue
                out.settings += [Setting(p, value, rule.type, e.name) for p in paths]
        return out

    def to_xml(self, tree: Mapping[str, str | None]) -> FlatProfile:
        """The stored values of a phone under their XML names (phone-wide ones from the lowest instance)."""
        found: dict[str, dict[str, str]] = {}  # element -> conversion -> value
        order: dict[str, tuple[int, int, int]] = {}
        for index, rule in enumerate(self.rules):
            matches = []
            for path, value in tree.items():
                m = rule.path_re.fullmatch(path)
                if m and value is not None:
                    matches.append((int(m.groupdict().get("n") or m.groupdict().get("i") or 0), m, value))
            if rule.every_instance:
                matches = sorted(matches, key=lambda t: t[0])[:1]
            for number, m, value in matches:
                n = m.groupdict().get("n")
                element = rule.element.replace("{n}", n) if n is not None else rule.element
                found.setdefault(element, {})[rule.conversion] = (
                    value if rule.conversion in ("host", "port") else rule.to_xml(value)
                )
                order.setdefault(element, (index if n is None else 10_000, number, index))
        elements = []
        for element in sorted(found, key=lambda name: order[name]):
            values = found[element]
            if "host" in values:
                value = join_host_port(values["host"], values.get("port"))
            elif "port" in values:
                continue  # a port without its host says nothing in XML
            else:
                value = next(iter(values.values()))
            elements.append(Element(element, value))
        return FlatProfile(elements)


def _instances(tree: Collection[str]) -> dict[str, list[str]]:
    """Table path -> its instance numbers, from the paths of a tree (``A.B.3.C`` -> ``A.B.``: 3)."""
    out: dict[str, set[str]] = {}
    for path in tree:
        for m in re.finditer(r"\.([0-9]+)(?=\.)", path):
            out.setdefault(path[: m.start() + 1], set()).add(m.group(1))
    return {head: sorted(numbers, key=int) for head, numbers in out.items()}


def changes(settings: Iterable[Setting], stored: Mapping[str, str | None]) -> list[Setting]:
    """The settings whose value differs from the stored one (a path counted once, its last setting)."""
    last: dict[str, Setting] = {}
    for s in settings:
        last[s.path] = s
    return [s for s in last.values() if not same_value(stored.get(s.path), s.value, s.type)]


def parse_map(text: str, origin: str = "") -> ParameterMap:
    """A map from its CSV text (``#`` lines are comments); MapError names the bad line."""
    lines = [
        (n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")
    ]
    if not lines:
        raise MapError(f"{origin or 'map'}: no rows")
    reader = csv.DictReader(io.StringIO("\n".join(line for _, line in lines)))
    needed = {"element", "path", "type", "conversion"}
    missing = needed - set(reader.fieldnames or ())
    if missing:
        raise MapError(f"{origin or 'map'} line {lines[0][0]}: missing columns {', '.join(sorted(missing))}")
    rules = []
    for (number, _), row in zip(lines[1:], reader, strict=True):
        where = f"{origin or 'map'} line {number}"
        if row["conversion"] not in CONVERSIONS:
            raise MapError(f"{where}: conversion {row['conversion']!r}; allowed: {', '.join(CONVERSIONS)}")
        if row["type"] not in TYPES:
            raise MapError(f"{where}: type {row['type']!r}; allowed: {', '.join(TYPES)}")
        if ("{n}" in row["element"]) != ("{n}" in row["path"]):
            raise MapError(f"{where}: {{n}} must be in both the element and the path, or in neither")
        if "{*}" in row["element"]:
            raise MapError(f"{where}: {{*}} belongs in the path only")
        rules.append(
            Rule(row["element"], row["path"], row["type"], row["conversion"], row.get("source") or "")
        )
    return ParameterMap(rules, origin)


@functools.cache
def _load(path: str | None) -> ParameterMap:
    if path:
        try:
            return parse_map(Path(path).read_text("utf-8"), origin=path)
        except OSError as exc:
            raise MapError(f"cannot read the profile map {path}: {exc.strerror}") from None
    text = resources.files("acs.provisioning").joinpath("data/tr069-xml-map.csv").read_text("utf-8")
    return parse_map(text, origin="acs/provisioning/data/tr069-xml-map.csv")


def load_map(path: str | None = None) -> ParameterMap:
    """The map in ``path``, else in ``$ACS_PROFILE_MAP``, else the one shipped with the package."""
    return _load(path or os.environ.get(MAP_ENV) or None)
