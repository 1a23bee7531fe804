"""The CWMP endpoint: a thin Twisted shell around the session state machine.

Each POST is parsed here (lxml, microseconds), handed to the session, and
whatever the session asks of the store runs on a thread pool, so the reactor
never waits for the database and a slow phone never stalls another; under load
the messages waiting for the store share one transaction (``acs.web.groupcommit``).

Sessions are found by their cookie; CPEs that return no cookie are followed
by their TCP connection (its ``CwmpConnection``, the endpoint's, not the HTTP
channel's). Bodies over the size cap get HTTP 413, an unknown Content-Encoding
415, unreadable or out-of-order messages HTTP 400 with the reason; neither
touches other sessions.
What a stranger can make it log (refused requests, failed authentication) is
written at a bounded rate, cut short and with secrets masked (``acs.web.boundedlog``).

A session is opened by an Inform whose sender authenticated: with HTTP Digest (or
Basic where it is allowed), or with a TLS client certificate that names the device
(``acs.web.tls.CertificateNames``). The connection that opened a session carries it;
any other request must authenticate, the cookie alone is not enough, and as whoever
opened the session (or as the device's own credentials). A request that must
authenticate is challenged (401) before its body is read when it has no credentials,
the empty ones too (libcurl's Digest probes with an empty POST first), and its
credentials are checked before its body is inflated or parsed: a stranger's body costs
no XML parse, and a user name no device has no database lookup per request
(``acs.web.auth.UnknownUsers``). Who may speak for which device is decided by the
session service, with the parsed Inform (``SessionHandler._admit``). Lines strangers can cause are
logged at a bounded rate (``acs.web.boundedlog``).
"""

from __future__ import annotations

import hmac
import io
import logging
import re
import traceback
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.web import server

from acs import cwmp
from acs.cwmp import rpc
from acs.cwmp.faults import CwmpError, MessageTooLarge
from acs.session.machine import ProtocolError, Turn, device_id
from acs.session.service import Owner, Principal, Refused
from acs.store import inventory
from acs.web.auth import BASIC_REFUSED, Authenticator, Credentials, UnknownUsers, parse_authorization
from acs.web.boundedlog import Long, bounded_log
from acs.web.groupcommit import GroupCommit
from acs.web.http11 import Answer, HttpChannel, HttpRequest
from acs.web.tls import CertificateNames

log = logging.getLogger(__name__)

COOKIE = "session"
COOKIE_B = COOKIE.encode()
_COOKIE_RE = re.compile(rb"(?:^|[;,\s])session=([A-Za-z0-9_-]{8,64})")
CONTENT_TYPE = b'text/xml; charset="utf-8"'


def session_cookie(header: bytes | None) -> str | None:
    """The session token from a Cookie header, also when a CPE echoes the whole Set-Cookie line."""
    if not header:
        return None
    m = _COOKIE_RE.search(header)
    return m.group(1).decode() if m else None


@dataclass(frozen=True)
class CpeAuth:
    """Who may open a session: shared credentials, and/or per-device ones from the store."""

    digest: Authenticator
    username: str | None = None
    password: str | None = None
    per_device: bool = True
    #: the user names no device has, as last looked up (this process's)
    unknown: UnknownUsers = field(default_factory=UnknownUsers)

    def shared_password(self, username: str) -> str | None:
        if self.username is not None and hmac.compare_digest(username, self.username):
            return self.password
        return None


class UnsupportedEncoding(ValueError):
    """A Content-Encoding the ACS does not read: HTTP 415 (a body it cannot inflate is a 400)."""


def inflate(body: bytes, encoding: bytes, max_size: int) -> bytes:
    """A gzip- or deflate-encoded body (CWMP 1.4 HTTP compression), never larger than ``max_size``.

    The cap applies to what comes out, so a small compressed bomb cannot fill memory. An encoding
    other than those is ``UnsupportedEncoding``; a body that is not what it says, ``ValueError``.
    """
    if encoding not in (b"gzip", b"x-gzip", b"deflate"):
        words = f"unsupported Content-Encoding {encoding.decode('latin-1')!r}; use gzip or deflate"
        raise UnsupportedEncoding(words)
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    try:
        data = inflater.decompress(body, max_size + 1)
    except zlib.error as e:
        if encoding != b"deflate":
            raise ValueError(f"body is not valid {encoding.decode()}: {e}") from None
        inflater = zlib.decompressobj(wbits=-15)  # "deflate" without the zlib header, as some stacks send it
        try:
            data = inflater.decompress(body, max_size + 1)
        except zlib.error as e:
            raise ValueError(f"body is not valid deflate: {e}") from None
    if len(data) > max_size or inflater.unconsumed_tail:
        raise MessageTooLarge(f"body inflates to over the {max_size}-byte limit")
    return data


