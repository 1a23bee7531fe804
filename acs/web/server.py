"""Build and start the ACS's HTTP services on a reactor."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from twisted.internet import ssl, task, threads
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.threadpool import ThreadPool
from twisted.web import server

from acs.cwmp.codec import DEFAULT_MAX_SIZE
from acs.nbi.resource import Kicker, NbiResource, NbiSite, soap_authorize
from acs.web import workers
from acs.web.auth import Authenticator
from acs.web.backend import CwmpBackend
from acs.web.cwmp import CpeAuth, CwmpEndpoint, LimitedRequest
from acs.web.groupcommit import GroupCommit
from acs.web.http11 import HttpFactory
from acs.web.profilebackend import ProfileBackend, Render
from acs.web.profiles import MAX_BODY, ProfileResource
from acs.web.tftp import TftpServer

log = logging.getLogger(__name__)
#: Longest wait, in seconds, before a silent session is timed out or an overdue task shown expired.
SWEEP_INTERVAL = 10.0


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
    workers: int = 1
    access_log: bool = False
    #: the profile server (phones that resync by Profile_Rule): HTTP port, TFTP port; None: off
    profile_port: int | None = 7567
    tftp_port: int | None = None
    #: what a phone the ACS does not know gets: "404" (file not found) or "default" (the default profile)
    profile_unknown: str = "404"
    #: the northbound API: None turns it off; 0 is any free port
    nbi_port: int | None = 7557
    #: None: the same address as CWMP
    nbi_host: str | None = None
    nbi_max_body: int = 1 << 20

    def cpe_auth(self) -> CpeAuth | None:
        if not self.auth:
            return None
        digest = Authenticator(secret=self.auth_secret, allow_basic=self.allow_basic)
        return CpeAuth(digest, self.cpe_username, self.cpe_password)

    def tls_options(self) -> ssl.CertificateOptions | None:
        """The server certificate (and the chain after it in the same file) with its key."""
        if self.tls_cert is None:
            return None
        certs = _PEM_CERT.findall(self.tls_cert.read_bytes())
        if not certs:
            raise ValueError(f"{self.tls_cert}: no PEM certificate in it")
        key = (self.tls_key or self.tls_cert).read_bytes()
        leaf = ssl.PrivateCertificate.loadPEM(key + b"\n" + certs[0])
        chain = [ssl.Certificate.loadPEM(c).original for c in certs[1:]]
        return ssl.CertificateOptions(
            privateKey=leaf.privateKey.original, certificate=leaf.original, extraCertChain=chain
        )


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class QuietSite(server.Site):
    """A Site without an access log: at hundreds of sessions a second it is mostly cost."""

    def log(self, request: server.Request) -> None:
        pass


def cwmp_site(backend: CwmpBackend, pool: ThreadPool, options: ServeOptions, reactor: Any) -> HttpFactory:
    """The CWMP endpoint on every path: phones are given URLs like /, /acs or /cwmp.

    Served by ``acs.web.http11``, not twisted.web: see there why. A connection silent for the
    session timeout is closed: no session it could carry is still open by then.
    """
    store = GroupCommit(backend.engine, pool, reactor)
    endpoint = CwmpEndpoint(backend, store, max_size=options.max_body, auth=options.cpe_auth())
    return HttpFactory(
        endpoint,
        reactor,
        max_body=options.max_body,
        idle_timeout=options.session_timeout,
        log_requests=options.access_log,
    )


def profile_site(
    backend: ProfileBackend, pool: ThreadPool, options: ServeOptions, reactor: Any
) -> server.Site:
    """The profile server on every path: phones are given rules like /$MA.cfg or /Cisco/$MA.cfg."""
    resource = ProfileResource(backend, pool, reactor)
    site = (server.Site if options.access_log else QuietSite)(resource, parsePOSTFormSubmission=False)
    site.requestFactory = type("ProfileRequest", (LimitedRequest,), {"max_size": MAX_BODY})
    site.displayTracebacks = False
    return site


def database_threads(dialect: str) -> int:
    """Threads for store work: SQLite has one writer, so more threads only wait on its lock."""
    return 1 if dialect == "sqlite" else 8


def start_pool(engine: Engine, reactor: Any, size: int | None = None, name: str = "acs-db") -> ThreadPool:
    """The threads that do the store's work, stopped with the reactor."""
    pool = ThreadPool(minthreads=1, maxthreads=size or database_threads(engine.dialect.name), name=name)
    pool.start()
    reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    return pool


def nbi_threads(dialect: str) -> int:
    """Threads of the NBI's own pool, so API calls never queue behind CWMP sessions; none on SQLite,
    where the NBI shares the CWMP thread (one writer: a second thread would only meet the lock,
    and a read transaction that turns into a write fails at once when another committed meanwhile)."""
    return 0 if dialect == "sqlite" else 4


