"""Listening sockets shared by several worker processes.

The first process binds the CWMP ports (HTTP and/or HTTPS) and starts N-1 workers
that inherit the listening sockets; the kernel hands each new connection to one of them. Every
worker runs its own reactor, thread pool and database engine. Nothing ties a
session to a worker: its state lives in the store, keyed by the cookie, so a
CPE that reconnects mid-session may land anywhere.

Secrets reach the workers through their environment, never their command line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import error, protocol, task

log = logging.getLogger(__name__)

#: the environment variables that tell a worker which inherited descriptors to serve (``http=5,https=6``:
#: the CWMP port of each scheme), and for whom
INHERIT_FD = "ACS_INHERIT_FD"
PARENT_PID = "ACS_PARENT_PID"
RESPAWN_DELAY = 1.0


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on host:port (IPv4 or IPv6 by the address), ready to be shared."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def bind_udp(host: str, port: int) -> socket.socket:
    """A UDP socket on host:port (TFTP), bound before anything is served, like the TCP ones."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _Worker(protocol.ProcessProtocol):
    def __init__(self, supervisor: Supervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index

    def processEnded(self, reason: Any) -> None:
        self.supervisor.ended(self, reason)


@dataclass
class Supervisor:
    """Starts the workers, restarts one that dies, and stops them with the first process."""

    reactor: Any
    #: the CWMP sockets the workers serve, by scheme
    socks: dict[str, socket.socket]
    argv: list[str]
    env: dict[str, str]
    workers: dict[int, Any] = field(default_factory=dict)
    stopping: bool = False

    def start(self, count: int) -> None:
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop)
        for index in range(1, count):
            self.spawn(index)

    def spawn(self, index: int) -> None:
        fds = {scheme: sock.fileno() for scheme, sock in self.socks.items()}
        inherit = ",".join(f"{scheme}={fd}" for scheme, fd in fds.items())
        env = self.env | {INHERIT_FD: inherit, PARENT_PID: str(os.getpid())}
        child_fds: dict[int, Any] = {0: "w", 1: 1, 2: 2} | {fd: fd for fd in fds.values()}
        self.workers[index] = self.reactor.spawnProcess(
            _Worker(self, index), self.argv[0], self.argv, env=env, childFDs=child_fds
        )

    def ended(self, worker: _Worker, reason: Any) -> None:
        self.workers.pop(worker.index, None)
        if self.stopping:
            return
        log.error("worker %d ended (%s); starting it again", worker.index, reason.getErrorMessage())
        self.reactor.callLater(RESPAWN_DELAY, self.spawn, worker.index)

    def stop(self) -> None:
        self.stopping = True
        for process in list(self.workers.values()):
            with contextlib.suppress(error.ProcessExitedAlready, OSError):
                process.signalProcess(signal.SIGTERM)


def worker_argv() -> list[str]:
    """How to start this program again as a worker: the same interpreter, ``-m acs``."""
    return [sys.executable, "-m", "acs"]


def inherited_fds() -> dict[str, int] | None:
    """The CWMP sockets this worker inherited, by scheme; None in the first process."""
    value = os.environ.get(INHERIT_FD)
    if not value:
        return None
    return {scheme: int(fd) for scheme, _, fd in (item.partition("=") for item in value.split(","))}


def is_worker() -> bool:
    return inherited_fds() is not None


def watch_parent(reactor: Any, interval: float = 1.0) -> None:
    """Stop this worker when the process that started it is gone (killed without a chance to
    stop its workers), so no worker outlives its server and keeps the port."""
    parent = int(os.environ.get(PARENT_PID) or os.getppid())  # it may be gone before we get here

    def check() -> None:
        if os.getppid() != parent:
            log.warning("the first acs process (pid %d) is gone; this worker stops", parent)
            reactor.stop()

    watch = task.LoopingCall(check)
    watch.clock = reactor
    watch.start(interval, now=False)
