"""What bounds the HTTP ports (CWMP, the profile server, the NBI) against slow and idle clients.

A connection costs a descriptor and some memory for as long as it is open, whatever the
client sends, so the cost of holding one must not be set by the client. Each HTTP
connection reports to the process's one ``Guard`` when it waits on its client (for a
request's head or body, for its next request, for it to take an answer or a close) and
when the server works for it. The guard

- closes the connections that waited too long, checked once a second (``SWEEP_EVERY``): a
  request's head must be whole within ``head_timeout`` of the connection's opening (or, on
  a kept-alive connection, of its first byte), however the bytes trickle in; a body gets
  ``head_timeout`` more, plus a second per ``min_rate`` bytes received; an idle kept-alive
  connection, an answer the client does not take and a close the client does not complete
  get the port's idle timeout (then abortConnection);
- caps the connections open at once in all (``max_connections``, lowered to half the
  process's descriptors: ``connection_cap``) and from one address (``max_per_source``):
  a new connection over a cap sheds the connection that has waited on its client the
  longest, from that address first, so that slow and idle ones go first and a client that
  sends its request at once is served; a connection whose request is being handled is
  never shed, and when all are, the new one is refused (closed at once).

The twisted.web ports (profiles, NBI) are served by ``GuardedChannel``, the CWMP port by
``acs.web.http11``, which reports to the guard itself.
"""

from __future__ import annotations

import logging
import math
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, cast

from twisted.internet import interfaces, task
from twisted.web import http
from zope.interface import implementer

from acs.web.boundedlog import BoundedLog

log = logging.getLogger(__name__)

#: seconds a request's head may take, from the connection's opening or the request's first byte
HEAD_TIMEOUT = 10.0
#: bytes/s a request's body must average, after HEAD_TIMEOUT seconds of grace
MIN_RATE = 500
#: connections open at once on the HTTP ports, in all (lowered to half of RLIMIT_NOFILE) and from one address
MAX_CONNECTIONS = 4096
MAX_PER_SOURCE = 256
#: the share of the process's descriptors (RLIMIT_NOFILE) the HTTP ports may hold: one in two
DESCRIPTOR_SHARE = 2
#: seconds between two checks of the deadlines: a deadline is kept within a second
SWEEP_EVERY = 1.0
#: the idle timeout of the twisted.web ports (Twisted's own default)
IDLE_TIMEOUT = 60.0
#: how the reason for closing an idle connection begins
IDLE = "idle for"


