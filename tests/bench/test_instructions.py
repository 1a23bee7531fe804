"""bench/instructions.py drives both scenarios end to end (without valgrind here: that takes minutes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "instructions.py"


def test_instructions_runs_both_scenarios_and_prints_a_row_each():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-valgrind", "--few=2", "--many=6", "--devices=20"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    assert rows == {"periodic": ["4", "-"], "bootstrap": ["1", "-"]}
