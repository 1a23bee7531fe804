"""Fuzzing the CWMP port's HTTP/1.1 server: requests cut at any byte, pipelined, answered now or
later, to a client that reads its answers when it likes; hypothesis draws the cases.

The invariants: every whole request reaches the handler once, in order, as it was sent; each is
answered once, in order, and nothing follows an answer that said close; what follows the last
whole request (garbage, a half-close) is answered 400/431 or closes the connection; no exception
escapes; and what the server holds stays bounded: no more whole requests queued than one read
brought, no more unread output than the transport's bound and one answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from acs.web.guard import Guard
from acs.web.http11 import HttpChannel, HttpFactory, HttpRequest

MAX_BODY = 400
BOUND = 600  # the fake transport's buffer: past it, it pauses the server, as Twisted's TCP does


@dataclass
class Sent:
    method: bytes
    target: bytes
    body: bytes
    close: bool
    wire: bytes

    @property
    def answer(self) -> bytes:
        return b"%s %s %d" % (self.method, self.target, len(self.body))


@st.composite
def requests(draw: st.DrawFn) -> Sent:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE"]))
    target = b"/" + draw(st.from_regex(rb"\A[a-zA-Z0-9._~%/?=&-]{0,24}\Z"))
    headers = draw(
        st.lists(
            st.tuples(st.from_regex(rb"\AX-[A-Za-z0-9-]{1,12}\Z"), st.from_regex(rb"\A[!-~]{0,40}\Z")),
            max_size=6,
        )
    )
    body = draw(st.binary(max_size=MAX_BODY)) if method in (b"POST", b"PUT") else b""
    close = draw(st.integers(0, 9)) == 0
    head = [b"%s %s HTTP/1.1" % (method, target), b"Host: acs"]
    head += [b"%s: %s" % h for h in headers]
    if close:
        head.append(b"Connection: close")
    if body and draw(st.booleans()):
        head.append(b"Transfer-Encoding: chunked")
        cuts = sorted(set(draw(st.lists(st.integers(1, len(body)), max_size=4))) | {len(body)})
        chunks, start = [], 0
        for end in cuts:
            chunks.append(b"%x\r\n%s\r\n" % (end - start, body[start:end]))
            start = end
        payload = b"".join(chunks) + b"0\r\n\r\n"
    else:
        head.append(b"Content-Length: %d" % len(body))
        payload = body
    return Sent(method, target, body, close, b"\r\n".join(head) + b"\r\n\r\n" + payload)


class Client(StringTransport):
    """Pauses its producer past BOUND unread bytes, resumes it once they are read (``take``)."""

    def __init__(self) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "10.0.0.1", 40000))
        self.full = False
        self.taken = b""

    def write(self, data: bytes) -> None:
        super().write(data)
        if not self.full and self.producer is not None and len(self.value()) > BOUND:
            self.full = True
            self.producer.pauseProducing()

    def take(self) -> None:
        self.taken += self.value()
        self.clear()
        if self.full:
            self.full = False
            if self.producer is not None:  # none once the server closes
                self.producer.resumeProducing()


class Handler:
    """Answers each request now or later, as ``now`` says, in order."""

    def __init__(self, now: list[bool]) -> None:
        self.now = now
        self.seen: list[HttpRequest] = []
        self.held: list[tuple[HttpChannel, HttpRequest]] = []

    def handle(self, channel: HttpChannel, request: HttpRequest) -> None:
        self.seen.append(request)
        if self.now[(len(self.seen) - 1) % len(self.now)]:
            self.answer(channel, request)
        else:
            self.held.append((channel, request))

    def answer(self, channel: HttpChannel, request: HttpRequest) -> None:
        body = b"%s %s %d" % (request.method, request.target, len(request.body))
        channel.respond(request, 200, [(b"Content-Type", b"text/plain")], body)

    def answer_held(self) -> None:
        while self.held:
            self.answer(*self.held.pop(0))


def parse(data: bytes, methods: list[bytes]) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The answers in ``data``, framed by Content-Length (none for HEAD); an error answer may end it."""
    out = []
    for method in [*methods, b"-"]:
        if not data:
            break
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, f"an answer cut short: {head!r}"
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v for k, _, v in (line.partition(b": ") for line in lines[1:])}
        length = 0 if method == b"HEAD" else int(headers[b"content-length"])
        out.append((status, headers, data[:length]))
        data = data[length:]
    assert not data, f"bytes after the last answer: {data[:80]!r}"
    return out


