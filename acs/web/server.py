"""Build and start the ACS's HTTP services on a reactor."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from twisted.internet import endpoints, task, threads
from twisted.python.threadpool import ThreadPool
from twisted.web import server

from acs.cwmp.codec import DEFAULT_MAX_SIZE
from acs.web.auth import DigestAuth
from acs.web.backend import CwmpBackend
from acs.web.cwmp import CpeAuth, CwmpResource, LimitedRequest

log = logging.getLogger(__name__)


@dataclass
class ServeOptions:
    host: str = "0.0.0.0"  # noqa: S104 - phones reach the ACS from the network
    port: int = 7547
    max_body: int = DEFAULT_MAX_SIZE
    session_timeout: float = 60.0
    auth: bool = True
    cpe_username: str | None = None
    cpe_password: str | None = field(default=None, repr=False)
    auth_secret: bytes | None = field(default=None, repr=False)
    allow_basic: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def cpe_auth(self) -> CpeAuth | None:
        if not self.auth:
            return None
        digest = DigestAuth(secret=self.auth_secret, allow_basic=self.allow_basic)
        return CpeAuth(digest, self.cpe_username, self.cpe_password)

    def endpoint(self) -> str:
        """A Twisted endpoint description for the CWMP port."""
        host = self.host.replace(":", r"\:")
        if self.tls_cert is None:
            return f"tcp:{self.port}:interface={host}"
        cert = str(self.tls_cert).replace(":", r"\:")
        key = str(self.tls_key or self.tls_cert).replace(":", r"\:")
        return f"ssl:{self.port}:interface={host}:privateKey={key}:certKey={cert}"


def cwmp_site(backend: CwmpBackend, pool: ThreadPool, options: ServeOptions, reactor: Any) -> server.Site:
    """The CWMP endpoint on every path: phones are given URLs like /, /acs or /cwmp."""
    resource = CwmpResource(
        backend, pool, max_size=options.max_body, auth=options.cpe_auth(), reactor=reactor
    )
    site = server.Site(resource)
    site.requestFactory = type("CwmpRequest", (LimitedRequest,), {"max_size": options.max_body})
    site.displayTracebacks = False
    return site


def database_threads(engine: Engine) -> ThreadPool:
    """Threads for store work: SQLite has one writer, so more threads only wait on its lock."""
    size = 1 if engine.dialect.name == "sqlite" else 8
    return ThreadPool(minthreads=1, maxthreads=size, name="acs-db")


def listen(engine: Engine, options: ServeOptions, reactor: Any) -> Any:
    """Start the CWMP service; returns a Deferred firing with the listening port."""
    pool = database_threads(engine)
    pool.start()
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    backend = CwmpBackend(engine, session_timeout=options.session_timeout)
    site = cwmp_site(backend, pool, options, reactor)
    sweep = task.LoopingCall(threads.deferToThreadPool, reactor, pool, backend.expire_sessions)
    sweep.clock = reactor
    sweep.start(options.session_timeout, now=False).addErrback(
        lambda f: log.error("session sweep stopped: %s", f.getTraceback())
    )
    reactor.addSystemEventTrigger("before", "shutdown", lambda: sweep.running and sweep.stop())
    return endpoints.serverFromString(reactor, options.endpoint()).listen(site)
