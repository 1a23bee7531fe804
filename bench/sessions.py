"""CWMP sessions/s and session latency of a real ``acs serve``, on SQLite and PostgreSQL, for 1 and 2 workers.

Run: ``python bench/sessions.py`` (all of it), or e.g.
``python bench/sessions.py --db sqlite --workers 1 --phones 50,500 --scenario periodic``.

For each combination of scenario, database, workers and concurrent phones it:

1. makes a fresh database (a temp SQLite file, or a PostgreSQL database with a
   random name, dropped afterwards) and migrates it with ``acs db upgrade``;
2. stores ``--devices`` devices with the 20 parameters of their periodic Inform
   (bulk INSERTs), so the figures, and the memory, are those of a server that
   knows a fleet; the periodic phones are among them, so their Informs change
   only what a phone changes between two Informs (UpTime);
3. starts ``acs serve`` on 127.0.0.1, port 0, with shared CPE credentials
   (Digest: each session takes the 401 round trip, as a phone's does) or
   ``--no-auth``;
4. warms up, then runs the load with ``bench/loadgen.py``:
   *periodic*: Inform (``2 PERIODIC``, 20 parameters) -> InformResponse, empty POST -> 204;
   *bootstrap*: a new phone's ``0 BOOTSTRAP``/``1 BOOT`` Inform, then the discovery
   the server queues by itself (GetParameterNames of ``Device.``, GetParameterValues
   in batches), answered from the simulated Cisco MPP phone's ~600 parameters, until 204;
5. prints a row: sessions/s, p50/p99 session latency (connect to 204, the 401 included),
   errors, the server's resident memory per worker process (``VmRSS``, and its peak
   ``VmHWM``), the CPU the server and the load generator spent, and for bootstrap the
   parameters stored per new device;
6. stops the server (SIGTERM, then SIGKILL of its process group after a timeout)
   and drops the database, also on an error or Ctrl-C.

Figures only: nothing is asserted. A run that shows errors, sessions left open,
tasks not done or errors in the server's log says so under the table.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from acs.store import create_engine
from acs.store.schema import devices, parameters, sessions, tasks
from bench import loadgen

ACS = str(Path(sys.executable).with_name("acs"))
POSTGRES_URL_ENV = "ACS_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
_LISTENING = re.compile(r"CWMP on https?://([\d.]+):(\d+)/")
START_TIMEOUT = 60
STOP_TIMEOUT = 15
#: fleet indices: stored devices and periodic phones from 0, bootstrap warm-up and run phones apart
WARMUP_BOOTSTRAP_INDEX = 2_000_000
BOOTSTRAP_INDEX = 8_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
WARMUP_PHONES = 20
INSERT_CHUNK = 1000
COLUMNS = (
    ("scenario", 9),
    ("db", 10),
    ("workers", 7),
    ("phones", 6),
    ("sessions", 8),
    ("sessions/s", 10),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("errors", 6),
    ("RSS MB/worker", 13),
    ("peak MB", 7),
    ("server CPU s", 12),
    ("postgres CPU s", 14),
    ("loadgen CPU s", 13),
    ("other CPU s", 11),
    ("params/device", 13),
)


@dataclass
class Row:
    scenario: str
    db: str
    workers: int
    phones: int
    sessions: int = 0
    rate: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    errors: int = 0
    rss_mb: float = float("nan")
    peak_mb: float = float("nan")
    server_cpu: float = float("nan")
    postgres_cpu: float = float("nan")
    loadgen_cpu: float = float("nan")
    other_cpu: float = float("nan")
    params_per_device: str = ""
    elapsed: float = 0.0
    exchanges: int = 0
    devices_stored: int = 0
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        return [
            self.scenario,
            self.db,
            str(self.workers),
            str(self.phones),
            str(self.sessions),
            f"{self.rate:.0f}",
            f"{self.p50:.1f}",
            f"{self.p99:.1f}",
            str(self.errors),
            f"{self.rss_mb:.0f}",
            f"{self.peak_mb:.0f}",
            f"{self.server_cpu:.1f}",
            f"{self.postgres_cpu:.1f}" if self.db == "postgresql" else "-",
            f"{self.loadgen_cpu:.1f}",
            f"{self.other_cpu:.1f}",
            self.params_per_device or "-",
        ]


def table_line(cells: list[str]) -> str:
    return "  ".join(
        c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


# --- databases --------------------------------------------------------------------------------


def key_env(db_url: str) -> dict[str, str]:
    """Where ``acs`` finds the secrets key of a bench database: beside a SQLite file by itself; for
    PostgreSQL, which needs it named, a file in the temporary directory named after the database."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return {}
    return {"ACS_SECRETS_KEY_FILE": str(Path(tempfile.gettempdir()) / f"{url.database}.key")}


