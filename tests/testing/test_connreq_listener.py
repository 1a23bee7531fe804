"""The simulated phone's connection-request listeners, driven by hand over real sockets.

What the ACS makes of them is in ``tests/connreq``; here the phone's own rules: what its
Inform reports, the Digest it demands, the datagrams it takes and those it drops.
"""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

import pytest

from acs.connreq import udp
from acs.cwmp import rpc
from acs.testing import SimulatedPhone
from acs.testing.connreq import ConnectionRequestListener, Received
from acs.web.auth import DigestAuth
from tests.testing.scripted import converse

MS = "Device.ManagementServer."


def reported(inform: rpc.Inform) -> dict[str, object]:
    return {p.Name: p.Value for p in inform.ParameterList if p.Name.startswith(MS)}


def test_a_listening_phone_reports_where_it_listens_and_keeps_it_across_a_factory_reset():
    phone = SimulatedPhone()
    assert reported(phone.inform())[f"{MS}ConnectionRequestURL"] == "http://10.4.54.21:7547/00562b043615"
    assert f"{MS}UDPConnectionRequestAddress" not in reported(phone.inform())  # not a forced parameter

    phone.listen_for_connection_requests("http://127.0.0.1:4000/cr", "127.0.0.1:4001")

    params = reported(phone.inform())
    assert params[f"{MS}ConnectionRequestURL"] == "http://127.0.0.1:4000/cr"
    assert params[f"{MS}UDPConnectionRequestAddress"] == "127.0.0.1:4001"
    converse(phone)
    converse(phone, rpc.FactoryReset())
    assert reported(converse(phone)[0])[f"{MS}UDPConnectionRequestAddress"] == "127.0.0.1:4001"


def test_a_phone_that_takes_no_http_requests_reports_an_empty_url_and_says_http_is_off():
    phone = SimulatedPhone()

    phone.listen_for_connection_requests("", "127.0.0.1:4001")

    assert reported(phone.inform())[f"{MS}ConnectionRequestURL"] == ""
    assert phone.value(f"{MS}HTTPConnectionRequestEnable") is False


def get(url: str, authorization: str | None = None) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", parts.path, headers={"Authorization": authorization} if authorization else {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_http_the_phone_demands_digest_with_its_connection_request_credentials():
    phone = SimulatedPhone()
    phone.model.set(f"{MS}ConnectionRequestPassword", "pw")
    with ConnectionRequestListener(phone, None) as listener:
        challenge = get(listener.url)
        path = urlsplit(listener.url).path
        wrong, right = DigestAuth(phone.mac, "not-it"), DigestAuth(phone.mac, "pw")
        for auth in (wrong, right):
            assert auth.challenge(challenge.headers.get_all("WWW-Authenticate"))
        refused = get(listener.url, wrong.authorization("GET", path))
        accepted = get(listener.url, right.authorization("GET", path))
        elsewhere = get(listener.url.replace(phone.mac, "other"), right.authorization("GET", "/other"))

    assert challenge.status == refused.status == 401
    assert challenge.headers["WWW-Authenticate"].startswith('Digest realm="Cisco", qop="auth", nonce=')
    assert (accepted.status, accepted.headers["Content-Length"]) == (200, "0")
    assert elsewhere.status == 404
    assert [r.verdict for r in listener.received] == ["challenged", "challenged", "accepted", "refused"]


def send(address: str, request: udp.UdpConnectionRequest) -> None:
    host, port = udp.parse_address(address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(request.encode(), (host, port))


def wait_for(listener: ConnectionRequestListener, count: int) -> list[Received]:
    deadline = time.monotonic() + 5
    while len(listener.received) < count:
        assert time.monotonic() < deadline, listener.received
        time.sleep(0.01)
    return listener.received


@pytest.mark.parametrize(
    ("second", "verdict"),
    [
        ({"ts": 1700000001, "message_id": 8}, "accepted"),
        ({"ts": 1700000000, "message_id": 8}, "accepted"),  # the same second, a new id
        ({"ts": 1700000001, "message_id": 7}, "dropped"),  # a retransmission
        ({"ts": 1699999999, "message_id": 8}, "dropped"),  # older than the one taken
    ],
)
def test_udp_the_phone_takes_a_signed_request_once_and_nothing_older(second, verdict):
    phone = SimulatedPhone()
    phone.model.set(f"{MS}ConnectionRequestPassword", "pw")
    with ConnectionRequestListener(phone, None, http=False, udp=True) as listener:
        host, port = udp.parse_address(listener.udp_address)
        first = udp.UdpConnectionRequest.signed(
            host, port, phone.mac, "pw", ts=1700000000, message_id=7, cnonce="a"
        )
        send(listener.udp_address, first)
        wait_for(listener, 1)
        send(
            listener.udp_address,
            udp.UdpConnectionRequest.signed(host, port, phone.mac, "pw", cnonce="b", **second),
        )
        received = wait_for(listener, 2)

    assert received[0] == Received("udp", "accepted")
    assert received[1].verdict == verdict


def test_udp_the_phone_drops_what_it_cannot_verify_and_says_why():
    phone = SimulatedPhone()
    phone.model.set(f"{MS}ConnectionRequestPassword", "pw")
    with ConnectionRequestListener(phone, None, http=False, udp=True) as listener:
        host, port = udp.parse_address(listener.udp_address)
        send(
            listener.udp_address,
            udp.UdpConnectionRequest.signed(host, port, "x", "pw", ts=1, message_id=1, cnonce="c"),
        )
        send(
            listener.udp_address,
            udp.UdpConnectionRequest.signed(host, port, phone.mac, "no", ts=2, message_id=2, cnonce="c"),
        )
        received = wait_for(listener, 2)

    assert received == [
        Received("udp", "dropped", "un 'x' is not this CPE's ConnectionRequestUsername"),
        Received("udp", "dropped", "sig does not verify with this CPE's ConnectionRequestPassword"),
    ]


def test_a_listener_needs_a_way_in_and_a_known_authentication():
    with pytest.raises(ValueError, match="listen over http, udp or both"):
        ConnectionRequestListener(SimulatedPhone(), None, http=False)
    with pytest.raises(ValueError, match="auth is 'digest' or 'basic', not 'ntlm'"):
        ConnectionRequestListener(SimulatedPhone(), None, auth="ntlm")