def connection_cap(requested: int) -> int:
    """``requested``, lowered to half the descriptors this process may open.

    Each connection holds a descriptor; the rest are for the database, the log, TFTP
    (a quarter at most, ``acs.web.tftp.transfer_cap``) and the listening ports.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft // DESCRIPTOR_SHARE))


@dataclass(frozen=True)
class Limits:
    """``acs serve --http-head-timeout/--http-min-rate/--http-max-connections/--http-max-per-source``."""

    head_timeout: float = HEAD_TIMEOUT
    min_rate: float = MIN_RATE
    max_connections: int = MAX_CONNECTIONS
    max_per_source: int = MAX_PER_SOURCE


class Guarded(Protocol):
    """A connection as the guard sees it."""

    #: the client's address: the per-source cap counts by it
    source: str | None

    def overdue(self, now: float) -> str | None:
        """Why the connection has waited on its client too long at ``now`` (beginning with IDLE for an
        idle kept-alive connection); None while it has not."""

    def give_up(self, why: str, *, shed: bool = False) -> None:
        """Close the connection: it is overdue (``why``; it is counted until it is closed) or shed to
        make room (abort it; it counts no more)."""


class Guard:
    """The connections of one process's HTTP ports, their deadlines and their caps."""

    def __init__(self, reactor: interfaces.IReactorTime, limits: Limits | None = None) -> None:
        self.reactor = reactor
        self.limits = limits = limits or Limits()
        self.max_connections = connection_cap(limits.max_connections)
        if self.max_connections < limits.max_connections:
            log.warning(
                "HTTP: at most %d connections at once, not %d: this process may open %d descriptors "
                "(ulimit -n; LimitNOFILE= for systemd) and the HTTP ports take half at most",
                self.max_connections,
                limits.max_connections,
                resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            )
        self.head_timeout = limits.head_timeout
        self.min_rate = limits.min_rate
        self.max_per_source = limits.max_per_source
        self.connections: dict[Guarded, None] = {}
        self.per_source: dict[str | None, int] = {}
        #: the connections waiting on their client, the longest waiting first; all, and per address
        self.waiting: OrderedDict[Guarded, None] = OrderedDict()
        self.waiting_from: dict[str | None, OrderedDict[Guarded, None]] = {}
        #: connections shed or refused, aborted but not yet closed: they still hold their descriptor
        self.dropping: set[Guarded] = set()
        self.shed = self.refused = self.expired = 0
        self.say = BoundedLog(reactor, log)
        self._sweep: task.LoopingCall | None = None

    # --- what the connections say -------------------------------------------------------------

    def admit(self, conn: Guarded) -> bool:
        """Count a new connection in, shedding the longest-waiting one over a cap; False: refused."""
        source = conn.source
        if self.per_source.get(source, 0) >= self.max_per_source and not self._shed(
            self.waiting_from.get(source), f"{self.max_per_source} connections from {source}"
        ):
            return self._refuse(conn, f"{self.max_per_source} connections from {source}, all busy")
        if len(self.connections) >= self.max_connections and not self._shed(
            self.waiting, f"{self.max_connections} connections in all"
        ):
            return self._refuse(conn, f"{self.max_connections} connections in all, all busy")
        self.connections[conn] = None
        self.per_source[source] = self.per_source.get(source, 0) + 1
        self.wait(conn)
        if self._sweep is None:
            self._sweep = task.LoopingCall(self.sweep)
            self._sweep.clock = self.reactor
            self._sweep.start(SWEEP_EVERY, now=False)
        return True

    def wait(self, conn: Guarded, *, fresh: bool = True) -> None:
        """``conn`` now waits on its client; ``fresh``: it made progress, and goes to the end of the
        line to be shed (else it keeps its place there, if it had one)."""
        if conn not in self.connections:
            return
        waiting = self.waiting_from.get(conn.source)
        if waiting is None:
            waiting = self.waiting_from[conn.source] = OrderedDict()
        waiting[conn] = None
        self.waiting[conn] = None
        if fresh:
            waiting.move_to_end(conn)
            self.waiting.move_to_end(conn)

    def work(self, conn: Guarded) -> None:
        """The server works for ``conn`` (its request is handled): it is not shed, nor timed out."""
        if conn in self.waiting:
            del self.waiting[conn]
            del self.waiting_from[conn.source][conn]

    def full(self) -> bool:
        """Too many descriptors held already, shed connections included: a new connection is closed at
        once (``Admission``), before it costs anything. Shedding makes room at once, but a shed
        connection's descriptor goes only at the reactor's next turn, and a flood accepted in one
        turn would otherwise take them all."""
        return len(self.connections) + len(self.dropping) >= self.max_connections * 3 // 2

    def release(self, conn: Guarded) -> None:
        """``conn`` is closed (or given up): it counts no more."""
        self.dropping.discard(conn)
        if conn not in self.connections:
            return  # refused, or already given up
        del self.connections[conn]
        self.work(conn)
        source = conn.source
        left = self.per_source[source] - 1
        if left:
            self.per_source[source] = left
        else:
            del self.per_source[source]
            self.waiting_from.pop(source, None)
        if not self.connections and self._sweep is not None:
            self._sweep.stop()  # an idle server keeps no timer
            self._sweep = None

    # --- deadlines and caps -------------------------------------------------------------------

    def sweep(self) -> None:
        """Give up the connections that waited on their client past their deadline."""
        now = self.reactor.seconds()
        for conn in list(self.waiting):
            why = conn.overdue(now)
            if why is not None:
                self.expired += 1
                if not why.startswith(IDLE):  # an idle kept-alive connection closed: nothing to say
                    self.say("timeout", logging.INFO, "HTTP connection from %s closed: %s", conn.source, why)
                conn.give_up(why)

    def _shed(self, waiting: OrderedDict[Guarded, None] | None, cap: str) -> bool:
        if not waiting:
            return False
        victim = next(iter(waiting))
        self.shed += 1
        self.say(
            "shed",
            logging.WARNING,
            "HTTP connection from %s shed (waiting on its client the longest) for a new one: %s reached",
            victim.source,
            cap,
        )
        self.release(victim)
        self.dropping.add(victim)
        victim.give_up("shed", shed=True)
        return True

    def _refuse(self, conn: Guarded, why: str) -> bool:
        self.refused += 1
        self.dropping.add(conn)
        self.say("refused", logging.WARNING, "HTTP connection from %s refused: %s", conn.source, why)
        return False

    def body_deadline(self, began: float, received: int) -> float:
        """When a body begun at ``began`` of which ``received`` bytes came must be whole."""
        return began + self.head_timeout + (received / self.min_rate if self.min_rate else math.inf)


