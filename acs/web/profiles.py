"""The profile server's HTTP side: phones GET (or POST, with ``--post``) ``/$MA.cfg`` and the like.

A thin Twisted shell: the request's path, User-Agent, Authorization and
Accept-Encoding go to ``ProfileBackend.fetch`` on the thread pool (one transaction),
and its reply is written with a Content-Length, as small phone stacks read by length.
What a POST carries (a GPP register's contents) is read and not used: the answer is
the same profile a GET gets.

Every line a request can cause is logged at a bounded rate (``acs.web.boundedlog``): the
refusals the operator should see (a profile refused to a requester that proved nothing, a
wrong password, another device's certificate) at WARNING, other answers (a challenge, 404)
at INFO, a profile sent at DEBUG.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import threads
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from acs.web.auth import parse_authorization
from acs.web.boundedlog import BoundedLog, Long
from acs.web.profilebackend import Fetch, ProfileBackend, Reply
from acs.web.tls import CertificateNames

log = logging.getLogger(__name__)

#: the largest POST body taken (``--post`` sends a GPP register: a few hundred bytes)
MAX_BODY = 64 * 1024


class ProfileResource(resource.Resource):
    """Every path: phones are given rules like ``http://acs:7567/$MA.cfg`` or ``/Cisco/$MA.cfg``."""

    isLeaf = True

    def __init__(self, backend: ProfileBackend, pool: ThreadPool, reactor: Any) -> None:
        super().__init__()
        self.backend = backend
        self.pool = pool
        self.reactor = reactor
        self.say = BoundedLog(reactor, log)

    def render_GET(self, request: server.Request) -> Any:
        if getattr(request, "too_large", False):
            return self._write(request, Reply(413, reason=f"body over the {MAX_BODY}-byte limit"))
        peer = getattr(request.getClientAddress(), "host", None)
        user_agent = request.getHeader(b"user-agent")
        accept = request.getHeader(b"accept-encoding")
        fetch = Fetch(
            path=request.path.decode("utf-8", "replace"),
            scheme="https" if request.isSecure() else "http",
            method=request.method.decode("ascii", "replace"),
            user_agent=user_agent.decode("latin-1") if user_agent else None,
            remote_addr=peer,
            credentials=parse_authorization(request.getHeader(b"authorization")),
            accept_encoding=accept.decode("latin-1") if accept else None,
            certificate=_client_certificate(request),
        )
        d = threads.deferToThreadPool(self.reactor, self.pool, self.backend.fetch, fetch)
        d.addCallback(self._finish, request, fetch)
        d.addErrback(self._crash, request)
        return server.NOT_DONE_YET

    render_HEAD = render_GET
    render_POST = render_GET

    def _finish(self, reply: Reply, request: server.Request, fetch: Fetch) -> None:
        if reply.warning:
            self.say(
                reply.cause or str(reply.status), logging.WARNING, "%s", Long(reply.warning)
            )  # ours: whole
        elif reply.status == 200:
            log.debug("profile %s to %s (%s)", fetch.path, fetch.remote_addr, reply.device_id)
        else:
            self.say(
                str(reply.status),
                logging.INFO,
                "profile %s from %s: %d %s",
                fetch.path,
                fetch.remote_addr,
                reply.status,
                reply.reason,
            )
        if request.channel is None:  # the phone hung up; what the fetch recorded is committed
            return
        request.write(self._write(request, reply))
        request.finish()

    def _write(self, request: server.Request, reply: Reply) -> bytes:
        """Status and headers set on ``request``; the body to send."""
        request.setResponseCode(reply.status)
        body = reply.body
        if reply.status != 200 and not body:
            body = reply.reason.encode() + b"\n"
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        for name, value in reply.headers:
            request.responseHeaders.addRawHeader(name.encode(), value.encode())
        request.setHeader(b"content-length", str(len(body)).encode())
        return body

    def _crash(self, failure: Any, request: server.Request) -> None:
        self.say("crash", logging.ERROR, "profile request failed: %s", Long(failure.getTraceback()))
        if not request.finished and request.channel is not None:
            request.write(self._write(request, Reply(500, reason="internal error; see the server log")))
            request.finish()


def _client_certificate(request: server.Request) -> CertificateNames | None:
    """The names in the client certificate of an HTTPS request (verified by the handshake)."""
    if not request.isSecure():
        return None
    get = getattr(request.channel.transport, "getPeerCertificate", None)
    return CertificateNames.of_peer(get()) if get is not None else None
