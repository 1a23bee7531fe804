"""``acs task add ... --now``: the task is queued, the phone is kicked, it opens a session and runs it.

The real ``acs serve``, the real ``acs`` command as a process, and a simulated phone that
listens for connection requests on real sockets (HTTP Digest, UDP per TR-069 Annex G),
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from acs.testing.connreq import CONNECTION_REQUEST, ConnectionRequestListener, Received
from tests.e2e.conftest import SESSION_TIMEOUT, Acs, new_phone
from tests.web.conftest import ACS

CR = "Device.ManagementServer.ConnectionRequest"
CR_USER, CR_PASSWORD = "cr-user", "cr-s3cret"


@pytest.fixture
def listening(acs: Acs) -> Iterator:
    """``listening(**options)``: a new phone, listening for connection requests, known to the ACS."""
    started: list[ConnectionRequestListener] = []

    def start(**options) -> ConnectionRequestListener:
        listener = ConnectionRequestListener(new_phone(), acs.url, session_timeout=SESSION_TIMEOUT, **options)
        started.append(listener.start())
        acs.session(listener.phone)  # first contact: the ACS learns where the phone listens
        return listener

    yield start
    for listener in started:
        listener.close()


def give_credentials(acs: Acs, listener: ConnectionRequestListener, username: str, password: str) -> None:
    """The phone's connection-request credentials, and the operator telling the ACS of them."""
    listener.phone.model.set(f"{CR}Username", username)
    listener.phone.model.set(f"{CR}Password", password)
    acs.cli(
        "device",
        "credentials",
        listener.phone.mac,
        "--connection-request",
        "--username",
        username,
        "--password",
        password,
    )


def acs_command(acs: Acs, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ACS, *args, "--db", acs.cli.db_url], capture_output=True, text=True, timeout=90, env=os.environ | env
    )


def test_now_and_wait_kicks_by_http_digest_and_the_task_completes(acs: Acs, listening) -> None:
    listener = listening()
    phone = listener.phone
    # The ACS gives the phone its connection-request credentials, and so knows them.
    acs.cli.queue(
        "set-values", f"{CR}Username={CR_USER}", f"{CR}Password={CR_PASSWORD}", "--device", phone.mac
    )
    acs.session(phone)
    assert (phone.value(f"{CR}Username"), phone.value(f"{CR}Password")) == (CR_USER, CR_PASSWORD)

    done = acs_command(acs, "task", "add", "reboot", "--device", phone.mac, "--now", "--wait", "30")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("; asking the device for a session now")
    assert lines[1] == f"connection request to {phone.device_id}: sent by HTTP: HTTP 200"
    assert lines[2] == "1 done"
    assert listener.received == [
        Received("http", "challenged", "no credentials"),
        Received("http", "accepted"),
    ]
    kicked, rebooted = listener.wait_for_sessions(2)
    assert kicked.inform.event_codes == [CONNECTION_REQUEST]
    assert [type(r).__name__ for r in kicked.requests] == ["Reboot"]
    assert set(rebooted.inform.event_codes) == {"1 BOOT", "M Reboot"}
    (task,) = acs.cli.tasks("--device", phone.mac, "--kind", "Reboot")
    assert task["status"] == "done"
    shown = acs.cli.device(phone.mac)
    assert shown["connection_request_username"] == CR_USER
    assert "connection_request_password" not in shown
    last = shown["last_connection_request"]
    assert (last["method"], last["outcome"], last["detail"]) == ("http", "sent", "HTTP 200")
    assert acs.errors() == []