@implementer(interfaces.ILoggingContext)
class Admission:
    """The factory a port serves with (outside TLS): a connection while the guard is ``full`` gets no
    protocol, and the port closes its socket at once; the others go to ``factory``."""

    def __init__(self, factory: Any, guard: Guard) -> None:
        self.factory = factory
        self.guard = guard

    def buildProtocol(self, addr: Any) -> Any:
        guard = self.guard
        if guard.full():
            guard.refused += 1
            guard.say(
                "full",
                logging.WARNING,
                "HTTP connection from %s closed at once: %d connections open and %d being closed",
                getattr(addr, "host", addr),
                len(guard.connections),
                len(guard.dropping),
            )
            return None
        return self.factory.buildProtocol(addr)

    def doStart(self) -> None:
        self.factory.doStart()

    def doStop(self) -> None:
        self.factory.doStop()

    def logPrefix(self) -> str:
        return self.factory.logPrefix()


class Connection(Protocol):
    """What the ports use of their TCP (or TLS) transport.

    Twisted's `ITransport`, `ITCPTransport`, `IConsumer` and `IPushProducer` are zope interfaces,
    each with part of these; a connected protocol's transport has them all.
    """

    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...
    def abortConnection(self) -> None: ...
    def getPeer(self) -> Any: ...
    def registerProducer(self, producer: Any, streaming: bool) -> None: ...
    def unregisterProducer(self) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...


def connection(transport: object) -> Connection:
    """A connected protocol's transport (None only before connectionMade)."""
    return cast(Connection, transport)


def peer_host(transport: Any) -> str | None:
    return getattr(transport.getPeer(), "host", None)


_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)


def timeout_answer(why: str) -> bytes:
    body = why.encode("utf-8", "replace") + b"\n"
    return _TIMEOUT_408 % (len(body), body)