class LimitedRequest(server.Request):
    """A Request that stops buffering a body past the size cap, so a huge POST cannot fill memory.

    For the ports still served by twisted.web (profiles, NBI); the CWMP port's own server,
    ``acs.web.http11``, caps bodies itself.
    """

    max_size = cwmp.codec.DEFAULT_MAX_SIZE
    too_large = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        """The body goes to memory, never to a temporary file, whatever its length: twisted.web spools
        a body of 100,000 bytes or more, or chunked, to a file, a descriptor each, held as long as
        the client takes to send it; capped at ``max_size``, memory is as good a place."""
        if length is not None and length > self.max_size:
            self.too_large = True
        self._content = io.BytesIO()
        # twisted.web declares Request.content as None; it is the body's file once a request has one
        self.content = self._content  # type: ignore[assignment]

    def handleContentChunk(self, data: bytes) -> None:
        if self.too_large:
            return
        self._received += len(data)
        if self._received > self.max_size:
            self.too_large = True
            self._content.seek(0)
            self._content.truncate()
            return
        super().handleContentChunk(data)


@dataclass(slots=True)
class CwmpConnection:
    """What the CWMP endpoint knows of one TCP connection, kept by the endpoint (not on the HTTP
    channel, which knows nothing of CWMP) for as long as the connection lives."""

    #: the session this connection opened, or proved it may continue: a CPE that keeps no cookie is
    #: followed by it, and its requests need no new authentication (``CwmpEndpoint._bound``)
    session: str | None = None
    #: the names in the connection's client certificate (None: none), once read
    certificate: CertificateNames | None = None
    certificate_read: bool = False


_TEXT = (b"Content-Type", b"text/plain; charset=utf-8")
_XML = (b"Content-Type", CONTENT_TYPE)
_NOT_POST = b"This is a TR-069 ACS: CPEs POST CWMP messages here.\n"
#: what a request authenticated as goes on with: (principal, (nonce, count, expiry) or None)
Then = Callable[[Principal, tuple[str, int, int] | None], None]