ENDINGS = st.sampled_from(
    [
        b"",
        b"\x00garbage\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\npartial",  # cut short by a half-close
    ]
)


@settings(
    max_examples=100,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    sent=st.lists(requests(), min_size=1, max_size=8),
    ending=ENDINGS,
    half_close=st.booleans(),
    now=st.lists(st.booleans(), min_size=1, max_size=8),
    data=st.data(),
)
def test_any_cut_and_pipelining_of_requests_is_answered_once_in_order_within_bounds(
    sent: list[Sent], ending: bytes, half_close: bool, now: list[bool], data: st.DataObject
) -> None:
    wire = b"".join(s.wire for s in sent) + ending
    cuts = sorted(
        set(data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=24)) if len(wire) > 1 else [])
    )
    reads = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    ends = []  # where each request ends on the wire
    for s in sent:
        ends.append((ends[-1] if ends else 0) + len(s.wire))

    handler = Handler(now)
    clock = Clock()
    channel = HttpFactory(
        handler, clock, max_body=MAX_BODY, idle_timeout=60, guard=Guard(clock)
    ).buildProtocol(None)
    transport = Client()
    channel.makeConnection(transport)
    largest = max(len(s.answer) for s in sent) + 200
    offset = 0
    for read in reads:
        while transport.producerState == "paused" and not transport.disconnecting:
            # a real transport delivers nothing now: the client must read, or a held answer go
            assert handler.held or transport.full, "reading paused, waiting for nothing"
            if data.draw(st.booleans()) and handler.held:
                handler.answer_held()
            else:
                transport.take()
        if transport.disconnecting:
            break
        channel.dataReceived(read)
        completed = sum(offset < end <= offset + len(read) for end in ends)
        offset += len(read)
        assert len(channel._queue) <= completed, "more queued than this read brought"
        assert len(transport.value()) <= BOUND + largest, "unread answers past the bound"
        assert sum(map(len, channel._body)) <= MAX_BODY
        if data.draw(st.booleans()):
            handler.answer_held()
        if data.draw(st.booleans()):
            transport.take()
    if half_close and not transport.disconnecting:
        channel.readConnectionLost()
    for _ in range(10_000):  # the client reads all; the handler answers all
        handler.answer_held()
        transport.take()
        if not handler.held and not transport.value() and not channel._queue:
            break

    closing = next((i for i, s in enumerate(sent) if s.close), None)
    expected = sent if closing is None else sent[: closing + 1]
    assert [(r.method, r.target, r.body) for r in handler.seen] == [
        (s.method, s.target, s.body) for s in expected
    ]
    answers = parse(transport.taken, [s.method for s in expected])
    for s, (status, _, body) in zip(expected, answers, strict=False):
        assert status == 200
        assert body == (b"" if s.method == b"HEAD" else s.answer)
    assert len(answers) >= len(expected)
    extra = answers[len(expected) :]
    ended = (
        closing is not None or (ending and not (ending.endswith(b"partial") and not half_close)) or half_close
    )
    if closing is not None:
        assert extra == [] and answers[-1][1][b"connection"] == b"close"
    elif ending and not ending.endswith(b"partial"):
        ((status, headers, _),) = extra
        assert status in (400, 431) and headers[b"connection"] == b"close"
    elif ending and half_close:
        ((status, _, _),) = extra
        assert status == 400
    else:  # a half-close after the last answer went closes without a word
        assert extra == []
    assert transport.disconnecting == bool(ended)
    for _, headers, _ in answers[:-1]:
        assert b"connection" not in headers