class Database:
    """A database of this run's own: a temp SQLite file, or a PostgreSQL database with a random name."""

    def __init__(self, kind: str, workdir: Path, postgres_url: str) -> None:
        self.kind = kind
        self.name = f"acs_bench_{uuid.uuid4().hex[:12]}"
        self._admin: sa.Engine | None = None
        if kind == "sqlite":
            self.path = workdir / f"{self.name}.db"
            self.url = f"sqlite:///{self.path}"
        else:
            base = sa.make_url(postgres_url).set(drivername="postgresql+psycopg")
            self._admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            self.url = base.set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> Database:
        if self._admin is not None:
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        if self._admin is not None:
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin.dispose()
            Path(key_env(self.url)["ACS_SECRETS_KEY_FILE"]).unlink(missing_ok=True)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.path.with_suffix(".key").unlink(missing_ok=True)

    def upgrade(self) -> None:
        done = subprocess.run(
            [ACS, "db", "upgrade", "--db", self.url],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=os.environ | key_env(self.url),
        )
        if done.returncode != 0:
            raise RuntimeError(f"acs db upgrade failed: {done.stderr or done.stdout}")


#: parameter name -> devices column, for the facts ``acs device list`` shows
_FACTS = {
    "Device.DeviceInfo.SoftwareVersion": "software_version",
    "Device.DeviceInfo.HardwareVersion": "hardware_version",
    "Device.DeviceInfo.ProvisioningCode": "provisioning_code",
    "Device.ManagementServer.ConnectionRequestURL": "connection_request_url",
    "Device.ManagementServer.ParameterKey": "parameter_key",
    "Device.ManagementServer.UDPConnectionRequestAddress": "udp_connection_request_address",
}