@implementer(interfaces.IHalfCloseableProtocol)
class GuardedChannel(http.HTTPChannel):
    """twisted.web's HTTP/1.1 connection, reporting to a ``Guard`` (the profile server, the NBI).

    Twisted's own timeout is an idle timeout, reset by every byte: a client sending one
    byte a minute holds its connection for ever. Here the guard keeps the deadlines (the
    Site is made with ``timeout=None``), and a client that half-closes its side after its
    request (``shutdown(SHUT_WR)``) still gets its answer.
    """

    def __init__(self, guard: Guard, idle_timeout: float = IDLE_TIMEOUT) -> None:
        super().__init__()
        self.guard = guard
        self.idle_timeout = idle_timeout
        self.source: str | None = None
        self._head_at: float | None = None  # a request's head is awaited since
        self._body_at: float | None = None  # a request's body is read since
        self._received = 0
        self._idle_at = 0.0
        self._stalled_at: float | None = None  # the client takes no more of the answer since
        self._closed_at: float | None = None
        self._input_ended = False
        self._in_request = False  # a line of a request came, and not yet all of its body

    def connectionMade(self) -> None:
        self.source = peer_host(self.transport)
        super().connectionMade()
        if not self.guard.admit(self):
            connection(self.transport).abortConnection()
            return
        self._head_at = self.guard.reactor.seconds()  # the first request's head: from the opening

    def connectionLost(self, reason: Any = None) -> None:
        self.guard.release(self)
        super().connectionLost(reason)

    def overdue(self, now: float) -> str | None:
        guard = self.guard
        if self._closed_at is not None:
            return "the client did not take the close" if now > self._closed_at + self.idle_timeout else None
        if self._stalled_at is not None:
            stuck = now > self._stalled_at + self.idle_timeout
            return f"the client took none of the answer in {self.idle_timeout:g} s" if stuck else None
        if self._handlingRequest:
            return None
        if self._body_at is not None:
            if now > guard.body_deadline(self._body_at, self._received):
                return f"the body came slower than {guard.min_rate:g} bytes/s"
            return None
        if self._head_at is not None:
            if now > self._head_at + guard.head_timeout:
                return f"the request head took over {guard.head_timeout:g} s"
            return None
        return f"{IDLE} {self.idle_timeout:g} s" if now > self._idle_at + self.idle_timeout else None

    def give_up(self, why: str, *, shed: bool = False) -> None:
        if shed or self._closed_at is not None or self._stalled_at is not None:
            connection(self.transport).abortConnection()
            return
        if self._in_request or self._buffer or self._body_at is not None:  # bytes of a request came
            connection(self.transport).write(timeout_answer(why))
        self.loseConnection()  # over TLS, before the handshake's end: an abort

    # --- where a request is -------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._head_at is None and self._body_at is None and not self._handlingRequest:
            self._head_at = self.guard.reactor.seconds()  # a kept-alive connection's next request
            self.guard.wait(self)
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if line:
            self._in_request = True
        super().lineReceived(line)

    def allHeadersReceived(self) -> None:
        self._head_at = None
        self._body_at = self.guard.reactor.seconds()
        self._received = 0
        self.guard.wait(self)
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:
        if not self._handlingRequest:
            self._received += len(data)
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        self._head_at = self._body_at = None
        self._in_request = False
        if self._stalled_at is None:
            self.guard.work(self)
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        self._idle_at = now = self.guard.reactor.seconds()
        if self._dataBuffer:
            self._head_at = now  # a pipelined request: its head is awaited from now
        self.guard.wait(self)
        super().requestDone(request)  # may go on with a pipelined request
        if self._input_ended and not self._handlingRequest and self._closed_at is None:
            self._end_of_input()

    # --- back-pressure, closing, half-close --------------------------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: the client is not reading its answers.

        HTTPChannel stops reading then only between requests: full while a request is handled,
        it reads on, and the requests pipelined behind are answered into the full buffer, which
        grows as long as the client sends (``bench/pipelining.py``). Here the reading stops
        either way; ``requestDone`` resumes it once the buffer has drained.
        """
        if self._stalled_at is None:
            self._stalled_at = self.guard.reactor.seconds()
            self.guard.wait(self)
        super().pauseProducing()
        if self._handlingRequest:
            self._networkProducer.pauseProducing()

    def resumeProducing(self) -> None:
        if self._stalled_at is not None:
            self._stalled_at = None
            if self._handlingRequest:
                self.guard.work(self)
        super().resumeProducing()

    def loseConnection(self) -> None:
        if self._closed_at is None:
            self._closed_at = self.guard.reactor.seconds()
            self.guard.wait(self, fresh=False)
        super().loseConnection()

    def readConnectionLost(self) -> None:
        """The client sent all it will (``shutdown(SHUT_WR)``): answer what came whole, then close."""
        self._input_ended = True
        if not self._handlingRequest:
            self._end_of_input()

    def writeConnectionLost(self) -> None:
        connection(self.transport).abortConnection()

    def _end_of_input(self) -> None:
        if self._in_request or self._buffer:
            self._respondToBadRequestAndDisconnect()  # a request cut short
        else:
            self.loseConnection()
