"""Slowloris against the HTTP ports: connections held by a byte now and then, and whether phones and
the API are still served.

Run: ``python bench/slowloris.py`` (two scenarios, ~2 min), or e.g.
``python bench/slowloris.py --scenario "slow head" --connections 2000 --duration 30``.

Loopback only, and bounded: at most ``--connections`` open at once and ``--max-opens`` in all,
for ``--duration`` seconds per scenario. For each scenario it

1. makes a temp SQLite database with one phone, its profile and an API token, and starts
   ``acs serve --no-auth`` with its CWMP, profile and NBI ports on 127.0.0.1 under ``prlimit
   --nofile=N`` (``--nofile``, default 1024: the descriptor limit of a systemd service);
2. opens ``--connections`` connections, a third to each port, from ``--sources`` addresses
   (127.0.0.2...), at most ``--rate`` a second, and on each sends the start of a request and then
   one byte every ``--interval`` seconds (20): *slow head*: ``GET /`` and the URL a byte at a
   time, a head that never ends; *slow body*: a whole head announcing 100,000 bytes of body, and
   the body a byte at a time. A connection the server closes is opened again, as an attacker
   would (``--max-opens`` bounds them);
3. every 250 ms counts the server's descriptors (``/proc/PID/fd``) and resident memory, and the
   attacker's connections still open; every second sends, from 127.0.0.1, a phone's Inform to
   the CWMP port, a profile request to the profile port and a device list request to the API
   (5 s to answer each);
4. prints a row: connections opened in all and closed by the server, the attacker's
   connections open at their peak and at the end, the server's descriptors and memory (start,
   peak, end), for each port the legitimate requests answered of those sent and their
   latency (median/max, ms), and the lines the server logged meanwhile.

Figures only: nothing is asserted. To measure another checkout's server, put it first on
``PYTHONPATH`` (``server_code`` in the header says which one ran); ``--server-arg`` passes
options to ``acs serve``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
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
    Ports,
    Probe,
    Watch,
    log_lines,
    raise_nofile,
    report,
    serve,
)

SCENARIOS = ("slow head", "slow body")
FIRST = {
    "slow head": b"GET /",
    "slow body": b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n",
}
TRICKLE = {"slow head": b"a", "slow body": b"x"}
COLUMNS = [
    ("scenario", 9),
    ("opened", 6),
    ("closed by server", 16),
    ("open peak/end", 13),
    ("fds start/peak/end", 18),
    ("RSS MB start/peak/end", 21),
    *((f"{name} ok ms p50/max", 22) for name in SERVICES),
    ("log lines", 9),
]


@dataclass
class Row:
    scenario: str
    connections: int = 0
    opened: int = 0
    closed_by_server: int = 0
    open_peak: int = 0
    open_end: int = 0
    fds_start: int = 0
    fds_peak: int = 0
    fds_end: int = 0
    rss_start: float = 0.0
    rss_peak: float = 0.0
    rss_end: float = 0.0
    answered: dict[str, Answered] = field(default_factory=dict)
    log_lines: int = 0
    nofile: int = 0
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        return [
            self.scenario,
            str(self.opened),
            str(self.closed_by_server),
            f"{self.open_peak}/{self.open_end}",
            f"{self.fds_start}/{self.fds_peak}/{self.fds_end}",
            f"{self.rss_start:.0f}/{self.rss_peak:.0f}/{self.rss_end:.0f}",
            *(self.answered[name].cell() for name in SERVICES),
            str(self.log_lines),
        ]


class Flood:
    """Keeps ``connections`` connections open to ``ports``, each trickling a byte every ``interval`` s."""

    def __init__(self, scenario: str, ports: list[int], args: argparse.Namespace) -> None:
        self.first, self.trickle = FIRST[scenario], TRICKLE[scenario]
        self.ports = ports
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.open: dict[socket.socket, int] = {}  # socket -> its port; connected or connecting
        self.due: list[tuple[float, int, socket.socket]] = []  # (when, n, socket): the next byte
        self.opened = self.closed_by_server = 0
        self.samples: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, now: float) -> None:
        n = self.opened
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((f"127.0.0.{2 + n % self.args.sources}", 0))
            code = sock.connect_ex(("127.0.0.1", self.ports[n % len(self.ports)]))
        except OSError:
            sock.close()
            return
        self.opened += 1
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return
        self.open[sock] = n
        self.sel.register(sock, selectors.EVENT_WRITE)

    def _close(self, sock: socket.socket, by_server: bool) -> None:
        self.open.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        sock.close()
        self.closed_by_server += by_server

    def _run(self) -> None:
        args = self.args
        interval = args.interval
        next_open = next_sample = time.monotonic()
        while not self.stopped.is_set():
            now = time.monotonic()
            while len(self.open) < args.connections and self.opened < args.max_opens and next_open <= now:
                self._open(now)
                next_open += 1 / args.rate
            next_open = max(next_open, now - 1)  # no burst to catch up after a pause
            for key, events in self.sel.select(0.02):
                sock = key.fileobj  # type: ignore[assignment]
                if events & selectors.EVENT_WRITE:  # connected, or failed to
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self._close(sock, by_server=True)
                        continue
                    try:
                        sock.send(self.first)
                    except OSError:
                        self._close(sock, by_server=True)
                        continue
                    self.sel.modify(sock, selectors.EVENT_READ)
                    # the first byte of the trickle anywhere in the interval: spread, as many attackers would
                    heapq.heappush(
                        self.due,
                        (now + interval * ((self.open[sock] * 7919) % 1000) / 1000, self.open[sock], sock),
                    )
                elif events & selectors.EVENT_READ:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # the server closed it (a 408 first, or not)
                        self._close(sock, by_server=True)
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                _, n, sock = heapq.heappop(self.due)
                if sock not in self.open:
                    continue
                try:
                    sock.send(self.trickle)
                except OSError:
                    self._close(sock, by_server=True)
                    continue
                heapq.heappush(self.due, (now + interval, n, sock))
            if now >= next_sample:
                self.samples.append(len(self.open))
                next_sample = now + 0.25

    def __enter__(self) -> Flood:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(10)
        for sock in list(self.open):
            self._close(sock, by_server=False)
        self.sel.close()


def run(scenario: str, args: argparse.Namespace, workdir: Path) -> Row:
    row = Row(scenario, connections=args.connections, nofile=args.nofile)
    ports: Ports
    with serve(workdir, args.nofile, args.server_arg or []) as ports:
        watch = Watch(ports.pid)
        time.sleep(1)  # the server settles
        began = time.time()
        with watch, Probe(ports) as probe, Flood(scenario, [ports.port[s] for s in SERVICES], args) as flood:
            row.fds_start, row.rss_start = (
                watch.fds[0] if watch.fds else 0,
                watch.rss[0] if watch.rss else 0.0,
            )
            time.sleep(args.duration)
            row.opened, row.closed_by_server = flood.opened, flood.closed_by_server
            row.open_peak = max(flood.samples, default=0)
            row.open_end = flood.samples[-1] if flood.samples else 0
        ended = time.time()
        row.fds_start, row.rss_start = watch.fds[0], watch.rss[0]
        row.fds_peak, row.fds_end = max(watch.fds), watch.fds[-1]
        row.rss_peak, row.rss_end = max(watch.rss), watch.rss[-1]
        row.answered = probe.answered
        if ports.server.problem_count:
            first = ports.server.problems[:1]
            row.notes.append(f"{ports.server.problem_count} error lines in the server's log; first: {first}")
    row.log_lines = log_lines(workdir / "serve.log", began, ended)
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="default: both")
    parser.add_argument("--connections", type=int, default=3000, help="open at once, at most (default 3000)")
    parser.add_argument(
        "--max-opens", type=int, default=50000, help="connections opened in all, at most (50000)"
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="connections opened per second, at most (1000)"
    )
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between two bytes (default 20)")
    parser.add_argument("--sources", type=int, default=16, help="source addresses, 127.0.0.2... (default 16)")
    parser.add_argument("--duration", type=float, default=45.0, help="seconds per scenario (default 45)")
    parser.add_argument("--nofile", type=int, default=1024, help="the server's RLIMIT_NOFILE (default 1024)")
    parser.add_argument("--server-arg", action="append", help="an option for acs serve (repeat it)")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)
    if (
        not 1 <= args.sources <= 250
        or min(args.connections, args.max_opens, args.rate, args.interval, args.duration) <= 0
    ):
        parser.error("--sources 1 to 250; --connections, --max-opens, --rate, --interval, --duration above 0")
    if args.connections > 10_000 or args.max_opens > 100_000 or args.duration > 300:
        parser.error("bounded: at most 10,000 connections at once, 100,000 in all, 300 s per scenario")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile(args.connections + 256)
    setup = (
        f"acs serve under RLIMIT_NOFILE {args.nofile}; {args.connections} connections at once (a third "
        f"per port) from {args.sources} addresses, opened at {args.rate:g}/s, {args.max_opens} at most in "
        f"all, a byte every {args.interval:g} s; {args.duration:g} s each"
    )
    return report("slowloris", setup, args.scenario or SCENARIOS, run, args, COLUMNS)


if __name__ == "__main__":
    sys.exit(main())
