"""Build and start the ACS's HTTP services on a reactor."""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from twisted.internet import task, threads
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.threadpool import ThreadPool
from twisted.web import http, server

from acs.cwmp.codec import DEFAULT_MAX_SIZE
from acs.nbi.resource import Kicker, NbiResource, NbiSite, soap_authorize
from acs.session.service import SessionHandler
from acs.web import guard as http_guard
from acs.web import workers
from acs.web.auth import Authenticator
from acs.web.boundedlog import access_line
from acs.web.cwmp import CpeAuth, CwmpEndpoint, LimitedRequest
from acs.web.groupcommit import GroupCommit
from acs.web.guard import Admission, Guard, GuardedChannel, Limits
from acs.web.http11 import HttpFactory
from acs.web.profilebackend import ProfileBackend, Render
from acs.web.profiles import MAX_BODY, ProfileResource
from acs.web.tftp import MAX_PER_SOURCE, MAX_TRANSFERS, TftpServer
from acs.web.tls import ServerTls

log = logging.getLogger(__name__)
#: Longest wait, in seconds, before a silent session is timed out or an overdue task shown expired.
SWEEP_INTERVAL = 10.0


@dataclass
class ServeOptions:
    host: str = "0.0.0.0"  # noqa: S104 - phones reach the ACS from the network
    #: the CWMP ports: HTTP and HTTPS side by side (a fleet moves from one to the other); None: off
    port: int | None = 7547
    tls_port: int | None = None
    max_body: int = DEFAULT_MAX_SIZE
    session_timeout: float = 60.0
    auth: bool = True
    cpe_username: str | None = None
    cpe_password: str | None = field(default=None, repr=False)
    auth_secret: bytes | None = field(default=None, repr=False)
    allow_basic: bool = False
    #: whether the shared credentials may make devices the store does not know: "allow" or "deny"
    cpe_shared_new: str = "allow"
    #: the certificate (and chain) and key of every HTTPS port; the CA client certificates are checked against
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    workers: int = 1
    access_log: bool = False
    #: the profile server (phones that resync by Profile_Rule): HTTP, HTTPS and TFTP ports; None: off
    profile_port: int | None = 7567
    profile_tls_port: int | None = None
    tftp_port: int | None = None
    #: TFTP transfers at once, in all (lowered to a quarter of RLIMIT_NOFILE) and to one address
    tftp_max_transfers: int = MAX_TRANSFERS
    tftp_max_per_source: int = MAX_PER_SOURCE
    #: what a phone the ACS does not know gets: "404" (file not found) or "default" (the default profile)
    profile_unknown: str = "404"
    #: "required": a profile goes in clear only to a phone that authenticates, else encrypted with its
    #: key, else not at all; "none": to anyone who names the phone (a lab)
    profile_auth: str = "required"
    #: the northbound API's HTTP and HTTPS ports: None turns one off; 0 is any free port
    nbi_port: int | None = 7557
    nbi_tls_port: int | None = None
    #: None: the same address as CWMP
    nbi_host: str | None = None
    nbi_max_body: int = 1 << 20
    #: the HTTP ports' deadlines and caps (``acs.web.guard``): seconds for a request's head, bytes/s
    #: for its body, connections at once in all (lowered to half of RLIMIT_NOFILE) and from one address
    http_head_timeout: float = http_guard.HEAD_TIMEOUT
    http_min_rate: float = http_guard.MIN_RATE
    http_max_connections: int = http_guard.MAX_CONNECTIONS
    http_max_per_source: int = http_guard.MAX_PER_SOURCE
    _guard: Guard | None = field(default=None, init=False, repr=False, compare=False)

    def guard(self, reactor: Any) -> Guard:
        """The one guard of this process's HTTP ports (CWMP, profiles, NBI), made at first use: the
        caps count the connections of all three, which share the process's descriptors."""
        if self._guard is None:
            limits = Limits(
                self.http_head_timeout,
                self.http_min_rate,
                self.http_max_connections,
                self.http_max_per_source,
            )
            self._guard = Guard(reactor, limits)
        return self._guard

    def cpe_auth(self) -> CpeAuth | None:
        if not self.auth:
            return None
        digest = Authenticator(secret=self.auth_secret, allow_basic=self.allow_basic)
        return CpeAuth(digest, self.cpe_username, self.cpe_password)

    @cached_property
    def tls(self) -> ServerTls | None:
        """The TLS of every HTTPS port, built once (ValueError/OSError for unusable files)."""
        if self.tls_cert is None:
            return None
        return ServerTls(self.tls_cert, self.tls_key, self.tls_client_ca)


