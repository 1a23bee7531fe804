"""What real CPEs send is read, however it bends the schema (DESIGN: "lenient in").

Each envelope here is small and hand-written to show one deviation at a time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from acs.cwmp import CwmpError, parse, rpc
from acs.cwmp.values import UNKNOWN_TIME

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(
    body: str, header: str | None = None, ns: str = "urn:dslforum-org:cwmp-1-0", prefix: str = "cwmp"
) -> bytes:
    head = "" if header is None else f"<soap:Header>{header}</soap:Header>"
    return (
        f'<soap:Envelope xmlns:soap="{SOAP}" xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
        f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:{prefix}="{ns}">{head}<soap:Body>{body}</soap:Body></soap:Envelope>'
    ).encode()


def inform(
    params: str = "",
    event: str = "<EventStruct><EventCode>1 BOOT</EventCode><CommandKey/></EventStruct>",
    current_time: str = "2024-05-14T09:12:44Z",
    oui: str = "00562B",
    p: str = "cwmp",
) -> str:
    return (
        f"<{p}:Inform><DeviceId><Manufacturer>Cisco Systems, Inc.</Manufacturer><OUI>{oui}</OUI>"
        f"<ProductClass>CP-7841-3PCC</ProductClass><SerialNumber>FCH2233A1B2</SerialNumber></DeviceId>"
        f"<Event>{event}</Event><MaxEnvelopes>1</MaxEnvelopes><CurrentTime>{current_time}</CurrentTime>"
        f"<RetryCount>0</RetryCount><ParameterList>{params}</ParameterList></{p}:Inform>"
    )


def pvs(name: str, value: str, attrs: str = "") -> str:
    return f"<ParameterValueStruct><Name>{name}</Name><Value{attrs}>{value}</Value></ParameterValueStruct>"


ID = '<cwmp:ID soap:mustUnderstand="1">17</cwmp:ID>'


def test_no_soap_header():
    env = parse(envelope(inform()))
    assert env.ID is None
    assert env.body.DeviceId.SerialNumber == "FCH2233A1B2"
    assert env.ns == "urn:dslforum-org:cwmp-1-0"


def test_missing_xsi_type_is_a_string():
    env = parse(envelope(inform(pvs("Device.DeviceInfo.UpTime", "86400"))))
    assert env.body.ParameterList == [rpc.ParameterValueStruct("Device.DeviceInfo.UpTime", "86400", "string")]


@pytest.mark.parametrize(
    "array_attrs",
    [
        "",
        ' soapenc:arrayType="cwmp:ParameterValueStruct[0008]"',
        ' soapenc:arrayType="ParameterValueStruct[2]"',
        ' soapenc:arrayType="cwmp:ParameterValueStruct[0]"',
        ' soapenc:arrayType="{urn:x}ParameterValueStruct[]"',
        ' xsi:type="soapenc:Array" soapenc:arrayType="cwmp:ParameterValueStruct[2]"',
        ' soapenc:arrayType="junk"',
    ],
    ids=["missing", "zero-padded", "unprefixed", "wrong-count", "clark", "xsi-type-array", "junk"],
)
def test_array_type_is_not_trusted(array_attrs):
    params = pvs("Device.A", "1", ' xsi:type="xsd:int"') + pvs("Device.B", "b")
    body = inform().replace(
        "<ParameterList></ParameterList>", f"<ParameterList{array_attrs}>{params}</ParameterList>"
    )
    env = parse(envelope(body))
    assert env.body.ParameterList == [
        rpc.ParameterValueStruct("Device.A", 1, "int"),
        rpc.ParameterValueStruct("Device.B", "b", "string"),
    ]


def test_extra_whitespace_around_names_and_values():
    params = (
        pvs("\n   Device.DeviceInfo.UpTime  \n", "\n  86400 \t", ' xsi:type="xsd:unsignedInt"')
        + pvs(" Device.ManagementServer.PeriodicInformEnable ", "  true  ", ' xsi:type="xsd:boolean"')
        + pvs("Device.X_CISCO_Banner", "  Welcome  ", ' xsi:type="xsd:string"')
    )
    body = inform(params, oui="  00562B\n", current_time="\n 2024-05-14T09:12:44Z ").replace(
        "<MaxEnvelopes>1</MaxEnvelopes>", "<MaxEnvelopes>\n 1 \n</MaxEnvelopes>"
    )
    pretty = body.replace("><", ">\n    <")  # and indented like a pretty-printer would
    for text in (body, pretty):
        inf = parse(envelope(text)).body
        assert inf.DeviceId.OUI == "00562B"
        assert inf.MaxEnvelopes == 1
        assert inf.CurrentTime == datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
        assert [(p.Name, p.Value) for p in inf.ParameterList] == [
            ("Device.DeviceInfo.UpTime", 86400),
            ("Device.ManagementServer.PeriodicInformEnable", True),
            ("Device.X_CISCO_Banner", "  Welcome  "),  # a string's own spaces are part of it
        ]
        assert inf.event_codes == ["1 BOOT"]


@pytest.mark.parametrize("prefix", ["c", "ns4", "dslforum", "soapenc_is_not_this"])
def test_cwmp_bound_to_another_prefix(prefix):
    header = f'<{prefix}:ID soap:mustUnderstand="1">17</{prefix}:ID>'
    env = parse(envelope(inform(p=prefix), header, prefix=prefix))
    assert env.ID == "17"
    assert env.ns == "urn:dslforum-org:cwmp-1-0"
    assert env.body.DeviceId.OUI == "00562B"


def test_cwmp_as_the_default_namespace():
    data = (
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><GetRPCMethods xmlns="urn:dslforum-org:cwmp-1-1"/></s:Body>'
        "</s:Envelope>"
    ).encode()
    env = parse(data)
    assert env.body == rpc.GetRPCMethods()
    assert env.ns == "urn:dslforum-org:cwmp-1-1"


def test_qualified_children():
    body = (
        "<cwmp:Inform><cwmp:DeviceId><cwmp:OUI>00562B</cwmp:OUI><cwmp:SerialNumber>FCH2233A1B2</cwmp:SerialNumber>"
        "</cwmp:DeviceId><cwmp:Event><cwmp:EventStruct><cwmp:EventCode>2 PERIODIC</cwmp:EventCode>"
        "</cwmp:EventStruct></cwmp:Event><cwmp:ParameterList><cwmp:ParameterValueStruct><cwmp:Name>Device.A"
        '</cwmp:Name><cwmp:Value xsi:type="xsd:int">5</cwmp:Value></cwmp:ParameterValueStruct>'
        "</cwmp:ParameterList>"
        "</cwmp:Inform>"
    )
    inf = parse(envelope(body)).body
    assert (inf.DeviceId.OUI, inf.DeviceId.SerialNumber) == ("00562B", "FCH2233A1B2")
    assert inf.event_codes == ["2 PERIODIC"]
    assert inf.ParameterList == [rpc.ParameterValueStruct("Device.A", 5, "int")]


@pytest.mark.parametrize(
    ("ns", "version"), [("urn:dslforum-org:cwmp-1-3", "1.3"), ("urn:dslforum-org:cwmp-1-4", "1.4")]
)
def test_invented_namespaces_are_kept(ns, version):
    # icwmp and others send cwmp-1-3 / cwmp-1-4, which no XSD defines: answer in them all the same
    env = parse(envelope(inform(), ID, ns=ns))
    assert env.ns == ns
    assert env.version == version
    assert env.ID == "17"


def test_no_more_requests_with_must_understand_is_ignored():
    header = ID + '<cwmp:NoMoreRequests soap:mustUnderstand="1">1</cwmp:NoMoreRequests>'
    env = parse(envelope(inform(), header))
    assert isinstance(env.body, rpc.Inform)
    assert env.NoMoreRequests is True  # read, not acted on and not refused


@pytest.mark.parametrize(
    "text", ["11:54::14", "2024-13-45T99:00:00Z", "yesterday", "", "0000-00-00T00:00:00"]
)
def test_malformed_current_time_is_none(text):
    assert parse(envelope(inform(current_time=text))).body.CurrentTime is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", UNKNOWN_TIME),
        ("0001-01-01T00:00:00", datetime(1, 1, 1)),  # naive: time since boot (TR-106)
        ("2024-05-14T11:12:44+02:00", datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)),
        ("2024-05-14T09:12:44.123456789-00:00", datetime(2024, 5, 14, 9, 12, 44, 123456, tzinfo=UTC)),
        ("2024-05-14T09:12:44+0000", datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)),
    ],
)
def test_current_time_forms(text, expected):
    got = parse(envelope(inform(current_time=text))).body.CurrentTime
    assert got == expected
    assert (got.tzinfo is None) == (expected.tzinfo is None)


def test_unknown_time_in_a_value():
    params = pvs(
        "Device.ManagementServer.PeriodicInformTime", "0001-01-01T00:00:00Z", ' xsi:type="xsd:dateTime"'
    )
    (value,) = parse(envelope(inform(params))).body.ParameterList
    assert value.Value == UNKNOWN_TIME
    assert value.Type == "dateTime"


def test_lower_case_oui_is_kept():
    assert parse(envelope(inform(oui="00d09e"))).body.DeviceId.OUI == "00d09e"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("0", False), ("true", True), ("false", False), ("TRUE", True), (" False ", False)],
)
def test_booleans(text, expected):
    gpn = parse(
        envelope(
            f"<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath><NextLevel>{text}"
            "</NextLevel></cwmp:GetParameterNames>",
            ID,
        )
    ).body
    assert gpn.NextLevel is expected
    (value,) = parse(envelope(inform(pvs("Device.A", text, ' xsi:type="xsd:boolean"')))).body.ParameterList
    assert value.Value is expected


def test_a_boolean_that_is_not_one_is_a_clear_error_in_a_field_but_kept_in_a_value():
    with pytest.raises(CwmpError, match="NextLevel"):
        parse(envelope("<cwmp:GetParameterNames><NextLevel>maybe</NextLevel></cwmp:GetParameterNames>", ID))
    (value,) = parse(envelope(inform(pvs("Device.A", "maybe", ' xsi:type="xsd:boolean"')))).body.ParameterList
    assert (value.Value, value.Type) == ("maybe", "boolean")  # nothing a CPE reports is lost


@pytest.mark.parametrize(
    ("xsi_type", "text", "expected", "kind"),
    [
        ("xs:unsignedInt", "60", 60, "unsignedInt"),
        ("soapenc:unsignedInt", "60", 60, "unsignedInt"),
        ("unsignedInt", "60", 60, "unsignedInt"),
        ("xsd:base64Binary", "AAE=", b"\x00\x01", "base64"),
        ("xsd:base64", "AA\nE=", b"\x00\x01", "base64"),
        ("soapenc:base64", "AAE=", b"\x00\x01", "base64"),
        ("xsd:hexBinary", "00FF", b"\x00\xff", "hexBinary"),
        ("xsd:decimal", "-1.50", None, "decimal"),
        ("xsd:unsignedInt", "-1", "-1", "unsignedInt"),  # does not fit: kept as sent
        ("xsd:int", "4294967295", "4294967295", "int"),
        ("xsd:dateTime", "11:54::14", "11:54::14", "dateTime"),
        ("xsd:X_CISCO_Secret", "s3cr3t", "s3cr3t", "string"),
    ],
)
def test_value_types_however_prefixed(xsi_type, text, expected, kind):
    (value,) = parse(envelope(inform(pvs("Device.A", text, f' xsi:type="{xsi_type}"')))).body.ParameterList
    assert value.Value == (Decimal("-1.50") if expected is None else expected)
    assert value.Type == kind


def test_an_unknown_method_is_named():
    env = parse(envelope("<cwmp:X_CISCO_Provision><Profile>a</Profile></cwmp:X_CISCO_Provision>", ID))
    assert env.body == rpc.UnknownMethod("X_CISCO_Provision")
    assert env.ID == "17"
    # methods of the schema this ACS does not model are unknown too
    assert parse(
        envelope("<cwmp:ChangeDUState/>", ID, ns="urn:dslforum-org:cwmp-1-2")
    ).body == rpc.UnknownMethod("ChangeDUState")


def test_a_bare_soap_fault_without_detail():
    env = parse(
        envelope(
            "<soap:Fault><faultcode>soap:Server</faultcode><faultstring>Internal error</faultstring>"
            "</soap:Fault>",
            ID,
        )
    )
    assert env.body == rpc.Fault(
        FaultCode=None, FaultString="", faultcode="Server", faultstring="Internal error"
    )


def test_a_cpe_fault_with_spv_faults_and_unprefixed_faultcode():
    body = (
        "<soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault>"
        "<FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>"
        "<SetParameterValuesFault><ParameterName>Device.A</ParameterName><FaultCode>9007</FaultCode>"
        "<FaultString>Bad value</FaultString></SetParameterValuesFault>"
        "<SetParameterValuesFault><ParameterName>Device.B</ParameterName><FaultCode>9008</FaultCode>"
        "</SetParameterValuesFault></cwmp:Fault></detail></soap:Fault>"
    )
    fault = parse(envelope(body, ID)).body
    assert (fault.FaultCode, fault.faultcode) == (9003, "Client")
    assert fault.SetParameterValuesFault == [
        rpc.SetParameterValuesFault("Device.A", 9007, "Bad value"),
        rpc.SetParameterValuesFault("Device.B", 9008, None),
    ]


@pytest.mark.parametrize(
    ("code", "text"), [(9003, "Invalid arguments"), (9005, "Invalid parameter name"), (9008, "x")]
)
def test_a_cwmp_fault_inside_faultstring_keeps_its_code_and_string(code, text):
    # a C agent seen in the field writes its cwmp:Fault into faultstring, with no detail
    body = (
        f"<soap:Fault><faultcode>Client</faultcode><faultstring><cwmp:Fault><FaultCode>{code}</FaultCode>"
        f"<FaultString>{text}</FaultString></cwmp:Fault></faultstring></soap:Fault>"
    )
    fault = parse(envelope(body, ID)).body
    assert isinstance(fault, rpc.Fault)
    assert (fault.FaultCode, fault.FaultString, fault.faultcode) == (code, text, "Client")


def test_a_cwmp_fault_escaped_as_faultstring_text_keeps_its_code_and_string():
    body = (
        "<soap:Fault><faultcode>Client</faultcode><faultstring>&lt;cwmp:Fault&gt;&lt;FaultCode&gt;9005"
        "&lt;/FaultCode&gt;&lt;FaultString&gt;Invalid parameter name&lt;/FaultString&gt;&lt;/cwmp:Fault&gt;"
        "</faultstring></soap:Fault>"
    )
    fault = parse(envelope(body, ID)).body
    assert (fault.FaultCode, fault.FaultString) == (9005, "Invalid parameter name")


@pytest.mark.parametrize("place", ["fault", "body"])
def test_a_cwmp_fault_outside_detail_is_read(place):
    cwmp_fault = "<cwmp:Fault><FaultCode>9005</FaultCode><FaultString>No such name</FaultString></cwmp:Fault>"
    body = (
        f"<soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>{cwmp_fault}"
        "</soap:Fault>"
        if place == "fault"
        else cwmp_fault
    )
    fault = parse(envelope(body, ID)).body
    assert isinstance(fault, rpc.Fault)
    assert (fault.FaultCode, fault.FaultString) == (9005, "No such name")


def test_session_timeout_means_1_3():
    env = parse(
        envelope(
            inform(), ID + "<cwmp:SessionTimeout>30</cwmp:SessionTimeout>", ns="urn:dslforum-org:cwmp-1-2"
        )
    )
    assert env.SessionTimeout == 30
    assert env.version == "1.3"


def test_supported_versions_with_spaces_mean_1_4():
    header = (
        ID
        + '<cwmp:SupportedCWMPVersions soap:mustUnderstand="0">1.0, 1.1, 1.2, 1.3, 1.4'
        + "</cwmp:SupportedCWMPVersions>"
    )
    env = parse(envelope(inform(), header, ns="urn:dslforum-org:cwmp-1-2"))
    assert env.SupportedCWMPVersions == ("1.0", "1.1", "1.2", "1.3", "1.4")
    assert env.version == "1.4"


def test_the_id_is_echoed_exactly():
    env = parse(envelope(inform(), '<cwmp:ID soap:mustUnderstand="1"> id with spaces </cwmp:ID>'))
    assert env.ID == " id with spaces "


def test_unknown_children_comments_and_cdata_are_harmless():
    body = inform(
        pvs("Device.<!-- a comment -->A", "<![CDATA[<b>&bold</b>]]>", ' xsi:type="xsd:string"')
    ).replace("<RetryCount>", "<X_CISCO_Extra><Deep>1</Deep></X_CISCO_Extra><?vendor pi?><RetryCount>")
    inf = parse(envelope(body, ID)).body
    assert inf.ParameterList == [rpc.ParameterValueStruct("Device.A", "<b>&bold</b>", "string")]
    assert inf.RetryCount == 0


def test_airvana_style_body_encoding_style_and_empty_command_keys():
    data = envelope(
        inform(
            event="<EventStruct><EventCode>M Reboot</EventCode><CommandKey>reboot-7</CommandKey>"
            "</EventStruct><EventStruct><EventCode>1 BOOT</EventCode><CommandKey/></EventStruct>"
        ),
        ID,
    ).replace(b"<soap:Body>", b'<soap:Body soap:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">')
    inf = parse(data).body
    assert inf.Event == [rpc.EventStruct("M Reboot", "reboot-7"), rpc.EventStruct("1 BOOT", "")]


def test_a_names_response_however_each_struct_is_spelled():
    """The loop that reads a GetParameterNamesResponse's ~700 structs bends as the generic reader does."""
    items = [
        "<ParameterInfoStruct><Name>Device.</Name><Writable>0</Writable></ParameterInfoStruct>",
        "<ParameterInfoStruct><Name> Device.A </Name><Writable> TRUE </Writable></ParameterInfoStruct>",
        "<ParameterInfoStruct><Writable>true</Writable><Name>Device.B</Name><X_Extra>1</X_Extra>"
        "</ParameterInfoStruct>",
        "<!-- a comment --><ParameterInfoStruct><cwmp:Name>Device.C</cwmp:Name><cwmp:Writable>1"
        "</cwmp:Writable></ParameterInfoStruct>",
        "<ParameterInfoStruct><Name>Device.D</Name></ParameterInfoStruct>",
        "<ParameterInfoStruct><Writable>false</Writable></ParameterInfoStruct>",
        "<ParameterInfoStruct/>",
    ]
    body = (
        "<cwmp:GetParameterNamesResponse><ParameterList>"
        + "".join(items)
        + "</ParameterList></cwmp:GetParameterNamesResponse>"
    )
    assert parse(envelope(body, ID)).body.ParameterList == [
        rpc.ParameterInfoStruct("Device.", False),
        rpc.ParameterInfoStruct("Device.A", True),
        rpc.ParameterInfoStruct("Device.B", True),
        rpc.ParameterInfoStruct("Device.C", True),
        rpc.ParameterInfoStruct("Device.D", False),
        rpc.ParameterInfoStruct("", False),
        rpc.ParameterInfoStruct("", False),
    ]
    for bad in ("maybe", "", " "):
        item = f"<ParameterInfoStruct><Name>Device.E</Name><Writable>{bad}</Writable></ParameterInfoStruct>"
        with pytest.raises(CwmpError, match="<Writable> must be a boolean"):
            parse(envelope(body.replace("<ParameterInfoStruct/>", item), ID))


