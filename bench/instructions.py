"""Instructions ``acs serve`` spends per CWMP session, counted by valgrind's callgrind.

Run: ``.venv/bin/python bench/instructions.py`` (~10 min on 2 cores; ``--help``).

Why: sessions/s and latency (``bench/sessions.py``) move with whatever else the
machine does; an instruction count does not. Callgrind counts what the server
process executes, so the same code, inputs and interpreter give the same figure
on a busy machine: the way to compare two revisions of the hot path.

For each scenario the server runs twice under callgrind on a fresh SQLite
database, serving ``--few`` and then ``--many`` sessions from ``bench/loadgen.py``
(a few phones at once, Digest with a 401 per session, as phones do); the
difference of the two totals divided by the difference of the counts leaves out
start-up and shutdown. ``periodic`` is a stored phone's Inform with 20
parameters and the empty POST; ``bootstrap`` is a new phone whose whole tree the
discovery policy reads (1 GetParameterNames, 19 GetParameterValues). Instructions
are not time: a cache miss costs more than an add. Read them beside the
sessions/s of ``bench/sessions.py``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen
from bench.sessions import Database, Server, store_devices

CREDENTIALS = ("bench", "bench-secret")
_COLLECTED = re.compile(r"Collected : ([\d,]+)")


def count(scenario: str, sessions: int, devices: int, workdir: Path, *, valgrind: bool) -> int | None:
    """Instructions of one ``acs serve`` run that serves ``sessions`` sessions (None without valgrind)."""
    with Database("sqlite", workdir, "") as db:
        db.upgrade()
        store_devices(db.url, devices, loadgen.Templates())
        out = workdir / f"callgrind.{scenario}.{sessions}"
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] if valgrind else None
        log = workdir / f"serve.{scenario}.{sessions}.log"
        # under valgrind the server starts ~50 times slower
        server = Server(db.url, 1, CREDENTIALS, log, wrapper=wrapper).start(timeout=900 if valgrind else 60)
        try:
            cmd = [sys.executable, str(Path(loadgen.__file__)), server.url, "--scenario", scenario]
            cmd += ["--phones", "4", "--sessions", str(sessions), "--timeout", "300"]
            cmd += ["--username", CREDENTIALS[0], "--password", CREDENTIALS[1]]
            cmd += ["--first-index", str(devices)] if scenario == "bootstrap" else []
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
            if done.returncode != 0 or "errors: none" not in done.stdout:
                raise RuntimeError(f"load generator: {done.stdout}{done.stderr}")
        finally:
            server.stop()
        if not valgrind:
            return None
        found = _COLLECTED.findall(log.read_text())
        if not found:
            raise RuntimeError(f"no callgrind total in the server's log:\n{''.join(server.tail)}")
        return int(found[-1].replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=(*loadgen.SCENARIOS, "both"), default="both")
    parser.add_argument("--few", type=int, default=100, help="sessions of the first run (default 100)")
    parser.add_argument("--many", type=int, default=400, help="sessions of the second run (default 400)")
    parser.add_argument("--devices", type=int, default=1000, help="devices stored beforehand (default 1000)")
    parser.add_argument(
        "--no-valgrind", action="store_true", help="run the same sessions without counting (a smoke test)"
    )
    args = parser.parse_args(argv)
    if not args.no_valgrind and shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    scenarios = loadgen.SCENARIOS if args.scenario == "both" else (args.scenario,)
    print(f"{'scenario':<10} {'sessions':>9} {'M instructions/session':>23}")
    with tempfile.TemporaryDirectory(prefix="acs-instructions-") as tmp:
        for scenario in scenarios:
            few, many = args.few, args.many
            if scenario == "bootstrap":  # each one stores ~600 parameters: fewer do
                few, many = max(1, few // 20), max(2, many // 20)
            a = count(scenario, few, args.devices, Path(tmp), valgrind=not args.no_valgrind)
            b = count(scenario, many, args.devices, Path(tmp), valgrind=not args.no_valgrind)
            figure = "-" if a is None or b is None else f"{(b - a) / (many - few) / 1e6:.2f}"
            print(f"{scenario:<10} {many - few:>9} {figure:>23}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
