"""Cisco MPP XML flat profiles: parse, compose and render (pure: bytes in, bytes out).

A flat profile is ``<flat-profile>`` (optionally inside ``<device>``) with one child
element per phone parameter, named after its web field (``Proxy_1_``,
``Line_Enable_2_``, ``Resync_At__HHmm_``), with an optional ``ua`` attribute (user
access: ``na``, ``ro``, ``rw``). See docs/cisco-mpp.md, "Flat profiles".

Parsing is lenient where the phone is and loud where a mistake would go unnoticed:
every element that can be read is kept, in order, with its line number, and
what is wrong is listed as ``Problem``s (line, element, message), ``error`` for
what a phone would misread (nested markup, a bad ``ua``, broken XML) and
``warning`` for what it ignores (an element name no MPP parameter has, a
duplicate, where the last one wins). An upload with errors is refused by the
store; warnings are shown and kept.

Values follow the phone's reading: leading and trailing whitespace stripped,
newlines inside a value become spaces. An empty element (``<X/>`` or ``<X></X>``)
is an empty value; ``render`` writes it ``<X></X>``, Cisco's documented way to
clear a value (the self-closing form is documented both ways).

The parser is lxml with entity resolution, DTDs and network access off and a
size cap, as the CWMP codec's.

Interface used by the profile server (keep stable): ``parse``, ``render``,
``compose``, ``FlatProfile``, ``Element``, ``Problem``, ``FlatProfileError``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import cast

from lxml import etree

from acs.cwmp.codec import hardened_parser, has_doctype
from acs.store import inventory

#: the ``ua`` (user access) values Cisco defines
USER_ACCESS = ("na", "ro", "rw")
#: attributes a profile element may carry besides ``ua`` (``um`` is set by the phone in exports)
OTHER_ATTRIBUTES = ("preserve-value", "user-pref", "um", "group")
#: bigger than any real profile (a full MPP export is ~100 KB)
MAX_SIZE = 2 * 1024 * 1024

_INDEX = re.compile(r"(?<=_)\d+(?=_)")
_NEWLINES = re.compile(r"[\r\n]+")


@dataclass(slots=True)
class Element:
    """One parameter: its element name, value (text), ``ua`` (None: not given) and source line."""

    name: str
    value: str = ""
    ua: str | None = None
    line: int | None = None
    #: other attributes as given (``preserve-value``, ``user-pref``, ``group``)
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong in a profile, where it is and what to do about it."""

    line: int | None
    element: str | None
    message: str
    severity: str = "error"  # "error": refused on upload; "warning": kept, shown

    def __str__(self) -> str:
        where = [
            f"line {self.line}" if self.line is not None else "",
            f"<{self.element}>" if self.element else "",
        ]
        prefix = ", ".join(w for w in where if w)
        return f"{prefix}: {self.message}" if prefix else self.message