def test_a_values_response_keeps_strings_as_sent_and_reads_the_other_types():
    items = [
        pvs("Device.A", " padded ", ' xsi:type="xsd:string"'),
        pvs("Device.B", "", ' xsi:type="xsd:string"'),
        pvs("Device.C", "42", ' xsi:type="xsd:unsignedInt"'),
        pvs("Device.D", "no type"),
        "<ParameterValueStruct><Value xsi:type='xsd:boolean'>1</Value><Name>Device.E</Name>"
        "</ParameterValueStruct>",
        "<ParameterValueStruct><Name>Device.F</Name></ParameterValueStruct>",
    ]
    body = (
        "<cwmp:GetParameterValuesResponse><ParameterList>"
        + "".join(items)
        + "</ParameterList></cwmp:GetParameterValuesResponse>"
    )
    assert parse(envelope(body, ID)).body.ParameterList == [
        rpc.ParameterValueStruct("Device.A", " padded ", "string"),
        rpc.ParameterValueStruct("Device.B", "", "string"),
        rpc.ParameterValueStruct("Device.C", 42, "unsignedInt"),
        rpc.ParameterValueStruct("Device.D", "no type", "string"),
        rpc.ParameterValueStruct("Device.E", True, "boolean"),
        rpc.ParameterValueStruct("Device.F", "", "string"),
    ]