@dataclass
class Sockets:
    """The listening sockets of one ``acs serve``, by service and scheme, all bound before any is
    served: a busy port stops the start with nothing left open."""

    cwmp: dict[str, socket.socket] = field(default_factory=dict)
    profiles: dict[str, socket.socket] = field(default_factory=dict)
    nbi: dict[str, socket.socket] = field(default_factory=dict)
    tftp: socket.socket | None = None

    def close(self) -> None:
        for sock in (*self.cwmp.values(), *self.profiles.values(), *self.nbi.values(), self.tftp):
            if sock is not None:
                sock.close()


def bind(options: ServeOptions) -> Sockets:
    """Bind every port ``options`` asks for; OSError naming the port that failed, with none left open."""
    bound = Sockets()
    nbi_host = options.nbi_host or options.host
    wanted = [
        (bound.cwmp, "CWMP", "http", options.host, options.port),
        (bound.cwmp, "CWMP", "https", options.host, options.tls_port),
        (bound.profiles, "profiles", "http", options.host, options.profile_port),
        (bound.profiles, "profiles", "https", options.host, options.profile_tls_port),
        (bound.nbi, "NBI", "http", nbi_host, options.nbi_port),
        (bound.nbi, "NBI", "https", nbi_host, options.nbi_tls_port),
    ]
    try:
        for table, service, scheme, host, port in wanted:
            if port is not None:
                table[scheme] = _bind(workers.bind, f"{service} over {scheme.upper()}", host, port)
        if options.tftp_port is not None:
            bound.tftp = _bind(workers.bind_udp, "profiles over TFTP", options.host, options.tftp_port)
    except BaseException:
        bound.close()
        raise
    return bound


def _bind(how: Callable[[str, int], socket.socket], what: str, host: str, port: int) -> socket.socket:
    try:
        return how(host, port)
    except OSError as e:
        raise OSError(f"{what} on {host}:{port}: {e.strerror or e}") from e


def inherited() -> Sockets:
    """A worker's sockets: the CWMP ones the first process bound."""
    bound = Sockets()
    for scheme, fd in (workers.inherited_fds() or {}).items():
        bound.cwmp[scheme] = socket.socket(fileno=fd)
    return bound


def _close(socks: Iterable[socket.socket]) -> None:
    """Close our copies of served sockets: the reactor holds its own."""
    for sock in socks:
        sock.close()


def _serve(
    reactor: Any, sock: socket.socket, factory: Any, tls: ServerTls | None, scheme: str, guard: Guard
) -> Any:
    """Serve a bound socket (over TLS for https), its connections admitted by ``guard``; the reactor
    keeps its own copy of the socket."""
    if scheme == "https":
        assert tls is not None, "an HTTPS port needs a certificate"
        factory = TLSMemoryBIOFactory(tls, False, factory)
    return reactor.adoptStreamPort(sock.fileno(), sock.family, Admission(factory, guard))


class QuietSite(server.Site):
    """A Site without an access log: at hundreds of sessions a second it is mostly cost."""

    def log(self, request: http.Request) -> None:
        pass


