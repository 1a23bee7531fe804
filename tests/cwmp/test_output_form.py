"""What the ACS writes is what picky CPE stacks expect (DESIGN: "strict out")."""

from __future__ import annotations

import dataclasses
import re

import pytest
from lxml import etree

from acs.cwmp import CwmpError, codec, parse, rpc, serialize
from tests.cwmp.samples import VERSIONS, envelope, inform, messages

SOAP_ENV = codec.SOAP_ENV
SOAP_ENC = codec.SOAP_ENC
XSI_TYPE = f"{{{codec.XSI}}}type"
ARRAY_TYPE = f"{{{SOAP_ENC}}}arrayType"
MUST_UNDERSTAND = f"{{{SOAP_ENV}}}mustUnderstand"
SAMPLES = messages()


def cases(keep: object = lambda m: True) -> list[object]:
    return [pytest.param(m, id=name) for name, m in SAMPLES if keep(m)]


def built(message: rpc.Message, version: str = "1.2", **header: object) -> tuple[bytes, etree._Element]:
    data = serialize(envelope(message, version, **header))
    return data, etree.fromstring(data)


def method_element(root: etree._Element) -> etree._Element:
    return root.find(f"{{{SOAP_ENV}}}Body")[0]


@pytest.mark.parametrize("message", cases())
def test_conventional_prefixes_declared_once_and_no_xml_declaration(message):
    data, root = built(message)
    assert data.startswith(b"<SOAP-ENV:Envelope ")
    assert b"<?xml" not in data
    assert root.nsmap == {
        "SOAP-ENV": SOAP_ENV,
        "SOAP-ENC": SOAP_ENC,
        "xsd": "http://www.w3.org/2001/XMLSchema",
        "xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "cwmp": "urn:dslforum-org:cwmp-1-2",
    }
    assert data.count(b"xmlns:") == 5  # nothing redeclared further down
    assert not re.search(rb"<ns\d|xmlns=", data)


@pytest.mark.parametrize("message", cases())
def test_id_header_with_must_understand(message):
    data, root = built(message)
    (header,) = root.findall(f"{{{SOAP_ENV}}}Header")
    (cwmp_id,) = header.findall("{urn:dslforum-org:cwmp-1-2}ID")
    assert cwmp_id.text == "acs-1715677964.17"
    assert cwmp_id.get(MUST_UNDERSTAND) == "1"
    assert b'<cwmp:ID SOAP-ENV:mustUnderstand="1">acs-1715677964.17</cwmp:ID>' in data


@pytest.mark.parametrize("message", cases(lambda m: not isinstance(m, rpc.Fault)))
def test_method_qualified_children_unqualified(message):
    _, root = built(message)
    method = method_element(root)
    assert method.tag == f"{{urn:dslforum-org:cwmp-1-2}}{type(message).__name__}"
    assert method.prefix == "cwmp"
    for el in method.iterdescendants():
        assert etree.QName(el).namespace is None, el.tag


def _arrays(obj: object, el: etree._Element) -> list[tuple[etree._Element, str, int]]:
    """(element, item name, length) for every SOAP-ENC array field of a record, at any depth."""
    found = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name == "Type" or value is None:
            continue
        children = el.findall(f.name)
        if isinstance(value, list) and not f.metadata.get("repeated"):
            (child,) = children
            item = type(value[0]).__name__ if value and not isinstance(value[0], str) else None
            found.append((child, item, len(value)))
            for struct, item_el in zip(value, child, strict=True):
                if dataclasses.is_dataclass(struct):
                    found += _arrays(struct, item_el)
        elif isinstance(value, list):
            for struct, item_el in zip(value, children, strict=True):
                found += _arrays(struct, item_el)
        elif dataclasses.is_dataclass(value):
            (child,) = children
            found += _arrays(value, child)
    return found


@pytest.mark.parametrize("message", cases())
def test_array_type_with_the_right_count_on_every_array(message):
    _, root = built(message)
    el = method_element(root)
    if isinstance(message, rpc.Fault):
        el = el.find("detail")[0]
    arrays = _arrays(message, el)
    for array, item, count in arrays:
        declared = array.get(ARRAY_TYPE)
        assert declared is not None, f"{array.tag} without arrayType"
        assert len(array) == count
        if item is None:  # strings, or an empty array of structs
            assert re.fullmatch(rf"(xsd:string|cwmp:\w+)\[{count}\]", declared), declared
        else:
            assert declared == f"cwmp:{item}[{count}]"
            assert {child.tag for child in array} == {item}
    assert len(root.xpath("//*[@SOAP-ENC:arrayType]", namespaces={"SOAP-ENC": SOAP_ENC})) == len(arrays)


