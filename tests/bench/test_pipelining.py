"""bench/pipelining.py pipelines to a real acs serve, reads nothing, prints figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pipelining.py"


def test_pipelining_prints_memory_descriptors_and_whether_the_server_lets_go(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--scenario=CWMP",
            "--connections=1",
            "--send-for=3",
            "--hold=16",
            "--after=1",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("scenario "))
    for column in ("MB sent", "RSS MB start/peak/held/closed", "closed by server (s)", "CWMP ok"):
        assert column in header
    (row,) = json.loads(out.read_text())
    assert (row["scenario"], row["connections"], row["notes"]) == ("CWMP", 1, [])
    assert row["bytes_sent"] > 0 and row["requests_sent"] == row["bytes_sent"] // 32
    assert row["rss_peak"] >= row["rss_start"] > 0 and row["fds_peak"] >= row["fds_start"] > 0
    assert len(row["closed_by_server"]) == 1  # its answers stuck: let go after the idle timeout (10 s)
    answered = row["answered"]["CWMP"]
    assert len(answered["latencies"]) == answered["sent"] > 0
