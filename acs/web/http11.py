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
  401 to a request without credentials: the body is not worth sending), an idle-connection
  timeout, an optional access log,
- malformed HTTP answered 400 and the connection closed.

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

from acs.web.boundedlog import Long, bounded_log, mask_secrets

access_log = logging.getLogger("acs.web.access")
log = logging.getLogger(__name__)

#: bytes of a request line and headers, at most (a CPE sends a few hundred)
MAX_HEAD = 64 * 1024
#: headers per request, at most
MAX_HEADERS = 100
_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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


class HttpChannel(protocol.Protocol):
    """One client connection: parses requests and hands them, one at a time, to the handler."""

    #: for the handler's own use: CWMP follows a cookie-less CPE's session by its connection
    session: str | None = None
    #: for the handler's own use: what it learnt of the client (CWMP: its certificate's names)
    client: Any = None

    def __init__(
        self,
        handler: Handler,
        reactor: Any,
        *,
        max_body: int,
        idle_timeout: float | None = None,
        log_requests: bool = False,
    ) -> None:
        self.handler = handler
        self.early: Callable[[HttpChannel, HttpRequest], Answer | None] | None = getattr(
            handler, "early", None
        )
        self.reactor = reactor
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.log_requests = log_requests
        self.open = False
        self.secure = False
        self.peer: str | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: list[HttpRequest] = []
        self._busy = False  # a request is with the handler
        self._dispatching = False
        self._bad: str | None = None  # why the bytes after the last whole request are not HTTP
        self._count = 0  # headers of the request being read
        self._paused = False
        self._closing = False  # no more requests: the parser stopped, or a response said close
        self._head = 0  # bytes fed while a request's head is incomplete
        self._in_head = True
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._request: HttpRequest | None = None
        self._last = 0.0
        self._timer: Any = None

    # --- the connection -------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.open = True
        self.secure = interfaces.ISSLTransport.providedBy(self.transport)
        self.peer = getattr(self.transport.getPeer(), "host", None)
        if self.idle_timeout:
            self._last = self.reactor.seconds()
            self._timer = self.reactor.callLater(self.idle_timeout, self._idle)

    def connectionLost(self, reason: Any = None) -> None:
        self.open = False
        self._queue.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def peer_certificate(self) -> Any:
        """The certificate (pyOpenSSL X509) a TLS client presented; None without one, or without TLS."""
        get = getattr(self.transport, "getPeerCertificate", None) if self.secure else None
        return get() if get is not None else None

    def _idle(self) -> None:
        """Close a connection silent for ``idle_timeout``; checked, not re-armed per read, to be cheap."""
        self._timer = None
        if not self.open:
            return
        assert self.idle_timeout is not None
        left = self._last + self.idle_timeout - self.reactor.seconds()
        if self._busy or left > 0:
            self._timer = self.reactor.callLater(max(left, 1.0), self._idle)
            return
        self._closing = True
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        if self.idle_timeout:
            self._last = self.reactor.seconds()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            if not self._no_upgrade(data[e.args[0] :]):
                return
        except httptools.HttpParserCallbackError as e:
            self._malformed(str(e.__context__ or e))
        except httptools.HttpParserError as e:
            self._malformed(str(e) or "malformed HTTP")
        else:
            if self._in_head and self._head:
                self._head += len(data)
                if self._head > MAX_HEAD:
                    self._malformed(f"request head over {MAX_HEAD} bytes")
        self._next()
        if self._busy and not self._paused and self._queue and not self._closing:
            # A pipelining client: read no further until the queue drains.
            self._paused = True
            self.transport.pauseProducing()

    def _no_upgrade(self, rest: bytes) -> bool:
        """Serve a request that asked for an upgrade (``Upgrade: h2c``...) as plain HTTP/1.1, as
        twisted.web did; False when the connection was closed.

        llhttp stops at the end of such a request's head, its body unread: the head goes again,
        without the upgrade, to a new parser, and the rest of the bytes after it.
        """
        if not self._queue:  # pragma: no cover - llhttp completes the message before it stops
            self._closing = True
            return True
        request = self._queue.pop()
        if request.method == b"CONNECT":  # what follows would be a tunnel's bytes
            self._queue.append(request)
            self._closing = True
            return True
        headers = request.headers
        headers.pop(b"upgrade", None)
        headers.pop(b"connection", None)
        head = [b"%s %s HTTP/%s\r\n" % (request.method, request.target, request.version.encode())]
        head += [b"%s: %s\r\n" % item for item in headers.items()]
        if not request.keep_alive:
            head.append(b"Connection: close\r\n")
        self._parser = httptools.HttpRequestParser(self)
        self._in_head = True
        self._head = 0
        self.dataReceived(b"".join(head) + b"\r\n" + rest)
        return False

    def _malformed(self, reason: str) -> None:
        """Stop reading: the requests that came whole before are answered, then this one with 400."""
        self._closing = True
        self._bad = reason

    # --- llhttp's callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head = 1
        self._url = b""
        self._headers = {}
        self._count = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        self._count += 1
        if self._count > MAX_HEADERS:
            raise ValueError(f"over {MAX_HEADERS} headers")
        name = name.lower()
        if name == b"cookie" and name in headers:
            value = headers[name] + b"; " + value
        headers[name] = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head = 0
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
                self.transport.write(_CONTINUE)
            else:
                request.keep_alive = False  # the body stays unread: what follows cannot be told apart
                self.respond(request, *answer)

    def on_body(self, data: bytes) -> None:
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
        self._in_head = True
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
            while not self._busy and self._queue and self.open:
                request = self._queue.pop(0)
                self._busy = True
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
        if not self._busy and self._closing and self.open:
            if self._bad is not None:
                bounded_log(self.reactor, log)(
                    "bad", logging.INFO, "HTTP 400 from %s: %s", self.peer, self._bad
                )
                body = self._bad.encode("utf-8", "replace") + b"\n"
                self._bad = None
                self.transport.write(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                    b"Content-Type: text/plain; charset=utf-8"
                    b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            self.transport.loseConnection()
        elif self._paused and not self._queue and not self._closing:
            self._paused = False
            self.transport.resumeProducing()

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
        if not self.open:
            return
        if self.idle_timeout:
            self._last = self.reactor.seconds()
        keep = request.keep_alive and not self._closing
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
        self.transport.write(b"".join(head))
        if self.log_requests:
            self._log(request, status, len(body))
        if not keep:
            self._closing = True
            self._bad = None  # this answer said close: nothing after it
            self._queue.clear()
            self.transport.loseConnection()
            return
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
    """Makes an ``HttpChannel`` per connection, all serving one handler."""

    def __init__(
        self,
        handler: Handler,
        reactor: Any,
        *,
        max_body: int,
        idle_timeout: float | None = None,
        log_requests: bool = False,
    ) -> None:
        self.handler = handler
        self.reactor = reactor
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.log_requests = log_requests

    def buildProtocol(self, addr: Any) -> HttpChannel:
        channel = HttpChannel(
            self.handler,
            self.reactor,
            max_body=self.max_body,
            idle_timeout=self.idle_timeout,
            log_requests=self.log_requests,
        )
        channel.factory = self
        return channel
