"""bench/bad_requests.py sends bad requests to a real acs serve and prints its figures (none asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bad_requests.py"


def test_bad_requests_prints_answers_cost_and_log_per_scenario(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--requests=12", "--settle=0.5", f"--json={out}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("scenario "))
    for column in ("answers", "ms median/max", "log lines", "log bytes", "secret in log", "tracebacks"):
        assert column in header
    rows = {row["scenario"]: row for row in json.loads(out.read_text())}
    assert len(rows) == 8 and all(row["requests"] == 12 for row in rows.values())
    assert rows["CWMP unknown user"]["answers"] == {"401": 12}
    assert rows["CWMP wrong password"]["answers"] == {"401": 12}
    assert rows["SOAP billion laughs"]["answers"] == {"500": 12}  # a SOAP 1.1 fault
    assert rows["OpenAPI document"]["answers"] == {"200": 12}
