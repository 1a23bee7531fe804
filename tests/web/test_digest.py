"""HTTP Digest against the real ``acs serve`` (SQLite and PostgreSQL): answers are used once (their
nonce count must grow, whichever worker gets them), bound to the request target and, with
``qop=auth-int``, to the body; real clients (curl, urllib, requests) get in; a request's
credentials are checked before its body is read, and a user name no device has costs no database
lookup per request."""

from __future__ import annotations

import gzip
import http.client
import json
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import sqlalchemy as sa
from requests.auth import HTTPDigestAuth

from acs import cwmp
from acs.cwmp import rpc
from acs.web.auth import DigestAuth
from tests.cwmp_messages import inform
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, Server, start_server
from tests.web.test_identity import Cpe, log_lines
from tests.web.test_serve import BOOT_PARAMS, DEVICE, acs

INFORM = inform("1 BOOT", params=BOOT_PARAMS)


def challenge(server: Server) -> str:
    """The Digest challenge a POST without credentials gets."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("POST", "/", b"")
        response = conn.getresponse()
        response.read()
        assert response.status == 401
        (digest,) = [c for c in response.headers.get_all("WWW-Authenticate") if c.startswith("Digest")]
        return digest
    finally:
        conn.close()


def post(
    server: Server, body: bytes, authorization: str | None = None, path: str = "/", **headers: str
) -> tuple[int, bytes, http.client.HTTPResponse]:
    """One POST on a new connection, with a hand-made Authorization header."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        if authorization:
            headers["Authorization"] = authorization
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def sessions_of(server: Server, device: str = DEVICE) -> int:
    """How many Informs the store recorded for the device (0 when it is unknown)."""
    listed = json.loads(acs("device", "list", "--db", server.db_url, "--json"))
    if device not in [d["id"] for d in listed]:
        return 0
    events = json.loads(acs("device", "events", device, "--db", server.db_url, "--json"))
    return sum(1 for e in events if e["code"] == "1 BOOT")


def test_a_replayed_answer_is_refused_with_the_same_or_a_lower_nonce_count(server: Server) -> None:
    client = DigestAuth(CPE_USERNAME, CPE_PASSWORD)
    assert client.challenge([challenge(server)])
    first = client.authorization("POST", "/")
    assert first is not None and "nc=00000001" in first
    assert post(server, INFORM, first)[0] == 200
    status, _, response = post(server, INFORM, first)  # the same header again, on a new connection
    assert status == 401 and "stale=true" in response.getheader("WWW-Authenticate", "")
    third = client.authorization("POST", "/")  # nc=2: accepted
    fourth = client.authorization("POST", "/")  # nc=3
    assert post(server, INFORM, fourth)[0] == 200
    assert post(server, INFORM, third)[0] == 401  # nc=2 after nc=3: lower
    assert sessions_of(server) == 2
    assert log_lines(server, "seen before; refused")


def test_replays_are_refused_by_every_worker(db_url: str) -> None:
    """``--workers 2``: each POST on a new connection, which the kernel gives to either process."""
    server = start_server(
        db_url, "--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD, "--workers", "2"
    )
    try:
        client = DigestAuth(CPE_USERNAME, CPE_PASSWORD)
        assert client.challenge([challenge(server)])
        answer = client.authorization("POST", "/")
        statuses = [post(server, INFORM, answer)[0] for _ in range(16)]
        assert statuses.count(200) == 1 and statuses.count(401) == 15
        assert sessions_of(server) == 1
    finally:
        server.stop()


def test_the_uri_must_be_the_request_target(server: Server) -> None:
    client = DigestAuth(CPE_USERNAME, CPE_PASSWORD)
    assert client.challenge([challenge(server)])
    for_other = client.authorization("POST", "/other")
    assert post(server, INFORM, for_other)[0] == 401  # sent to /
    assert post(server, INFORM, for_other, path="/other")[0] == 200
    absolute = client.authorization("POST", f"http://{server.host}:{server.port}/acs")
    assert post(server, INFORM, absolute, path="/acs")[0] == 200  # the same target, in absolute form


def test_auth_int_covers_the_body(server: Server) -> None:
    assert 'qop="auth,auth-int"' in challenge(server)
    client = DigestAuth(CPE_USERNAME, CPE_PASSWORD, qop="auth-int")
    assert client.challenge([challenge(server)])
    answer = client.authorization("POST", "/", INFORM)
    assert answer is not None and "qop=auth-int" in answer
    other_body = inform("1 BOOT", serial="OTHER-1")
    assert post(server, other_body, answer)[0] == 401  # the answer is for another body
    assert sessions_of(server, DEVICE.replace("FCH2233A1B2", "OTHER-1")) == 0
    assert post(server, INFORM, answer)[0] == 200  # its own body: the count was not taken by the refusal
    squeezed = gzip.compress(INFORM)  # the body as sent: compressed
    gzipped = client.authorization("POST", "/", squeezed)
    assert post(server, squeezed, gzipped, **{"Content-Encoding": "gzip"})[0] == 200


