"""Nothing is lost: a server killed mid-session, and sessions that move between worker processes."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from acs import cwmp
from acs.cwmp import rpc
from acs.jobs import queue
from acs.session.service import KILL_BEFORE_COMMIT
from acs.store import create_engine
from acs.store.schema import sessions
from acs.testing import SessionError, SessionLog, SimulatedPhone, run_session
from tests.cwmp_messages import inform, message
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, Server, start_server
from tests.web.test_serve import BOOT_PARAMS, DEVICE, Cpe, acs

AUTH = ("--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD)
INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
INFORM_PARAMETER = "Device.ManagementServer.InformParameter."
VOIP_PROFILE = "Device.Services.VoiceService.1.VoIPProfile."
FIRMWARE = "http://192.0.2.80/sip88xx.12-0-2MPP-3.loads"
#: bounds every wait for a phone's session
SESSION_TIMEOUT = 15.0


def test_a_server_killed_mid_session_loses_no_task(db_url: str) -> None:
    server = start_server(db_url, *AUTH)
    try:
        cpe = Cpe(server)
        cpe.post(inform("1 BOOT", params=BOOT_PARAMS))
        cpe.post(b"")
        queued = json.loads(acs("task", "add", "reboot", "-d", DEVICE, "--db", db_url, "--json"))
        (task_id,) = queued["tasks"]
        cpe = Cpe(server)
        cpe.post(inform("2 PERIODIC"))
        _, body = cpe.post(b"")
        assert isinstance(cwmp.parse(body).body, rpc.Reboot)
        assert json.loads(acs("task", "show", str(task_id), "--db", db_url, "--json"))["status"] == "sent"
        server.process.send_signal(signal.SIGKILL)  # before the CPE could answer
        server.process.wait(10)
    finally:
        server.stop()

    server = start_server(db_url, *AUTH)
    try:
        cpe = Cpe(server)
        cpe.post(inform("2 PERIODIC"))
        status, body = cpe.post(b"")
        request = cwmp.parse(body)
        assert status == 200
        assert isinstance(request.body, rpc.Reboot)  # sent again, with the same CommandKey
        assert request.body.CommandKey == f"acs-{task_id}"
        assert cpe.post(message(rpc.RebootResponse(), id=request.ID)) == (204, b"")
        shown = json.loads(acs("task", "show", str(task_id), "--db", db_url, "--json"))
        assert shown["status"] == "sent"  # answered; done when the phone comes back with M Reboot
        assert shown["attempts"] == 2
        cpe = Cpe(server)
        cpe.post(inform("1 BOOT", "M Reboot", command_key=f"acs-{task_id}"))
        cpe.post(b"")
        assert json.loads(acs("task", "show", str(task_id), "--db", db_url, "--json"))["status"] == "done"
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def test_workers_share_the_port_and_continue_each_others_sessions(db_url: str) -> None:
    server: Server = start_server(db_url, *AUTH, "--workers", "2")
    try:
        (worker,) = _children(server.process.pid)
        for n in range(20):
            # every POST on a new connection: the kernel may give it to either process
            first = Cpe(server)
            assert first.post(inform("1 BOOT", serial=f"SN{n:04d}"))[0] == 200
            second = Cpe(server)
            second.cookie = first.cookie
            assert second.post(b"") == (204, b"")
        assert os.path.exists(f"/proc/{worker}")
    finally:
        server.stop()
    assert _gone(worker, within=10)  # the worker ends with its server, if not at the same instant


def _gone(pid: int, within: float) -> bool:
    import time

    deadline = time.monotonic() + within
    while os.path.exists(f"/proc/{pid}") and not _zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not os.path.exists(f"/proc/{pid}") or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _self_signed(tmp_path: Path) -> Path:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "acs.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_tls_with_two_workers_and_basic_auth_inside_it(db_url: str, tmp_path: Path) -> None:
    import base64
    import http.client
    import ssl

    server = start_server(db_url, *AUTH, "--workers", "2", "--tls-cert", str(_self_signed(tmp_path)))
    try:
        assert server.tls_port is not None
        context = ssl.create_default_context(cafile=str(tmp_path / "acs.pem"))
        context.check_hostname = False
        basic = "Basic " + base64.b64encode(f"{CPE_USERNAME}:{CPE_PASSWORD}".encode()).decode()
        for _ in range(4):
            conn = http.client.HTTPSConnection(server.host, server.tls_port, timeout=10, context=context)
            conn.request("POST", "/", inform("1 BOOT"))
            r = conn.getresponse()
            r.read()
            assert r.status == 401
            assert any(c.startswith("Basic") for c in r.headers.get_all("WWW-Authenticate"))
            conn.request("POST", "/", inform("1 BOOT"), {"Authorization": basic})
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            conn.request("POST", "/", b"", {"Cookie": r.getheader("Set-Cookie").split(";")[0]})
            r = conn.getresponse()
            assert (r.status, r.read()) == (204, b"")
    finally:
        server.stop()


def test_workers_stop_when_the_first_process_is_killed(db_url: str) -> None:

    server = start_server(db_url, *AUTH, "--workers", "2")
    (worker,) = _children(server.process.pid)
    server.process.send_signal(signal.SIGKILL)  # no chance to stop its workers itself
    server.process.wait(10)
    try:
        assert _gone(worker, within=15)
    finally:
        if os.path.exists(f"/proc/{worker}"):
            os.kill(worker, signal.SIGKILL)


def test_the_sweep_times_out_silent_sessions_and_expires_overdue_tasks(db_url: str) -> None:
    """No Inform needed: the server's own sweep does both, within its interval."""
    server = start_server(db_url, *AUTH, "--session-timeout", "1")
    engine = create_engine(db_url)
    try:
        cpe = Cpe(server)
        assert cpe.post(inform("1 BOOT", params=BOOT_PARAMS))[0] == 200  # ... and never posts again
        queued = json.loads(
            acs("task", "add", "reboot", "-d", DEVICE, "--expires", "1s", "--db", db_url, "--json")
        )
        (task_id,) = queued["tasks"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = json.loads(acs("task", "show", str(task_id), "--db", db_url, "--json"))["status"]
            with engine.connect() as conn:
                states = set(conn.execute(sa.select(sessions.c.status)).scalars())
            if status == "expired" and states == {"timed_out"}:
                break
            time.sleep(0.2)
        assert (status, states) == ("expired", {"timed_out"})
    finally:
        engine.dispose()
        server.stop()


def _phone() -> SimulatedPhone:
    return SimulatedPhone(username=CPE_USERNAME, password=CPE_PASSWORD)


def _session(phone: SimulatedPhone, server: Server) -> SessionLog:
    log = run_session(phone, server.url, timeout=SESSION_TIMEOUT)
    assert log.statuses[-1] == 204, log.transcript()
    return log


def _killed(phone: SimulatedPhone, server: Server) -> SessionLog:
    """A session the server dies in (``ACS_TEST_KILL_BEFORE_COMMIT``): what the phone got through."""
    with pytest.raises(SessionError) as died:
        run_session(phone, server.url, timeout=SESSION_TIMEOUT)
    assert server.process.wait(10) == -signal.SIGKILL
    log: SessionLog = died.value.log
    return log


#: what the crash test queues, one at a time, and the response the server dies on
CRASHES: list[tuple[str, dict[str, Any]]] = [
    ("SetParameterValues", {"ParameterList": [[INTERVAL, 120]]}),
    ("AddObject", {"ObjectName": INFORM_PARAMETER}),
    ("DeleteObject", {"ObjectName": f"{VOIP_PROFILE}1."}),
    ("Download", {"FileType": "1 Firmware Upgrade Image", "URL": FIRMWARE}),
    ("Reboot", {}),
]


def test_a_server_killed_between_the_phones_answer_and_its_commit_does_nothing_twice(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each kind in turn: the phone applies it and answers, the server dies before its commit, a new
    server starts and the phone's next Inform tells it the task was done: nothing is sent again."""
    monkeypatch.setenv(KILL_BEFORE_COMMIT, ",".join(f"{kind}Response" for kind, _ in CRASHES))
    engine = create_engine(db_url)
    phone = _phone()
    instances = len(phone.model.instances(INFORM_PARAMETER))
    server = start_server(db_url, *AUTH)
    try:
        _session(phone, server)
        for kind, args in CRASHES:
            task_id = queue.enqueue(engine, phone.device_id, kind, args)
            log = _killed(phone, server)
            assert [type(r).__name__ for r in log.requests] == [kind]
            assert phone.applied[(kind, f"acs-{task_id}")] == 1  # and it answered
            server = start_server(db_url, *AUTH, discovery=True)  # (switched off by the first start)

            log = _session(phone, server)

            assert kind not in [type(r).__name__ for r in log.requests], log.transcript()
            task = queue.get(engine, task_id)
            assert task is not None and (task.status, task.attempts) == ("done", 1), task
        assert set(phone.applied.values()) == {1}
        assert len(phone.model.instances(INFORM_PARAMETER)) == instances + 1
        assert not [line for line in server.log if "Traceback" in line]
    finally:
        server.stop()
        engine.dispose()


def _statuses(engine: sa.Engine, ids: list[int]) -> list[str]:
    return [task.status if (task := queue.get(engine, i)) else "missing" for i in ids]


def test_tasks_under_repeated_kills_before_commit_each_run_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 tasks; the server is killed before committing one of the phone's answers (the Nth change,
    N drawn from 2-12 with a fixed seed), again and again. Every task ends done, and the phone
    carried out each change once. (N >= 2: a task sent again is the next process's first answer,
    committed, so no task runs out of attempts.)"""
    rng = random.Random(12)
    engine = create_engine(db_url)
    phone = _phone()
    instances = len(phone.model.instances(INFORM_PARAMETER))
    kinds: list[tuple[str, dict[str, Any]]] = (
        [("SetParameterValues", {"ParameterList": [[INTERVAL, 60 + n]]}) for n in range(50)]
        + [("AddObject", {"ObjectName": INFORM_PARAMETER})] * 14
        + [("GetParameterValues", {"ParameterNames": [INTERVAL]})] * 26
        + [("Reboot", {})] * 10
    )
    rng.shuffle(kinds)
    server = start_server(db_url, *AUTH)
    kills = 0
    try:
        _session(phone, server)
        server.stop()
        ids = [queue.enqueue(engine, phone.device_id, kind, args) for kind, args in kinds]
        for _ in range(40):  # sessions, at most
            if set(_statuses(engine, ids)) == {"done"}:
                break
            if server.process.poll() is not None:
                changes = "SetParameterValuesResponse,AddObjectResponse,RebootResponse"
                monkeypatch.setenv(KILL_BEFORE_COMMIT, f"{changes}:{rng.randint(2, 12)}")
                server = start_server(db_url, *AUTH, discovery=True)  # (switched off by the first start)
            try:
                run_session(phone, server.url, timeout=SESSION_TIMEOUT)
            except SessionError:
                assert server.process.wait(10) == -signal.SIGKILL
                kills += 1
        assert _statuses(engine, ids) == ["done"] * len(ids)
        assert kills >= 8
        changed = {key: n for key, n in phone.applied.items() if key[0] != "GetParameterValues"}
        assert len(changed) == 50 + 14 + 10
        assert set(changed.values()) == {1}
        assert len(phone.model.instances(INFORM_PARAMETER)) == instances + 14
    finally:
        server.stop()
        engine.dispose()
