"""Pipelined requests whose answers are never read: the server's memory and descriptors, whether it
lets go of such a connection, and whether phones and the API are still served meanwhile.

Run: ``python bench/pipelining.py`` (three scenarios, ~2.5 min), or e.g.
``python bench/pipelining.py --scenario CWMP --connections 1 --send-for 10``.

Loopback only, and bounded: ``--connections`` connections per scenario, each sending at most
``--megabytes`` MB for at most ``--send-for`` seconds. For each scenario (one port: CWMP,
profile or API) it

1. makes a temp SQLite database with one phone, its profile and an API token, and starts
   ``acs serve --no-auth --session-timeout 10`` with its CWMP, profile and NBI ports on
   127.0.0.1 under ``prlimit --nofile=N`` (``--nofile``, default 1024). The session timeout
   is the CWMP port's idle timeout: 10 s, so that what the server does with a connection that
   takes nothing shows within the run;
2. opens ``--connections`` connections to the port and on each sends small pipelined requests
   of 32 bytes each (``GET /`` to CWMP: 405; ``GET /u.cfg`` to the profile server: 404;
   ``GET /devices`` without a token to the API: 401) in bursts of 16 KiB, at ``--rate`` MB/s
   each (1: about what the server answers; faster, and its reads are whole 64 KiB ones, which
   main's CWMP server took for an over-long head and closed), or as fast as the server takes
   them, and reads nothing;
3. after ``--send-for`` seconds (or ``--megabytes`` sent), keeps the connections open, still
   reading nothing, until ``--hold`` seconds from the start; then closes them and watches
   ``--after`` seconds more;
4. every 250 ms samples the server's descriptors and resident memory; every second sends,
   from another connection, a phone's Inform to the CWMP port, a profile request and an API
   request (5 s to answer each);
5. prints a row: MB and requests sent (what the server and the kernel's buffers took), its descriptors
   (start/peak/end), its resident memory (start, peak, at the end of the hold, after the
   close), how many of the connections the server closed itself and after how long, and for
   each port the legitimate requests answered of those sent and their latency (median/max, ms).

Figures only: nothing is asserted. To measure another checkout's server, put it first on
``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpports import (
    SERVICES,
    Answered,
    Probe,
    Watch,
    log_lines,
    raise_nofile,
    report,
    rss_mb,
    serve,
)

#: 32 bytes each, sent in bursts of 16 KiB (whole requests)
BURST = 16384
REQUEST = {
    "CWMP": b"GET / HTTP/1.1\r\nHost: ac.lan\r\n\r\n",
    "profile": b"GET /u.cfg HTTP/1.1\r\nHost: a\r\n\r\n",
    "API": b"GET /devices HTTP/1.1\r\nH: ab\r\n\r\n",
}
COLUMNS = [
    ("scenario", 8),
    ("MB sent", 7),
    ("requests sent", 13),
    ("fds start/peak/end", 18),
    ("RSS MB start/peak/held/closed", 29),
    ("closed by server (s)", 20),
    *((f"{name} ok ms p50/max", 22) for name in SERVICES),
    ("log lines", 9),
]


@dataclass
class Row:
    scenario: str
    connections: int = 0
    bytes_sent: int = 0
    requests_sent: int = 0
    fds_start: int = 0
    fds_peak: int = 0
    fds_end: int = 0
    rss_start: float = 0.0
    rss_peak: float = 0.0
    rss_held: float = 0.0  # at the end of the hold, the connections still open
    rss_closed: float = 0.0  # --after seconds after the client closed them
    closed_by_server: list[float] = field(default_factory=list)  # seconds from the start, per connection
    answered: dict[str, Answered] = field(default_factory=dict)
    log_lines: int = 0
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        closed = self.closed_by_server
        return [
            self.scenario,
            f"{self.bytes_sent / 1e6:.1f}",
            str(self.requests_sent),
            f"{self.fds_start}/{self.fds_peak}/{self.fds_end}",
            f"{self.rss_start:.0f}/{self.rss_peak:.0f}/{self.rss_held:.0f}/{self.rss_closed:.0f}",
            f"{len(closed)}/{self.connections}" + (f" ({max(closed):.0f})" if closed else ""),
            *(self.answered[name].cell() for name in SERVICES),
            str(self.log_lines),
        ]


class Pipeliner:
    """Pipelines requests on ``count`` connections and reads nothing; notes when the server closes one."""

    def __init__(self, port: int, request: bytes, count: int, args: argparse.Namespace) -> None:
        self.request = request
        assert BURST % len(request) == 0, "whole requests in each burst"
        self.burst = request * (BURST // len(request))
        self.args = args
        self.started = time.monotonic()
        self.sent = 0
        self.closed: list[float] = []
        self.socks = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setblocking(False)
            self.socks.append(sock)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        args = self.args
        limit, until = args.megabytes * 1_000_000, self.started + args.send_for
        with selectors.DefaultSelector() as sel:
            for sock in self.socks:
                sel.register(sock, selectors.EVENT_WRITE)
            while not self.stopped.is_set() and sel.get_map():
                now = time.monotonic()
                sending = self.sent < limit * len(self.socks) and now < until
                ahead = self.sent - (now - self.started) * args.rate * 1e6 * len(self.socks)
                if sending and ahead > 0:  # paced: --rate MB/s per connection
                    self.stopped.wait(min(ahead / (args.rate * 1e6 * len(self.socks)), 0.05))
                    continue
                for key, _ in sel.select(0.1):
                    sock = key.fileobj
                    if not sending:  # hold: read nothing, see whether the server closes it
                        if sock_closed(sock):  # type: ignore[arg-type]
                            self.closed.append(time.monotonic() - self.started)
                            sel.unregister(sock)
                        continue
                    try:
                        self.sent += sock.send(self.burst)  # type: ignore[union-attr]
                    except BlockingIOError:
                        pass
                    except OSError:
                        self.closed.append(time.monotonic() - self.started)
                        sel.unregister(sock)
                if not sending:
                    for key in list(sel.get_map().values()):
                        sel.modify(key.fileobj, selectors.EVENT_READ)
                    self.stopped.wait(0.2)

    def __enter__(self) -> Pipeliner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(10)
        for sock in self.socks:
            sock.close()


def sock_closed(sock: socket.socket) -> bool:
    """The server closed (or reset) the connection: its answers, unread, are all there is to see."""
    try:
        sock.getpeername()
    except OSError:
        return True
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0] in (7, 8)  # TCP_CLOSE, TCP_CLOSE_WAIT: the server's FIN or RST came


def run(scenario: str, args: argparse.Namespace, workdir: Path) -> Row:
    row = Row(scenario, connections=args.connections)
    extra = ["--session-timeout", "10", *(args.server_arg or [])]
    with serve(workdir, args.nofile, extra) as ports:
        watch = Watch(ports.pid)
        time.sleep(1)
        began = time.time()
        with watch, Probe(ports) as probe:
            with Pipeliner(ports.port[scenario], REQUEST[scenario], args.connections, args) as pipe:
                time.sleep(args.hold)
                row.rss_held = rss_mb(ports.pid)
                row.bytes_sent = pipe.sent
                row.closed_by_server = pipe.closed
            time.sleep(args.after)
            row.rss_closed = rss_mb(ports.pid)
        ended = time.time()
        row.requests_sent = row.bytes_sent // len(REQUEST[scenario])
        row.fds_start, row.fds_peak, row.fds_end = watch.fds[0], max(watch.fds), watch.fds[-1]
        row.rss_start, row.rss_peak = watch.rss[0], max(watch.rss)
        row.answered = probe.answered
        if ports.server.problem_count:
            first = ports.server.problems[:1]
            row.notes.append(f"{ports.server.problem_count} error lines in the server's log; first: {first}")
    row.log_lines = log_lines(workdir / "serve.log", began, ended)
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=SERVICES, action="append", help="the port; default: all three")
    parser.add_argument("--connections", type=int, default=2, help="pipelining connections (default 2)")
    parser.add_argument("--megabytes", type=float, default=512, help="MB sent per connection, at most (512)")
    parser.add_argument("--rate", type=float, default=1.0, help="MB/s sent per connection, at most (1)")
    parser.add_argument("--send-for", type=float, default=20.0, help="seconds of sending, at most (20)")
    parser.add_argument("--hold", type=float, default=35.0, help="seconds before the client closes (35)")
    parser.add_argument("--after", type=float, default=5.0, help="seconds watched after the close (5)")
    parser.add_argument("--nofile", type=int, default=1024, help="the server's RLIMIT_NOFILE (default 1024)")
    parser.add_argument("--server-arg", action="append", help="an option for acs serve (repeat it)")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)
    if min(args.connections, args.megabytes, args.rate, args.send_for, args.hold) <= 0 or args.after < 0:
        parser.error("--connections, --megabytes, --rate, --send-for and --hold above 0")
    if args.connections > 64 or args.megabytes > 4096 or args.hold > 300 or args.send_for > args.hold:
        parser.error(
            "bounded: at most 64 connections, 4096 MB each, a hold of 300 s that includes --send-for"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile(256)
    setup = (
        f"acs serve --session-timeout 10 under RLIMIT_NOFILE {args.nofile}; {args.connections} "
        f"connections pipelining for {args.send_for:g} s (at most {args.rate:g} MB/s, {args.megabytes:g} MB "
        f"each) and reading nothing, closed after {args.hold:g} s, watched {args.after:g} s more"
    )
    return report("pipelining", setup, args.scenario or SERVICES, run, args, COLUMNS)


if __name__ == "__main__":
    sys.exit(main())
