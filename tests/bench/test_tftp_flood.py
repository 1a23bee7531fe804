"""bench/tftp_flood.py floods a real acs serve with RRQs and prints its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FLOOD = Path(__file__).resolve().parents[2] / "bench" / "tftp_flood.py"


def test_tftp_flood_prints_descriptors_transfers_reflection_and_cwmp(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [
            sys.executable,
            str(FLOOD),
            "--scenario=flood",
            "--rrqs=40",
            "--sources=2",
            "--ports=4",
            "--watch=8",
            "--nofile=256",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("scenario "))
    for column in ("kernel drops", "factor", "fds start/peak/end", "transfers peak/end", "CWMP answered"):
        assert column in header
    (flood,) = json.loads(out.read_text())
    assert (flood["scenario"], flood["rrqs"], flood["notes"]) == ("flood", 40, [])
    assert flood["transfers_peak"] == 16 and flood["transfers_end"] == 0  # 2 sources x 8 at most, all over
    assert flood["packets_out"] == 2 * 16  # each: its first block and one resend
    assert flood["factor"] == flood["bytes_out"] / flood["bytes_in"] > 0
    assert flood["answered"] == flood["probes"] > 0
    assert flood["fds_peak"] >= flood["fds_start"] > 0
