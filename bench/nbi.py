"""The northbound API's throughput: task creations/s and device-list queries/s of a real ``acs serve``.

For each database (a temp SQLite file, or a randomly named PostgreSQL database, dropped after)
it stores ``--devices`` devices (default 10,000, 20 parameters each, as ``sessions.py`` does; a
tenth tagged ``floor-2``), makes an admin token, starts ``acs serve`` with its NBI on
127.0.0.1, and sends requests from ``--clients`` threads, each on a keep-alive connection:

- ``create task``: POST /devices/{id}/tasks (a GetParameterValues) on random devices: 202;
- ``list page``: GET /devices?limit=100&offset=<random>, with the total count (X-Total-Count);
- ``list by tag``: GET /devices?tag=floor-2&limit=100 (1,000 match);
- ``list by parameter``: GET /devices?parameter=Device.DeviceInfo.SoftwareVersion=...&limit=100
  (every device matches: the page and the count of 10,000 through the parameters table);
- ``get device``: GET /devices/{id}?parameters=Device.DeviceInfo. on random devices.

It prints one row per database and operation: requests, requests/s, p50/p99 latency, errors
(any other status), and the CPU seconds of the server, of this client, and of PostgreSQL.

    .venv/bin/python bench/nbi.py                       # both databases, ~2 min
    .venv/bin/python bench/nbi.py --db sqlite --devices 1000 --requests 500
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import random
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from acs.nbi import tokens
from acs.store import create_engine
from acs.store.schema import device_tags
from bench import loadgen
from bench.sessions import (
    DEFAULT_POSTGRES_URL,
    POSTGRES_URL_ENV,
    Database,
    Server,
    _git_revision,
    postgres_ticks,
    store_devices,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
TAG = "floor-2"
SOFTWARE = "Device.DeviceInfo.SoftwareVersion"
COLUMNS = (
    ("db", 10),
    ("operation", 17),
    ("requests", 8),
    ("req/s", 7),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("errors", 6),
    ("server CPU s", 12),
    ("client CPU s", 12),
    ("postgres CPU s", 14),
)


@dataclass
class Row:
    db: str
    operation: str
    requests: int = 0
    rate: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    errors: int = 0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    postgres_cpu: float | None = None
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        return [
            self.db,
            self.operation,
            str(self.requests),
            f"{self.rate:,.0f}",
            f"{self.p50:.1f}",
            f"{self.p99:.1f}",
            str(self.errors),
            f"{self.server_cpu:.1f}",
            f"{self.client_cpu:.1f}",
            "-" if self.postgres_cpu is None else f"{self.postgres_cpu:.1f}",
        ]


class NbiServer(Server):
    """``acs serve`` with its NBI on a free port (``sessions.Server`` serves CWMP alone)."""

    def __init__(self, db_url: str, log_path: Path) -> None:
        super().__init__(db_url, 1, None, log_path)
        self.args = [a for a in self.args if a != "--no-nbi"] + ["--nbi-port", "0"]
        self.nbi: tuple[str, int] | None = None

    def start(self) -> NbiServer:
        super().start()
        deadline = time.monotonic() + 30
        while self.nbi is None and time.monotonic() < deadline:
            for line in list(self.tail):
                if "NBI on http://" in line:
                    host, port = line.split("NBI on http://", 1)[1].split("/", 1)[0].rsplit(":", 1)
                    self.nbi = (host, int(port))
            time.sleep(0.05)
        if self.nbi is None:
            self.stop()
            raise RuntimeError(f"acs serve printed no NBI address:\n{''.join(self.tail)}")
        return self


def table_line(cells: list[str]) -> str:
    return "  ".join(
        c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


def seed(url: str, count: int) -> str:
    """The devices, a tenth of them tagged; returns an admin token."""
    store_devices(url, count, loadgen.Templates())
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            tagged = [{"device_id": loadgen.device_id(n), "tag": TAG} for n in range(0, count, 10)]
            conn.execute(sa.insert(device_tags), tagged)
            token, _ = tokens.create(conn, "bench", "admin")
    finally:
        engine.dispose()
    return token


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, as bench/loadgen.py reports them."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * q) - 1))] if ordered else 0.0


def drive(
    address: tuple[str, int], token: str, requests: list[tuple[str, str, bytes | None]], clients: int
) -> tuple[float, list[float], int, list[str]]:
    """Send the requests from ``clients`` threads; (seconds, latencies in ms, errors, first errors)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    work = iter(requests)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection(*address, timeout=60)
        mine: list[float] = []
        try:
            while True:
                with lock:
                    item = next(work, None)
                if item is None:
                    break
                method, path, body = item
                start = time.perf_counter()
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                data = response.read()
                mine.append((time.perf_counter() - start) * 1000)
                if response.status not in (200, 202):
                    with lock:
                        errors.append(f"{method} {path}: {response.status} {data[:200]!r}")
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, len(errors), errors[:3]