def test_string_arrays_and_empty_arrays():
    _, root = built(rpc.GetParameterValues(["Device.DeviceInfo.", "Device.LAN.IPAddress"]))
    names = method_element(root).find("ParameterNames")
    assert names.get(ARRAY_TYPE) == "xsd:string[2]"
    assert [c.tag for c in names] == ["string", "string"]
    _, root = built(rpc.GetParameterValuesResponse([]))
    assert method_element(root).find("ParameterList").get(ARRAY_TYPE) == "cwmp:ParameterValueStruct[0]"


@pytest.mark.parametrize("message", cases(lambda m: hasattr(m, "ParameterList")))
def test_xsi_type_on_every_value(message):
    _, root = built(message)
    for value in root.iter("Value"):
        assert value.get(XSI_TYPE) is not None


def test_xsi_types_written():
    _, root = built(
        rpc.GetParameterValuesResponse(
            [
                rpc.ParameterValueStruct("A", "x"),
                rpc.ParameterValueStruct("B", 7),
                rpc.ParameterValueStruct("C", 2**40),
                rpc.ParameterValueStruct("D", 2**64 - 1),
                rpc.ParameterValueStruct("E", True),
                rpc.ParameterValueStruct("F", b"\x00\x01"),
                rpc.ParameterValueStruct("G", b"\x00\x01", "hexBinary"),
                rpc.ParameterValueStruct("H", 5, "unsignedInt"),
                rpc.ParameterValueStruct(
                    "I", "5", "unsignedInt"
                ),  # a typed value given as text stays as given
                rpc.ParameterValueStruct("J", "x", "base64Binary-or-nonsense"),
            ]
        )
    )
    written = {
        p.findtext("Name"): (p.find("Value").get(XSI_TYPE), p.findtext("Value"))
        for p in root.iter("ParameterValueStruct")
    }
    assert written == {
        "A": ("xsd:string", "x"),
        "B": ("xsd:int", "7"),
        "C": ("xsd:long", str(2**40)),
        "D": ("xsd:unsignedLong", str(2**64 - 1)),
        "E": ("xsd:boolean", "true"),
        "F": ("SOAP-ENC:base64", "AAE="),
        "G": ("xsd:hexBinary", "0001"),
        "H": ("xsd:unsignedInt", "5"),
        "I": ("xsd:unsignedInt", "5"),
        "J": ("xsd:string", "x"),
    }


def test_booleans_and_times_in_rpc_fields():
    _, root = built(rpc.GetParameterNames("Device.", NextLevel=True))
    assert method_element(root).findtext("NextLevel") == "1"
    _, root = built(rpc.DownloadResponse(Status=1))
    assert method_element(root).findtext("StartTime") == "0001-01-01T00:00:00Z"  # TR-106 Unknown Time
    _, root = built(inform())
    assert method_element(root).findtext("CurrentTime") == "2024-05-14T09:12:44Z"


@pytest.mark.parametrize(
    "ns",
    [
        *sorted({codec.NAMESPACES[v] for v in VERSIONS}),
        "urn:dslforum-org:cwmp-1-3",
        "urn:dslforum-org:cwmp-1-4",
    ],
)
def test_the_answer_is_in_the_namespace_of_the_inform(ns):
    request = serialize(codec.Envelope(body=inform(), ID="42", ns=ns))
    cpe = parse(request)
    assert cpe.ns == ns
    answer = serialize(codec.Envelope(body=rpc.InformResponse(), ID=cpe.ID, ns=cpe.ns))
    root = etree.fromstring(answer)
    assert method_element(root).tag == f"{{{ns}}}InformResponse"
    assert root.nsmap["cwmp"] == ns
    assert root.find(f"{{{SOAP_ENV}}}Header/{{{ns}}}ID").text == "42"


def test_cwmp_1_0_inform_is_answered_in_cwmp_1_0():
    data = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Header><cwmp:ID soap:mustUnderstand="1">7</cwmp:ID>'
        b"</soap:Header><soap:Body><cwmp:Inform><MaxEnvelopes>1</MaxEnvelopes></cwmp:Inform></soap:Body>"
        b"</soap:Envelope>"
    )
    cpe = parse(data)
    answer = serialize(codec.Envelope(body=rpc.InformResponse(), ID=cpe.ID, ns=cpe.ns))
    assert b'xmlns:cwmp="urn:dslforum-org:cwmp-1-0"' in answer
    assert b"<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>" in answer
    assert b"cwmp-1-2" not in answer