class CwmpEndpoint:
    """POST / : the ACS URL phones are given by DHCP option 43 or their configuration.

    The handler of ``acs.web.http11``'s connections: each request is answered on the
    reactor when it needs nothing from the store (401 challenges, errors), or after its
    store work (``acs.web.groupcommit``, on the thread pool) is committed, with plain
    callbacks (no Deferred chain).
    """

    def __init__(
        self,
        backend: Any,
        store: GroupCommit,
        *,
        max_size: int,
        auth: CpeAuth | None = None,
        reactor: Any = None,
    ) -> None:
        self.backend = backend
        self.auth = auth
        self.store = store
        self.max_size = max_size
        #: lines a stranger can cause, at a bounded rate (plain logging without a reactor: unit tests)
        self.strangers = bounded_log(reactor, log) if reactor is not None else None
        #: each open connection's CWMP state, gone with the connection
        self._connections: weakref.WeakKeyDictionary[HttpChannel, CwmpConnection] = (
            weakref.WeakKeyDictionary()
        )

    def connection(self, channel: HttpChannel) -> CwmpConnection:
        """The CWMP state of ``channel``'s connection (a new one on its first request)."""
        state = self._connections.get(channel)
        if state is None:
            state = self._connections[channel] = CwmpConnection()
        return state

    def note(self, kind: str, level: int, message: str, *args: Any) -> None:
        """Log a line a stranger can cause: at most a few of a kind per interval."""
        if self.strangers is not None:
            self.strangers(kind, level, message, *args)
        else:
            log.log(level, message, *args)

    def _in_store(
        self,
        done: Callable[..., None],
        channel: HttpChannel,
        request: HttpRequest,
        fn: Callable[..., Any],
        *args: Any,
    ) -> None:
        """Run ``fn(conn, *args)`` in a store transaction; then, on the reactor,
        ``done(channel, request, ok, result)`` (``result`` is a Failure when not ``ok``)."""
        guarded = self._guarded
        self.store.call(lambda ok, result: guarded(done, channel, request, ok, result), fn, *args)

    def _guarded(
        self, done: Callable[..., None], channel: HttpChannel, request: HttpRequest, ok: bool, result: Any
    ) -> None:
        try:
            done(channel, request, ok, result)
        except Exception:
            say = bounded_log(channel.reactor, log)
            say("crash", logging.ERROR, "CWMP request failed: %s", Long(traceback.format_exc()))
            self._error(channel, request, 500, "internal error; see the server log")

    def handle(self, channel: HttpChannel, request: HttpRequest) -> None:
        if request.method != b"POST":
            channel.respond(request, 405, [(b"Allow", b"POST"), _TEXT], _NOT_POST)
            return None
        if request.too_large:
            return self._error(channel, request, 413, f"body over the {self.max_size}-byte limit")
        if self.auth is None or self._bound(channel, request):
            env = self._parse(channel, request)
            if env is False:
                return None
            if self.auth is not None and env is not None and isinstance(env.body, rpc.Inform):
                return self._open(channel, request, env)  # a new session on this connection
            return self._go_on(channel, request, env, None, None)
        names = self._certificate(channel)
        if names is not None:
            # a client certificate the handshake verified: the body is not a stranger's
            env = self._parse(channel, request)
            if env is False:
                return None
            if env is not None and isinstance(env.body, rpc.Inform):
                return self._open(channel, request, env)
            if b"authorization" in request.headers:
                return self._http_authenticate(
                    channel, request, lambda p, n: self._go_on(channel, request, env, p, n)
                )
            return self._go_on(channel, request, env, Principal("cert", names.subject), None)
        if b"authorization" not in request.headers:
            # The first POST of most sessions comes without credentials: challenge it unread.
            return self._challenge(channel, request, stale=False)
        return self._http_authenticate(
            channel, request, lambda p, n: self._authenticated(channel, request, p, n)
        )

    def _authenticated(
        self,
        channel: HttpChannel,
        request: HttpRequest,
        principal: Principal,
        nonce: tuple[str, int, int] | None,
    ) -> None:
        """A request whose credentials were checked before its body was read: now read it."""
        env = self._parse(channel, request)
        if env is not False:
            self._go_on(channel, request, env, principal, nonce)

    def _parse(self, channel: HttpChannel, request: HttpRequest) -> Any:
        """The request's message (None: the empty POST); False when it was answered with an error."""
        body = request.body
        encoding = request.headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b""):
            try:
                body = inflate(body, encoding, self.max_size)
            except MessageTooLarge as e:
                self._error(channel, request, 413, str(e))
                return False
            except UnsupportedEncoding as e:
                self._error(channel, request, 415, str(e))
                return False
            except ValueError as e:
                self._error(channel, request, 400, str(e))
                return False
        try:
            return cwmp.parse(body, max_size=self.max_size) if body.strip() else None
        except MessageTooLarge as e:
            self._error(channel, request, 413, str(e))
        except CwmpError as e:
            self._error(channel, request, 400, str(e))
        return False

    def _go_on(
        self,
        channel: HttpChannel,
        request: HttpRequest,
        env: Any,
        principal: Principal | None,
        nonce: tuple[str, int, int] | None,
    ) -> None:
        """Step the session the message opens (an Inform) or belongs to (cookie or connection)."""
        opening = env is not None and isinstance(env.body, rpc.Inform)
        sid = None if opening else self._session_id(channel, request)
        if sid is None and not opening:
            return self._error(channel, request, 400, "no session: a CWMP session starts with an Inform")
        self._step(channel, request, sid, env, principal, nonce)
        return None

    def _step(
        self,
        channel: HttpChannel,
        request: HttpRequest,
        sid: str | None,
        env: Any,
        principal: Principal | None = None,
        nonce: tuple[str, int, int] | None = None,
    ) -> None:
        done = self._opened if sid is None else self._stepped
        args: tuple[Any, ...] = (sid, env, channel.peer)
        if principal is not None:
            args += (principal, nonce)
        self._in_store(done, channel, request, self.backend.handle, *args)

    def _opened(self, channel: HttpChannel, request: HttpRequest, ok: bool, result: Any) -> None:
        self._stepped(channel, request, ok, result, opening=True)

    def _stepped(
        self, channel: HttpChannel, request: HttpRequest, ok: bool, result: Any, *, opening: bool = False
    ) -> None:
        if not ok:
            if result.check(ProtocolError):
                return self._error(channel, request, 400, str(result.value))
            say = bounded_log(channel.reactor, log)
            say("crash", logging.ERROR, "CWMP request failed: %s", Long(result.getTraceback()))
            return self._error(channel, request, 500, "internal error; see the server log")
        if isinstance(result, Refused):
            self.note(result.kind, logging.WARNING, "CPE from %s: %s", channel.peer, result.words)
            if result.status == 401:
                return self._challenge(channel, request, stale=result.stale)
            channel.respond(request, result.status, [_TEXT], result.reason.encode() + b"\n")
            return None
        session, step = result
        if not channel.open:  # the CPE hung up: what the step did is committed; nothing to send
            return None
        headers: list[tuple[bytes, bytes]] = []
        if opening:
            headers.append((b"Set-Cookie", b"%s=%s; Path=/; HttpOnly" % (COOKIE_B, session.id.encode())))
        self.connection(channel).session = session.id if session.state != Turn.ENDED else None
        if step.reply is None:
            return channel.respond(request, 204, headers)
        headers.append(_XML)
        channel.respond(request, 200, headers, cwmp.serialize(step.reply))
        return None

    def early(self, channel: HttpChannel, request: HttpRequest) -> Answer | None:
        """The 401 for a request that says ``Expect: 100-continue`` without credentials, before its
        body is sent: it would be challenged unread anyway."""
        if self.auth is None or not self._unasked(channel, request):
            return None
        return 401, self._challenge_headers(channel, stale=False), b""

    def _open(self, channel: HttpChannel, request: HttpRequest, env: Any) -> None:
        """Check the Inform's sender, then step; when it does not do, answer 401 with a challenge.

        A client certificate that names the device opens its session; one naming another device
        gets 403. Otherwise HTTP authentication; the backend then decides whether those credentials
        speak for the device the Inform names.
        """
        assert self.auth is not None
        names = self._certificate(channel)
        if names is None:
            return self._http_authenticate(
                channel, request, lambda p, n: self._step(channel, request, None, env, p, n)
            )

        def identified(channel: HttpChannel, request: HttpRequest, ok: bool, stored: Any) -> None:
            if not ok:
                stored.raiseException()
            self._identified(channel, request, env, names, stored)

        self._in_store(identified, channel, request, _stored_mac, device_id(env.body.DeviceId))
        return None

    def _identified(
        self,
        channel: HttpChannel,
        request: HttpRequest,
        env: Any,
        names: CertificateNames,
        stored: str | None,
    ) -> None:
        """Whether the client certificate names the device that informs. The device's MAC is the one
        on record when there is one (an Inform's own says only what its sender claims), else the
        Inform's, on a device's first contact."""
        inform = env.body
        mac = stored or inventory.device_facts(inform.ParameterList).get("mac")
        did = device_id(inform.DeviceId)
        verdict = names.verdict(did, inform.DeviceId.SerialNumber, mac)
        if verdict == "names":
            return self._step(channel, request, None, env, Principal("cert", names.subject), None)
        if verdict == "other":
            self.note(
                "certificate",
                logging.WARNING,
                "CPE %s from %s presented a client certificate for another device (%s); refused",
                did,
                channel.peer,
                names.subject,
            )
            return self._error(channel, request, 403, "the client certificate names another device")
        # it names a MAC, and this device's is unknown: HTTP authentication decides
        self._http_authenticate(channel, request, lambda p, n: self._step(channel, request, None, env, p, n))
        return None

    def _http_authenticate(self, channel: HttpChannel, request: HttpRequest, then: Then) -> None:
        """Check the request's HTTP credentials (before its body is parsed); ``then(principal, nonce)``
        when they do, else a 401 with a challenge. The shared credentials are checked in memory;
        a device's password is looked up on the thread pool, unless no device had the user name
        at the last lookup (``UnknownUsers``)."""
        assert self.auth is not None
        creds = parse_authorization(request.headers.get(b"authorization"))
        if creds is None:
            return self._challenge(channel, request, stale=False)
        if self.auth.digest.basic_refused(creds, tls=channel.secure):
            self.note(
                "basic", logging.WARNING, "CPE %r from %s: %s", creds.username, channel.peer, BASIC_REFUSED
            )
            return self._challenge(channel, request, stale=False)
        password = self.auth.shared_password(creds.username)
        if password is not None:
            return self._check(channel, request, creds, password, Principal("shared", creds.username), then)
        unknown = self.auth.unknown
        if not self.auth.per_device:
            return self._unknown_user(channel, request, creds)
        if creds.username in unknown:
            if unknown.due():  # has a device been given the name meanwhile? asked aside, waited for by none

                def looked_up(ok: bool, found: Any) -> None:
                    if ok:
                        unknown.looked_up(creds.username, found[0] is not None, found[1])

                self.store.call(
                    looked_up,
                    self.backend.cpe_password,
                    creds.username,
                )
            return self._unknown_user(channel, request, creds)

        def owned(channel: HttpChannel, request: HttpRequest, ok: bool, found: Any) -> None:
            if not ok:
                found.raiseException()
            owner, revision = found
            unknown.looked_up(creds.username, owner is not None, revision)
            if owner is None:
                return self._unknown_user(channel, request, creds)
            assert isinstance(owner, Owner)
            principal = Principal("device", owner.device, owner.issued)
            self._check(channel, request, creds, owner.password, principal, then)
            return None

        return self._in_store(owned, channel, request, self.backend.cpe_password, creds.username)

    def _unknown_user(self, channel: HttpChannel, request: HttpRequest, creds: Credentials) -> None:
        self.note(
            "unknown-user",
            logging.WARNING,
            "CPE from %s: no device has the user name %r",
            channel.peer,
            creds.username,
        )
        self._challenge(channel, request, stale=False)

    def _check(
        self,
        channel: HttpChannel,
        request: HttpRequest,
        creds: Credentials,
        password: str,
        principal: Principal,
        then: Then,
    ) -> None:
        assert self.auth is not None
        digest = self.auth.digest
        target = request.target.decode("latin-1")
        verdict = digest.check(creds, password, b"POST", tls=channel.secure, uri=target, body=request.body)
        if verdict == "ok":
            count = creds.nonce_count()
            nonce = creds.params.get("nonce", "")
            then(principal, None if count is None else (nonce, count, digest.nonce_expires(nonce)))
            return
        if verdict == "denied":
            self.note(
                "denied",
                logging.WARNING,
                "CPE authentication failed for user %r from %s",
                creds.username,
                channel.peer,
            )
        self._challenge(channel, request, stale=verdict == "stale")

    def _bound(self, channel: HttpChannel, request: HttpRequest) -> bool:
        """Whether this connection authenticated for the session the request belongs to: it opened it
        (or proved it may continue it), and the cookie, if any, names that session."""
        bound = self.connection(channel).session
        if bound is None:
            return False
        cookie = session_cookie(request.headers.get(b"cookie"))
        return cookie is None or cookie == bound

    def _unasked(self, channel: HttpChannel, request: HttpRequest) -> bool:
        """A POST that must authenticate and carries no credentials: an Inform to challenge, a request
        with a cookie from another connection, or an empty probe (libcurl's Digest sends one before
        the body, to learn the challenge)."""
        return (
            b"authorization" not in request.headers
            and not self._bound(channel, request)
            and self._certificate(channel) is None
        )

    def _certificate(self, channel: HttpChannel) -> CertificateNames | None:
        """The names in the client certificate of this connection (verified by the TLS handshake)."""
        state = self.connection(channel)
        if not state.certificate_read:
            state.certificate = CertificateNames.of_peer(channel.peer_certificate()) or None
            state.certificate_read = True
        return state.certificate

    def _challenge(self, channel: HttpChannel, request: HttpRequest, *, stale: bool) -> None:
        channel.respond(request, 401, self._challenge_headers(channel, stale=stale))

    def _challenge_headers(self, channel: HttpChannel, *, stale: bool) -> list[tuple[bytes, bytes]]:
        assert self.auth is not None
        return [
            (b"WWW-Authenticate", c) for c in self.auth.digest.challenges(stale=stale, tls=channel.secure)
        ]

    def _session_id(self, channel: HttpChannel, request: HttpRequest) -> str | None:
        """The cookie's session, or for CPEs that keep no cookie the one on this TCP connection."""
        return session_cookie(request.headers.get(b"cookie")) or self.connection(channel).session

    def _error(self, channel: HttpChannel, request: HttpRequest, code: int, reason: str) -> None:
        self.note(f"http-{code}", logging.INFO, "CWMP %s from %s: %s", code, channel.peer, reason)
        channel.respond(request, code, [_TEXT], reason.encode() + b"\n")


def _stored_mac(conn: Any, device: str) -> str | None:
    """The MAC on record for a device; None when it is new or has none."""
    row = inventory.get_device(conn, device)
    return row["mac"] if row is not None and row["id"] == device else None
