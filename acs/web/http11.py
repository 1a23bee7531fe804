"""A lean HTTP/1.1 server connection for the CWMP port: llhttp (``httptools``) on a Twisted Protocol.

Why not twisted.web: a periodic CWMP session is three small POSTs on a new
connection, and twisted.web's general machinery (line parsing in Python,
Request objects with header containers, timeouts re-armed per chunk, a
Deferred chain per request) cost more server CPU than the CWMP handler
itself. This module does only what a CPE needs, with the parsing in C:

- keep-alive (HTTP/1.1 by default, ``Connection: close`` honoured; HTTP/1.0 closes),
- Content-Length and chunked bodies, never buffered past ``max_body``: a longer body is read
  and dropped, and the request is handed on marked ``too_large`` (the handler answers 413),
- pipelined requests answered one at a time, in order; reading pauses while one is handled,
- ``Expect: 100-continue``, or an answer before the body when the handler has one already (a
  401 to a request without credentials: the body is not worth sending), an optional access log,
- malformed HTTP answered 400 (a head over MAX_HEAD bytes or MAX_HEADERS headers: 431) after
  the requests that came whole before it, and the connection closed,
- back-pressure: answers the client does not take stop the reading (``pauseProducing``),
- a client that half-closes after its request (``shutdown(SHUT_WR)``) still gets its answer,
- deadlines (head, body rate, idle, an answer or a close not taken) and caps on connections,
  kept by ``acs.web.guard.Guard``.

The handler gets each complete request with the connection (``HttpChannel``) and
answers it, now or later, with ``HttpChannel.respond``; a connection lost
meanwhile makes that a no-op. TLS wraps the factory like any other
(``TLSMemoryBIOFactory``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol

import httptools
from twisted.internet import interfaces, protocol
from zope.interface import implementer

from acs.web.boundedlog import Long, bounded_log, mask_secrets
from acs.web.guard import IDLE, IDLE_TIMEOUT, Guard, connection, timeout_answer

access_log = logging.getLogger("acs.web.access")
log = logging.getLogger(__name__)

#: bytes of a request line and headers, at most (a CPE sends a few hundred)
MAX_HEAD = 64 * 1024
#: headers per request, at most
MAX_HEADERS = 100
_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HeadTooLarge(ValueError):
    """A request's head over MAX_HEAD bytes or MAX_HEADERS headers: answered 431."""


#: an answer given from a request's head alone: status, headers, body
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class Handler(Protocol):
    """What serves the requests: answers each with ``channel.respond`` exactly once.

    It may also have ``early(channel, request) -> Answer | None``, asked when a request's
    head says ``Expect: 100-continue``: an answer there is sent at once instead of
    ``100 Continue``, the body is not read, and the connection is closed after it (the
    client may send the body or not: nothing else tells what its next bytes are).
    """

    def handle(self, channel: HttpChannel, request: HttpRequest) -> None: ...


class HttpRequest:
    """One complete request. Header names are lower case; a repeated header keeps its last value,
    except Cookie, whose values are joined."""

    __slots__ = ("answered", "body", "headers", "keep_alive", "method", "target", "too_large", "version")

    def __init__(self, method: bytes, target: bytes, version: str, headers: dict[bytes, bytes]) -> None:
        self.method = method
        self.target = target
        self.version = version  # "1.1" or "1.0"
        self.headers = headers
        self.body = b""
        self.too_large = False
        connection = headers.get(b"connection", b"").lower()
        self.keep_alive = version == "1.1" and b"close" not in connection
        self.answered = False

    def __repr__(self) -> str:
        return f"<HttpRequest {self.method.decode()} {self.target!r} HTTP/{self.version}>"


class _Date:
    """The Date header line, formatted once a second rather than once a response."""

    second = -1
    line = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.line = second, b"Date: %s\r\n" % formatdate(second, usegmt=True).encode()
        return cls.line


