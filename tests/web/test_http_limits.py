"""The HTTP ports' deadlines, caps, back-pressure and half-close, without sockets: fake transports
and a fake clock, for the CWMP port's own server (``acs.web.http11``) and the twisted.web ports."""

from __future__ import annotations

import io
import resource

import pytest
from twisted.internet import interfaces
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import resource as web_resource
from twisted.web import server

from acs.web.cwmp import LimitedRequest
from acs.web.guard import IDLE_TIMEOUT, Admission, Guard, GuardedChannel, Limits, connection_cap
from acs.web.http11 import MAX_HEAD, HttpChannel, HttpFactory
from acs.web.server import QuietSite, guarded
from tests.web.test_http11 import Recorder, answer, post, responses

HEAD = 10.0  # the guard's head timeout in these tests
GET = b"GET / HTTP/1.1\r\nHost: acs\r\n\r\n"


class Client(StringTransport):
    """A transport to a client that reads only when told (``take``): past ``bound`` unread bytes it
    pauses its producer and resumes it once they are taken, as Twisted's TCP transport does.
    ``disconnected`` is StringTransport's mark of an abortConnection."""

    def __init__(self, source: str = "10.0.0.1", bound: int = 1 << 30) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", source, 40000))
        self.bound = bound
        self.full = False
        self.taken = b""
        self.protocol: object = None

    def write(self, data: bytes) -> None:
        super().write(data)
        if not self.full and self.producer is not None and len(self.value()) > self.bound:
            self.full = True
            self.producer.pauseProducing()

    def take(self) -> bytes:
        data = self.value()
        self.taken += data
        self.clear()
        if self.full:
            self.full = False
            self.producer.resumeProducing()
        return data


def cwmp(guard: Guard, handler: object, transport: Client, idle: float | None = 60.0) -> HttpChannel:
    factory = HttpFactory(handler, guard.reactor, max_body=100_000, idle_timeout=idle, guard=guard)  # type: ignore[arg-type]
    channel = factory.buildProtocol(None)
    transport.protocol = channel
    channel.makeConnection(transport)
    return channel


def new_guard(**limits: float) -> Guard:
    return Guard(Clock(), Limits(**({"head_timeout": HEAD} | limits)))  # type: ignore[arg-type]


def tick(guard: Guard, seconds: float) -> None:
    """Let ``seconds`` pass a second at a time, as the reactor would."""
    for _ in range(int(seconds)):
        guard.reactor.advance(1)


# --- slow clients: deadlines that bytes trickling in do not move --------------------------------------


def test_a_head_trickling_in_is_cut_at_its_deadline_with_408() -> None:
    guard = new_guard()
    transport = Client()
    handler = Recorder()
    cwmp(guard, handler, transport)
    head = b"POST / HTTP/1.1\r\nHost: acs\r\nX-Slow: " + b"a" * 20
    for byte in head[: int(HEAD) - 1]:  # a byte a second: never silent long enough for an idle timeout
        transport.protocol.dataReceived(bytes([byte]))
        tick(guard, 1)
    assert not transport.disconnecting
    for byte in head[int(HEAD) - 1 : int(HEAD) + 2]:
        transport.protocol.dataReceived(bytes([byte]))
        tick(guard, 1)
    ((status, headers, body),) = responses(transport)
    assert (status, headers["connection"]) == (408, "close") and b"head took over 10 s" in body
    assert transport.disconnecting and handler.requests == []
    assert guard.expired == 1


def test_a_new_connection_that_sends_nothing_is_closed_at_the_head_deadline_without_an_answer() -> None:
    guard = new_guard()
    transport = Client()
    cwmp(guard, Recorder(), transport)
    tick(guard, HEAD)
    assert not transport.disconnecting
    tick(guard, 1)
    assert transport.disconnecting and transport.value() == b""


def test_a_kept_alive_connection_waits_the_idle_timeout_and_then_has_the_head_deadline() -> None:
    guard = new_guard()
    transport = Client()
    channel = cwmp(guard, Recorder(), transport, idle=60)
    channel.dataReceived(post(b"1"))
    tick(guard, 50)  # idle between two requests: the idle timeout, not the head's
    assert not transport.disconnecting
    channel.dataReceived(b"POST / HTTP/1.1\r\n")  # the next request's first bytes start its clock
    tick(guard, HEAD + 1)
    assert transport.disconnecting and responses(transport)[-1][0] == 408


