"""TFTP under forged RRQs: descriptors held, transfers alive, reflection, and whether CWMP still answers.

Run: ``python bench/tftp_flood.py`` (three scenarios, ~1.5 min), or e.g.
``python bench/tftp_flood.py --scenario flood --rrqs 2000 --watch 15``.

Loopback only, and bounded: at most ``--rrqs`` packets per scenario, sent at ``--rate``,
each scenario watched for ``--watch`` seconds. For each scenario it

1. makes a temp SQLite database with one phone and its ~3 KB profile (``acs device
   import``, ``acs profile create/assign``: the RRQs name a file the server has);
2. starts ``acs serve --tftp-port 0 --no-auth`` (and ``--profile-auth none`` where the server
   knows it: the profile goes in clear, as before it) on 127.0.0.1 under ``prlimit
   --nofile=N`` (``--nofile``, default 1024: the descriptor limit of a systemd service);
3. sends RRQs for that profile and never acknowledges anything, as an RRQ with a forged
   source does (its packets go to someone who never asked for them):
   *silent peer*: one RRQ without options (what one forged RRQ brings to its victim);
   *flood*: ``--rrqs`` RRQs without options, from ``--sources`` addresses (127.0.0.2...)
   times ``--ports`` ports each; *flood timeout=255*: the same, each asking for RFC
   2349's longest timeout;
4. every 50 ms, counts the server's descriptors (``/proc/PID/fd``) and its UDP sockets
   (``/proc/net/udp``): the transfers alive are its UDP sockets less the TFTP port; every
   second, sends an HTTP request to the CWMP port (3 s to answer);
5. prints a row: RRQs sent and dropped by the kernel before the server read them,
   packets and bytes that came back, bytes on the wire (each datagram's payload plus
   the 28 bytes of its IPv4 and UDP headers) and the reflection factor (bytes out /
   bytes in, on the wire), descriptors and transfers at the start, at their peak and
   at the end of the watch, how many HTTP requests the CWMP port answered, and the
   lines the server logged meanwhile.

Figures only: nothing is asserted. To measure another checkout's server, put it first
on ``PYTHONPATH``: the ``acs serve`` started is the one Python imports.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sessions import ACS, Server, _git_revision

MAC = "00562b043615"
FILENAME = f"{MAC}.cfg"
#: IPv4 (20) and UDP (8) headers: what each datagram adds on the wire
HEADERS = 28
SAMPLE_EVERY = 0.05
PROBE_EVERY, PROBE_TIMEOUT = 1.0, 3.0
_TFTP = re.compile(r"profiles over TFTP on [\d.]+:(\d+)")
SCENARIOS = ("silent peer", "flood", "flood timeout=255")
COLUMNS = (
    ("scenario", 17),
    ("RRQs", 5),
    ("kernel drops", 12),
    ("packets out", 11),
    ("bytes in", 8),
    ("bytes out", 9),
    ("factor", 6),
    ("fds start/peak/end", 18),
    ("transfers peak/end", 18),
    ("CWMP answered", 13),
    ("log lines", 9),
)


@dataclass
class Row:
    scenario: str
    rrqs: int = 0
    kernel_drops: int = 0
    packets_out: int = 0
    bytes_in: int = 0  # on the wire
    bytes_out: int = 0  # on the wire
    payload_in: int = 0
    payload_out: int = 0
    fds_start: int = 0
    fds_peak: int = 0
    fds_end: int = 0
    transfers_peak: int = 0
    transfers_end: int = 0
    probes: int = 0
    answered: int = 0
    log_lines: int = 0
    watch: float = 0.0
    nofile: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def factor(self) -> float:
        return self.bytes_out / self.bytes_in if self.bytes_in else 0.0

    def cells(self) -> list[str]:
        return [
            self.scenario,
            str(self.rrqs),
            str(self.kernel_drops),
            str(self.packets_out),
            str(self.bytes_in),
            str(self.bytes_out),
            f"{self.factor:.1f}",
            f"{self.fds_start}/{self.fds_peak}/{self.fds_end}",
            f"{self.transfers_peak}/{self.transfers_end}",
            f"{self.answered}/{self.probes}",
            str(self.log_lines),
        ]


def table_line(cells: list[str]) -> str:
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


def rrq(options: dict[str, str]) -> bytes:
    """An RRQ as RFC 1350 and 2347 lay it out (written here, so that any server version can be measured)."""
    parts = [FILENAME, "octet", *(s for item in options.items() for s in item)]
    return b"\x00\x01" + b"".join(p.encode("ascii") + b"\x00" for p in parts)


def profile() -> str:
    """A flat profile of ~3 KB: a phone's profile is several blocks long."""
    lines = [f'  <Proxy_{n}_ ua="na">sip{n}.example.net:5060</Proxy_{n}_>' for n in range(1, 11)]
    lines += [
        f'  <Display_Name_{n}_ ua="na">Extension {n} of the sales floor</Display_Name_{n}_>'
        for n in range(1, 11)
    ]
    lines += [f'  <User_ID_{n}_ ua="na">+3220000{n:04d}</User_ID_{n}_>' for n in range(1, 11)]
    lines += [
        f'  <Dial_Plan_{n}_ ua="na">(&lt;9:&gt;xx.|*xx|[3469]11|0|00|[2-9]xxxxxx)</Dial_Plan_{n}_>'
        for n in range(1, 11)
    ]
    return "<flat-profile>\n" + "\n".join(lines) + "\n</flat-profile>\n"


