"""The CWMP endpoint: a thin Twisted shell around the session state machine.

Each POST is parsed here (lxml, microseconds), handed to the session, and
whatever the session asks of the store runs on a thread pool, so the reactor
never waits for the database and a slow phone never stalls another; under load
the messages waiting for the store share one transaction (``acs.web.groupcommit``).

Sessions are found by their cookie; CPEs that return no cookie are followed
by their TCP connection. Bodies over the size cap get HTTP 413, unreadable or
out-of-order messages HTTP 400 with the reason; neither touches other sessions.
What a stranger can make it log (refused requests, failed authentication) is
written at a bounded rate, cut short and with secrets masked (``acs.web.boundedlog``).

A session is opened by an Inform whose sender authenticated: with HTTP Digest (or
Basic where it is allowed), or with a TLS client certificate that names the device
(``acs.web.tls.CertificateNames``). Any POST outside a session without credentials
is challenged (401) before its body is read, the empty ones too: libcurl's Digest
probes with an empty POST first.
"""

from __future__ import annotations

import hmac
import io
import logging
import re
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.web import server

from acs import cwmp
from acs.cwmp import rpc
from acs.cwmp.faults import CwmpError, MessageTooLarge
from acs.session.machine import ProtocolError, device_id
from acs.store import inventory
from acs.web.auth import BASIC_REFUSED, Authenticator, Credentials, parse_authorization
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

    def shared_password(self, username: str) -> str | None:
        if self.username is not None and hmac.compare_digest(username, self.username):
            return self.password
        return None


def inflate(body: bytes, encoding: bytes, max_size: int) -> bytes:
    """A gzip- or deflate-encoded body (CWMP 1.4 HTTP compression), never larger than ``max_size``.

    The cap applies to what comes out, so a small compressed bomb cannot fill memory.
    """
    if encoding not in (b"gzip", b"x-gzip", b"deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding.decode('latin-1')!r}; use gzip or deflate")
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
        self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        if self.too_large:
            return
        self._received += len(data)
        if self._received > self.max_size:
            self.too_large = True
            self.content.seek(0)
            self.content.truncate()
            return
        super().handleContentChunk(data)


