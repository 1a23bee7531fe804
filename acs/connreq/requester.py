"""The Twisted shell of connection requests: HTTP GET with Digest, UDP datagrams, limits, the record.

``ConnectionRequester.kick(device_id)`` asks a device to open a session now and
fires with a ``KickResult``; it never fails. The device's ConnectionRequestURL,
credentials and UDPConnectionRequestAddress come from the store, read on the
thread pool; the outcome of each attempt is written back there.

- **HTTP first** (TR-069 3.2.2): a GET to the ConnectionRequestURL, the CPE's
  401 challenge answered with the stored ConnectionRequestUsername/Password
  (Digest; Basic only when allowed, as it sends the password in clear). It is
  preferred because it is the one method with an answer: 200/204 means the CPE
  took the request, 401 and 503 say why not.
- **UDP** (Annex G) when HTTP cannot reach the device (no URL, unreachable, timed
  out: typically a CPE behind NAT) and the device reported a
  UDPConnectionRequestAddress: the signed datagram, ``udp_copies`` times with the
  same id (UDP may lose any one of them). There is no reply; "sent" means the
  datagrams left, and only the ``6 CONNECTION REQUEST`` session confirms them.
- **Limits**: every attempt is bounded by ``timeout``; at most ``concurrency``
  devices are being kicked at once (the rest queue, FIFO); a device gets at most one
  request per ``min_interval`` (the latest request in the store counts, so the limit
  holds across processes). Kicks that arrive while one is still waiting for its
  slot share it: queuing 100 tasks on a phone kicks it once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from twisted.internet import defer, error, interfaces, threads
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.python.threadpool import ThreadPool
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed
from twisted.web.http_headers import Headers

from acs.connreq import udp
from acs.connreq.options import Options
from acs.connreq.result import Attempt, KickResult, http_outcome
from acs.store import connection_requests as store
from acs.web.auth import DigestAuth, parse_challenges

log = logging.getLogger(__name__)
T = TypeVar("T")
USER_AGENT = b"acs connection request"
#: authenticated retries of the GET (a stale nonce may need a second)
AUTH_ROUNDS = 2
#: devices whose latest request a requester keeps in memory before forgetting the old ones
_REMEMBERED = 10_000


def _stale(challenges: list[str]) -> bool:
    """Whether a 401 to an answered challenge only says the nonce was old (``stale=true``): without
    it the password was refused (RFC 7616 3.3), whatever new nonce the challenge brings."""
    return any(
        p.get("stale", "").lower() == "true"
        for scheme, p in parse_challenges(challenges)
        if scheme == "digest"
    )


class ConnectionRequester:
    """Kicks devices. One per process: it holds the limits (``acs serve`` makes one for the NBI).

    ``reactor`` runs the network side; ``engine`` and ``pool`` are the store and
    the thread pool its work runs on (never the reactor thread).
    """

    def __init__(
        self,
        reactor: Any,
        engine: Engine,
        pool: ThreadPool,
        options: Options | None = None,
        *,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.reactor = reactor
        self.engine = engine
        self.pool = pool
        self.options = options or Options()
        self.wallclock = wallclock
        self._slots = defer.DeferredSemaphore(self.options.concurrency)
        self._agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        #: kicks waiting for a device's next request, which they share
        self._waiting: dict[str, list[defer.Deferred[KickResult]]] = {}
        #: reactor.seconds() of this process's latest request to each device
        self._last: dict[str, float] = {}

    def kick(self, device_id: str) -> defer.Deferred[KickResult]:
        """Ask the device to open a session now; fires with what became of it, never fails."""
        d: defer.Deferred[KickResult] = defer.Deferred()
        waiters = self._waiting.get(device_id)
        if waiters is None:
            waiters = self._waiting[device_id] = []
            defer.ensureDeferred(self._run(device_id, waiters))
        waiters.append(d)
        return d

    # --- one request -----------------------------------------------------------------------------

    async def _run(self, device_id: str, waiters: list[defer.Deferred[KickResult]]) -> None:
        try:
            result = await self._request(device_id)
        except Exception as e:  # a bug or a store failure: the caller still gets an answer
            log.exception("connection request to %s failed", device_id)
            result = KickResult(device_id, (Attempt(None, "error", f"{type(e).__name__}: {e}", self._now()),))
        finally:
            if self._waiting.get(device_id) is waiters:
                del self._waiting[device_id]
        for d in waiters:
            d.callback(result)

    async def _request(self, device_id: str) -> KickResult:
        target = await self._in_pool(self._load, device_id)
        if target is None:
            return KickResult(device_id, (Attempt(None, "error", f"no device {device_id!r}", self._now()),))
        delay = self._delay(target)
        if delay > 0:
            await deferLater(self.reactor, delay)
        # from here on, a new kick is for a later request: this one may be past the point it would see
        # a task queued now
        del self._waiting[device_id]
        now = self.reactor.seconds()
        if len(self._last) >= _REMEMBERED:  # forget devices whose interval is over: the store has them
            self._last = {d: t for d, t in self._last.items() if t > now - self.options.min_interval}
        self._last[device_id] = now
        attempts = await self._slots.run(lambda: defer.ensureDeferred(self._attempts(target)))
        try:
            await self._in_pool(self._record, device_id, attempts)
        except Exception:
            log.exception("the outcome of a connection request to %s was not recorded", device_id)
        return KickResult(device_id, tuple(attempts))

    def _delay(self, target: store.Target) -> float:
        """Seconds until the device may be asked again (this process's and the store's latest request)."""
        interval = self.options.min_interval
        waits = [0.0]
        if target.device_id in self._last:
            waits.append(self._last[target.device_id] + interval - self.reactor.seconds())
        if target.last_requested_at is not None:
            since = datetime.fromtimestamp(self.wallclock(), UTC) - target.last_requested_at
            waits.append(interval - since / timedelta(seconds=1))
        return min(max(waits), interval)

    async def _attempts(self, target: store.Target) -> list[Attempt]:
        attempts = []
        if target.url:
            attempts.append(await self._http(target))
            if attempts[-1].outcome not in ("unreachable", "timed_out"):
                return attempts
        if target.udp_address:
            attempts.append(await self._udp(target))
        if not attempts:
            attempts.append(
                Attempt(
                    None,
                    "unreachable",
                    "the device reported no ConnectionRequestURL nor UDPConnectionRequestAddress: "
                    "it gets its tasks at its next Inform",
                    self._now(),
                )
            )
        return attempts

    # --- HTTP ------------------------------------------------------------------------------------

    async def _http(self, target: store.Target) -> Attempt:
        at, started = self._now(), self.reactor.seconds()

        def done(outcome: str, detail: str) -> Attempt:
            return Attempt("http", outcome, detail, at, round(self.reactor.seconds() - started, 3))

        assert target.url is not None
        url = target.url.strip()
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return done("error", f"ConnectionRequestURL {url[:100]!r} is not an http:// URL (TR-069 3.2.2)")
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        auth = DigestAuth(target.username or "", target.password or "")
        answered = False
        try:
            for _ in range(1 + AUTH_ROUNDS):
                headers = Headers({b"User-Agent": [USER_AGENT]})
                authorization = auth.authorization("GET", uri)
                if authorization:
                    headers.addRawHeader(b"Authorization", authorization.encode("latin-1"))
                    answered = True
                response = await self._bounded(self._agent.request(b"GET", url.encode("ascii"), headers))
                with contextlib.suppress(Exception):  # the status is the answer; the (empty) body is not
                    await self._bounded(_discard_body(response))
                challenges = [
                    v.decode("latin-1") for v in response.headers.getRawHeaders(b"www-authenticate", [])
                ]
                if (
                    response.code != 401
                    or (answered and not _stale(challenges))
                    or not auth.challenge(challenges)
                ):
                    break
                if auth.scheme == "basic" and not self.options.allow_basic:
                    return done(
                        "refused",
                        "the device asks for HTTP Basic authentication, which sends the password in clear; "
                        f"allow it with {Options.ENV['allow_basic']}=1",
                    )
        except _TimedOut:
            return done("timed_out", f"no answer within {self.options.timeout:g} s")
        except Exception as e:
            return done(*_network_failure(e))
        return done(*http_outcome(response.code, answered_challenge=answered))

    async def _bounded(self, d: defer.Deferred[T]) -> T:
        """``d``'s result, or _TimedOut once ``timeout`` has passed (``d`` is cancelled)."""
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            d.cancel()

        timer = self.reactor.callLater(self.options.timeout, expire)
        try:
            return await d
        except Exception:
            if expired:
                raise _TimedOut() from None
            raise
        finally:
            if timer.active():
                timer.cancel()

    # --- UDP -------------------------------------------------------------------------------------

    async def _udp(self, target: store.Target) -> Attempt:
        at = self._now()
        assert target.udp_address is not None
        try:
            host, port = udp.parse_address(target.udp_address)
        except ValueError as e:
            return Attempt("udp", "error", f"UDPConnectionRequestAddress: {e}", at)
        try:
            ip = host if _is_ip(host) else await self._bounded(self.reactor.resolve(host))
        except _TimedOut:
            return Attempt("udp", "timed_out", f"cannot resolve {host} within {self.options.timeout:g} s", at)
        except Exception as e:
            return Attempt("udp", "unreachable", f"cannot resolve {host}: {e}", at)
        message = udp.UdpConnectionRequest.signed(
            host,
            port,
            target.username or "",
            target.password or "",
            ts=int(self.wallclock()),
            message_id=secrets.randbelow(2**32),
            cnonce=secrets.token_hex(8),
        ).encode()
        copies, gap = self.options.udp_copies, self.options.udp_gap
        started = self.reactor.seconds()
        sock = self.reactor.listenUDP(0, DatagramProtocol(), interface="::" if ":" in ip else "")
        try:
            for n in range(copies):
                if n:
                    await deferLater(self.reactor, gap * 2 ** (n - 1))
                sock.write(message, (ip, port))
        except OSError as e:
            return Attempt("udp", "unreachable", f"cannot send to {host}:{port}: {e.strerror or e}", at)
        finally:
            await sock.stopListening()
        elapsed = round(self.reactor.seconds() - started, 3)
        detail = (
            f"{copies} datagram{'s' if copies > 1 else ''} to {host}:{port} "
            "(no reply by design: the 6 CONNECTION REQUEST session confirms it)"
        )
        return Attempt("udp", "sent", detail, at, elapsed)

    # --- the store, on the thread pool --------------------------------------------------------

    def _in_pool(self, f: Callable[..., T], *args: Any) -> defer.Deferred[T]:
        return threads.deferToThreadPool(self.reactor, self.pool, f, *args)

    def _load(self, device_id: str) -> store.Target | None:
        with self.engine.connect() as conn:
            return store.target(conn, device_id)

    def _record(self, device_id: str, attempts: list[Attempt]) -> None:
        with self.engine.begin() as conn:
            store.record(conn, device_id, attempts)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.wallclock(), UTC)


