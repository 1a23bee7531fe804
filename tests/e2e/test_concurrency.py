"""200 phones at once: every session completes, and every task runs exactly once on its own phone.

SQLite with one worker (its one writer), PostgreSQL with two worker processes sharing the
port, so that a session's POSTs may reach either process.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from acs.cwmp import rpc
from acs.testing import SessionLog, SimulatedPhone, run_session
from tests.e2e.conftest import SESSION_TIMEOUT, Acs, numbered_phone

PHONES = 200
#: the whole fleet's sessions, at most
ROUND_TIMEOUT = 120
HOST_NAME = "Device.DeviceInfo.HostName"
SOFTWARE_VERSION = "Device.DeviceInfo.SoftwareVersion"


def all_at_once(phones: list[SimulatedPhone], url: str) -> list[SessionLog]:
    """One session per phone, each on its own connection and thread, released together."""
    start = threading.Barrier(len(phones))
    spans: list[tuple[float, float]] = []

    def session(phone: SimulatedPhone) -> SessionLog:
        start.wait(ROUND_TIMEOUT)
        began = time.monotonic()
        log = run_session(phone, url, timeout=SESSION_TIMEOUT)
        spans.append((began, time.monotonic()))
        return log

    with ThreadPoolExecutor(max_workers=len(phones)) as pool:
        futures = [pool.submit(session, phone) for phone in phones]
        deadline = time.monotonic() + ROUND_TIMEOUT
        logs = [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
    for log in logs:
        assert log.statuses[-1] == 204, log.transcript()
    assert most_at_once(spans) >= len(phones) // 4, "the sessions hardly overlapped: not a concurrency test"
    return logs


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of sessions open at the same moment."""
    edges = sorted([(begin, 1) for begin, _ in spans] + [(end, -1) for _, end in spans])
    open_, most = 0, 0
    for _, step in edges:
        open_ += step
        most = max(most, open_)
    return most


def test_200_phones_in_parallel_each_run_their_tasks_exactly_once(
    serve: Callable[..., Acs], backend: str, tmp_path: Path
) -> None:
    acs = serve(workers=1 if backend == "sqlite" else 2)
    phones = [numbered_phone(i) for i in range(PHONES)]
    first = all_at_once(phones, acs.url)  # 200 new phones bootstrap together
    assert all(log.requests == [] for log in first)
    assert len(acs.cli.json("device", "list", "--limit", str(PHONES * 2))) == PHONES

    # two bulk jobs: one over every device, one over a CSV of the fleet's MACs
    acs.cli("task", "add", "get-values", SOFTWARE_VERSION, "--all")
    csv = tmp_path / "fleet.csv"
    csv.write_text("mac\n" + "".join(f"{p.mac}\n" for p in phones))
    acs.cli("task", "add", "set-values", f"{HOST_NAME}=fleet", "--csv", str(csv))

    logs = all_at_once(phones, acs.url)

    tasks = acs.cli.tasks()
    assert len(tasks) == 2 * PHONES
    assert Counter((t["status"], t["attempts"]) for t in tasks) == {("done", 1): 2 * PHONES}
    by_device = {p.device_id: {t["kind"]: t for t in tasks if t["device_id"] == p.device_id} for p in phones}
    for phone, log in zip(phones, logs, strict=True):
        mine = by_device[phone.device_id]
        assert sorted(mine) == ["GetParameterValues", "SetParameterValues"], phone.device_id
        get, set_ = log.requests  # each task reached its phone once, in the order queued
        assert isinstance(get, rpc.GetParameterValues)
        assert get.ParameterNames == [SOFTWARE_VERSION]
        assert isinstance(set_, rpc.SetParameterValues)
        assert (
            set_.ParameterKey == f"acs-{mine['SetParameterValues']['id']}"
        )  # its own task, not a neighbour's
        assert mine["GetParameterValues"]["result"] == {
            "ParameterList": [[SOFTWARE_VERSION, phone.software_version, "string"]]
        }
        assert phone.value(HOST_NAME) == "fleet"
    assert acs.errors() == []