@implementer(interfaces.IPushProducer, interfaces.IHalfCloseableProtocol)
class HttpChannel(protocol.Protocol):
    """One client connection: parses requests and hands them, one at a time, to the handler.

    It is the transport's producer: when the client takes no more of the answers and the
    transport's buffer passes its bound, the transport pauses it, and it reads and answers
    nothing more until the buffer drains (so a client that pipelines requests and never
    reads the answers holds one buffer's worth, not the answers to all it sent). Its
    deadlines and the caps on connections are the ``Guard``'s.
    """

    def __init__(
        self,
        handler: Handler,
        reactor: interfaces.IReactorTime,
        *,
        max_body: int,
        idle_timeout: float | None = None,
        log_requests: bool = False,
        guard: Guard | None = None,
    ) -> None:
        self.handler = handler
        self.early: Callable[[HttpChannel, HttpRequest], Answer | None] | None = getattr(
            handler, "early", None
        )
        self.reactor = reactor
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        #: how long the client may leave an answer or a close untaken
        self.send_timeout = idle_timeout or IDLE_TIMEOUT
        self.log_requests = log_requests
        self.guard = guard if guard is not None else Guard(reactor)
        self.open = False
        self.secure = False
        self.peer: str | None = None
        self.source: str | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: list[HttpRequest] = []
        self._busy = False  # a request is with the handler
        self._dispatching = False
        self._input_done = False  # no more requests are read: the parser stopped, EOF, or closing
        self._bad: tuple[int, str] | None = None  # the answer to bytes after the last whole request
        self._count = 0  # headers of the request being read
        self._reading = True
        self._registered = False
        self._head: int | None = None  # bytes of a head in progress, in the reads after its first
        self._head_new = False  # the head in progress began in this read
        self._parsed = 0  # bytes of the head in progress that llhttp has parsed
        self._head_at: float | None = None  # a request's head is awaited since
        self._body_at: float | None = None  # a request's body is read since
        self._received = 0  # bytes of that body
        self._idle_at = 0.0
        self._stalled_at: float | None = None  # the client takes no more of the answers since
        self._closed_at: float | None = None
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._request: HttpRequest | None = None

    # --- the connection -------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.open = True
        self.secure = interfaces.ISSLTransport.providedBy(self.transport)
        self.peer = self.source = getattr(connection(self.transport).getPeer(), "host", None)
        self._head_at = self._idle_at = self.reactor.seconds()  # the first head: from the opening
        if not self.guard.admit(self):
            self.open = False
            connection(self.transport).abortConnection()
            return
        connection(self.transport).registerProducer(self, True)
        self._registered = True

    def connectionLost(self, reason: Any = None) -> None:
        self.open = False
        self._queue.clear()
        self.guard.release(self)

    def peer_certificate(self) -> Any:
        """The certificate (pyOpenSSL X509) a TLS client presented; None without one, or without TLS."""
        get = getattr(self.transport, "getPeerCertificate", None) if self.secure else None
        return get() if get is not None else None

    def overdue(self, now: float) -> str | None:
        """Why the client has had its turn too long (the guard closes the connection); None if not."""
        if self._closed_at is not None:
            return "the client did not take the close" if now > self._closed_at + self.send_timeout else None
        if self._stalled_at is not None:
            if now > self._stalled_at + self.send_timeout:
                return f"the client took none of the answers in {self.send_timeout:g} s"
            return None
        if self._busy or self._queue:
            return None
        guard = self.guard
        if self._body_at is not None:
            if now > guard.body_deadline(self._body_at, self._received):
                return f"the body came slower than {guard.min_rate:g} bytes/s"
            return None
        if self._head_at is not None:
            if now > self._head_at + guard.head_timeout:
                return f"the request head took over {guard.head_timeout:g} s"
            return None
        if self.idle_timeout and now > self._idle_at + self.idle_timeout:
            return f"{IDLE} {self.idle_timeout:g} s"
        return None

    def give_up(self, why: str, *, shed: bool = False) -> None:
        """Close the connection for the guard: a 408 to a request cut short by its deadline, an abort
        when shed or when the client takes nothing more."""
        if not self.open:
            return
        if shed or self._closed_at is not None or self._stalled_at is not None:
            self._input_done = True
            self._queue.clear()
            connection(self.transport).abortConnection()
            return
        if self._head is not None or self._body_at is not None:
            log.info("HTTP 408 to %s: %s", self.peer, why)
            connection(self.transport).write(timeout_answer(why))
        self._close()

    def _close(self) -> None:
        """Close after what was written; the guard aborts it if the client does not take it."""
        if self._closed_at is not None:
            return
        self._closed_at = self.reactor.seconds()
        self._input_done = True
        self._queue.clear()
        self.guard.wait(self, fresh=False)
        if self._registered:  # a paused producer would keep the transport from closing
            self._registered = False
            connection(self.transport).unregisterProducer()
        connection(self.transport).loseConnection()

    # --- the transport's producer: back-pressure --------------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is over its bound: the client is not reading its answers."""
        if self._stalled_at is None:
            self._stalled_at = self.reactor.seconds()
            self.guard.wait(self)
            self._update_reading()

    def resumeProducing(self) -> None:
        if self._stalled_at is not None:
            self._stalled_at = None
            if self._busy:
                self.guard.work(self)
            self._next()

    def stopProducing(self) -> None:
        """The transport is going: connectionLost follows."""

    def _update_reading(self) -> None:
        """Read while answers flow and no whole request waits its turn; else let TCP hold the client."""
        want = self._stalled_at is None and not self._queue
        if want != self._reading and self.open and self._closed_at is None:
            self._reading = want
            if want:
                connection(self.transport).resumeProducing()
            else:
                connection(self.transport).pauseProducing()

    # --- the bytes in -----------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._input_done:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            if not self._no_upgrade(data[e.args[0] :]):
                return
        except httptools.HttpParserCallbackError as e:
            cause = e.__context__ or e
            self._malformed(str(cause), 431 if isinstance(cause, HeadTooLarge) else 400)
        except httptools.HttpParserError as e:
            self._malformed(str(e) or "malformed HTTP")
        else:
            if self._head is not None:  # a head still incomplete: bound it, however llhttp holds it
                if self._head_new:
                    self._head_new = False  # its first read also held what came before it
                else:
                    self._head += len(data)
                    if self._head > MAX_HEAD:
                        self._malformed(f"request head over {MAX_HEAD} bytes", 431)
        self._head_new = False
        self._next()

    def readConnectionLost(self) -> None:
        """The client sent all it will (``shutdown(SHUT_WR)``): answer what came whole, then close."""
        if self._input_done:
            return
        self._input_done = True
        if self._head is not None or self._request is not None:
            self._bad = (400, "the client closed its side before the request was whole")
        self._next()

    def writeConnectionLost(self) -> None:
        connection(self.transport).abortConnection()

    def _no_upgrade(self, rest: bytes) -> bool:
        """Serve a request that asked for an upgrade (``Upgrade: h2c``...) as plain HTTP/1.1, as
        twisted.web did; False when the connection was closed.

        llhttp stops at the end of such a request's head, its body unread: the head goes again,
        without the upgrade, to a new parser, and the rest of the bytes after it.
        """
        if not self._queue:  # pragma: no cover - llhttp completes the message before it stops
            self._input_done = True
            return True
        request = self._queue.pop()
        if request.method == b"CONNECT":  # what follows would be a tunnel's bytes
            self._queue.append(request)
            self._input_done = True
            return True
        headers = request.headers
        headers.pop(b"upgrade", None)
        headers.pop(b"connection", None)
        head = [b"%s %s HTTP/%s\r\n" % (request.method, request.target, request.version.encode())]
        head += [b"%s: %s\r\n" % item for item in headers.items()]
        if not request.keep_alive:
            head.append(b"Connection: close\r\n")
        self._parser = httptools.HttpRequestParser(self)
        self._head = None
        self.dataReceived(b"".join(head) + b"\r\n" + rest)
        return False

    def _malformed(self, reason: str, status: int = 400) -> None:
        """Stop reading: the requests that came whole before are answered, then this one with ``status``."""
        self._input_done = True
        self._bad = (status, reason)

    # --- llhttp's callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._head = 0
        self._head_new = True
        self._parsed = 0
        if self._head_at is None:
            self._head_at = self.reactor.seconds()
        self._url = b""
        self._headers = {}
        self._count = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._parsed += len(url)
        if self._parsed > MAX_HEAD:
            raise HeadTooLarge(f"request head over {MAX_HEAD} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        self._count += 1
        if self._count > MAX_HEADERS:
            raise HeadTooLarge(f"over {MAX_HEADERS} headers")
        self._parsed += len(name) + len(value) + 4
        if self._parsed > MAX_HEAD:
            raise HeadTooLarge(f"request head over {MAX_HEAD} bytes")
        name = name.lower()
        if name == b"cookie" and name in headers:
            value = headers[name] + b"; " + value
        headers[name] = value

    def on_headers_complete(self) -> None:
        self._head = self._head_at = None
        self._body_at = self.reactor.seconds()
        self._received = 0
        parser = self._parser
        request = self._request = HttpRequest(
            parser.get_method(), self._url, parser.get_http_version(), self._headers
        )
        self._body = []
        self._size = 0
        length = request.headers.get(b"content-length")
        if length is not None and int(length) > self.max_body:
            request.too_large = True  # read and dropped as it comes
        elif (
            request.version == "1.1"
            and request.headers.get(b"expect", b"").lower() == b"100-continue"
            and not self._busy
            and not self._queue
        ):
            answer = self.early(self, request) if self.early is not None else None
            if answer is None:
                connection(self.transport).write(_CONTINUE)
            else:
                request.keep_alive = False  # the body stays unread: what follows cannot be told apart
                self.respond(request, *answer)

    def on_body(self, data: bytes) -> None:
        self._received += len(data)
        request = self._request
        assert request is not None
        if request.too_large:
            return
        self._size += len(data)
        if self._size > self.max_body:
            request.too_large = True
            self._body = []
            return
        self._body.append(data)

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        self._request = None
        self._body_at = None
        if request.answered:  # answered from its head
            return
        body = self._body
        request.body = body[0] if len(body) == 1 else b"".join(body)
        self._body = []
        self._queue.append(request)

    # --- handing requests on, answering them ------------------------------------------------

    def _next(self) -> None:
        if self._dispatching:
            return  # answered at once: the loop below goes on, without recursing
        self._dispatching = True
        try:
            while (
                not self._busy
                and self._queue
                and self.open
                and self._stalled_at is None
                and self._closed_at is None
            ):
                request = self._queue.pop(0)
                self._busy = True
                self.guard.work(self)
                try:
                    self.handler.handle(self, request)
                except Exception:
                    say = bounded_log(self.reactor, log)
                    say(
                        "crash",
                        logging.ERROR,
                        "HTTP request %s failed: %s",
                        repr(request),  # as text: cut short, a token in its target masked
                        Long(traceback.format_exc()),
                    )
                    self.respond(
                        request,
                        500,
                        [(b"Content-Type", b"text/plain; charset=utf-8")],
                        b"internal error; see the server log\n",
                    )
        finally:
            self._dispatching = False
        if not self.open or self._closed_at is not None:
            return
        if not self._busy and not self._queue and self._input_done:
            if self._bad is not None:
                status, reason = self._bad
                self._bad = None
                bounded_log(self.reactor, log)(
                    "bad", logging.INFO, "HTTP %d from %s: %s", status, self.peer, reason
                )
                body = reason.encode("utf-8", "replace") + b"\n"
                connection(self.transport).write(
                    b"%sConnection: close\r\nContent-Type: text/plain; charset=utf-8"
                    b"\r\nContent-Length: %d\r\n\r\n%s" % (_STATUS_LINES[status], len(body), body)
                )
            self._close()
            return
        self._update_reading()

    def respond(
        self, request: HttpRequest, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> None:
        """Send the answer to ``request`` (Content-Length and Date added), then go on with the next.

        A second answer to the same request is ignored; so is one for a connection that is gone.
        """
        if request.answered:
            return
        request.answered = True
        self._busy = False
        if not self.open or self._closed_at is not None:
            return
        # the last answer says so: the request asked, or nothing more will be read or answered
        keep = request.keep_alive and not (self._input_done and not self._queue and self._bad is None)
        status_line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status
        if request.version != "1.1":  # answered in the version asked, as twisted.web did
            status_line = b"HTTP/1.0" + status_line[8:]
        head = [status_line, _Date.now(), b"Content-Length: %d\r\n" % len(body)]
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        if not keep:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        if request.method != b"HEAD":
            head.append(body)
        connection(self.transport).write(b"".join(head))
        if self.log_requests:
            self._log(request, status, len(body))
        if not keep:
            self._bad = None  # this answer said close: nothing after it
            self._close()
            return
        self._idle_at = self.reactor.seconds()
        if self._stalled_at is None:
            self.guard.wait(self)
        self._next()

    def _log(self, request: HttpRequest, status: int, length: int) -> None:
        """A combined-log-format line, as twisted.web wrote it."""
        h = request.headers
        access_log.info(
            '"%s" - - [%s] "%s %s HTTP/%s" %d %d "%s" "%s"',
            self.peer,
            time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            request.method.decode("latin-1"),
            mask_secrets(request.target.decode("latin-1")),  # a token in a query string
            request.version,
            status,
            length,
            h.get(b"referer", b"-").decode("latin-1"),
            h.get(b"user-agent", b"-").decode("latin-1"),
        )


class HttpFactory(protocol.Factory):
    """Makes an ``HttpChannel`` per connection, all serving one handler and reporting to one guard."""

    def __init__(
        self,
        handler: Handler,
        reactor: interfaces.IReactorTime,
        *,
        max_body: int,
        idle_timeout: float | None = None,
        log_requests: bool = False,
        guard: Guard | None = None,
    ) -> None:
        self.handler = handler
        self.reactor = reactor
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.log_requests = log_requests
        self.guard = guard if guard is not None else Guard(reactor)

    def buildProtocol(self, addr: Any) -> HttpChannel:
        channel = HttpChannel(
            self.handler,
            self.reactor,
            max_body=self.max_body,
            idle_timeout=self.idle_timeout,
            log_requests=self.log_requests,
            guard=self.guard,
        )
        channel.factory = self
        return channel