class FlatProfileError(ValueError):
    """A profile with errors; ``problems`` lists them (errors and warnings) with line and element."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__("; ".join(str(p) for p in errors) or "invalid flat profile")


@dataclass(slots=True)
class FlatProfile:
    """Parameters in document order; a name may repeat (the last one wins, as on the phone)."""

    elements: list[Element] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def __iter__(self) -> Iterator[Element]:
        return iter(self.elements)

    def __len__(self) -> int:
        return len(self.elements)

    def __contains__(self, name: object) -> bool:
        return any(e.name == name for e in self.elements)

    def get(self, name: str) -> Element | None:
        """The element that counts for ``name`` (the last of that name), or None."""
        for e in reversed(self.elements):
            if e.name == name:
                return e
        return None

    def values(self) -> dict[str, str]:
        """Name -> value, the last occurrence winning, in order of first appearance."""
        return {e.name: e.value for e in self.effective()}

    def effective(self) -> list[Element]:
        """One element per name (the last one), at the place its name first appeared."""
        last: dict[str, Element] = {}
        for e in self.elements:
            last[e.name] = e
        seen: dict[str, Element] = {}
        for e in self.elements:
            seen.setdefault(e.name, last[e.name])
        return list(seen.values())


def compose(profiles: Iterable[FlatProfile]) -> FlatProfile:
    """Layered profiles (defaults first, the device's last): later values and ``ua`` override.

    An overriding element without ``ua`` keeps the ``ua`` of the one it overrides: absent
    ``ua`` means "keep the current access" on the phone too.
    """
    merged: dict[str, Element] = {}
    for profile in profiles:
        for e in profile.effective():
            before = merged.get(e.name)
            ua = e.ua if e.ua is not None or before is None else before.ua
            merged[e.name] = Element(e.name, e.value, ua, e.line, dict(e.attributes))
    return FlatProfile(list(merged.values()))


# --- parsing ----------------------------------------------------------------------------------


@functools.cache
def known_names() -> frozenset[str]:
    """The element names (``{n}`` for an index) of the shipped catalogue, ``data/elements.txt``."""
    text = resources.files("acs.provisioning").joinpath("data/elements.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def shape(name: str) -> str:
    """An element name with its indexes as ``{n}``: ``Proxy_2_`` -> ``Proxy_{n}_``."""
    return _INDEX.sub("{n}", name)


def is_known(name: str) -> bool:
    return shape(name) in known_names()


def parse(data: bytes | str, *, max_size: int = MAX_SIZE, check_names: bool = True) -> FlatProfile:
    """Read a flat profile; never raises: what is wrong is in ``profile.problems``.

    Broken XML is reported with the parser's line and message, and what the
    parser could recover is still returned. ``check_names`` warns about element
    names that are not in the catalogue (``known_names``).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    problems: list[Problem] = []
    if len(data) > max_size:
        return FlatProfile(
            [], [Problem(None, None, f"profile is {len(data)} bytes; at most {max_size} allowed")]
        )
    root: etree._Element | None
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        # the first fatal error: what follows it is often the parser losing its way
        message = re.sub(r", line \d+, column \d+$", "", str(exc.msg))
        problems.append(Problem(exc.lineno, None, f"not well-formed XML: {message}"))
        try:
            root = etree.fromstring(data, hardened_parser(recover=True))
        except etree.XMLSyntaxError:
            root = None
        if root is None:
            return FlatProfile([], problems)
    if has_doctype(root):
        problems.append(
            Problem(1, None, "a DOCTYPE is not allowed in a flat profile (entities are not expanded)")
        )
    container = _flat_profile(root, problems)
    elements: list[Element] = []
    if container is not None:
        seen: dict[str, int | None] = {}
        for child in container:
            element = _element(child, problems, check_names)
            if element is None:
                continue
            if element.name in seen:
                problems.append(
                    Problem(
                        element.line,
                        element.name,
                        f"also set on line {seen[element.name]}; the last one wins",
                        "warning",
                    )
                )
            seen[element.name] = element.line
            elements.append(element)
    problems.sort(key=lambda p: p.line or 0)
    return FlatProfile(elements, problems)


def parse_strict(data: bytes | str, **kwargs: bool | int) -> FlatProfile:
    """``parse``, raising FlatProfileError when the profile has errors (warnings are kept on it)."""
    profile = parse(data, **kwargs)  # type: ignore[arg-type]
    if profile.errors:
        raise FlatProfileError(profile.problems)
    return profile


def _local(tag: object) -> str | None:
    return etree.QName(tag).localname if isinstance(tag, str) else None


def _flat_profile(root: etree._Element, problems: list[Problem]) -> etree._Element | None:
    name = _local(root.tag)
    if name == "flat-profile":
        return root
    if name == "device":
        found = [c for c in root if _local(c.tag) == "flat-profile"]
        for c in root:
            if isinstance(c.tag, str) and _local(c.tag) != "flat-profile":
                problems.append(
                    Problem(_line(c), _local(c.tag), "ignored: <device> holds <flat-profile>", "warning")
                )
        if found:
            if len(found) > 1:
                problems.append(
                    Problem(_line(found[1]), "flat-profile", "only one <flat-profile> is allowed")
                )
            return found[0]
        problems.append(Problem(_line(root), "device", "no <flat-profile> inside <device>"))
        return None
    problems.append(
        Problem(_line(root), name, "the root element must be <flat-profile> or <device><flat-profile>")
    )
    return None


def _line(node: etree._Element) -> int | None:
    """The node's line: lxml-stubs types sourceline as `int | ...`, lxml gives an int or None."""
    return cast("int | None", node.sourceline)


def _element(node: etree._Element, problems: list[Problem], check_names: bool) -> Element | None:
    if isinstance(node, etree._Entity):
        problems.append(Problem(_line(node), None, f"entity reference {node.text} is not allowed"))
        return None
    if not isinstance(node.tag, str):  # comments
        return None
    name = _local(node.tag)
    line = _line(node)
    assert name is not None
    if etree.QName(node.tag).namespace:
        problems.append(Problem(line, name, "parameter elements take no namespace"))
        return None
    children = [c for c in node if not isinstance(c, etree._Comment)]
    entities = [c for c in children if isinstance(c, etree._Entity)]
    if entities:
        problems.append(Problem(line, name, f"entity reference {entities[0].text} is not allowed"))
        return None
    if children:
        inner = _local(children[0].tag) or "markup"
        problems.append(
            Problem(
                line,
                name,
                f"contains <{inner}>: a parameter holds text only (write < and > as &lt; &gt;)",
            )
        )
        return None
    text = "".join(cast("Iterator[str]", node.itertext()))  # text, not bytes, once parsed
    value = _NEWLINES.sub(" ", text).strip()
    ua: str | None = None
    attributes: dict[str, str] = {}
    for attr, attr_value in cast("dict[str, str]", node.attrib).items():  # parsed: str
        if attr == "ua":
            if attr_value in USER_ACCESS:
                ua = attr_value
            else:
                problems.append(
                    Problem(line, name, f'ua="{attr_value}" is not allowed; use ua="na", "ro" or "rw"')
                )
        elif attr in OTHER_ATTRIBUTES:
            attributes[attr] = attr_value
        else:
            problems.append(
                Problem(
                    line,
                    name,
                    f"attribute {attr!r} ignored (phones know ua, preserve-value, user-pref)",
                    "warning",
                )
            )
    if check_names and not is_known(name):
        problems.append(
            Problem(
                line,
                name,
                "not a known MPP parameter name (phones ignore unknown names; check the spelling)",
                "warning",
            )
        )
    return Element(name, value, ua, line, attributes)


def is_secret(name: str) -> bool:
    """Whether an element holds a secret: passwords, GPP_SA..GPP_SD, the RFC 8188 IKM."""
    return inventory.is_secret(name) or re.fullmatch(r"GPP_S[A-D]|IKM_HTTP_Encrypt_Content", name) is not None


def mask_secrets(profile: FlatProfile) -> FlatProfile:
    """The profile fit to show: secret values masked (``********`` when set)."""
    return FlatProfile(
        [
            Element(e.name, inventory.redact(e.value), e.ua, e.line, dict(e.attributes))
            if is_secret(e.name)
            else e
            for e in profile.effective()
        ]
    )


def mask_text(xml: str) -> str:
    """A stored profile fit to show: as it was written (comments, order, layout), secret values masked.

    For profiles the store accepted (they parse); one that does not is shown as ``parse`` reads it.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser)
    except etree.XMLSyntaxError:
        return render(mask_secrets(parse(xml))).decode("utf-8")
    secret = [
        node
        for node in root.iter()
        if (name := _local(node.tag)) is not None and is_secret(name) and (node.text or "").strip()
    ]
    if not secret:
        return xml
    for node in secret:
        node.text = inventory.MASK
    # comments around the root, one a line (lxml keeps no whitespace outside the root)
    nodes = [*reversed(list(root.itersiblings(preceding=True))), root, *root.itersiblings()]
    text = "\n".join(etree.tostring(node, encoding="unicode", with_tail=False) for node in nodes)
    if xml.lstrip().startswith("<?xml"):
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + text
    return text + ("\n" if xml.endswith("\n") else "")


# --- rendering --------------------------------------------------------------------------------


def render(
    profile: FlatProfile | Iterable[Element], *, device_wrapper: bool = False, comment: str | None = None
) -> bytes:
    """The profile as XML a phone reads: UTF-8, declaration, one parameter per line.

    Each name once (the one that counts), in order; ``ua`` when known; empty
    values as ``<X></X>``; ``device_wrapper`` wraps it in ``<device>`` as phone
    exports do; ``comment`` goes at the top (``--`` is not allowed in it).
    """
    elements = (
        profile.effective() if isinstance(profile, FlatProfile) else FlatProfile(list(profile)).effective()
    )
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    if comment is not None:
        if "--" in comment or comment.endswith("-"):
            raise ValueError("an XML comment cannot contain '--' or end with '-'")
        lines.append(f"<!-- {comment} -->")
    if device_wrapper:
        lines.append("<device>")
    lines.append("<flat-profile>")
    for e in elements:
        node = etree.Element(e.name)
        if e.ua is not None:
            node.set("ua", e.ua)
        for attr, attr_value in e.attributes.items():
            if attr != "um":  # set by phones, cannot be provisioned
                node.set(attr, attr_value)
        node.text = e.value
        lines.append(etree.tostring(node, encoding="unicode"))
    lines.append("</flat-profile>")
    if device_wrapper:
        lines.append("</device>")
    return ("\n".join(lines) + "\n").encode("utf-8")
