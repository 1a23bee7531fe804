"""The CWMP endpoint: a thin Twisted shell around the session state machine.

Each POST is parsed here (lxml, microseconds), handed to the session, and
whatever the session asks of the store runs on a thread pool, so the reactor
never waits for the database and a slow phone never stalls another.

Sessions are found by their cookie; CPEs that return no cookie are followed
by their TCP connection. Bodies over the size cap get HTTP 413, unreadable or
out-of-order messages HTTP 400 with the reason; neither touches other sessions.
"""

from __future__ import annotations

import hmac
import logging
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool
from twisted.web import http, resource, server

from acs import cwmp
from acs.cwmp import rpc
from acs.cwmp.faults import CwmpError, MessageTooLarge
from acs.session.machine import ProtocolError, Step, device_id
from acs.web.auth import Authenticator, parse_authorization

log = logging.getLogger(__name__)

COOKIE = "session"
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
    """A Request that stops buffering a body past the size cap, so a huge POST cannot fill memory."""

    max_size = cwmp.codec.DEFAULT_MAX_SIZE
    too_large = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_size:
            self.too_large = True
            length = 0
        super().gotLength(length)

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


class CwmpResource(resource.Resource):
    """POST / : the ACS URL phones are given by DHCP option 43 or their configuration."""

    isLeaf = True

    def __init__(
        self,
        backend: Any,
        pool: ThreadPool,
        *,
        max_size: int,
        auth: CpeAuth | None = None,
        reactor: Any = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.auth = auth
        self.pool = pool
        self.max_size = max_size
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor

    def _in_thread(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(self.reactor, self.pool, fn, *args)

    def render_GET(self, request: server.Request) -> bytes:
        request.setResponseCode(http.NOT_ALLOWED)
        request.setHeader(b"allow", b"POST")
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"This is a TR-069 ACS: CPEs POST CWMP messages here.\n"

    def render_POST(self, request: server.Request) -> Any:
        if getattr(request, "too_large", False):
            return self._error(
                request, http.REQUEST_ENTITY_TOO_LARGE, f"body over the {self.max_size}-byte limit"
            )
        body = request.content.read()
        encoding = (request.getHeader(b"content-encoding") or b"identity").strip().lower()
        if encoding not in (b"identity", b""):
            try:
                body = inflate(body, encoding, self.max_size)
            except MessageTooLarge as e:
                return self._error(request, http.REQUEST_ENTITY_TOO_LARGE, str(e))
            except ValueError as e:
                return self._error(
                    request,
                    http.UNSUPPORTED_MEDIA_TYPE if "unsupported" in str(e) else http.BAD_REQUEST,
                    str(e),
                )
        d = defer.ensureDeferred(self._handle(request, body))
        d.addErrback(self._crash, request)
        return server.NOT_DONE_YET

    async def _handle(self, request: server.Request, body: bytes) -> None:
        if self.auth is not None and self._unasked(request, body):
            # The first POST of most sessions comes without credentials: challenge it unread.
            return self._challenge(request, stale=False)
        try:
            env = cwmp.parse(body, max_size=self.max_size) if body.strip() else None
        except MessageTooLarge as e:
            return self._finish_error(request, http.REQUEST_ENTITY_TOO_LARGE, str(e))
        except CwmpError as e:
            return self._finish_error(request, http.BAD_REQUEST, str(e))
        opening = env is not None and isinstance(env.body, rpc.Inform)
        sid = None if opening else self._session_id(request)
        if sid is None and not opening:
            return self._finish_error(
                request, http.BAD_REQUEST, "no session: a CWMP session starts with an Inform"
            )
        peer = getattr(request.getClientAddress(), "host", None)
        if opening and self.auth is not None and not await self._authenticated(request, env.body, peer):
            return None
        try:
            session, step = await self._in_thread(self.backend.step, sid, env, peer)
        except ProtocolError as e:
            return self._finish_error(request, http.BAD_REQUEST, str(e))
        if opening:
            request.addCookie(COOKIE, session.id, path="/", httpOnly=True)
        if request.channel is None:  # the CPE hung up: what the step did is committed; nothing to send
            return None
        request.channel.cwmp_session = session.id if session.state != "ended" else None
        self._reply(request, step)
        return None

    async def _authenticated(self, request: server.Request, inform: rpc.Inform, peer: str | None) -> bool:
        """Check the Inform's credentials; when they don't do, answer 401 with a challenge.

        Per-device credentials open sessions for their own device only.
        """
        assert self.auth is not None
        creds = parse_authorization(request.getHeader(b"authorization"))
        tls = request.isSecure()
        verdict = "challenge"
        if creds is not None:
            password = self.auth.shared_password(creds.username)
            if password is None and self.auth.per_device:
                owner = await self._in_thread(self.backend.cpe_password, creds.username)
                if owner is not None and owner[0] == device_id(inform.DeviceId):
                    password = owner[1]
            verdict = (
                "denied" if password is None else self.auth.digest.check(creds, password, b"POST", tls=tls)
            )
        if verdict == "ok":
            return True
        if verdict == "denied":
            log.warning(
                "CPE authentication failed for user %r from %s", creds.username if creds else None, peer
            )
        self._challenge(request, stale=verdict == "stale")
        return False

    def _unasked(self, request: server.Request, body: bytes) -> bool:
        """A message that can only open a session, sent without credentials."""
        return (
            request.getHeader(b"authorization") is None
            and self._session_id(request) is None
            and bool(body.strip())
        )

    def _challenge(self, request: server.Request, *, stale: bool) -> None:
        assert self.auth is not None
        request.setResponseCode(http.UNAUTHORIZED)
        for challenge in self.auth.digest.challenges(stale=stale, tls=request.isSecure()):
            request.responseHeaders.addRawHeader(b"www-authenticate", challenge)
        request.setHeader(b"content-length", b"0")
        request.finish()

    def _session_id(self, request: server.Request) -> str | None:
        """The cookie's session, or for CPEs that keep no cookie the one on this TCP connection."""
        return session_cookie(request.getHeader(b"cookie")) or getattr(request.channel, "cwmp_session", None)

    def _reply(self, request: server.Request, step: Step) -> None:
        if step.reply is None:
            request.setResponseCode(http.NO_CONTENT)
            request.setHeader(b"content-length", b"0")
            request.finish()
            return
        data = cwmp.serialize(step.reply)
        request.setHeader(b"content-type", CONTENT_TYPE)
        request.setHeader(b"content-length", str(len(data)).encode())
        request.write(data)
        request.finish()

    def _error(self, request: server.Request, code: int, reason: str) -> bytes:
        log.info("CWMP %s from %s: %s", code, request.getClientAddress(), reason)
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return reason.encode() + b"\n"

    def _finish_error(self, request: server.Request, code: int, reason: str) -> None:
        data = self._error(request, code, reason)
        request.setHeader(b"content-length", str(len(data)).encode())
        request.write(data)
        request.finish()

    def _crash(self, failure: Any, request: server.Request) -> None:
        log.error("CWMP request failed: %s", failure.getTraceback())
        if not request.finished and not getattr(request, "_disconnected", False):
            self._finish_error(request, http.INTERNAL_SERVER_ERROR, "internal error; see the server log")
