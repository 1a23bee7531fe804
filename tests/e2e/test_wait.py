"""``acs task add ... --wait``, as a process in the operator's shell, follows the task to its result."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from acs.testing import run_session
from tests.e2e.conftest import SESSION_TIMEOUT, Acs, new_phone
from tests.web.conftest import ACS

SOFTWARE_VERSION = "Device.DeviceInfo.SoftwareVersion"


def wait_for_pending_task(acs: Acs, device: str, timeout: float = 30) -> None:
    """Until the command has committed its task (and so is following it)."""
    deadline = time.monotonic() + timeout
    while not acs.cli.tasks("--device", device, "--status", "pending"):
        assert time.monotonic() < deadline, "the command queued nothing"
        time.sleep(0.05)


def test_wait_exits_0_with_the_result_once_the_phone_had_its_session(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    command = [ACS, "task", "add", "get-values", SOFTWARE_VERSION, "--device", phone.mac, "--wait", "30"]
    process = subprocess.Popen(
        [*command, "--db", acs.cli.db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    errors: list[BaseException] = []

    def phone_informs() -> None:
        try:
            time.sleep(0.5)
            run_session(phone, acs.url, timeout=SESSION_TIMEOUT)
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    try:
        wait_for_pending_task(acs, phone.mac)
        session = threading.Thread(target=phone_informs)
        session.start()
        out, err = process.communicate(timeout=60)
        session.join(SESSION_TIMEOUT)
    finally:
        process.kill()
    assert errors == []
    assert process.returncode == 0, err
    assert out.startswith("queued GetParameterValues as task ")
    assert "\n1 done\n" in out
    result = json.loads(out[out.index("\n{") :])
    assert result == {"ParameterList": [[SOFTWARE_VERSION, phone.software_version, "string"]]}
    (task,) = acs.cli.tasks("--device", phone.mac)
    assert (task["status"], task["result"]) == ("done", result)


def test_wait_without_a_session_exits_non_zero_and_the_task_stays_queued(acs: Acs) -> None:
    phone = new_phone()
    acs.session(phone)
    started = time.monotonic()
    done = subprocess.run(
        [ACS, "task", "add", "reboot", "--device", phone.mac, "--wait", "2", "--db", acs.cli.db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert time.monotonic() - started >= 2
    assert "1 task(s) not complete after 2 s; they stay queued" in done.stderr
    (task,) = acs.cli.tasks("--device", phone.mac)
    assert (task["kind"], task["status"]) == ("Reboot", "pending")
    log = acs.session(phone)  # and the phone gets it at its next session
    assert [type(r).__name__ for r in log.requests] == ["Reboot"]
