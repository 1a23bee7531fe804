"""Every message the codec builds validates against the Broadband Forum XSD of its CWMP version.

The SOAP Body (and Header) of the envelope schema is *lax*: an element the
schema does not declare is accepted unchecked. So each test also asserts that
the CWMP elements it wrote are declared in that version's schema, which is what
makes the validation real.
"""

from __future__ import annotations

import pytest
from lxml import etree

import cwmp_schemas
from acs.cwmp import codec, rpc
from tests.cwmp.samples import (
    TYPED_VALUES,
    VERSIONS,
    defines,
    envelope,
    inform,
    messages,
    schema_elements,
)

SOAP_ENV = codec.SOAP_ENV


def assert_valid(data: bytes, version: str) -> None:
    """Validates against the version's XSD, and every cwmp element in it is one the XSD declares."""
    doc = etree.fromstring(data)
    ns = cwmp_schemas.namespace(version)
    for el in doc.iter():
        qname = etree.QName(el)
        if (
            qname.namespace == ns
            and el.getparent() is not None
            and el.getparent().tag
            in (
                f"{{{SOAP_ENV}}}Header",
                f"{{{SOAP_ENV}}}Body",
                "detail",
            )
        ):
            assert qname.localname in schema_elements(version), f"{qname.localname} not in CWMP {version}"
    validator = cwmp_schemas.validator(version)
    if not validator.validate(doc):
        pytest.fail(f"CWMP {version} XSD rejects:\n{data.decode()}\n{validator.error_log}")


def _cases() -> list[object]:
    """Each message in each version whose schema defines it (older versions lack a few methods)."""
    return [
        pytest.param(version, message, id=f"{version}-{name}")
        for version in VERSIONS
        for name, message in messages()
        if defines(version, message)
    ]


@pytest.mark.parametrize(("version", "message"), _cases())
def test_every_built_message_validates(version, message):
    assert_valid(codec.serialize(envelope(message, version)), version)


def test_every_message_class_has_a_sample_and_a_schema():
    sampled = {type(m).__name__ for _, m in messages()}
    assert sampled >= set(rpc.MESSAGES), set(rpc.MESSAGES) - sampled
    assert set(rpc.MESSAGES) <= schema_elements("1.4")


def test_methods_are_tested_only_where_the_schema_defines_them():
    # read from the XSDs: the transfer queue and autonomous transfers came with 1.1, scheduled ones with 1.2
    assert "GetAllQueuedTransfers" not in schema_elements("1.0")
    assert "AutonomousTransferComplete" not in schema_elements("1.0")
    assert {"GetAllQueuedTransfers", "AutonomousTransferComplete"} <= schema_elements("1.1")
    assert "ScheduleDownload" not in schema_elements("1.1")
    assert {"ScheduleDownload", "CancelTransfer"} <= schema_elements("1.2")
    assert "SessionTimeout" in schema_elements("1.3")
    assert "SessionTimeout" not in schema_elements("1.2")
    assert {"SupportedCWMPVersions", "UseCWMPVersion"} <= schema_elements("1.4")
    assert "UseCWMPVersion" not in schema_elements("1.3")


ACS_REQUESTS = [m for _, m in messages() if isinstance(m, rpc.Request) and m.cpe_method]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("hold", [True, False])
def test_hold_requests_header_validates(version, hold):
    for message in [*ACS_REQUESTS, rpc.InformResponse()]:
        if defines(version, message):
            assert_valid(codec.serialize(envelope(message, version, HoldRequests=hold)), version)


@pytest.mark.parametrize("version", ["1.3", "1.4"])
def test_session_timeout_header_validates(version):
    assert_valid(codec.serialize(envelope(inform(), version, SessionTimeout=30)), version)


def test_version_negotiation_headers_validate():
    offered = envelope(inform(), "1.4", SessionTimeout=60, SupportedCWMPVersions=("1.0", "1.2", "1.4"))
    assert_valid(codec.serialize(offered), "1.4")
    chosen = envelope(rpc.InformResponse(), "1.4", UseCWMPVersion="1.4", HoldRequests=False)
    assert_valid(codec.serialize(chosen), "1.4")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("value", TYPED_VALUES, ids=lambda p: f"{p.Type}-{p.Name.rsplit('.', 1)[1]}")
def test_values_of_every_type_validate(version, value):
    for message in (
        rpc.SetParameterValues(ParameterList=[value], ParameterKey="k"),
        rpc.GetParameterValuesResponse(ParameterList=[value]),
        inform(("4 VALUE CHANGE",), ParameterList=[value]),
    ):
        assert_valid(codec.serialize(envelope(message, version)), version)


@pytest.mark.parametrize("version", VERSIONS)
def test_values_without_a_declared_type_validate(version):
    untyped = [rpc.ParameterValueStruct(p.Name, p.Value) for p in TYPED_VALUES]
    assert_valid(codec.serialize(envelope(rpc.SetParameterValues(untyped, "k"), version)), version)


# --- the validation bites ---------------------------------------------------------------------


def _broken(data: bytes, version: str) -> bool:
    return not cwmp_schemas.validator(version).validate(etree.fromstring(data))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_non_integer_max_envelopes_does_not_validate(version):
    data = codec.serialize(envelope(rpc.InformResponse(), version))
    assert _broken(data.replace(b"<MaxEnvelopes>1<", b"<MaxEnvelopes>x<"), version)


@pytest.mark.parametrize("version", VERSIONS)
def test_an_unknown_child_does_not_validate(version):
    data = codec.serialize(envelope(rpc.Reboot(CommandKey="r"), version))
    assert _broken(data.replace(b"</CommandKey>", b"</CommandKey><Delay>5</Delay>"), version)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_value_that_does_not_fit_its_type_does_not_validate(version):
    message = rpc.SetParameterValues([rpc.ParameterValueStruct("Device.X", "many", "unsignedInt")], "k")
    assert _broken(codec.serialize(envelope(message, version)), version)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_qualified_child_does_not_validate(version):
    data = codec.serialize(envelope(rpc.Reboot(CommandKey="r"), version))
    assert _broken(
        data.replace(b"<CommandKey>r</CommandKey>", b"<cwmp:CommandKey>r</cwmp:CommandKey>"), version
    )


def test_an_id_without_must_understand_does_not_validate():
    data = codec.serialize(envelope(rpc.GetRPCMethods(), "1.2"))
    assert _broken(data.replace(b' SOAP-ENV:mustUnderstand="1"', b"", 1), "1.2")


def test_a_missing_array_type_does_not_validate():
    data = codec.serialize(envelope(rpc.GetParameterValues(["Device."]), "1.2"))
    assert _broken(data.replace(b' SOAP-ENC:arrayType="xsd:string[1]"', b""), "1.2")