def acs(*args: str) -> None:
    done = subprocess.run([ACS, *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"acs {' '.join(args)} failed: {done.stderr or done.stdout}")


def prepare(workdir: Path) -> str:
    url = f"sqlite:///{workdir / 'tftp.db'}"
    (workdir / "inventory.csv").write_text(f"mac,serial,model\n{MAC},FCH2233A1B2,CP-8841-3PCC\n")
    (workdir / "base.xml").write_text(profile())
    acs("db", "upgrade", "--db", url)
    acs("device", "import", str(workdir / "inventory.csv"), "--db", url)
    acs("profile", "create", "base", str(workdir / "base.xml"), "--db", url)
    acs("profile", "assign", "base", "--default", "--db", url)
    return url


# --- what the server holds -----------------------------------------------------------------------


def udp_sockets() -> dict[int, tuple[int, int]]:
    """Inode -> (local port, drops) of every UDP socket on this machine."""
    found = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                found[int(fields[9])] = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[-1]))
    return found


def held(pid: int) -> tuple[int, set[int]]:
    """The process's descriptors, and the inodes of its sockets."""
    count, inodes = 0, set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            count += 1
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return count, inodes


class Watch:
    """Samples the server's descriptors and UDP sockets until stopped; keeps the peaks and the last."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fds: list[int] = []
        self.transfers: list[int] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[int, int]:
        fds, inodes = held(self.pid)
        udp = len(inodes & udp_sockets().keys())
        return fds, max(0, udp - 1)  # the TFTP port itself is no transfer

    def _run(self) -> None:
        while not self.stopped.is_set():
            fds, transfers = self.sample()
            self.fds.append(fds)
            self.transfers.append(transfers)
            self.stopped.wait(SAMPLE_EVERY)

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)


class Probe:
    """An HTTP request to the CWMP port every second: is it still served?"""

    def __init__(self, url: str) -> None:
        m = re.match(r"http://([\d.]+):(\d+)/", url)
        assert m is not None
        self.host, self.port = m.group(1), int(m.group(2))
        self.sent = self.answered = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def once(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=PROBE_TIMEOUT)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _run(self) -> None:
        while not self.stopped.is_set():
            started = time.monotonic()
            self.sent += 1
            self.answered += self.once()
            self.stopped.wait(max(0.0, PROBE_EVERY - (time.monotonic() - started)))

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(PROBE_TIMEOUT + 5)


# --- the flood -----------------------------------------------------------------------------------


def sockets(sources: int, ports: int) -> list[socket.socket]:
    made = []
    for s in range(sources):
        for _ in range(ports):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((f"127.0.0.{2 + s}", 0))
            sock.setblocking(False)
            made.append(sock)
    return made


def receive(socks: list[socket.socket], until: float, row: Row) -> None:
    """Count what comes back to the RRQs' sources; acknowledge nothing."""
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        while (left := until - time.monotonic()) > 0:
            for key, _ in sel.select(min(left, 0.2)):
                with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                    while True:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        row.packets_out += 1
                        row.payload_out += len(data)
                        row.bytes_out += len(data) + HEADERS


def flood(port: int, socks: list[socket.socket], count: int, rate: float, packet: bytes, row: Row) -> None:
    start = time.monotonic()
    for i in range(count):
        sock = socks[i % len(socks)]
        with contextlib.suppress(BlockingIOError):
            sock.sendto(packet, ("127.0.0.1", port))
            row.rrqs += 1
            row.payload_in += len(packet)
            row.bytes_in += len(packet) + HEADERS
        ahead = start + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def profile_auth_none() -> list[str]:
    """``--profile-auth none`` for a server that has it (its default serves this profile over TFTP
    to no one, as it is not encrypted); nothing for an older one, which served it in clear anyway."""
    usage = subprocess.run([ACS, "serve", "--help"], capture_output=True, text=True, timeout=60, check=False)
    return ["--profile-auth", "none"] if "--profile-auth" in usage.stdout else []