def test_now_and_wait_kicks_a_udp_only_phone_and_the_task_completes(acs: Acs, listening) -> None:
    listener = listening(http=False, udp=True)
    phone = listener.phone
    give_credentials(acs, listener, CR_USER, CR_PASSWORD)
    shown = acs.cli.device(phone.mac)
    assert (shown["connection_request_url"], shown["udp_connection_request_address"]) == (
        "",
        listener.udp_address,
    )

    done = acs_command(
        acs,
        "task",
        "add",
        "get-values",
        "Device.DeviceInfo.SoftwareVersion",
        "--device",
        phone.mac,
        "--now",
        "--wait",
        "30",
    )

    assert done.returncode == 0, done.stderr
    assert (
        f"connection request to {phone.device_id}: sent by UDP: 3 datagrams to {listener.udp_address}"
        in done.stdout
    )
    assert "\n1 done\n" in done.stdout
    (session,) = listener.wait_for_sessions(1)
    assert session.inform.event_codes == [CONNECTION_REQUEST]
    assert [type(r).__name__ for r in session.requests] == ["GetParameterValues"]
    assert listener.received[0] == Received("udp", "accepted")
    assert {r.verdict for r in listener.received[1:]} <= {"dropped"}  # the repeats of one request
    history = acs.cli.json("device", "connection-requests", phone.mac)
    assert [(h["method"], h["outcome"]) for h in history] == [("udp", "sent")]


def test_a_phone_that_never_answers_the_kick_times_out_and_the_task_stays_queued(acs: Acs, listening) -> None:
    listener = listening(mute=True)
    phone = listener.phone

    started = time.monotonic()
    done = acs_command(
        acs, "task", "add", "reboot", "--device", phone.mac, "--now", "--wait", "2", ACS_CONNREQ_TIMEOUT="1.5"
    )

    assert done.returncode != 0
    assert f"connection request to {phone.device_id}: HTTP timed_out: no answer within 1.5 s" in done.stdout
    assert "1 task(s) not complete after 2 s; they stay queued" in done.stderr
    assert time.monotonic() - started >= 1.5 + 2
    assert listener.received == [Received("http", "ignored", "mute")]
    (task,) = acs.cli.tasks("--device", phone.mac)
    assert (task["kind"], task["status"]) == ("Reboot", "pending")
    (row,) = acs.cli.json("device", "connection-requests", phone.mac)
    assert (row["method"], row["outcome"]) == ("http", "timed_out")


def test_datagrams_a_phone_drops_leave_the_task_queued(acs: Acs, listening) -> None:
    listener = listening(http=False, udp=True, mute=True)
    phone = listener.phone

    done = acs_command(acs, "task", "add", "reboot", "--device", phone.mac, "--now", "--wait", "2")

    assert done.returncode != 0
    assert "sent by UDP: 3 datagrams" in done.stdout  # UDP has no answer to tell otherwise
    assert "1 task(s) not complete after 2 s; they stay queued" in done.stderr
    assert [r.verdict for r in listener.received] == ["ignored"] * 3
    (task,) = acs.cli.tasks("--device", phone.mac)
    assert task["status"] == "pending"


def test_device_kick_runs_what_was_queued_and_json_says_how(acs: Acs, listening) -> None:
    listener = listening()
    phone = listener.phone
    give_credentials(acs, listener, phone.mac, CR_PASSWORD)  # Cisco's default user name: the MAC
    task_id = acs.cli.queue("get-rpc-methods", "--device", phone.mac)

    (kick,) = acs.cli.json("device", "kick", phone.mac)

    assert (kick["device_id"], kick["outcome"], kick["method"]) == (phone.device_id, "sent", "http")
    (session,) = listener.wait_for_sessions(1)
    assert [type(r).__name__ for r in session.requests] == ["GetRPCMethods"]
    assert acs.cli.task(task_id)["status"] == "done"


def test_device_kick_exits_1_when_the_device_cannot_be_reached(acs: Acs) -> None:
    phone = new_phone()  # its ConnectionRequestURL is a made-up 10.x address: nothing answers there
    phone.listen_for_connection_requests("http://127.0.0.1:9/cr", "")
    acs.session(phone)

    result = acs.cli.run("device", "kick", phone.mac)

    assert result.exit_code == 1
    said = "HTTP unreachable: connection refused: nothing listens there"
    assert result.stdout == f"connection request to {phone.device_id}: {said}\n"