_TEXT = (b"Content-Type", b"text/plain; charset=utf-8")
_XML = (b"Content-Type", CONTENT_TYPE)
_NOT_POST = b"This is a TR-069 ACS: CPEs POST CWMP messages here.\n"


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
    ) -> None:
        self.backend = backend
        self.auth = auth
        self.store = store
        self.max_size = max_size

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
        body = request.body
        encoding = request.headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b""):
            try:
                body = inflate(body, encoding, self.max_size)
            except MessageTooLarge as e:
                return self._error(channel, request, 413, str(e))
            except ValueError as e:
                return self._error(channel, request, 415 if "unsupported" in str(e) else 400, str(e))
        if self.auth is not None and self._unasked(channel, request):
            # The first POST of most sessions comes without credentials: challenge it unread.
            return self._challenge(channel, request, stale=False)
        try:
            env = cwmp.parse(body, max_size=self.max_size) if body.strip() else None
        except MessageTooLarge as e:
            return self._error(channel, request, 413, str(e))
        except CwmpError as e:
            return self._error(channel, request, 400, str(e))
        opening = env is not None and isinstance(env.body, rpc.Inform)
        sid = None if opening else self._session_id(channel, request)
        if sid is None and not opening:
            return self._error(channel, request, 400, "no session: a CWMP session starts with an Inform")
        if opening and self.auth is not None:
            return self._authenticate(channel, request, env)
        self._step(channel, request, sid, env)
        return None

    def _step(self, channel: HttpChannel, request: HttpRequest, sid: str | None, env: Any) -> None:
        done = self._opened if sid is None else self._stepped
        self._in_store(done, channel, request, self.backend.handle, sid, env, channel.peer)

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
        session, step = result
        if not channel.open:  # the CPE hung up: what the step did is committed; nothing to send
            return None
        headers: list[tuple[bytes, bytes]] = []
        if opening:
            headers.append((b"Set-Cookie", b"%s=%s; Path=/; HttpOnly" % (COOKIE_B, session.id.encode())))
        channel.session = session.id if session.state != "ended" else None
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

    def _authenticate(self, channel: HttpChannel, request: HttpRequest, env: Any) -> None:
        """Check the Inform's sender, then step; when it does not do, answer 401 with a challenge.

        A client certificate that names the device opens its session; one naming another device
        gets 403. Otherwise HTTP authentication: per-device credentials open sessions for their
        own device only; their password is looked up on the thread pool.
        """
        assert self.auth is not None
        names = self._certificate(channel)
        if names is None:
            return self._http_authenticate(channel, request, env)

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
            return self._step(channel, request, None, env)
        if verdict == "other":
            bounded_log(channel.reactor, log)(
                "certificate",
                logging.WARNING,
                "CPE %s from %s presented a client certificate for another device (%s); refused",
                did,
                channel.peer,
                names.subject,
            )
            return self._error(channel, request, 403, "the client certificate names another device")
        self._http_authenticate(channel, request, env)  # it names a MAC, and this device's is unknown
        return None

    def _http_authenticate(self, channel: HttpChannel, request: HttpRequest, env: Any) -> None:
        assert self.auth is not None
        creds = parse_authorization(request.headers.get(b"authorization"))
        if creds is None:
            return self._challenge(channel, request, stale=False)
        if self.auth.digest.basic_refused(creds, tls=channel.secure):
            say = bounded_log(channel.reactor, log)
            say("basic", logging.WARNING, "CPE %r from %s: %s", creds.username, channel.peer, BASIC_REFUSED)
            return self._challenge(channel, request, stale=False)
        password = self.auth.shared_password(creds.username)
        if password is None and self.auth.per_device:

            def owned(channel: HttpChannel, request: HttpRequest, ok: bool, owner: Any) -> None:
                if not ok:
                    owner.raiseException()
                password = (
                    owner[1] if owner is not None and owner[0] == device_id(env.body.DeviceId) else None
                )
                self._check(channel, request, env, creds, password)

            return self._in_store(owned, channel, request, self.backend.cpe_password, creds.username)
        self._check(channel, request, env, creds, password)
        return None

    def _check(
        self, channel: HttpChannel, request: HttpRequest, env: Any, creds: Credentials, password: str | None
    ) -> None:
        assert self.auth is not None
        verdict = (
            "denied"
            if password is None
            else self.auth.digest.check(creds, password, b"POST", tls=channel.secure)
        )
        if verdict == "ok":
            return self._step(channel, request, None, env)
        if verdict == "denied":
            say = bounded_log(channel.reactor, log)
            say(
                "denied",
                logging.WARNING,
                "CPE authentication failed for user %r from %s",
                creds.username,
                channel.peer,
            )
        self._challenge(channel, request, stale=verdict == "stale")
        return None

    def _unasked(self, channel: HttpChannel, request: HttpRequest) -> bool:
        """A POST outside a session, without credentials: an Inform to challenge, or an empty
        probe (libcurl's Digest sends one before the body, to learn the challenge)."""
        return (
            b"authorization" not in request.headers
            and self._session_id(channel, request) is None
            and self._certificate(channel) is None
        )

    def _certificate(self, channel: HttpChannel) -> CertificateNames | None:
        """The names in the client certificate of this connection (verified by the TLS handshake)."""
        if channel.client is None:
            channel.client = CertificateNames.of_peer(channel.peer_certificate()) or False
        return channel.client or None

    def _challenge(self, channel: HttpChannel, request: HttpRequest, *, stale: bool) -> None:
        channel.respond(request, 401, self._challenge_headers(channel, stale=stale))

    def _challenge_headers(self, channel: HttpChannel, *, stale: bool) -> list[tuple[bytes, bytes]]:
        assert self.auth is not None
        return [
            (b"WWW-Authenticate", c) for c in self.auth.digest.challenges(stale=stale, tls=channel.secure)
        ]

    def _session_id(self, channel: HttpChannel, request: HttpRequest) -> str | None:
        """The cookie's session, or for CPEs that keep no cookie the one on this TCP connection."""
        return session_cookie(request.headers.get(b"cookie")) or channel.session

    def _error(self, channel: HttpChannel, request: HttpRequest, code: int, reason: str) -> None:
        bounded_log(channel.reactor, log)(
            f"refused {code}", logging.INFO, "CWMP %s from %s: %s", code, channel.peer, reason
        )
        channel.respond(request, code, [_TEXT], reason.encode() + b"\n")


def _stored_mac(conn: Any, device: str) -> str | None:
    """The MAC on record for a device; None when it is new or has none."""
    row = inventory.get_device(conn, device)
    return row["mac"] if row is not None and row["id"] == device else None
