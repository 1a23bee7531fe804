"""The CWMP port's HTTP/1.1 connection, without sockets: bytes in, bytes out, on a fake transport."""

from __future__ import annotations

import logging
import re

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from acs.web.http11 import MAX_HEAD, HttpChannel, HttpFactory, HttpRequest

MAX = 1000


class Recorder:
    """A handler that keeps the requests; answers each at once unless told to hold them."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.requests: list[HttpRequest] = []

    def handle(self, channel: HttpChannel, request: HttpRequest) -> None:
        self.requests.append(request)
        if not self.hold:
            answer(channel, request)


def answer(channel: HttpChannel, request: HttpRequest) -> None:
    body = b"%s %s %d" % (request.method, request.target, len(request.body))
    channel.respond(request, 200, [(b"Content-Type", b"text/plain")], body)


def connect(
    handler: object, *, idle: float | None = None, log_requests: bool = False
) -> tuple[HttpChannel, StringTransport, Clock]:
    clock = Clock()
    factory = HttpFactory(handler, clock, max_body=MAX, idle_timeout=idle, log_requests=log_requests)  # type: ignore[arg-type]
    channel = factory.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport, clock


def responses(transport: StringTransport) -> list[tuple[int, dict[str, str], bytes]]:
    """The responses written so far: (status, headers, body), framed by their Content-Length."""
    data = transport.value()
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
        length = int(headers.get("content-length", "0")) if status != 100 else 0
        out.append((status, headers, data[:length]))
        data = data[length:]
    return out


def post(body: bytes, *headers: str, target: str = "/", version: str = "1.1") -> bytes:
    head = [f"POST {target} HTTP/{version}", "Host: acs", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_keep_alive_is_the_default_of_http_1_1_and_requests_are_framed_by_length() -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(post(b"<Inform/>") + post(b"", target="/acs"))
    assert [(r.method, r.target, r.body) for r in handler.requests] == [
        (b"POST", b"/", b"<Inform/>"),
        (b"POST", b"/acs", b""),
    ]
    (s1, h1, b1), (s2, _, b2) = responses(transport)
    assert (s1, b1, s2, b2) == (200, b"POST / 9", 200, b"POST /acs 0")
    assert "connection" not in h1 and "date" in h1
    assert not transport.disconnecting


def test_http_1_0_and_connection_close_end_the_connection_after_the_answer() -> None:
    for request in (post(b"x", version="1.0"), post(b"x", "Connection: close")):
        handler = Recorder()
        channel, transport, _ = connect(handler)
        channel.dataReceived(request + post(b"never read"))
        ((status, headers, _),) = responses(transport)
        assert status == 200 and headers["connection"] == "close"
        assert transport.value().startswith(request[request.index(b"HTTP/") : request.index(b"HTTP/") + 8])
        assert transport.disconnecting
        assert len(handler.requests) == 1


def test_a_chunked_body_arrives_whole_even_in_small_pieces() -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    for i in range(len(data)):
        channel.dataReceived(data[i : i + 1])
    assert handler.requests[0].body == b"hello world"
    assert responses(transport)[0][0] == 200


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_cap_is_read_and_dropped_not_kept(chunked: bool) -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    if chunked:
        channel.dataReceived(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            channel.dataReceived(b"1f4\r\n" + b"x" * 500 + b"\r\n")
        assert sum(map(len, channel._body)) <= MAX  # never kept past the cap
        channel.dataReceived(b"0\r\n\r\n")
    else:
        channel.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        assert transport.value() == b""  # no "100 Continue" for a body that will not be kept
        for _ in range(5):
            channel.dataReceived(b"x" * 1000)
            assert channel._body == []
    (request,) = handler.requests
    assert request.too_large and request.body == b""
    channel.dataReceived(post(b"next"))  # the connection goes on
    assert [r.body for r in handler.requests] == [b"", b"next"]


def test_expect_100_continue_is_answered_before_the_body() -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    channel.dataReceived(b"ok")
    assert [s for s, _, _ in responses(transport)] == [100, 200]


class Refuser(Recorder):
    """A handler with an answer from the head alone for requests without Authorization."""

    def early(
        self, channel: HttpChannel, request: HttpRequest
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if b"authorization" in request.headers:
            return None  # type: ignore[return-value]
        return 401, [(b"WWW-Authenticate", b"Digest realm=x")], b""


@pytest.mark.parametrize("body_sent", [False, True])
def test_an_answer_from_the_head_goes_instead_of_100_continue_and_ends_the_connection(
    body_sent: bool,
) -> None:
    handler = Refuser()
    channel, transport, _ = connect(handler)
    channel.dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    ((status, headers, body),) = responses(transport)
    assert (status, headers["www-authenticate"], headers["connection"], body) == (
        401,
        "Digest realm=x",
        "close",
        b"",
    )
    assert transport.disconnecting
    if body_sent:  # the client sent it anyway: it is nobody's request
        channel.dataReceived(b"ok" + post(b"next"))
    assert handler.requests == [] and len(responses(transport)) == 1


def test_without_an_answer_from_the_head_100_continue_is_sent() -> None:
    handler = Refuser()
    channel, transport, _ = connect(handler)
    channel.dataReceived(
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nAuthorization: x\r\nExpect: 100-continue\r\n\r\n"
    )
    assert transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    channel.dataReceived(b"ok")
    assert [r.body for r in handler.requests] == [b"ok"]


def test_pipelined_requests_are_answered_in_order_one_at_a_time() -> None:
    handler = Recorder(hold=True)
    channel, transport, _ = connect(handler)
    channel.dataReceived(post(b"1") + post(b"22") + post(b"333"))
    assert [r.body for r in handler.requests] == [b"1"]  # the others wait their turn
    assert transport.producerState == "paused"  # and reading stops meanwhile
    answer(channel, handler.requests[0])
    assert [r.body for r in handler.requests] == [b"1", b"22"]
    answer(channel, handler.requests[1])
    answer(channel, handler.requests[2])
    assert [b for _, _, b in responses(transport)] == [b"POST / 1", b"POST / 2", b"POST / 3"]
    assert transport.producerState == "producing"


def test_many_pipelined_requests_answered_at_once_do_not_recurse() -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(post(b"") * 3000)
    assert len(responses(transport)) == 3000


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"GARBAGE\r\n\r\n", 400, b"Invalid method"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, b"Content-Length"),
        (b"POST / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431, b"headers"),
        (b"POST /" + b"a" * (MAX_HEAD + 10), 431, b"request head over"),
    ],
)
def test_malformed_http_gets_400_or_431_with_the_reason_and_the_connection_closes(
    data: bytes, status: int, reason: bytes
) -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(data)
    ((got, headers, body),) = responses(transport)
    assert got == status and reason in body and headers["connection"] == "close"
    assert transport.disconnecting
    channel.dataReceived(post(b"after"))
    assert handler.requests == []


def test_a_request_head_that_never_ends_is_refused_before_it_fills_memory() -> None:
    channel, transport, _ = connect(Recorder())
    channel.dataReceived(b"POST / HTTP/1.1\r\nX-Long: ")
    for _ in range(MAX_HEAD // 1000 + 2):
        if transport.disconnecting:
            break
        channel.dataReceived(b"a" * 1000)
    assert transport.disconnecting
    assert responses(transport)[0][0] == 431


def test_an_answer_after_the_client_hung_up_writes_nothing() -> None:
    handler = Recorder(hold=True)
    channel, transport, _ = connect(handler)
    channel.dataReceived(post(b"1") + post(b"2"))
    channel.connectionLost(None)
    answer(channel, handler.requests[0])
    assert transport.value() == b""
    assert len(handler.requests) == 1  # what was queued behind it is dropped


def test_a_request_is_answered_once_and_a_handler_crash_is_a_500() -> None:
    class Crash:
        def handle(self, channel: HttpChannel, request: HttpRequest) -> None:
            raise RuntimeError("boom")

    channel, transport, _ = connect(Crash())
    channel.dataReceived(post(b"x"))
    ((status, _, body),) = responses(transport)
    assert status == 500 and b"internal error" in body

    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(post(b"x"))
    answer(channel, handler.requests[0])  # a second answer
    assert len(responses(transport)) == 1


def test_head_gets_the_headers_only() -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(b"HEAD / HTTP/1.1\r\n\r\n")
    assert transport.value().endswith(b"Content-Length: 8\r\nContent-Type: text/plain\r\n\r\n")


def test_headers_are_lower_case_and_cookies_are_joined() -> None:
    handler = Recorder()
    channel, _, _ = connect(handler)
    channel.dataReceived(post(b"", "Cookie: a=1", "X-Thing: 1", "cookie: session=abcdefgh", "X-THING: 2"))
    headers = handler.requests[0].headers
    assert headers[b"cookie"] == b"a=1; session=abcdefgh"
    assert headers[b"x-thing"] == b"2"


def test_an_upgrade_request_is_served_as_plain_http() -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(
        post(b"<Inform/>", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c") + post(b"2")
    )
    assert [r.body for r in handler.requests] == [b"<Inform/>", b"2"]
    assert [s for s, _, _ in responses(transport)] == [200, 200]
    assert not transport.disconnecting


def test_connect_is_answered_and_the_connection_closed() -> None:
    handler = Recorder()
    channel, transport, _ = connect(handler)
    channel.dataReceived(b"CONNECT acs:443 HTTP/1.1\r\n\r\n\x16\x03\x01")
    assert [r.method for r in handler.requests] == [b"CONNECT"]
    assert transport.disconnecting


def test_an_idle_connection_is_closed_but_not_while_its_request_is_handled() -> None:
    handler = Recorder(hold=True)
    channel, transport, clock = connect(handler, idle=60)
    clock.advance(5)
    channel.dataReceived(post(b"x"))
    clock.advance(100)  # the handler is slow: the connection waits for it
    assert not transport.disconnecting
    answer(channel, handler.requests[0])
    clock.advance(59)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting
    channel.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_the_access_log_has_a_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    handler = Recorder()
    channel, _, _ = connect(handler, log_requests=True)
    with caplog.at_level(logging.INFO, "acs.web.access"):
        channel.dataReceived(post(b"x", "User-Agent: phone/1.0"))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "acs.web.access"]
    assert re.fullmatch(r'"192\.168\.1\.1" - - \[.+\] "POST / HTTP/1\.1" 200 8 "-" "phone/1\.0"', line)
    channel, _, _ = connect(Recorder())
    caplog.clear()
    with caplog.at_level(logging.INFO, "acs.web.access"):
        channel.dataReceived(post(b"x"))
    assert not [r for r in caplog.records if r.name == "acs.web.access"]