def store_devices(url: str, count: int, templates: loadgen.Templates) -> None:
    """Devices 0..count-1 as if each had informed before: the device row and its Inform's 20 parameters."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    writable = {path: templates.phone.model.parameter(path).writable for path in loadgen.PERIODIC_PARAMETERS}
    try:
        for first in range(0, count, INSERT_CHUNK):
            device_rows, parameter_rows = [], []
            for n in range(first, min(first + INSERT_CHUNK, count)):
                did = loadgen.device_id(n)
                params = templates.periodic_values(n)
                facts = {_FACTS[p]: v for p, _, v in params if p in _FACTS}
                device_rows.append(
                    {
                        "id": did,
                        "oui": "00562B",
                        "product_class": loadgen.MODEL,
                        "serial_number": loadgen.serial(n),
                        "mac": loadgen.mac(n),
                        "manufacturer": "Cisco Systems, Inc.",
                        "ip": "127.0.0.1",
                        "cwmp_version": "1.2",
                        "first_inform": now - timedelta(days=30),
                        "last_inform": now - timedelta(hours=1),
                        "last_boot": now - timedelta(days=30),
                        "created_at": now - timedelta(days=30),
                        **facts,
                    }
                )
                parameter_rows += [
                    {
                        "device_id": did,
                        "path": path,
                        "value": value,
                        "type": kind,
                        "writable": writable[path],
                        "object": False,
                        "read_at": now - timedelta(hours=1),
                    }
                    for path, kind, value in params
                ]
            with engine.begin() as conn:
                conn.execute(devices.insert(), device_rows)
                conn.execute(parameters.insert(), parameter_rows)
    finally:
        engine.dispose()


@dataclass
class StoreCheck:
    """What the store says after a run: sessions not ended, tasks not done, parameters of new devices."""

    sessions: dict[str, int]
    tasks: dict[str, int]
    bootstrapped: int
    values_min: int
    values_avg: float


def check_store(url: str) -> StoreCheck:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            by_session = dict(
                conn.execute(sa.select(sessions.c.status, sa.func.count()).group_by(sessions.c.status)).all()
            )
            by_task = dict(
                conn.execute(sa.select(tasks.c.status, sa.func.count()).group_by(tasks.c.status)).all()
            )
            per_device = (
                sa.select(sa.func.count(parameters.c.path).label("n"))
                .select_from(
                    devices.outerjoin(
                        parameters,
                        sa.and_(
                            parameters.c.device_id == devices.c.id,
                            parameters.c.object.is_(False),
                            parameters.c.value.is_not(None),
                        ),
                    )
                )
                .where(devices.c.last_bootstrap.is_not(None))
                .group_by(devices.c.id)
                .subquery()
            )
            count, low, avg = conn.execute(
                sa.select(sa.func.count(), sa.func.min(per_device.c.n), sa.func.avg(per_device.c.n))
            ).one()
    finally:
        engine.dispose()
    return StoreCheck(by_session, by_task, count or 0, low or 0, float(avg or 0))


# --- the server -------------------------------------------------------------------------------


class Server:
    """``acs serve`` in a process group of its own, its stderr kept in a file and the last lines in memory."""

    def __init__(
        self,
        db_url: str,
        workers: int,
        credentials: tuple[str, str] | None,
        log_path: Path,
        wrapper: list[str] | None = None,
    ) -> None:
        # ``wrapper``: a command the server runs under (valgrind, for bench/instructions.py)
        self.args = [*(wrapper or []), ACS, "serve", "--db", db_url, "--host", "127.0.0.1", "--port", "0"]
        self.args += ["--profile-port", "off"]  # CWMP is measured; 7567 may be another server's
        if "--no-nbi" in serve_help():  # CWMP alone; and no clash on the NBI's port
            self.args.append("--no-nbi")
        if workers > 1:
            self.args += ["--workers", str(workers)]
        self.env = os.environ | {"PYTHONUNBUFFERED": "1"} | key_env(db_url)
        if credentials is None:
            self.args.append("--no-auth")
        else:  # secrets through the environment, never the command line
            self.env |= {"ACS_CPE_USERNAME": credentials[0], "ACS_CPE_PASSWORD": credentials[1]}
        self.log_path = log_path
        self.tail: deque[str] = deque(maxlen=50)
        self.problems: list[str] = []
        self.problem_count = 0
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = START_TIMEOUT) -> Server:
        self.process = subprocess.Popen(
            self.args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            start_new_session=True,  # its own process group: its workers can be stopped with it
            preexec_fn=loadgen.die_with_parent,
        )
        found = threading.Event()
        threading.Thread(target=self._read, args=(found,), daemon=True).start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError(f"acs serve did not start:\n{''.join(self.tail)}")
        return self

    def _read(self, found: threading.Event) -> None:
        assert self.process is not None and self.process.stderr is not None
        with self.log_path.open("w") as log:
            for line in self.process.stderr:
                log.write(line)
                self.tail.append(line)
                m = _LISTENING.search(line)
                if m and not self.url:
                    self.url = f"http://{m.group(1)}:{m.group(2)}/"
                    found.set()
                if " ERROR " in line or "Traceback" in line or " CRITICAL " in line:
                    self.problem_count += 1
                    if len(self.problems) < 5:
                        self.problems.append(line.rstrip())
        found.set()

    def pids(self) -> list[int]:
        """The server process and every process below it (its workers)."""
        if self.process is None or self.process.poll() is not None:
            return []
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                    children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def memory(self) -> list[tuple[float, float]]:
        """(VmRSS, VmHWM) in MB of each server process."""
        sizes = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                sizes.append((int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024))
        return sizes

    def cpu(self) -> float:
        """User + system CPU seconds of the server's processes so far."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.problems.append(f"acs serve did not stop within {STOP_TIMEOUT} s of SIGTERM: killed")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # anything left in its group (a worker that hung)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


