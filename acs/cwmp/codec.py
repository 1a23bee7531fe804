"""SOAP envelopes <-> typed CWMP messages, for CWMP 1.0 to 1.4. Pure: bytes in, bytes out.

Lenient in: elements are matched by local name whatever their namespace or
prefix; xsi:type and arrayType are optional; missing children take their
defaults; unknown children are ignored; a CPE's ``cwmp-1-N`` namespace is kept
so the ACS can answer in it. Strict out: conventional prefixes, unqualified
children, xsi:type on every value, arrayType on every array, no XML declaration.

Parsing never resolves entities, loads a DTD or touches the network, and
refuses bodies over a size cap: a CPE cannot make the server read files,
expand entities without bound or hang on a body.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree

from acs.cwmp import rpc, values
from acs.cwmp.faults import CwmpError, MessageTooLarge

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CWMP_PREFIX = "urn:dslforum-org:cwmp-"
#: the namespace each protocol version speaks (1.3 and 1.4 kept the 1.2 namespace)
NAMESPACES = {
    "1.0": "urn:dslforum-org:cwmp-1-0",
    "1.1": "urn:dslforum-org:cwmp-1-1",
    "1.2": "urn:dslforum-org:cwmp-1-2",
    "1.3": "urn:dslforum-org:cwmp-1-2",
    "1.4": "urn:dslforum-org:cwmp-1-2",
}
#: the newest protocol version this codec speaks: CPEs in a newer namespace are answered in it
NEWEST = "1.4"
DEFAULT_MAX_SIZE = 1 << 20  # 1 MiB: a full GetParameterValuesResponse of a phone is ~100-300 KB

_XSI_TYPE = f"{{{XSI}}}type"
_ARRAY_TYPE = f"{{{SOAP_ENC}}}arrayType"
_MUST_UNDERSTAND = f"{{{SOAP_ENV}}}mustUnderstand"
_NS_VERSION = re.compile(r"urn:dslforum-org:cwmp-(\d+)-(\d+)\Z")


@dataclass(slots=True)
class Envelope:
    """One CWMP message: the header fields and the body.

    ``ns`` is the exact ``cwmp`` namespace of the message; an ACS answers a
    whole session in the namespace of the CPE's Inform.
    """

    body: rpc.Message
    ID: str | None = None
    ns: str = NAMESPACES["1.0"]
    HoldRequests: bool | None = None
    SessionTimeout: int | None = None
    SupportedCWMPVersions: tuple[str, ...] | None = None
    UseCWMPVersion: str | None = None
    NoMoreRequests: bool | None = None

    @property
    def version(self) -> str:
        """The protocol version this message speaks (CWMP 1.3 and 1.4 share 1.2's namespace)."""
        if self.UseCWMPVersion:
            return self.UseCWMPVersion
        m = _NS_VERSION.match(self.ns)
        major, minor = (int(m.group(1)), int(m.group(2))) if m else (1, 0)
        if (major, minor) == (1, 2):
            if self.SupportedCWMPVersions:
                return max(self.SupportedCWMPVersions, key=_version_key)
            if self.SessionTimeout is not None:
                return "1.3"
        return f"{major}.{minor}"


def newer_than_known(version: str) -> bool:
    """A protocol version after ``NEWEST`` (a CPE's ``cwmp-1-5`` namespace): answered as ``NEWEST``."""
    return _version_key(version) > _version_key(NEWEST)


def _version_key(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split("."))
    except ValueError:
        return (0,)


# --- the reading side ------------------------------------------------------------------------


def has_doctype(root: etree._Element) -> bool:
    """Whether the document declares a DOCTYPE (refused: its entities are never expanded).

    lxml-stubs' DocInfo lacks `doctype`, which lxml has.
    """
    return bool(root.getroottree().docinfo.doctype)  # type: ignore[attr-defined]


def hardened_parser(*, recover: bool = False) -> etree.XMLParser:
    """An lxml parser that resolves no entity, loads no DTD, touches no network and drops
    comments and PIs: for XML from the network (CWMP messages, flat profiles)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        recover=recover,
    )


class _Parsers(threading.local):
    """lxml parsers are not safe to share between threads; one hardened parser per thread."""

    def __init__(self) -> None:
        self.parser = hardened_parser()


_parsers = _Parsers()


_LOCAL_NAMES: dict[Any, str] = {}


def _local(tag: Any) -> str:
    """The local name of a tag, memoised: a message repeats a few dozen tags hundreds of times."""
    try:
        return _LOCAL_NAMES[tag]
    except KeyError:
        local = tag.rpartition("}")[2] if isinstance(tag, str) else ""  # "": comments, PIs
        if len(_LOCAL_NAMES) < 4096:  # hostile input must not grow it without bound
            _LOCAL_NAMES[tag] = local
        return local


def parse(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Envelope:
    """Read one SOAP envelope. Raises CwmpError (MessageTooLarge over ``max_size``)."""
    if len(data) > max_size:
        raise MessageTooLarge(f"message of {len(data)} bytes is over the {max_size}-byte limit")
    if not data.strip():
        raise CwmpError("empty message: an empty POST carries no envelope")
    try:
        root = etree.fromstring(data, _parsers.parser)
    except etree.XMLSyntaxError as e:
        raise CwmpError(f"not well-formed XML: {e}") from None
    except ValueError as e:  # e.g. a str with an encoding declaration, or NUL bytes
        raise CwmpError(f"unreadable XML: {e}") from None
    if has_doctype(root):
        raise CwmpError("a DOCTYPE is not allowed in a SOAP message")
    if _local(root.tag) != "Envelope":
        raise CwmpError(f"not a SOAP envelope: the root element is <{_local(root.tag) or root.tag}>")
    header = body = None
    for child in root:
        name = _local(child.tag)
        if name == "Header":
            header = child
        elif name == "Body":
            body = child
    if body is None:
        raise CwmpError("SOAP envelope without a Body")
    method = next((c for c in body if isinstance(c.tag, str)), None)
    if method is None:
        raise CwmpError("SOAP Body is empty: it must hold one CWMP method or a Fault")
    env = Envelope(body=rpc.UnknownMethod())
    if header is not None:
        _read_header(header, env)
    name = _local(method.tag)
    ns = etree.QName(method).namespace or ""
    if name == "Fault":
        # a SOAP Fault, or (lenient) a cwmp:Fault some stacks put right in the Body
        bare = _child(method, "FaultCode") is not None
        env.body = _read_fault(method) if not bare else _read_fault_struct(method)
    else:
        cls = rpc.MESSAGES.get(name)
        env.body = rpc.UnknownMethod(name) if cls is None else _read(cls, method)
    if ns.startswith(CWMP_PREFIX):
        env.ns = ns
    elif header_ns := _header_ns(header):
        env.ns = header_ns
    return env


def _header_ns(header: Any) -> str | None:
    if header is None:
        return None
    for child in header:
        ns = etree.QName(child).namespace if isinstance(child.tag, str) else None
        if ns and ns.startswith(CWMP_PREFIX):
            return ns
    return None


def _read_header(header: Any, env: Envelope) -> None:
    for child in header:
        name = _local(child.tag)
        text = (child.text or "").strip()
        if name == "ID":
            env.ID = child.text or ""
        elif name == "HoldRequests":
            env.HoldRequests = bool(values.parse_bool(text))
        elif name == "NoMoreRequests":
            env.NoMoreRequests = bool(values.parse_bool(text))
        elif name == "SessionTimeout":
            env.SessionTimeout = int(text) if text.isascii() and text.isdigit() else None
        elif name == "SupportedCWMPVersions":
            env.SupportedCWMPVersions = tuple(v.strip() for v in text.split(",") if v.strip())
        elif name == "UseCWMPVersion":
            env.UseCWMPVersion = text or None


def _read_fault(element: Any) -> rpc.Fault:
    """A SOAP Fault, and the cwmp:Fault it carries: in ``detail`` as SOAP has it, else wherever a
    CPE put it (inside ``faultstring``, as an element or as escaped text, or right in the Fault)."""
    fault = rpc.Fault(FaultCode=None, faultcode="", faultstring="")
    found: Any = None
    stray: Any = None
    for child in element:
        name = _local(child.tag)
        if name == "faultcode":
            fault.faultcode = (child.text or "").strip().rpartition(":")[2]
        elif name == "faultstring":
            fault.faultstring = child.text or ""
            stray = stray if stray is not None else _child(child, "Fault")
        elif name == "detail":
            found = _child(child, "Fault")
        elif name == "Fault":
            stray = stray if stray is not None else child
    cwmp = found if found is not None else stray
    if cwmp is not None:
        read = _read(rpc.Fault, cwmp)
        fault.FaultCode = read.FaultCode
        fault.FaultString = read.FaultString
        fault.SetParameterValuesFault = read.SetParameterValuesFault
        if not fault.faultstring.strip():
            fault.faultstring = ""
    elif (code := _ESCAPED_CODE.search(fault.faultstring)) is not None:
        fault.FaultCode = int(code.group(1))
        text = _ESCAPED_STRING.search(fault.faultstring)
        fault.FaultString = text.group(1).strip() if text is not None else ""
    return fault


def _read_fault_struct(element: Any) -> rpc.Fault:
    read: rpc.Fault = _read(rpc.Fault, element)
    read.faultcode = read.faultstring = ""
    return read


def _child(element: Any, local: str) -> Any:
    return next((c for c in element if _local(c.tag) == local), None)


#: a cwmp:Fault written as text into faultstring (``&lt;FaultCode&gt;9005&lt;/FaultCode&gt;``)
_ESCAPED_CODE = re.compile(r"<(?:[\w.-]+:)?FaultCode>\s*(\d{1,6})\s*</")
_ESCAPED_STRING = re.compile(r"<(?:[\w.-]+:)?FaultString>([^<]*)</")


@dataclass(slots=True, frozen=True)
class _Field:
    name: str
    kind: str  # str | int | bool | datetime | struct | array | repeated | value
    item: Any = None  # struct class, or "string" for arrays of strings
    optional: bool = False


_SPECS: dict[type, tuple[_Field, ...]] = {}


def _spec(cls: type) -> tuple[_Field, ...]:
    """How each attribute of a record maps to an element, from its annotations (computed once)."""
    try:
        return _SPECS[cls]
    except KeyError:
        pass
    hints = typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]), localns={})
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in ("Type", "faultcode", "faultstring", "name") or f.name.startswith("_"):
            continue
        hint = hints[f.name]
        optional = type(None) in typing.get_args(hint) and hint is not Any
        if optional:
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if typing.get_origin(hint) is list:
            (item,) = typing.get_args(hint)
            kind = "repeated" if f.metadata.get("repeated") else "array"
            specs.append(_Field(f.name, kind, "string" if item is str else item, optional))
        elif isinstance(hint, type) and issubclass(hint, rpc.Struct):
            specs.append(_Field(f.name, "struct", hint, optional))
        elif hint is Any:
            specs.append(_Field(f.name, "value", None, optional))
        else:
            kind = {str: "str", int: "int", bool: "bool", datetime: "datetime"}[hint]
            specs.append(_Field(f.name, kind, None, optional))
    _SPECS[cls] = spec = tuple(specs)
    return spec


_FIELD_MAPS: dict[type, dict[str, _Field]] = {}


def _fields(cls: type) -> dict[str, _Field]:
    """A record's fields by element name, made once per class (a GetParameterNamesResponse
    has ~700 structs)."""
    try:
        return _FIELD_MAPS[cls]
    except KeyError:
        fields = _FIELD_MAPS[cls] = {f.name: f for f in _spec(cls)}
        return fields


def _read(cls: type, element: Any) -> Any:
    if cls is rpc.ParameterValueStruct:
        return _read_pvs(element)
    fields = _fields(cls)
    kwargs: dict[str, Any] = {}
    for child in element:
        f = fields.get(_local(child.tag))
        if f is None:
            continue
        if f.kind == "repeated":
            kwargs.setdefault(f.name, []).append(_read(f.item, child))
        else:
            kwargs[f.name] = _read_field(f, child)
    return cls(**kwargs)


def _read_field(f: _Field, child: Any) -> Any:
    kind = f.kind
    if kind == "str":
        return (child.text or "").strip()
    if kind == "array":
        if f.item == "string":
            return [(c.text or "").strip() for c in child if isinstance(c.tag, str)]
        if f.item is rpc.ParameterValueStruct:
            return _read_pvs_array(child)
        if f.item is rpc.ParameterInfoStruct:
            return _read_pis_array(child)
        if f.item is rpc.EventStruct:
            return [e for c in child if isinstance(c.tag, str) for e in _read_events(c)]
        return [_read(f.item, c) for c in child if isinstance(c.tag, str)]
    if kind == "struct":
        return _read(f.item, child)
    text = (child.text or "").strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise CwmpError(f"<{f.name}> must be an integer, not {text[:40]!r}") from None
    if kind == "bool":
        value = values.parse_bool(text)
        if value is None:
            raise _not_a_boolean(f.name, text)
        return value
    if kind == "datetime":
        return values.parse_datetime(text)  # CPE clocks send odd things; None if unreadable
    raise AssertionError(kind)


def _not_a_boolean(name: str, text: str) -> CwmpError:
    return CwmpError(f"<{name}> must be a boolean (1, 0, true, false), not {text[:40]!r}")


def _read_events(element: Any) -> list[rpc.EventStruct]:
    """One EventStruct, or several: Airvana cells put ``1 BOOT`` and ``4 VALUE CHANGE`` in one struct.

    Keeping only the last code would lose the BOOT that drives the ACS's boot policies.
    """
    codes = []
    key = ""
    for child in element:
        local = _local(child.tag)
        if local == "EventCode":
            codes.append((child.text or "").strip())
        elif local == "CommandKey":
            key = (child.text or "").strip()
    return [rpc.EventStruct(code, key) for code in codes] or [rpc.EventStruct("", key)]


def _read_pvs(element: Any) -> rpc.ParameterValueStruct:
    name = ""
    value: Any = ""
    kind = "string"
    for child in element:
        local = _local(child.tag)
        if local == "Name":
            name = (child.text or "").strip()
        elif local == "Value":
            value, kind = values.decode(child.text, child.get(_XSI_TYPE))
    return rpc.ParameterValueStruct(name, value, kind)


# The arrays of a discovery (608 values and ~700 names per Cisco phone) are read by loops of
# their own: what ``_read_pvs`` and ``_read`` do per struct, with the lookups hoisted out of
# the loop and the common spellings (an xsd:string value, a Writable of 0 or 1) taken first.


def _read_pvs_array(array: Any) -> list[rpc.ParameterValueStruct]:
    out: list[rpc.ParameterValueStruct] = []
    append = out.append
    names = _LOCAL_NAMES
    type_name, decode = values.type_name, values.decode
    make = rpc.ParameterValueStruct
    for item in array:
        if not isinstance(item.tag, str):
            continue
        name = ""
        value: Any = ""
        kind = "string"
        for child in item:
            tag = child.tag
            local = names.get(tag) or _local(tag)
            if local == "Name":
                text = child.text
                name = text.strip() if text else ""
            elif local == "Value":
                xsi = child.get(_XSI_TYPE)
                if type_name(xsi) == "string":
                    value, kind = child.text or "", "string"
                else:
                    value, kind = decode(child.text, xsi)
        append(make(name, value, kind))
    return out


_WRITABLE = {"1": True, "0": False, "true": True, "false": False}


def _read_pis_array(array: Any) -> list[rpc.ParameterInfoStruct]:
    out: list[rpc.ParameterInfoStruct] = []
    append = out.append
    names = _LOCAL_NAMES
    make = rpc.ParameterInfoStruct
    for item in array:
        if not isinstance(item.tag, str):
            continue
        name = ""
        writable = False
        for child in item:
            tag = child.tag
            local = names.get(tag) or _local(tag)
            if local == "Name":
                text = child.text
                name = text.strip() if text else ""
            elif local == "Writable":
                text = child.text
                flag = _WRITABLE.get(text)
                if flag is None:
                    text = (text or "").strip()
                    flag = values.parse_bool(text)
                    if flag is None:
                        raise _not_a_boolean("Writable", text)
                writable = flag
        append(make(name, writable))
    return out


# --- the writing side ------------------------------------------------------------------------


def _nsmap(ns: str) -> dict[str, str]:
    return {"SOAP-ENV": SOAP_ENV, "SOAP-ENC": SOAP_ENC, "xsd": XSD, "xsi": XSI, "cwmp": ns}


_HEADER_BOOL = {True: "1", False: "0"}


def serialize(envelope: Envelope) -> bytes:
    """Write one envelope as CPE stacks expect it. Requests must carry an ID."""
    body = envelope.body
    ns = envelope.ns
    if isinstance(body, rpc.Request) and not envelope.ID:
        raise ValueError(f"{body.method()} is a request and needs a cwmp:ID header")
    root = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=_nsmap(ns))
    header = etree.SubElement(root, f"{{{SOAP_ENV}}}Header")
    if envelope.ID is not None:
        _header(header, ns, "ID", envelope.ID, must_understand=True)
    if envelope.HoldRequests is not None:
        _header(header, ns, "HoldRequests", _HEADER_BOOL[envelope.HoldRequests], must_understand=True)
    if envelope.SessionTimeout is not None:
        _header(header, ns, "SessionTimeout", str(envelope.SessionTimeout), must_understand=False)
    if envelope.SupportedCWMPVersions is not None:
        text = ",".join(envelope.SupportedCWMPVersions)
        _header(header, ns, "SupportedCWMPVersions", text, must_understand=False)
    if envelope.UseCWMPVersion is not None:
        _header(header, ns, "UseCWMPVersion", envelope.UseCWMPVersion, must_understand=True)
    if len(header) == 0:
        root.remove(header)
    soap_body = etree.SubElement(root, f"{{{SOAP_ENV}}}Body")
    if isinstance(body, rpc.Fault):
        _write_fault(soap_body, ns, body)
    elif isinstance(body, rpc.UnknownMethod):
        raise ValueError("an unknown method cannot be written")
    else:
        _write(etree.SubElement(soap_body, f"{{{ns}}}{type(body).__name__}"), body)
    try:
        return etree.tostring(root, encoding="utf-8", xml_declaration=False)
    except ValueError as e:  # pragma: no cover - lxml checks text as elements are filled
        raise CwmpError(f"cannot write message: {e}") from None


def _header(header: Any, ns: str, name: str, text: str, *, must_understand: bool) -> None:
    el = etree.SubElement(header, f"{{{ns}}}{name}")
    el.set(_MUST_UNDERSTAND, "1" if must_understand else "0")
    el.text = text


def _write_fault(soap_body: Any, ns: str, fault: rpc.Fault) -> None:
    el = etree.SubElement(soap_body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(el, "faultcode").text = f"SOAP-ENV:{fault.faultcode or 'Server'}"
    etree.SubElement(el, "faultstring").text = fault.faultstring or "CWMP fault"
    if fault.FaultCode is not None:
        detail = etree.SubElement(el, "detail")
        _write(etree.SubElement(detail, f"{{{ns}}}Fault"), fault)


def _text(parent: Any, name: str, text: str) -> None:
    try:
        etree.SubElement(parent, name).text = text
    except ValueError as e:
        raise CwmpError(f"<{name}> cannot hold {text[:40]!r}: {e}") from None


def _write(el: Any, obj: Any) -> None:
    for f in _spec(type(obj)):
        value = getattr(obj, f.name)
        kind = f.kind
        if value is None and f.optional and kind != "datetime":
            continue
        if kind == "str":
            _text(el, f.name, value)
        elif kind == "int":
            _text(el, f.name, str(int(value)))
        elif kind == "bool":
            _text(el, f.name, "1" if value else "0")
        elif kind == "datetime":
            _text(el, f.name, values.format_datetime(value))
        elif kind == "struct":
            _write(etree.SubElement(el, f.name), value)
        elif kind == "array":
            _write_array(etree.SubElement(el, f.name), f, value)
        elif kind == "repeated":
            for item in value:
                _write(etree.SubElement(el, f.item.__name__), item)


def _write_array(el: Any, f: _Field, items: list[Any]) -> None:
    if f.item == "string":
        el.set(_ARRAY_TYPE, f"xsd:string[{len(items)}]")
        for item in items:
            _text(el, "string", item)
        return
    name = f.item.__name__
    el.set(_ARRAY_TYPE, f"cwmp:{name}[{len(items)}]")
    if f.item is rpc.ParameterValueStruct:
        for item in items:
            _write_pvs(el, item)
    else:
        for item in items:
            _write(etree.SubElement(el, name), item)


def _write_pvs(parent: Any, pvs: rpc.ParameterValueStruct) -> None:
    item = etree.SubElement(parent, "ParameterValueStruct")
    _text(item, "Name", pvs.Name)
    kind = pvs.Type or values.infer_type(pvs.Value)
    value = etree.SubElement(item, "Value")
    value.set(_XSI_TYPE, values.XSI_TYPE.get(kind, "xsd:string"))
    try:
        value.text = values.encode(pvs.Value, kind)
    except ValueError as e:
        raise CwmpError(f"value of {pvs.Name} cannot be written: {e}") from None