def test_a_body_below_the_minimum_rate_is_cut_and_a_slow_steady_one_is_not() -> None:
    guard = new_guard(min_rate=100)
    slow, steady = Client(), Client()
    handler = Recorder()
    cwmp(guard, handler, slow).dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n")
    cwmp(guard, handler, steady).dataReceived(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n")
    for _ in range(45):  # 5000 bytes at 110 bytes/s: 10 s of grace, then 100 bytes/s at least
        slow.protocol.dataReceived(b"x")
        steady.protocol.dataReceived(b"x" * 110)
        tick(guard, 1)
    steady.protocol.dataReceived(b"x" * (5000 - 45 * 110))
    ((status, _, body),) = responses(slow)
    assert status == 408 and b"slower than 100 bytes/s" in body and slow.disconnecting
    assert [r.body for r in handler.requests] == [b"x" * 5000]
    assert responses(steady)[0][0] == 200 and not steady.disconnecting


def test_a_request_being_handled_has_no_deadline() -> None:
    guard = new_guard()
    transport = Client()
    handler = Recorder(hold=True)
    channel = cwmp(guard, handler, transport)
    channel.dataReceived(post(b"x"))
    tick(guard, 200)  # the store is slow: the client is not to blame
    assert not transport.disconnecting
    answer(channel, handler.requests[0])
    assert responses(transport)[0][0] == 200


def test_the_twisted_web_ports_cut_a_trickling_head_too() -> None:
    guard = new_guard()
    transport = Client()
    web(guard, transport, Hello())
    for byte in b"GET /x.cfg HTTP/1.1\r\nHost: acs\r\n"[:12]:
        transport.protocol.dataReceived(bytes([byte]))
        tick(guard, 1)
    assert transport.value().startswith(b"HTTP/1.1 408 ") and transport.disconnecting


@pytest.mark.parametrize("framing", [b"Content-Length: 200000", b"Transfer-Encoding: chunked"])
def test_a_slow_body_to_the_twisted_web_ports_holds_no_temporary_file(framing: bytes) -> None:
    guard = new_guard()
    channel = web(guard, Client(), Hello(), max_body=1 << 20)
    channel.dataReceived(b"POST / HTTP/1.1\r\nHost: acs\r\n" + framing + b"\r\n\r\n")
    assert isinstance(channel.requests[-1].content, io.BytesIO)  # a file would be a descriptor held


# --- caps: the longest-waiting connection makes room ---------------------------------------------------


def test_over_the_cap_the_connection_waiting_longest_is_shed_and_the_new_one_is_served() -> None:
    guard = new_guard(max_connections=3)
    handler = Recorder()
    slow = [Client(f"10.0.0.{n}") for n in (1, 2, 3)]
    for n, transport in enumerate(slow):
        cwmp(guard, handler, transport).dataReceived(b"POST / HTTP/1.1\r\n")  # a head, never finished
        tick(guard, 1 + n)
    phone = Client("10.0.0.9")
    cwmp(guard, handler, phone).dataReceived(post(b"<Inform/>"))
    assert [t.disconnected for t in slow] == [True, False, False]  # the oldest waiting one
    assert responses(phone)[0][0] == 200
    assert (len(guard.connections), guard.shed, guard.refused) == (3, 1, 0)


def test_a_connection_whose_request_is_handled_is_never_shed_and_when_all_are_a_new_one_is_refused() -> None:
    guard = new_guard(max_connections=2)
    handler = Recorder(hold=True)
    busy = [Client(f"10.0.0.{n}") for n in (1, 2)]
    for transport in busy:
        cwmp(guard, handler, transport).dataReceived(post(b"x"))
    late = Client("10.0.0.3")
    channel = cwmp(guard, handler, late)
    assert late.disconnected and not channel.open
    assert not any(t.disconnecting for t in busy)
    assert (guard.shed, guard.refused, len(guard.connections)) == (0, 1, 2)
    answer(busy[0].protocol, handler.requests[0])  # one is idle again: it may be shed now
    cwmp(guard, handler, Client("10.0.0.4"))
    assert busy[0].disconnected and not busy[1].disconnecting


def test_one_address_over_its_cap_sheds_its_own_connections_not_others() -> None:
    guard = new_guard(max_per_source=2)
    handler = Recorder()
    neighbour = Client("10.0.0.2")
    cwmp(guard, handler, neighbour)
    tick(guard, 1)
    flood = [Client("10.0.0.1") for _ in range(5)]
    for transport in flood:
        cwmp(guard, handler, transport)
    assert [t.disconnected for t in flood] == [True, True, True, False, False]
    assert not neighbour.disconnecting
    assert guard.per_source == {"10.0.0.1": 2, "10.0.0.2": 1}


def test_while_shed_connections_still_hold_their_descriptors_new_ones_are_closed_before_any_protocol() -> (
    None
):
    guard = new_guard(max_connections=4)
    factory = HttpFactory(Recorder(), guard.reactor, max_body=1000, guard=guard)
    admission = Admission(factory, guard)
    waiting = [Client(f"10.0.0.{n}") for n in range(6)]
    for transport in waiting:  # 4 in, then 2 shed: aborted, their descriptors not closed yet
        channel = admission.buildProtocol(transport.getPeer())
        transport.protocol = channel
        channel.makeConnection(transport)
    assert (len(guard.connections), len(guard.dropping), guard.shed) == (4, 2, 2)
    assert admission.buildProtocol(IPv4Address("TCP", "10.0.0.9", 1)) is None  # 4 + 2: 1.5 times the cap
    waiting[0].protocol.connectionLost(None)  # the reactor's next turn: a shed one is closed
    assert admission.buildProtocol(IPv4Address("TCP", "10.0.0.9", 1)) is not None


def test_a_closed_connection_gives_its_place_back_and_an_idle_guard_keeps_no_timer() -> None:
    guard = new_guard(max_connections=1)
    transport = Client()
    channel = cwmp(guard, Recorder(), transport)
    assert guard.reactor.getDelayedCalls()  # the sweep, while a connection is open
    channel.connectionLost(None)
    assert guard.connections == {} and guard.per_source == {} and not guard.waiting
    assert guard.reactor.getDelayedCalls() == []
    cwmp(guard, Recorder(), Client())
    assert guard.shed == 0


def test_the_cap_in_all_is_lowered_to_half_the_descriptor_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        assert connection_cap(4096) == 128 and connection_cap(100) == 100
        assert Guard(Clock(), Limits(max_connections=4096)).max_connections == 128
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- back-pressure: answers not taken stop the reading -------------------------------------------------


def test_answers_the_client_does_not_take_stop_the_reading_and_all_are_answered_once_it_reads() -> None:
    guard = new_guard()
    transport = Client(bound=4096)
    handler = Recorder()
    channel = cwmp(guard, handler, transport)
    assert transport.producer is channel
    burst = b"".join(post(b"%d" % n) for n in range(3000))
    channel.dataReceived(burst)
    assert transport.producerState == "paused"  # no more is read from the client
    assert len(transport.value()) < 4096 + 200  # one buffer's worth, not 3000 answers
    assert len(handler.requests) < 100
    while transport.full:
        transport.take()
    transport.take()
    assert [b for _, _, b in responses_of(transport.taken)] == [
        b"POST / %d" % len(b"%d" % n) for n in range(3000)
    ]
    assert transport.producerState == "producing"


def test_a_client_that_takes_nothing_is_aborted_after_the_send_timeout_and_its_queue_dropped() -> None:
    guard = new_guard()
    transport = Client(bound=1000)
    channel = cwmp(guard, Recorder(), transport, idle=30)
    channel.dataReceived(GET * 500)
    assert transport.full and channel._queue
    tick(guard, 30)
    assert not transport.disconnecting
    tick(guard, 1)
    assert transport.disconnected and channel._queue == []


def test_a_close_the_client_does_not_take_is_aborted_not_waited_on_for_ever() -> None:
    guard = new_guard()
    transport = Client(bound=100)
    channel = cwmp(guard, Recorder(), transport, idle=30)
    channel.dataReceived(post(b"x" * 500, "Connection: close"))
    assert transport.disconnecting and not transport.disconnected and transport.producer is None
    tick(guard, 31)
    assert transport.disconnected


def test_the_twisted_web_ports_stop_reading_when_the_answer_fills_the_buffer_during_a_request() -> None:
    guard = new_guard()
    transport = Client(bound=100)
    channel = web(guard, transport, Hello())
    channel.dataReceived(GET)  # its answer is over the bound: the transport pauses the channel
    assert transport.full
    assert transport.producerState == "paused"  # no more requests read until the client reads
    transport.take()
    assert transport.producerState == "producing"
    channel.dataReceived(GET)
    assert transport.value().endswith(b"hello")


# --- pipelined bursts and heads over the limit ---------------------------------------------------------


def test_a_pipelined_burst_with_a_head_over_the_limit_is_answered_then_431() -> None:
    handler = Recorder()
    transport = Client()
    channel = cwmp(new_guard(), handler, transport)
    too_long = b"POST / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD + 100) + b"\r\n\r\n"
    channel.dataReceived(post(b"1") + post(b"22") + post(b"333") + too_long + post(b"never"))
    got = responses(transport)
    assert [s for s, _, _ in got] == [200, 200, 200, 431]
    assert [b for _, _, b in got[:3]] == [b"POST / 1", b"POST / 2", b"POST / 3"]
    assert [h.get("connection") for _, h, _ in got] == [None, None, None, "close"]
    assert transport.disconnecting and len(handler.requests) == 3


def test_a_pipelined_burst_filling_a_whole_read_is_not_taken_for_a_head_over_the_limit() -> None:
    handler = Recorder()
    transport = Client()
    channel = cwmp(new_guard(), handler, transport)
    burst = b"".join(post(b"%d" % n) for n in range(2000))
    read = 65536  # what Twisted reads at once: the last head in it is cut
    channel.dataReceived(burst[:read])
    channel.dataReceived(burst[read:])
    assert [s for s, _, _ in responses(transport)] == [200] * 2000


def test_a_pipelined_request_after_a_handled_one_is_held_to_its_own_deadline() -> None:
    guard = new_guard()
    transport = Client()
    handler = Recorder(hold=True)
    channel = cwmp(guard, handler, transport)
    channel.dataReceived(post(b"1") + b"POST / HTTP/1.1\r\n")  # the second head never ends
    tick(guard, 30)
    answer(channel, handler.requests[0])
    tick(guard, 2)
    assert [s for s, _, _ in responses(transport)] == [200, 408]


# --- half-close: the answer still goes --------------------------------------------------------------


def test_a_half_closed_client_gets_its_answer_then_the_connection_closes() -> None:
    handler = Recorder(hold=True)
    transport = Client()
    channel = cwmp(new_guard(), handler, transport)
    assert interfaces.IHalfCloseableProtocol.providedBy(channel)
    channel.dataReceived(post(b"1") + post(b"22"))
    channel.readConnectionLost()
    assert not transport.disconnecting
    answer(channel, handler.requests[0])
    answer(channel, handler.requests[1])
    got = responses(transport)
    assert [(s, h.get("connection")) for s, h, _ in got] == [(200, None), (200, "close")]
    assert transport.disconnecting


def test_a_half_closed_client_mid_request_gets_400() -> None:
    transport = Client()
    channel = cwmp(new_guard(), Recorder(), transport)
    channel.dataReceived(post(b"1") + b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    channel.readConnectionLost()
    assert [s for s, _, _ in responses(transport)] == [200, 400] and transport.disconnecting


def test_a_half_closed_client_of_the_twisted_web_ports_gets_its_answer() -> None:
    guard = new_guard()
    transport = Client()
    later = Later(guard.reactor)
    channel = web(guard, transport, later)
    assert interfaces.IHalfCloseableProtocol.providedBy(channel)
    channel.dataReceived(GET)
    channel.readConnectionLost()
    guard.reactor.advance(1)  # the answer comes from a thread in the real server
    assert transport.value().startswith(b"HTTP/1.1 200 ") and transport.value().endswith(
        b"later\r\n0\r\n\r\n"
    )
    assert transport.disconnecting


# --- helpers ------------------------------------------------------------------------------------------


class Hello(web_resource.Resource):
    isLeaf = True

    def render_GET(self, request: server.Request) -> bytes:
        return b"hello"


class Later(web_resource.Resource):
    """Answers a second later, as the profile server answers from its thread pool."""

    isLeaf = True

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def render_GET(self, request: server.Request) -> object:
        def done() -> None:
            request.write(b"later")
            request.finish()

        self.clock.callLater(1, done)
        return server.NOT_DONE_YET


def web(guard: Guard, transport: Client, root: web_resource.Resource, max_body: int = 1000) -> GuardedChannel:
    site = QuietSite(root, timeout=None, reactor=guard.reactor)
    guarded(site, guard)
    site.requestFactory = type("Limited", (LimitedRequest,), {"max_size": max_body})
    channel = site.buildProtocol(transport.getPeer())
    transport.protocol = channel
    channel.makeConnection(transport)
    assert isinstance(channel, GuardedChannel) and channel.idle_timeout == IDLE_TIMEOUT
    return channel


def responses_of(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    transport = StringTransport()
    transport.write(data)
    return responses(transport)
