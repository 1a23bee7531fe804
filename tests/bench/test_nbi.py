"""bench/nbi.py runs end to end against a real acs serve and prints its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NBI = Path(__file__).resolve().parents[2] / "bench" / "nbi.py"


def test_nbi_bench_prints_task_creations_and_device_list_queries_per_second(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [
            sys.executable,
            str(NBI),
            "--db=sqlite",
            "--devices=50",
            "--requests=20",
            "--clients=2",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("db "))
    for column in ("req/s", "p50 ms", "p99 ms", "errors", "server CPU s"):
        assert column in header
    rows = {row["operation"]: row for row in json.loads(out.read_text())}
    assert set(rows) == {"create task", "list page", "list by tag", "list by parameter", "get device"}
    for row in rows.values():
        assert row["requests"] == 20 and row["errors"] == 0 and row["notes"] == [], row
        assert row["rate"] > 0 and row["p99"] >= row["p50"] > 0
