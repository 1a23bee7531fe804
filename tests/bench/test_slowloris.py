"""bench/slowloris.py holds connections to a real acs serve and prints its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "slowloris.py"


def test_slowloris_prints_connections_descriptors_memory_and_the_legitimate_requests(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--scenario=slow head",
            "--connections=120",
            "--rate=200",
            "--interval=1",
            "--sources=3",
            "--duration=6",
            "--nofile=128",
            "--server-arg=--http-head-timeout=2",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("scenario "))
    for column in ("closed by server", "fds start/peak/end", "RSS MB start/peak/end", "CWMP ok", "API ok"):
        assert column in header
    (row,) = json.loads(out.read_text())
    assert (row["scenario"], row["connections"], row["notes"]) == ("slow head", 120, [])
    assert row["opened"] >= 120 and row["closed_by_server"] > 0  # shed over the cap (64), or cut at 2 s
    assert row["fds_peak"] <= 128  # under the limit: the cap is half of it
    for service in ("CWMP", "profile", "API"):
        answered = row["answered"][service]
        assert len(answered["latencies"]) == answered["sent"] > 0