class _TimedOut(Exception):
    pass


class _Discard(Protocol):
    """Reads a response body to its end and keeps none of it: a CPE's answer has an empty body."""

    def __init__(self, done: defer.Deferred[None]) -> None:
        self.done = done

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(None)


def _discard_body(response: Any) -> defer.Deferred[None]:
    """The end of the response's body; cancelling it closes the connection (a body that never ends)."""
    protocol: _Discard

    def cancel(_: defer.Deferred[None]) -> None:
        if protocol.transport is not None:
            cast(interfaces.IPushProducer, protocol.transport).stopProducing()  # a TCP transport is one

    done: defer.Deferred[None] = defer.Deferred(cancel)
    protocol = _Discard(done)
    response.deliverBody(protocol)
    return done


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _network_failure(e: BaseException) -> tuple[str, str]:
    """An HTTP request's failure as (outcome, detail)."""
    if isinstance(e, ResponseFailed):
        reasons = [r.getErrorMessage() for r in e.reasons]
        return "unreachable", f"the connection closed without an answer ({'; '.join(reasons)})"
    if isinstance(e, error.ConnectionRefusedError):
        return "unreachable", "connection refused: nothing listens there"
    if isinstance(e, error.TimeoutError | error.TCPTimedOutError):
        return "timed_out", "no TCP connection"
    if isinstance(e, error.DNSLookupError | error.ConnectError | OSError):
        return "unreachable", str(e) or type(e).__name__
    return "error", f"{type(e).__name__}: {e}"