def cwmp_site(backend: SessionHandler, pool: ThreadPool, options: ServeOptions, reactor: Any) -> HttpFactory:
    """The CWMP endpoint on every path: phones are given URLs like /, /acs or /cwmp.

    Served by ``acs.web.http11``, not twisted.web: see there why. A connection silent for the
    session timeout is closed: no session it could carry is still open by then.
    """
    store = GroupCommit(backend.engine, pool, reactor)
    endpoint = CwmpEndpoint(
        backend, store, max_size=options.max_body, auth=options.cpe_auth(), reactor=reactor
    )
    # what the store's threads log of a CPE's doing goes through the endpoint's bounded log, on the reactor
    backend.note = lambda *line: reactor.callFromThread(endpoint.note, *line)
    if endpoint.strangers is not None:  # the lines counted and not yet written, at the end
        reactor.addSystemEventTrigger("before", "shutdown", endpoint.strangers.stop)
    return HttpFactory(
        endpoint,
        reactor,
        max_body=options.max_body,
        idle_timeout=options.session_timeout,
        log_requests=options.access_log,
        guard=options.guard(reactor),
    )


def profile_site(
    backend: ProfileBackend, pool: ThreadPool, options: ServeOptions, reactor: Any
) -> server.Site:
    """The profile server on every path: phones are given rules like /$MA.cfg or /Cisco/$MA.cfg."""
    resource = ProfileResource(backend, pool, reactor)
    site = (server.Site if options.access_log else QuietSite)(
        resource, parsePOSTFormSubmission=False, logFormatter=access_line, timeout=None
    )
    guarded(site, options.guard(reactor))
    site.requestFactory = ProfileRequest
    site.displayTracebacks = False
    return site


class ProfileRequest(LimitedRequest):
    max_size = MAX_BODY


def guarded(site: server.Site, guard: Guard) -> None:
    """Serve ``site``'s connections with ``GuardedChannel``: the guard's deadlines replace Twisted's
    idle timeout (the Site is made with ``timeout=None``), and its caps count them."""
    # Factory.protocol is what buildProtocol calls; twisted types it as a method of the Site
    site.protocol = functools.partial(GuardedChannel, guard, http_guard.IDLE_TIMEOUT)  # type: ignore[method-assign,assignment]


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
    # a line per request only with --access-log: anyone who reaches the port could fill the disk
    site = (server.Site if options.access_log else QuietSite)(
        NbiSite(rest, soap), parsePOSTFormSubmission=False, logFormatter=access_line, timeout=None
    )
    guarded(site, options.guard(reactor))

    class NbiRequest(LimitedRequest):
        max_size = options.nbi_max_body

    site.requestFactory = NbiRequest
    site.displayTracebacks = False
    return site


def listen_nbi(
    engine: Engine,
    options: ServeOptions,
    reactor: Any,
    pool: ThreadPool,
    sockets: dict[str, socket.socket],
    kicker: Callable[[ThreadPool], Kicker] | None = None,
) -> dict[str, Any]:
    """Serve the northbound API on its bound sockets; its listening ports by scheme ({} when off).

    Served by the first process only: API traffic is light beside CWMP's, and waiting for a
    task holds no thread. On SQLite it works on ``pool`` (the CWMP thread), on PostgreSQL on a
    pool of its own. ``kicker(pool)`` makes what sends its connection requests (``acs serve``:
    a ``ConnectionRequester``); None: the NBI sends none.
    """
    if not sockets:
        return {}
    threads_ = nbi_threads(engine.dialect.name)
    nbi_pool = start_pool(engine, reactor, threads_, "acs-nbi") if threads_ else pool
    factory = nbi_site(engine, nbi_pool, options, reactor, kicker(nbi_pool) if kicker else None)
    ports = {
        scheme: _serve(reactor, sock, factory, options.tls, scheme, options.guard(reactor))
        for scheme, sock in sockets.items()
    }
    _close(sockets.values())
    return ports