def test_rfc_2069_answers_open_one_request_each(server: Server) -> None:
    client = DigestAuth(CPE_USERNAME, CPE_PASSWORD)
    assert client.challenge([challenge(server).replace('qop="auth,auth-int", ', "")])
    answer = client.authorization("POST", "/")
    assert answer is not None and "nc=" not in answer
    assert post(server, INFORM, answer)[0] == 200
    assert post(server, INFORM, answer)[0] == 401  # no count to grow: the nonce is spent


def test_curl_urllib_and_requests_digest_open_sessions(server: Server, tmp_path: Path) -> None:
    body = tmp_path / "inform.xml"
    body.write_bytes(INFORM)
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "15", "--digest", "-u", f"{CPE_USERNAME}:{CPE_PASSWORD}",
         "--data-binary", f"@{body}", "-o", str(tmp_path / "out"), "-w", "%{http_code}", server.url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.stdout == "200", done.stderr
    assert isinstance(cwmp.parse((tmp_path / "out").read_bytes()).body, rpc.InformResponse)

    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, server.url, CPE_USERNAME, CPE_PASSWORD)
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))
    # urllib answers the challenge on a new connection: nonces are not bound to one
    with opener.open(urllib.request.Request(server.url, INFORM, method="POST"), timeout=10) as response:
        assert response.status == 200 and b"InformResponse" in response.read()

    with requests.Session() as session:
        response = session.post(server.url, data=INFORM, auth=HTTPDigestAuth(CPE_USERNAME, CPE_PASSWORD))
        assert response.status_code == 200 and b"InformResponse" in response.content
        assert session.post(server.url, data=b"").status_code == 204  # the session, on its connection
    assert sessions_of(server) == 3


def test_credentials_are_checked_before_the_body_is_read(server: Server) -> None:
    client = DigestAuth(CPE_USERNAME, "wrong")
    assert client.challenge([challenge(server)])
    assert post(server, b"<unclosed", client.authorization("POST", "/"))[0] == 401  # not 400: unparsed
    bomb = gzip.compress(b"<" * (8 << 20))  # inflates to over the size cap
    status, _, _ = post(server, bomb, client.authorization("POST", "/"), **{"Content-Encoding": "gzip"})
    assert status == 401  # not 413: not inflated either
    right = DigestAuth(CPE_USERNAME, CPE_PASSWORD)
    assert right.challenge([challenge(server)])
    assert post(server, b"<unclosed", right.authorization("POST", "/"))[0] == 400  # now it is read


@contextmanager
def devices_unreachable(db_url: str) -> Iterator[None]:
    """While this runs, any statement of the server's on the devices table fails (SQLite: the table is
    renamed) or waits (PostgreSQL: the table is locked)."""
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("ALTER TABLE devices RENAME TO devices_away")
        try:
            yield
        finally:
            conn.execute("ALTER TABLE devices_away RENAME TO devices")
            conn.close()
        return
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        engine.dispose()


def test_a_user_name_no_device_has_costs_no_lookup_per_request(server: Server) -> None:
    """The first request with an unknown user name looks it up; then, with the devices table out of
    the server's reach, a hundred more are refused at once. Once a device has the name (in another
    process: the CLI), the server finds it again within seconds."""
    assert Cpe(server).post(INFORM)[0] == 200
    stranger = Cpe(server, "stranger", "pw-s")
    assert stranger.post(inform("2 PERIODIC"))[0] == 401
    statuses: list[int] = []
    with devices_unreachable(server.db_url):
        started = time.monotonic()
        for _ in range(100):
            statuses.append(Cpe(server, "stranger", "pw-s").post(inform("2 PERIODIC"))[0])
        elapsed = time.monotonic() - started
    assert statuses == [401] * 100
    assert elapsed < 20
    assert 1 <= len(log_lines(server, "no device has the user name 'stranger'")) <= 5  # bounded
    assert not [line for line in server.log if "Traceback" in line]

    acs(
        "device", "credentials", DEVICE, "--username", "stranger", "--password", "pw-s", "--db", server.db_url
    )
    deadline = time.monotonic() + 10
    while (
        status := Cpe(server, "stranger", "pw-s").post(inform("2 PERIODIC", params=BOOT_PARAMS))[0]
    ) != 200:
        assert status == 401 and time.monotonic() < deadline
        time.sleep(0.2)


def test_many_phones_authenticate_at_once(server: Server) -> None:
    """Nonces are each challenge's own: phones challenged in the same second never share a count."""
    results: list[int] = []

    def phone(n: int) -> None:
        results.append(Cpe(server).post(inform("1 BOOT", serial=f"SN{n:03d}"))[0])

    threads = [threading.Thread(target=phone, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 20