@functools.cache
def serve_help() -> str:
    done = subprocess.run([ACS, "serve", "--help"], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout


def serve_has_workers() -> bool:
    return "--workers" in serve_help()


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (all but idle and iowait), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def postgres_ticks() -> dict[int, int]:
    """CPU ticks so far of each PostgreSQL process on this machine, its ended children included.

    Backends do the SQL work, and a backend that ends (the server's pool closes
    connections) takes its counters with it: the postmaster's cutime/cstime has them.
    """
    ticks = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                head, _, rest = (entry / "stat").read_text().rpartition(")")
                if head.endswith("(postgres"):
                    fields = rest.split()
                    ticks[int(entry.name)] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks


# --- one run ----------------------------------------------------------------------------------


def run_one(
    scenario: str, db_kind: str, workers: int, phones: int, args: argparse.Namespace, workdir: Path
) -> Row:
    row = Row(scenario, db_kind, workers, phones)
    templates = loadgen.Templates()
    credentials = None if args.no_auth else ("bench", secrets.token_urlsafe(12))
    stored = max(args.devices, phones) if scenario == "periodic" else args.devices
    row.devices_stored = stored
    with Database(db_kind, workdir, args.postgres_url) as db:
        db.upgrade()
        store_devices(db.url, stored, templates)
        log_path = workdir / f"serve-{scenario}-{db_kind}-{workers}w-{phones}p.log"
        server = Server(db.url, workers, credentials, log_path).start()
        try:
            base = loadgen.Config(
                url=server.url,
                scenario=scenario,
                phones=phones,
                username=credentials[0] if credentials else None,
                password=credentials[1] if credentials else None,
                timeout=args.timeout,
                max_time=args.max_time,
            )
            bootstrap = scenario == "bootstrap"
            if args.warmup > 0:  # a few phones for a few seconds; their sessions run to their end
                warm = {"sessions": None, "duration": args.warmup, "phones": min(phones, WARMUP_PHONES)}
                warm["first_index"] = WARMUP_BOOTSTRAP_INDEX if bootstrap else 0
                warmed = loadgen.run_processes(loadgen.Config(**(asdict(base) | warm)), args.procs)
                if warmed.errors:
                    row.notes.append(
                        "warm-up errors: " + ", ".join(f"{k} x{v}" for k, v in warmed.errors.items())
                    )
                    row.notes += [f"  e.g. {s}" for s in warmed.error_samples]
            count = (args.bootstrap_sessions or max(300, phones)) if bootstrap else args.sessions
            run = loadgen.Config(
                **(
                    asdict(base)
                    | {
                        "sessions": None if args.duration else count,
                        "duration": args.duration,
                        "rate": args.rate,
                        "first_index": BOOTSTRAP_INDEX if bootstrap else 0,
                    }
                )
            )
            cpu0, machine0, pg0 = server.cpu(), machine_cpu(), postgres_ticks()
            result = loadgen.run_processes(run, args.procs)
            row.server_cpu = server.cpu() - cpu0
            pg1 = postgres_ticks()
            row.postgres_cpu = sum(t - pg0.get(pid, 0) for pid, t in pg1.items()) / CLK_TCK
            busy = machine_cpu() - machine0
            row.other_cpu = max(0.0, busy - row.server_cpu - row.postgres_cpu - result.cpu)
            sizes = server.memory()
            if len(sizes) != workers:
                row.notes.append(f"{len(sizes)} server processes found for {workers} workers")
            if sizes:
                row.rss_mb = max(rss for rss, _ in sizes)
                row.peak_mb = max(hwm for _, hwm in sizes)
        finally:
            server.stop()
        check = check_store(db.url)
    latencies = sorted(result.latencies)
    row.sessions = result.sessions
    row.elapsed = result.elapsed
    row.rate = result.sessions / result.elapsed
    row.p50 = loadgen.percentile(latencies, 0.5)
    row.p99 = loadgen.percentile(latencies, 0.99)
    row.errors = result.error_count
    row.loadgen_cpu = result.cpu
    row.exchanges = result.exchanges
    if result.errors:
        row.notes.append("errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(result.errors.items())))
        row.notes += [f"  e.g. {s}" for s in result.error_samples]
    if bootstrap:
        values = f"{check.values_avg:.0f}"
        row.params_per_device = (
            values if check.values_min == round(check.values_avg) else f"{check.values_min}-{values}"
        )
        if check.bootstrapped == 0:
            row.notes.append("no device bootstrapped")
    left = {k: v for k, v in check.sessions.items() if k != "ended"}
    if left:
        row.notes.append("sessions not ended: " + ", ".join(f"{k} {v}" for k, v in sorted(left.items())))
    undone = {k: v for k, v in check.tasks.items() if k != "done"}
    if undone:
        row.notes.append("tasks not done: " + ", ".join(f"{k} {v}" for k, v in sorted(undone.items())))
    if server.problem_count:
        kept = f"kept in {args.keep_logs}" if args.keep_logs else "--keep-logs DIR keeps it"
        row.notes.append(f"{server.problem_count} error lines in the server's log ({kept}), first:")
        row.notes += [f"  {p[:300]}" for p in server.problems]
    return row


# --- the command ------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers of at least 1, not {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL,
        help=f"a PostgreSQL server where this user may CREATE DATABASE (env {POSTGRES_URL_ENV}; "
        f"default {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument(
        "--workers", type=_ints, default=None, help="acs serve --workers, e.g. 1,2 (default 1,2)"
    )
    parser.add_argument(
        "--phones", type=_ints, default=[50, 500], help="concurrent phones, e.g. 50,500 (default)"
    )
    parser.add_argument("--scenario", choices=("periodic", "bootstrap", "both"), default="both")
    parser.add_argument("--sessions", type=int, default=5000, help="periodic sessions per run (default 5000)")
    parser.add_argument(
        "--bootstrap-sessions",
        type=int,
        default=None,
        help="bootstrap sessions per run (default 300, or one per phone if there are more phones)",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per run, instead of counts")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="sessions/s the phones offer together (default: each phone back to back, flat out)",
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)"
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=10_000,
        help="devices stored before the run, 20 parameters each (default 10000)",
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--auth", dest="no_auth", action="store_false", help="Digest per session (default)")
    auth.add_argument("--no-auth", dest="no_auth", action="store_true", help="acs serve --no-auth")
    parser.set_defaults(no_auth=False)
    parser.add_argument("--procs", type=int, default=1, help="load generator processes (default 1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds a phone waits for each HTTP response (default 30)",
    )
    parser.add_argument(
        "--max-time", type=float, default=600.0, help="a run's bound, in seconds (default 600)"
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--keep-logs", type=Path, help="keep the servers' logs in this directory")
    args = parser.parse_args(argv)
    if args.duration is None and (args.sessions < 1 or (args.bootstrap_sessions or 1) < 1):
        parser.error("--sessions and --bootstrap-sessions must be at least 1")
    return args


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT stop a run as Ctrl-C does: every process this started is stopped on the way out."""

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    # Ctrl-C too, even when started in the background by a shell that ignores SIGINT for it
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
            check=False,
        )
        return done.stdout.strip() or "?"
    return "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    scenarios = ["periodic", "bootstrap"] if args.scenario == "both" else [args.scenario]
    has_workers = serve_has_workers()
    workers = args.workers or ([1, 2] if has_workers else [1])
    if not has_workers and max(workers) > 1:
        print("acs serve has no --workers option yet: running with 1 worker only", file=sys.stderr)
        workers = [1]
    print(
        f"# bench/sessions.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  acs {_git_revision()}  "
        f"Python {platform.python_version()}  {os.cpu_count()} CPUs"
    )
    bootstrap_count = args.bootstrap_sessions or "max(300, phones)"
    length = (
        f"{args.duration:g} s per run"
        if args.duration
        else f"{args.sessions} periodic / {bootstrap_count} bootstrap sessions per run"
    )
    print(
        f"# {'Digest auth, a 401 per session' if not args.no_auth else 'no auth'}; "
        f"{args.devices} devices stored; warm-up {args.warmup:g} s; {length}; "
        f"{f'{args.rate:g} sessions/s offered' if args.rate else 'phones back to back'}; "
        f"{args.procs} load generator process{'es' if args.procs > 1 else ''}"
    )
    print(table_line([name for name, _ in COLUMNS]))
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="acs-bench-"))
    interrupted = False
    try:
        with _sigterm_as_interrupt():
            for scenario in scenarios:
                for db_kind in dbs:
                    for n_workers in workers:
                        for phones in args.phones:
                            try:
                                row = run_one(scenario, db_kind, n_workers, phones, args, workdir)
                            except (
                                RuntimeError,
                                OSError,
                                sa.exc.SQLAlchemyError,
                                subprocess.SubprocessError,
                            ) as e:
                                row = Row(scenario, db_kind, n_workers, phones, notes=[f"run failed: {e}"])
                            rows.append(row)
                            print(table_line(row.cells()), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("# interrupted: every process this started has been stopped", file=sys.stderr)
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                shutil.copy(log, args.keep_logs / log.name)
        shutil.rmtree(workdir, ignore_errors=True)
    for row in rows:
        if row.notes:
            print(f"\n{row.scenario} / {row.db} / {row.workers} worker(s) / {row.phones} phones:")
            for note in row.notes:
                print(f"  {note}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
