"""The Annex G datagram: its signature, its form on the wire, and what a CPE drops."""

from __future__ import annotations

import hmac
import re

import pytest

from acs.connreq import udp

TS, ID, UN, CN, PASSWORD = 1700000000, 123456, "cr-user", "9f2c1e0a7b3d4c11", "cr-s3cret"
#: printf %s 1700000000123456cr-user9f2c1e0a7b3d4c11 | openssl dgst -sha1 -hmac cr-s3cret
OPENSSL_SIG = "a500e3e0b326f63be96ff67c98d3d1fab99e43d5"


def test_the_signature_is_hmac_sha1_keyed_with_the_password_over_ts_id_un_cn():
    assert udp.signature(TS, ID, UN, CN, PASSWORD) == OPENSSL_SIG
    assert hmac.new(PASSWORD.encode(), f"{TS}{ID}{UN}{CN}".encode(), "sha1").hexdigest() == OPENSSL_SIG


def test_the_datagram_is_a_get_request_line_and_a_host_header_as_annex_g_shows():
    request = udp.UdpConnectionRequest.signed(
        "203.0.113.7", 49152, UN, PASSWORD, ts=TS, message_id=ID, cnonce=CN
    )

    assert request.encode() == (
        b"GET http://203.0.113.7:49152?ts=1700000000&id=123456&un=cr-user&cn=9f2c1e0a7b3d4c11"
        b"&sig=a500e3e0b326f63be96ff67c98d3d1fab99e43d5 HTTP/1.1\r\n"
        b"Host: 203.0.113.7:49152\r\n\r\n"
    )


def test_ipv6_hosts_are_bracketed_and_a_username_with_reserved_characters_is_escaped():
    request = udp.UdpConnectionRequest.signed(
        "2001:db8::7", 7547, "a b&c", "pw", ts=1, message_id=2, cnonce="c"
    )

    datagram = request.encode()

    assert datagram.startswith(b"GET http://[2001:db8::7]:7547?ts=1&id=2&un=a%20b%26c&cn=c&sig=")
    assert b"\r\nHost: [2001:db8::7]:7547\r\n" in datagram
    parsed = udp.parse(datagram)
    assert parsed == request
    assert parsed.verify("a b&c", "pw") is None  # signed over the plain text, not the escaped form


def test_a_cpe_takes_a_genuine_request_and_names_why_it_drops_others():
    request = udp.parse(
        udp.UdpConnectionRequest.signed("h", 1, UN, PASSWORD, ts=TS, message_id=ID, cnonce=CN).encode()
    )

    assert request.verify(UN, PASSWORD) is None
    assert (
        request.verify("someone-else", PASSWORD) == "un 'cr-user' is not this CPE's ConnectionRequestUsername"
    )
    assert "sig does not verify" in (request.verify(UN, "wrong") or "")


def test_the_signature_is_compared_in_any_case():
    upper = udp.UdpConnectionRequest("h", 1, TS, ID, UN, CN, OPENSSL_SIG.upper())  # as FreeACS writes it

    assert upper.verify(UN, PASSWORD) is None


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"POST http://h:1?ts=1&id=1&un=u&cn=c&sig=s HTTP/1.1\r\n\r\n", "the first line is not 'GET"),
        (b"GET http://h:1?ts=1&id=1&un=u&cn=c HTTP/1.1\r\n\r\n", "sig missing"),
        (b"GET http://h:1?ts=1&ts=2&id=1&un=u&cn=c&sig=s HTTP/1.1\r\n\r\n", "ts missing (or given twice)"),
        (
            b"GET http://h:1?ts=1.5&id=1&un=u&cn=c&sig=s HTTP/1.1\r\n\r\n",
            "ts and id must be unsigned integers",
        ),
        (b"GET ftp://h:1?ts=1&id=1&un=u&cn=c&sig=s HTTP/1.1\r\n\r\n", "is not an http:// URL"),
        (b"\xff\xfe", "not ASCII"),
        (b"G" * 2000, "a UDP Connection Request fits in 1400"),
    ],
)
def test_malformed_datagrams_are_refused_with_the_reason(datagram, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        udp.parse(datagram)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.7:49152", ("203.0.113.7", 49152)),
        ("203.0.113.7", ("203.0.113.7", 80)),  # TR-181: host alone means port 80
        ("phone.example.net:7547", ("phone.example.net", 7547)),
        ("[2001:db8::7]:7547", ("2001:db8::7", 7547)),
        ("[2001:db8::7]", ("2001:db8::7", 80)),
        ("2001:db8::7", ("2001:db8::7", 80)),
    ],
)
def test_udp_connection_request_addresses(address, expected):
    assert udp.parse_address(address) == expected


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("", "is empty"),
        (":7547", "is not host, host:port or [IPv6]:port"),
        ("h:0", "the port must be 1-65535"),
        ("h:http", "the port must be 1-65535"),
        ("[2001:db8::7]x", "is not host, host:port or [IPv6]:port"),
    ],
)
def test_bad_addresses_are_refused_with_the_forms_allowed(address, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        udp.parse_address(address)