def operations(
    count: int, requests: int, rng: random.Random
) -> dict[str, list[tuple[str, str, bytes | None]]]:
    version = loadgen.Templates().periodic_values(0)
    software = next(v for p, _, v in version if p == SOFTWARE)
    task = json.dumps({"kind": "GetParameterValues", "args": {"ParameterNames": [SOFTWARE]}}).encode()
    device = [loadgen.device_id(rng.randrange(count)) for _ in range(requests)]
    return {
        "create task": [("POST", f"/devices/{d}/tasks", task) for d in device],
        "list page": [
            ("GET", f"/devices?limit=100&offset={rng.randrange(max(1, count - 100))}", None)
            for _ in range(requests)
        ],
        "list by tag": [("GET", f"/devices?tag={TAG}&limit=100", None)] * requests,
        "list by parameter": [("GET", f"/devices?parameter={SOFTWARE}={software}&limit=100", None)]
        * requests,
        "get device": [("GET", f"/devices/{d}?parameters=Device.DeviceInfo.", None) for d in device],
    }


def run_db(kind: str, args: argparse.Namespace, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    with Database(kind, workdir, args.postgres_url) as db:
        db.upgrade()
        token = seed(db.url, args.devices)
        server = NbiServer(db.url, workdir / f"nbi-{kind}.log").start()
        try:
            assert server.nbi is not None
            rng = random.Random(7)
            drive(server.nbi, token, [("GET", "/devices?limit=10", None)] * 50, 2)  # warm up
            for name, requests in operations(args.devices, args.requests, rng).items():
                server_before, client_before = server.cpu(), time.process_time()
                pg_before = sum(postgres_ticks().values()) if kind == "postgresql" else 0
                seconds, latencies, errors, first = drive(server.nbi, token, requests, args.clients)
                row = Row(
                    kind,
                    name,
                    len(latencies),
                    len(latencies) / seconds if seconds else 0.0,
                    percentile(latencies, 0.5),
                    percentile(latencies, 0.99),
                    errors,
                    server.cpu() - server_before,
                    time.process_time() - client_before,
                    (sum(postgres_ticks().values()) - pg_before) / CLK_TCK if kind == "postgresql" else None,
                    notes=first + server.problems,
                )
                rows.append(row)
                print(table_line(row.cells()), flush=True)
        finally:
            server.stop()
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--devices", type=int, default=10_000, help="devices stored (default 10,000)")
    parser.add_argument("--requests", type=int, default=2_000, help="requests per operation (default 2,000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (default 8)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL,
        help="a PostgreSQL server where this user may CREATE DATABASE",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"# bench/nbi.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  acs {_git_revision()}  "
        f"Python {platform.python_version()}  {os.cpu_count()} CPUs"
    )
    print(
        f"# {args.devices} devices stored; {args.requests} requests per operation from "
        f"{args.clients} keep-alive clients; one acs serve (the NBI runs in its first process)"
    )
    print(table_line([name for name, _ in COLUMNS]))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="acs-bench-nbi-") as workdir:
        for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
            rows += run_db(kind, args, Path(workdir))
    for row in rows:
        for note in row.notes:
            print(f"{row.db} / {row.operation}: {note}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 1 if any(r.errors or r.notes for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