def listen(
    engine: Engine,
    options: ServeOptions,
    reactor: Any,
    sockets: dict[str, socket.socket],
    worker_argv: list[str] | None = None,
    worker_env: dict[str, str] | None = None,
    *,
    pool: ThreadPool | None = None,
) -> dict[str, Any]:
    """Serve CWMP on its bound sockets (HTTP and/or HTTPS); its listening ports by scheme.

    With ``options.workers`` > 1 the first process starts the other workers with
    ``worker_argv``/``worker_env``, and they inherit these sockets (``inherited``).
    """
    pool = pool or start_pool(engine, reactor)
    backend = SessionHandler(
        engine, session_timeout=options.session_timeout, shared_new=options.cpe_shared_new == "allow"
    )
    factory = cwmp_site(backend, pool, options, reactor)
    sweep = task.LoopingCall(threads.deferToThreadPool, reactor, pool, backend.sweep)
    sweep.clock = reactor
    sweep.start(min(options.session_timeout, SWEEP_INTERVAL), now=False).addErrback(
        lambda f: log.error("session sweep stopped: %s", f.getTraceback())
    )

    def stop_sweep() -> None:
        if sweep.running:
            sweep.stop()

    reactor.addSystemEventTrigger("before", "shutdown", stop_sweep)
    ports = {
        scheme: _serve(reactor, sock, factory, options.tls, scheme, options.guard(reactor))
        for scheme, sock in sockets.items()
    }
    if workers.is_worker():
        workers.watch_parent(reactor)
    elif options.workers > 1:
        assert worker_argv is not None
        workers.Supervisor(reactor, sockets, worker_argv, worker_env or {}).start(options.workers)
        return ports  # the supervisor keeps the sockets, for the workers it starts again
    _close(sockets.values())
    return ports


def listen_profiles(
    engine: Engine,
    options: ServeOptions,
    reactor: Any,
    pool: ThreadPool,
    sockets: Sockets,
    render: Render | None = None,
) -> tuple[dict[str, Any], Any | None]:
    """Serve the profile server on its bound sockets: (HTTP(S) ports by scheme, TFTP port or None).

    Served by the first process only (workers serve CWMP): a resync is one short
    request, against a CWMP session's several. Phones with credentials of their own
    authenticate with HTTP Digest, or with a client certificate that names them
    (``--tls-client-ca``); with ``--profile-auth required`` (the default) a profile goes in
    clear to them only, else encrypted with the phone's key. ``--no-auth`` with
    ``--profile-auth none`` asks nobody.
    """
    required = options.profile_auth == "required"
    authenticator = (  # a GET has no body for auth-int to cover
        Authenticator(secret=options.auth_secret, allow_basic=options.allow_basic, qops=("auth",))
        if options.auth or required
        else None
    )
    backend = ProfileBackend(
        engine,
        render,
        unknown=options.profile_unknown,  # type: ignore[arg-type]
        authenticator=authenticator,
        auth=options.profile_auth,  # type: ignore[arg-type]
    )
    http_ports = {}
    if sockets.profiles:
        factory = profile_site(backend, pool, options, reactor)
        assert isinstance(factory.resource, ProfileResource)
        reactor.addSystemEventTrigger("before", "shutdown", factory.resource.say.stop)  # the lines counted
        http_ports = {
            scheme: _serve(reactor, sock, factory, options.tls, scheme, options.guard(reactor))
            for scheme, sock in sockets.profiles.items()
        }
    tftp_port = None
    if sockets.tftp is not None:
        server = TftpServer(
            backend,
            pool,
            reactor,
            interface=options.host,
            max_transfers=options.tftp_max_transfers,
            max_per_source=options.tftp_max_per_source,
        )
        tftp_port = reactor.adoptDatagramPort(sockets.tftp.fileno(), sockets.tftp.family, server)
    _close([*sockets.profiles.values(), *([sockets.tftp] if sockets.tftp else [])])
    return http_ports, tftp_port
