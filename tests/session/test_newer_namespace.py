"""An Inform in a namespace newer than the ACS knows is answered in the newest version it speaks.

``cwmp-1-5`` (or any later ``cwmp-M-N``) names no schema this ACS has: echoing it would send the CPE
messages in a namespace no XSD defines. The answer is CWMP 1.4: the ``cwmp-1-2`` namespace, with
``UseCWMPVersion`` saying so (mustUnderstand 1, a header every 1.4 CPE reads).
"""

from __future__ import annotations

import pytest
from lxml import etree

import cwmp_schemas
from acs import cwmp
from acs.cwmp import rpc
from acs.session.machine import InformReceived, Session
from tests.cwmp_messages import inform

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS_1_2 = "urn:dslforum-org:cwmp-1-2"
NEWER = ["urn:dslforum-org:cwmp-1-5", "urn:dslforum-org:cwmp-1-10", "urn:dslforum-org:cwmp-2-0"]


def assert_valid_1_4(data: bytes) -> etree._Element:
    root = etree.fromstring(data)
    validator = cwmp_schemas.validator("1.4")
    assert validator.validate(root), f"{data.decode()}\n{validator.error_log}"
    return root


@pytest.mark.parametrize("ns", NEWER)
def test_a_newer_namespace_is_answered_in_cwmp_1_4_not_echoed(ns: str) -> None:
    s = Session("s1")
    step = s.receive(inform("1 BOOT", ns=ns))

    data = cwmp.serialize(step.reply)
    assert data == (
        b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" '
        b'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-2">'
        b'<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">cpe-1</cwmp:ID>'
        b'<cwmp:UseCWMPVersion SOAP-ENV:mustUnderstand="1">1.4</cwmp:UseCWMPVersion></SOAP-ENV:Header>'
        b"<SOAP-ENV:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>"
        b"</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    assert ns.encode() not in data
    assert_valid_1_4(data)
    assert (s.ns, s.version) == (NS_1_2, "1.4")
    (effect,) = step.effects
    assert isinstance(effect, InformReceived) and effect.version == "1.4"


def test_a_newer_cpe_that_lists_its_versions_gets_the_highest_common_one() -> None:
    s = Session("s1")
    versions = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
    step = s.receive(inform("1 BOOT", ns=NEWER[0], SupportedCWMPVersions=versions))

    root = assert_valid_1_4(cwmp.serialize(step.reply))
    assert root.nsmap["cwmp"] == NS_1_2
    assert root.find(f"{{{SOAP_ENV}}}Header/{{{NS_1_2}}}UseCWMPVersion").text == "1.4"
    assert (s.ns, s.version) == (NS_1_2, "1.4")


def test_the_rest_of_the_session_speaks_cwmp_1_4_too() -> None:
    s = Session("s1")
    s.receive(inform("1 BOOT", ns=NEWER[0]))
    s.receive(b"")

    step = s.send(7, rpc.GetParameterValues(["Device.DeviceInfo.UpTime"]))

    data = cwmp.serialize(step.reply)
    root = assert_valid_1_4(data)
    assert root.find(f"{{{SOAP_ENV}}}Body/{{{NS_1_2}}}GetParameterValues") is not None
    assert NEWER[0].encode() not in data