def run(scenario: str, args: argparse.Namespace, workdir: Path) -> Row:
    row = Row(scenario, watch=args.watch, nofile=args.nofile)
    url = prepare(workdir)
    nofile = ["prlimit", f"--nofile={args.nofile}:{args.nofile}", "--"]
    server = Server(url, 1, None, workdir / "serve.log", wrapper=nofile)
    server.args += ["--tftp-port", "0", *profile_auth_none()]
    server.start()
    try:
        port = next(int(m.group(1)) for line in server.tail if (m := _TFTP.search(line)))
        assert server.process is not None
        pid = server.process.pid
        single = scenario == "silent peer"
        socks = sockets(1, 1) if single else sockets(args.sources, args.ports)
        try:
            options = {"timeout": "255"} if scenario.endswith("timeout=255") else {}
            watch = Watch(pid)
            row.fds_start = watch.sample()[0]
            drops0 = sum(d for inode, (p, d) in udp_sockets().items() if p == port)
            began = time.time()
            with watch, Probe(server.url) as probe:
                end = time.monotonic() + args.watch
                receiver = threading.Thread(target=receive, args=(socks, end, row), daemon=True)
                receiver.start()
                flood(port, socks, 1 if single else args.rrqs, args.rate, rrq(options), row)
                receiver.join(args.watch + 5)
            ended = time.time()
            row.kernel_drops = sum(d for inode, (p, d) in udp_sockets().items() if p == port) - drops0
            row.fds_peak, row.fds_end = max(watch.fds, default=0), watch.fds[-1] if watch.fds else 0
            row.transfers_peak = max(watch.transfers, default=0)
            row.transfers_end = watch.transfers[-1] if watch.transfers else 0
            row.probes, row.answered = probe.sent, probe.answered
        finally:
            for sock in socks:
                sock.close()
    finally:
        server.stop()
    finished = time.monotonic() + 10  # the log file is written by a thread: until it has the last line
    while "Main loop terminated" not in (workdir / "serve.log").read_text() and time.monotonic() < finished:
        time.sleep(0.1)
    row.log_lines = lines_between(workdir / "serve.log", began, ended)
    if args.keep_logs is not None:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workdir / "serve.log", args.keep_logs / f"serve-{scenario.replace(' ', '-')}.log")
    if server.problem_count:
        row.notes.append(
            f"{server.problem_count} error lines in the server's log; first: {server.problems[:1]}"
        )
    return row


def lines_between(log: Path, began: float, ended: float) -> int:
    """Lines the server logged between two times (a traceback's lines with the line they follow),
    before it was told to stop."""
    count, inside = 0, False
    for line in log.read_text().splitlines():
        if "Received SIGTERM" in line:
            break
        with contextlib.suppress(ValueError):
            inside = began <= datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() <= ended
        count += inside
    return count


def server_code() -> str:
    """Where the ``acs`` the server runs comes from (``PYTHONPATH`` may name another checkout)."""
    done = subprocess.run(
        [sys.executable, "-c", "import acs; print(acs.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return str(Path(done.stdout.strip()).parent.parent) if done.returncode == 0 else "?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="default: all three")
    parser.add_argument("--rrqs", type=int, default=4000, help="RRQs per flood (default 4000)")
    parser.add_argument("--rate", type=float, default=4000.0, help="RRQs per second (default 4000)")
    parser.add_argument("--sources", type=int, default=64, help="source addresses, 127.0.0.2... (default 64)")
    parser.add_argument("--ports", type=int, default=8, help="source ports per address (default 8)")
    parser.add_argument("--watch", type=float, default=20.0, help="seconds watched from the first RRQ (20)")
    parser.add_argument("--nofile", type=int, default=1024, help="the server's RLIMIT_NOFILE (default 1024)")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    parser.add_argument("--keep-logs", type=Path, metavar="DIR", help="keep the servers' logs there")
    args = parser.parse_args(argv)
    if not 1 <= args.sources <= 250 or args.ports < 1 or args.rrqs < 1 or args.watch <= 0:
        parser.error("--sources 1 to 250, --ports, --rrqs and --watch above 0")
    if args.rrqs > 100_000 or args.watch > 300:
        parser.error("bounded: at most 100,000 RRQs and 300 s of watch per scenario")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.sources * args.ports + 64
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    print(
        f"# bench/tftp_flood.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  acs {_git_revision()}  "
        f"Python {platform.python_version()}  {os.cpu_count()} CPUs"
    )
    print(
        f"# acs serve under RLIMIT_NOFILE {args.nofile}; floods of {args.rrqs} RRQs at {args.rate:g}/s from "
        f"{args.sources} addresses x {args.ports} ports, never acknowledged; {args.watch:g} s watched each; "
        f"bytes on the wire (payload + {HEADERS})"
    )
    print(f"# the server's code: {server_code()}")
    print(table_line([name for name, _ in COLUMNS]))
    rows = []
    for scenario in args.scenario or SCENARIOS:
        with tempfile.TemporaryDirectory(prefix="acs-bench-tftp-") as workdir:
            row = run(scenario, args, Path(workdir))
        print(table_line(row.cells()), flush=True)
        rows.append(row)
    for row in rows:
        for note in row.notes:
            print(f"{row.scenario}: {note}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"factor": r.factor} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