def nbi_site(
    engine: Engine, pool: ThreadPool, options: ServeOptions, reactor: Any, kicker: Kicker | None = None
) -> server.Site:
    """The northbound API on its own port: REST on every path, the SOAP flavour at /soap."""
    from acs.nbi.soap import soap_resource  # spyne loads only where the SOAP flavour is served

    rest = NbiResource(engine, pool, reactor=reactor, kicker=kicker)
    soap = soap_resource(engine, soap_authorize(engine), reactor, pool)
    site = server.Site(NbiSite(rest, soap), parsePOSTFormSubmission=False)
    site.requestFactory = type("NbiRequest", (LimitedRequest,), {"max_size": options.nbi_max_body})
    site.displayTracebacks = False
    return site


def listen_nbi(
    engine: Engine,
    options: ServeOptions,
    reactor: Any,
    pool: ThreadPool,
    kicker: Callable[[ThreadPool], Kicker] | None = None,
) -> Any | None:
    """Start the northbound API (None when ``options.nbi_port`` is None); return its port.

    Served by the first process only: API traffic is light beside CWMP's, and waiting for a
    task holds no thread. On SQLite it works on ``pool`` (the CWMP thread), on PostgreSQL on a
    pool of its own. ``kicker(pool)`` makes what sends its connection requests (``acs serve``:
    a ``ConnectionRequester``); None: the NBI sends none. Over TLS with ``--tls-cert``.
    """
    if options.nbi_port is None:
        return None
    threads_ = nbi_threads(engine.dialect.name)
    nbi_pool = start_pool(engine, reactor, threads_, "acs-nbi") if threads_ else pool
    factory: Any = nbi_site(engine, nbi_pool, options, reactor, kicker(nbi_pool) if kicker else None)
    tls = options.tls_options()
    if tls is not None:
        factory = TLSMemoryBIOFactory(tls, False, factory)
    host = options.nbi_host or options.host
    try:
        sock = workers.bind(host, options.nbi_port)
    except OSError as e:
        raise OSError(f"NBI on {host}:{options.nbi_port}: {e.strerror or e}") from e
    try:
        return reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
    finally:
        sock.close()


def listen(
    engine: Engine,
    options: ServeOptions,
    reactor: Any,
    worker_argv: list[str] | None = None,
    worker_env: dict[str, str] | None = None,
    *,
    pool: ThreadPool | None = None,
) -> Any:
    """Start the CWMP service and return its listening port.

    The first process binds the socket and, with ``options.workers`` > 1, starts
    the other workers with ``worker_argv``/``worker_env``; a worker (``ACS_INHERIT_FD``
    set) serves the socket it inherited.
    """
    pool = pool or start_pool(engine, reactor)
    backend = CwmpBackend(engine, session_timeout=options.session_timeout)
    factory: Any = cwmp_site(backend, pool, options, reactor)
    tls = options.tls_options()
    if tls is not None:
        factory = TLSMemoryBIOFactory(tls, False, factory)
    sweep = task.LoopingCall(threads.deferToThreadPool, reactor, pool, backend.sweep)
    sweep.clock = reactor
    sweep.start(min(options.session_timeout, SWEEP_INTERVAL), now=False).addErrback(
        lambda f: log.error("session sweep stopped: %s", f.getTraceback())
    )
    reactor.addSystemEventTrigger("before", "shutdown", lambda: sweep.running and sweep.stop())
    fd = workers.inherited_fd()
    if fd is not None:
        workers.watch_parent(reactor)
        family = socket.socket(fileno=os.dup(fd))
        try:
            return reactor.adoptStreamPort(fd, family.family, factory)
        finally:
            family.close()
    sock = workers.bind(options.host, options.port)
    port = reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
    if options.workers > 1:
        assert worker_argv is not None
        workers.Supervisor(reactor, sock, worker_argv, worker_env or {}).start(options.workers)
    else:
        sock.close()  # the reactor holds its own copy
    return port


def listen_profiles(
    engine: Engine,
    options: ServeOptions,
    reactor: Any,
    pool: ThreadPool,
    render: Render | None = None,
) -> tuple[Any | None, Any | None]:
    """Start the profile server: (HTTP port, TFTP port), each None when off.

    Served by the first process only (workers serve CWMP): a resync is one short
    request, against a CWMP session's several. With ``--tls-cert`` the HTTP side is
    HTTPS too. Phones with credentials of their own authenticate with HTTP Digest
    unless ``--no-auth``.
    """
    authenticator = (
        Authenticator(secret=options.auth_secret, allow_basic=options.allow_basic) if options.auth else None
    )
    backend = ProfileBackend(
        engine,
        render,
        unknown=options.profile_unknown,  # type: ignore[arg-type]
        authenticator=authenticator,
    )
    http_port = tftp_port = None
    if options.profile_port is not None:
        factory: Any = profile_site(backend, pool, options, reactor)
        tls = options.tls_options()
        if tls is not None:
            factory = TLSMemoryBIOFactory(tls, False, factory)
        sock = workers.bind(options.host, options.profile_port)
        try:
            http_port = reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
        finally:
            sock.close()
    if options.tftp_port is not None:
        server = TftpServer(backend, pool, reactor, interface=options.host)
        tftp_port = reactor.listenUDP(options.tftp_port, server, interface=options.host)
    return http_port, tftp_port
