"""What bench/slowloris.py and bench/pipelining.py share: ``acs serve`` with its three HTTP ports
(CWMP, profiles, NBI) under a descriptor limit, a phone, its profile and an API token; the server's
descriptors and memory, sampled; and a legitimate request to each port, timed.

Loopback only. To measure another checkout's server, put it first on ``PYTHONPATH``: the
``acs serve`` started is the one Python imports.
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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sessions import ACS, Server, _git_revision
from bench.tftp_flood import MAC, lines_between, prepare, profile_auth_none

SAMPLE_EVERY = 0.25
PROBE_EVERY, PROBE_TIMEOUT = 1.0, 5.0
SERVICES = ("CWMP", "profile", "API")
_PORTS = {
    "profile": re.compile(r"profiles on http://[\d.]+:(\d+)/"),
    "API": re.compile(r"NBI on http://[\d.]+:(\d+)/"),
    "CWMP": re.compile(r"CWMP on http://[\d.]+:(\d+)/"),
}


def acs_json(*args: str) -> dict[str, str]:
    done = subprocess.run([ACS, *args, "--json"], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"acs {' '.join(args)} failed: {done.stderr or done.stdout}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@dataclass
class Ports:
    """A running ``acs serve``: its port per service, its process, and what a legitimate client sends."""

    server: Server
    port: dict[str, int]
    token: str
    inform: bytes

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid


@contextlib.contextmanager
def serve(workdir: Path, nofile: int, extra: list[str]) -> Iterator[Ports]:
    """``acs serve --no-auth`` with CWMP, profile and NBI ports on 127.0.0.1, under ``prlimit --nofile``;
    the profile served in clear to the probe (``--profile-auth none`` where the server has it)."""
    from acs.testing.phone import SimulatedPhone

    url = prepare(workdir)  # a phone and its profile: /MAC.cfg is 200
    subprocess.run([ACS, "policy", "disable", "discovery", "--db", url], check=True, capture_output=True)
    token = acs_json("token", "create", "--role", "read", "--name", "bench", "--db", url)["token"]
    server = Server(
        url, 1, None, workdir / "serve.log", wrapper=["prlimit", f"--nofile={nofile}:{nofile}", "--"]
    )
    server.args = [a for a in server.args if a != "--no-nbi"]
    server.args[server.args.index("--profile-port") + 1] = "0"
    server.args += ["--nbi-port", "0", *profile_auth_none(), *extra]
    server.start()
    try:
        port = {
            name: int(m.group(1))
            for line in server.tail
            for name, p in _PORTS.items()
            if (m := p.search(line))
        }
        inform = SimulatedPhone("CP-8841-3PCC", "FCH2233A1B2", MAC).session().start()
        assert inform is not None
        yield Ports(server, port, token, inform)
    finally:
        server.stop()
    finished = time.monotonic() + 10  # the log file is written by a thread: until it has the last line
    while "Main loop terminated" not in (workdir / "serve.log").read_text() and time.monotonic() < finished:
        time.sleep(0.1)


def raise_nofile(wanted: int) -> None:
    """This process opens the clients' sockets: as many descriptors as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def fds(pid: int) -> int:
    with contextlib.suppress(OSError):
        return len(os.listdir(f"/proc/{pid}/fd"))
    return 0


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError, KeyError, ValueError):
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024
    return 0.0


class Watch:
    """Samples the server's descriptors and resident memory until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fds: list[int] = []
        self.rss: list[float] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.fds.append(fds(self.pid))
            self.rss.append(rss_mb(self.pid))
            self.stopped.wait(SAMPLE_EVERY)

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(5)


@dataclass
class Answered:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, of the answered ones

    def cell(self) -> str:
        if not self.latencies:
            return f"0/{self.sent}"
        p50 = statistics.median(self.latencies) * 1000
        return f"{len(self.latencies)}/{self.sent} {p50:.0f}/{max(self.latencies) * 1000:.0f}"


class Probe:
    """A legitimate request to each port every second, from 127.0.0.1: a phone's Inform to CWMP,
    its profile from the profile server, a device list from the API; answered within 5 s, or not."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.answered = {name: Answered() for name in SERVICES}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def request(self, name: str) -> bool:
        p = self.ports
        conn = http.client.HTTPConnection("127.0.0.1", p.port[name], timeout=PROBE_TIMEOUT)
        try:
            if name == "CWMP":
                conn.request(
                    "POST", "/", p.inform, {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": ""}
                )
                ok = b"InformResponse" in (response := conn.getresponse()).read() and response.status == 200
            elif name == "profile":
                conn.request("GET", f"/{MAC}.cfg")
                ok = (response := conn.getresponse()).status == 200 and b"flat-profile" in response.read()
            else:
                conn.request("GET", "/devices?limit=1", headers={"Authorization": f"Bearer {p.token}"})
                ok = (response := conn.getresponse()).status == 200 and bool(response.read())
            return ok
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def _run(self) -> None:
        while not self.stopped.is_set():
            started = time.monotonic()
            for name in SERVICES:
                sent = time.monotonic()
                self.answered[name].sent += 1
                if self.request(name):
                    self.answered[name].latencies.append(time.monotonic() - sent)
            self.stopped.wait(max(0.0, PROBE_EVERY - (time.monotonic() - started)))

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(len(SERVICES) * PROBE_TIMEOUT + 5)


def log_lines(log: Path, began: float, ended: float) -> int:
    return lines_between(log, began, ended)


def server_code() -> str:
    """Where the ``acs`` the server runs comes from (``PYTHONPATH`` may name another checkout)."""
    done = subprocess.run(
        [sys.executable, "-c", "import acs; print(acs.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",  # as the server's ``acs`` command imports it: not from the current directory
    )
    return str(Path(done.stdout.strip()).parent.parent) if done.returncode == 0 else "?"


def table_line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def report(
    bench: str,
    setup: str,
    scenarios: Iterable[str],
    run: Callable[[str, argparse.Namespace, Path], Any],
    args: argparse.Namespace,
    columns: list[tuple[str, int]],
) -> int:
    """What both benches print: a header, a table row per scenario as it ends, notes, ``--json``."""
    print(
        f"# bench/{bench}.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  acs {_git_revision()}  "
        f"Python {platform.python_version()}  {os.cpu_count()} CPUs"
    )
    print(f"# {setup}; ok: legitimate requests answered/sent, ms p50/max")
    print(f"# the server's code: {server_code()}")
    widths = [w for _, w in columns]
    print(table_line([name for name, _ in columns], widths))
    rows = []
    for scenario in scenarios:
        with tempfile.TemporaryDirectory(prefix=f"acs-bench-{bench}-") as workdir:
            row = run(scenario, args, Path(workdir))
        print(table_line(row.cells(), widths), flush=True)
        rows.append(row)
    for row in rows:
        for note in row.notes:
            print(f"{row.scenario}: {note}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0
