"""Nothing is lost: a server killed mid-session, and sessions that move between worker processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from acs import cwmp
from acs.cwmp import rpc
from acs.store import create_engine
from acs.store.schema import sessions
from tests.cwmp_messages import inform, message
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, Server, start_server
from tests.web.test_serve import BOOT_PARAMS, DEVICE, Cpe, acs

AUTH = ("--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD)


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
    assert not os.path.exists(f"/proc/{worker}") or _zombie(worker)


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
    import time

    server = start_server(db_url, *AUTH, "--workers", "2")
    (worker,) = _children(server.process.pid)
    server.process.send_signal(signal.SIGKILL)  # no chance to stop its workers itself
    server.process.wait(10)
    deadline = time.monotonic() + 15
    while os.path.exists(f"/proc/{worker}") and not _zombie(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert not os.path.exists(f"/proc/{worker}") or _zombie(worker)
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
