"""The CWMP endpoint on the HTTP/1.1 connection, without sockets: a fake store, its work run by hand."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from acs import cwmp
from acs.cwmp import rpc
from acs.session.machine import ProtocolError, Step, device_id
from acs.session.service import Owner, Principal
from acs.web.auth import Authenticator, DigestAuth
from acs.web.cwmp import CpeAuth, CwmpConnection, CwmpEndpoint, UnsupportedEncoding, inflate
from acs.web.http11 import HttpChannel, HttpFactory
from tests.cwmp_messages import inform
from tests.web.test_http11 import responses

SID = "session-0123456789"


@dataclass
class FakeSession:
    id: str
    state: str


@dataclass
class FakeBackend:
    """Records the steps; the Inform gets an InformResponse, anything after it ends the session."""

    steps: list[tuple[str | None, Any, str | None]] = field(default_factory=list)
    principals: list[tuple[Principal | None, tuple[str, int, int] | None]] = field(default_factory=list)
    passwords: dict[str, tuple[str, str]] = field(default_factory=dict)
    looked_up: list[str] = field(default_factory=list)
    revision: int = 1
    fail: BaseException | None = None

    def handle(
        self,
        conn: None,
        sid: str | None,
        env: Any,
        peer: str | None,
        principal: Principal | None = None,
        nonce: tuple[str, int, int] | None = None,
    ) -> tuple[FakeSession, Step]:
        self.steps.append((sid, env, peer))
        self.principals.append((principal, nonce))
        if self.fail is not None:
            raise self.fail
        if sid is None:
            reply = cwmp.Envelope(body=rpc.InformResponse(MaxEnvelopes=1), ID=env.ID, ns=env.ns)
            return FakeSession(SID, "open"), Step(reply=reply)
        return FakeSession(sid, "ended"), Step(reply=None)

    def cpe_password(self, conn: None, username: str) -> tuple[Owner | None, int]:
        self.looked_up.append(username)
        found = self.passwords.get(username)
        return (Owner(*found) if found is not None else None), self.revision


class HandStore:
    """A group commit whose work runs when the test says so, as if the store were slow."""

    def __init__(self) -> None:
        self.work: list[tuple[Callable[[bool, Any], None], Callable[..., Any], tuple[Any, ...]]] = []

    def call(self, on_result: Callable[[bool, Any], None], fn: Any, *args: Any) -> None:
        self.work.append((on_result, fn, args))

    def run(self) -> None:
        while self.work:
            on_result, fn, args = self.work.pop(0)
            try:
                result = fn(None, *args)  # the connection: the fake backend needs none
            except Exception:
                on_result(False, Failure())
            else:
                on_result(True, result)


def setup(
    *, username: str | None = "acs", password: str | None = "pw", auth: bool = True
) -> tuple[FakeBackend, HandStore, HttpChannel, StringTransport, Authenticator]:
    backend, pool, reactor = FakeBackend(), HandStore(), Clock()
    digest = Authenticator()
    cpe_auth = CpeAuth(digest, username, password) if auth else None
    endpoint = CwmpEndpoint(backend, pool, max_size=100_000, auth=cpe_auth)
    channel = HttpFactory(endpoint, reactor, max_body=100_000).buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return backend, pool, channel, transport, digest


def post(body: bytes, *headers: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body),
        b"".join(h + b"\r\n" for h in headers),
        body,
    )


def answer_for(digest: Authenticator, username: str, password: str) -> bytes:
    client = DigestAuth(username, password)
    assert client.challenge([digest.challenges()[0].decode()])
    answer = client.authorization("POST", "/")
    assert answer is not None
    return b"Authorization: " + answer.encode()


def test_a_session_without_cookies_is_followed_by_its_connection() -> None:
    backend, pool, channel, transport, digest = setup()
    channel.dataReceived(post(inform("2 PERIODIC")))
    assert responses(transport)[0][0] == 401 and backend.steps == []  # challenged, nothing stepped
    channel.dataReceived(post(inform("2 PERIODIC"), answer_for(digest, "acs", "pw")))
    assert len(responses(transport)) == 1  # the step is on the pool
    pool.run()
    status, headers, body = responses(transport)[1]
    assert status == 200 and isinstance(cwmp.parse(body).body, rpc.InformResponse)
    assert headers["set-cookie"] == f"session={SID}; Path=/; HttpOnly"
    assert backend.steps[0][0] is None and backend.steps[0][2] == "192.168.1.1"
    channel.dataReceived(post(b""))  # no cookie: the connection names the session
    pool.run()
    status, headers, body = responses(transport)[2]
    assert (status, body, "set-cookie" in headers) == (204, b"", False)
    assert backend.steps[1][0] == SID
    assert channel.handler.connection(channel).session is None  # ended


def test_an_unasked_post_is_challenged_before_its_body_is_read() -> None:
    backend, _, channel, transport, _ = setup()
    channel.dataReceived(post(b"<unclosed"))
    ((status, headers, _),) = responses(transport)
    assert backend.steps == []
    assert status == 401 and headers["www-authenticate"].startswith('Digest realm="acs"')


def test_per_device_passwords_are_looked_up_on_the_pool_and_name_their_device() -> None:
    backend, pool, channel, transport, digest = setup(username=None, password=None)
    device = cwmp.parse(inform("2 PERIODIC")).body.DeviceId
    backend.passwords["phone-1"] = (device_id(device), "pw-1")
    channel.dataReceived(post(inform("2 PERIODIC"), answer_for(digest, "phone-1", "pw-1")))
    assert transport.value() == b"" and backend.looked_up == []  # not on the reactor
    pool.run()
    assert backend.looked_up == ["phone-1"]
    assert responses(transport)[0][0] == 200
    # the backend decides whether they speak for the device the Inform names (SessionHandler._admit)
    principal, nonce = backend.principals[0]
    assert principal == Principal("device", device_id(device))
    assert nonce is not None and nonce[1] == 1
    channel.dataReceived(post(inform("2 PERIODIC"), answer_for(digest, "phone-1", "pw-2")))
    pool.run()
    assert responses(transport)[1][0] == 401 and len(backend.steps) == 1  # a wrong password: no step


def test_a_cpe_that_hangs_up_still_has_its_step_done_and_nothing_is_written() -> None:
    backend, pool, channel, transport, _ = setup(auth=False)
    channel.dataReceived(post(b"", b"Cookie: session=" + SID.encode()))
    channel.connectionLost(None)
    pool.run()
    assert backend.steps[0][0] == SID  # done: committed by the store
    assert transport.value() == b""


def test_store_errors_become_400_or_500_with_a_reason() -> None:
    backend, pool, channel, transport, _ = setup(auth=False)
    backend.fail = ProtocolError("out of order")
    channel.dataReceived(post(b"", b"Cookie: session=" + SID.encode()))
    pool.run()
    backend.fail = RuntimeError("database gone")
    channel.dataReceived(post(b"", b"Cookie: session=" + SID.encode()))
    pool.run()
    (s1, _, b1), (s2, _, b2) = responses(transport)
    assert (s1, b1) == (400, b"out of order\n")
    assert s2 == 500 and b"internal error" in b2 and b"database" not in b2
    assert not transport.disconnecting  # the connection goes on


def test_other_methods_get_405() -> None:
    _, _, channel, transport, _ = setup()
    channel.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    ((status, headers, body),) = responses(transport)
    assert status == 405 and headers["allow"] == "POST" and b"TR-069 ACS" in body


def test_a_user_name_no_device_has_is_looked_up_once_then_in_the_background_once_a_second() -> None:
    backend, pool, channel, transport, digest = setup()
    clock = Clock()
    assert channel.handler.auth is not None
    channel.handler.auth.unknown.clock = clock.seconds
    for _ in range(200):
        channel.dataReceived(post(b"<unclosed", answer_for(digest, "stranger", "pw")))
        pool.run()
    assert backend.looked_up == ["stranger"]  # one lookup for 200 requests
    assert [r[0] for r in responses(transport)] == [401] * 200 and backend.steps == []
    clock.advance(1.5)
    channel.dataReceived(post(b"<unclosed", answer_for(digest, "stranger", "pw")))
    assert responses(transport)[-1][0] == 401  # answered at once; the lookup runs aside
    pool.run()
    assert backend.looked_up == ["stranger", "stranger"]
    # a device got the name (the revision moved): the next request finds it
    backend.passwords["stranger"] = ("dev-1", "pw")
    backend.revision += 1
    clock.advance(1.5)
    channel.dataReceived(post(b"<unclosed", answer_for(digest, "stranger", "pw")))
    pool.run()
    assert backend.looked_up[-1] == "stranger"
    channel.dataReceived(post(inform("2 PERIODIC"), answer_for(digest, "stranger", "pw")))
    pool.run()
    assert responses(transport)[-1][0] == 200 and backend.principals[-1][0] == Principal("device", "dev-1")


def test_the_connection_that_opened_a_session_carries_it_and_no_other() -> None:
    backend, pool, channel, transport, digest = setup()
    channel.dataReceived(post(inform("2 PERIODIC"), answer_for(digest, "acs", "pw")))
    pool.run()
    assert responses(transport)[0][0] == 200 and channel.handler.connection(channel).session == SID
    channel.dataReceived(post(b"", b"Cookie: session=" + SID.encode()))  # its own: no credentials needed
    pool.run()
    assert responses(transport)[1][0] == 204 and backend.principals[1] == (None, None)
    # another connection with the cookie alone is challenged, unread; with credentials it goes on,
    # as whoever they are: the backend compares them with the session's opener
    other = HttpFactory(channel.handler, Clock(), max_body=100_000).buildProtocol(None)
    wire = StringTransport()
    other.makeConnection(wire)
    other.dataReceived(post(b"<unclosed", b"Cookie: session=" + SID.encode()))
    assert responses(wire)[0][0] == 401 and len(backend.steps) == 2
    other.dataReceived(post(b"", b"Cookie: session=" + SID.encode(), answer_for(digest, "acs", "pw")))
    pool.run()
    assert responses(wire)[1][0] == 204 and backend.principals[2][0] == Principal("shared", "acs")


def test_an_unknown_content_encoding_is_a_type_of_its_own_and_a_415() -> None:
    with pytest.raises(UnsupportedEncoding):
        inflate(b"junk", b"br", 1000)
    with pytest.raises(ValueError, match="not valid gzip") as bad:  # a body not in its encoding: 400
        inflate(b"junk", b"gzip", 1000)
    assert not isinstance(bad.value, UnsupportedEncoding)

    backend, _, channel, transport, _ = setup(auth=False)
    channel.dataReceived(post(inform("1 BOOT"), b"Content-Encoding: br"))
    channel.dataReceived(post(b"junk", b"Content-Encoding: gzip"))
    (s1, _, b1), (s2, _, b2) = responses(transport)
    assert (s1, b1) == (415, b"unsupported Content-Encoding 'br'; use gzip or deflate\n")
    assert s2 == 400 and b"not valid gzip" in b2
    assert backend.steps == []


def test_each_connection_s_cwmp_state_is_the_endpoint_s_and_goes_with_the_connection() -> None:
    _, pool, channel, _, digest = setup()
    endpoint = channel.handler
    assert isinstance(endpoint, CwmpEndpoint)
    channel.dataReceived(post(inform("2 PERIODIC"), answer_for(digest, "acs", "pw")))
    pool.run()
    other = HttpFactory(endpoint, Clock(), max_body=100_000).buildProtocol(None)
    other.makeConnection(StringTransport())

    assert endpoint.connection(channel) == CwmpConnection(
        session=SID, certificate=None, certificate_read=True
    )
    assert endpoint.connection(other) == CwmpConnection()
    assert not hasattr(channel, "session")  # the HTTP channel knows nothing of CWMP
    other.connectionLost(None)
    del other
    gc.collect()
    assert list(endpoint._connections) == [channel]