@pytest.mark.parametrize("message", cases(lambda m: isinstance(m, rpc.Request)))
def test_a_request_without_id_raises(message):
    with pytest.raises(ValueError, match="needs a cwmp:ID header"):
        serialize(codec.Envelope(body=message))
    with pytest.raises(ValueError, match="needs a cwmp:ID header"):
        serialize(codec.Envelope(body=message, ID=""))


def test_a_response_without_id_has_no_header():
    # some CPEs send no header at all; the answer then carries none
    data = serialize(codec.Envelope(body=rpc.InformResponse()))
    assert b"Header" not in data
    assert data.startswith(b"<SOAP-ENV:Envelope ") and b"<SOAP-ENV:Body><cwmp:InformResponse>" in data


def test_header_fields_and_must_understand():
    _, root = built(inform(), "1.4", SessionTimeout=30, SupportedCWMPVersions=("1.0", "1.2", "1.4"))
    header = root.find(f"{{{SOAP_ENV}}}Header")
    ns = "urn:dslforum-org:cwmp-1-2"
    assert [(etree.QName(h).localname, h.text, h.get(MUST_UNDERSTAND)) for h in header] == [
        ("ID", "acs-1715677964.17", "1"),
        ("SessionTimeout", "30", "0"),
        ("SupportedCWMPVersions", "1.0,1.2,1.4", "0"),
    ]
    _, root = built(rpc.InformResponse(), "1.4", HoldRequests=True, UseCWMPVersion="1.4")
    header = root.find(f"{{{SOAP_ENV}}}Header")
    assert header.find(f"{{{ns}}}HoldRequests").text == "1"
    assert header.find(f"{{{ns}}}HoldRequests").get(MUST_UNDERSTAND) == "1"
    assert header.find(f"{{{ns}}}UseCWMPVersion").get(MUST_UNDERSTAND) == "1"
    _, root = built(rpc.Reboot("r"), HoldRequests=False)
    assert root.find(f"{{{SOAP_ENV}}}Header/{{{ns}}}HoldRequests").text == "0"


def test_fault_form():
    fault = rpc.Fault(
        FaultCode=9003,
        FaultString="Invalid arguments",
        faultcode="Client",
        SetParameterValuesFault=[rpc.SetParameterValuesFault("Device.X", 9007, "Value too long")],
    )
    data, root = built(fault)
    soap_fault = method_element(root)
    assert soap_fault.tag == f"{{{SOAP_ENV}}}Fault"
    assert soap_fault.findtext("faultcode") == "SOAP-ENV:Client"
    assert soap_fault.findtext("faultstring") == "CWMP fault"
    cwmp_fault = soap_fault.find("detail/{urn:dslforum-org:cwmp-1-2}Fault")
    assert cwmp_fault.findtext("FaultCode") == "9003"
    assert [c.tag for c in cwmp_fault] == ["FaultCode", "FaultString", "SetParameterValuesFault"]
    assert cwmp_fault.find("SetParameterValuesFault").get(ARRAY_TYPE) is None  # repeated, not an array
    assert b"<ParameterName>Device.X</ParameterName><FaultCode>9007</FaultCode>" in data
    # a bare SOAP fault: no detail at all
    _, root = built(rpc.Fault(FaultCode=None, faultcode="Server", faultstring="Internal error"))
    assert method_element(root).find("detail") is None


def test_unknown_methods_and_unwritable_text_raise():
    with pytest.raises(ValueError, match="unknown method"):
        serialize(codec.Envelope(body=rpc.UnknownMethod("X_CISCO_Foo"), ID="1"))
    with pytest.raises(CwmpError, match="cannot"):
        serialize(envelope(rpc.Reboot(CommandKey="bad\x00key"), "1.2"))
    with pytest.raises(CwmpError, match=r"Device\.X"):
        serialize(envelope(rpc.SetParameterValues([rpc.ParameterValueStruct("Device.X", "a\x07b")]), "1.2"))
    with pytest.raises(CwmpError, match="decimal"):
        serialize(
            envelope(rpc.SetParameterValues([rpc.ParameterValueStruct("Device.X", float("nan"))]), "1.2")
        )
