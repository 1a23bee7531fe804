"""The real ``acs serve`` against clients that would hold its HTTP ports: slow heads and bodies,
connections over the caps, pipelined requests whose answers are never read, over-long heads in a
pipelined burst, half-closed clients; on the CWMP, profile and NBI ports, over HTTP and HTTPS."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from acs.cli import main
from acs.testing import SimulatedPhone
from tests.web.conftest import Server, start_server
from tests.web.pki import Pki

#: the store does not matter here: the HTTP server in front of it does
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

MAC = "00562b043615"
HEAD_TIMEOUT = 2
#: 32 bytes: 512 of them make 16 KiB
GET = b"GET / HTTP/1.1\r\nHost: ac.lan\r\n\r\n"
WAIT = 20.0


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[Callable[..., tuple[Server, str]]]:
    """``acs serve --no-auth`` with a phone, its profile and an API token: (server, token)."""
    (tmp_path / "inventory.csv").write_text(f"mac,serial,model\n{MAC},FCH2233A1B2,CP-8841-3PCC\n")
    (tmp_path / "base.xml").write_text(
        '<flat-profile>\n  <Proxy_1_ ua="na">sip.example.net</Proxy_1_>\n</flat-profile>\n'
    )
    runner = CliRunner()
    for command in (
        ["device", "import", str(tmp_path / "inventory.csv")],
        ["profile", "create", "base", str(tmp_path / "base.xml")],
        ["profile", "assign", "base", "--default"],
    ):
        result = runner.invoke(main, [*command, "--db", db_url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    made = runner.invoke(
        main, ["token", "create", "--role", "read", "--name", "oss", "--json", "--db", db_url]
    )
    token = json.loads(made.output)["token"]
    started: list[Server] = []

    def run(*args: str, nofile: int | None = None) -> tuple[Server, str]:
        server = start_server(
            db_url,
            "--no-auth",
            "--profile-auth",
            "none",
            "--http-head-timeout",
            str(HEAD_TIMEOUT),
            *args,
            nofile=nofile,
        )
        started.append(server)
        return server, token

    yield run
    for server in started:
        server.stop()


def legitimate(
    server: Server, token: str, service: str, port: int | None = None, tls: Pki | None = None
) -> int:
    """A phone's Inform, its profile, a device list: what a legitimate client asks of each port."""
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    else:
        context = ssl.create_default_context(cafile=str(tls.directory / "ca.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        if service == "CWMP":
            conn.request("POST", "/", inform(), {"Content-Type": "text/xml", "SOAPAction": ""})
        elif service == "profiles":
            conn.request("GET", f"/{MAC}.cfg")
        else:
            conn.request("GET", "/devices?limit=1", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def inform() -> bytes:
    body = SimulatedPhone("CP-8841-3PCC", "FCH2233A1B2", MAC).session().start()
    assert body is not None
    return body


def ports(server: Server) -> dict[str, int]:
    return {"CWMP": server.port, "profiles": server.profile_port, "NBI": server.nbi_port}  # type: ignore[dict-item]


def fds(server: Server) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def rss_mb(server: Server) -> float:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def closed_by_server(sock: socket.socket) -> bool:
    """The server's FIN or RST came (TCP_INFO's state: CLOSE or CLOSE_WAIT), read or not."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] in (7, 8)


def answers(sock: socket.socket) -> list[int]:
    """The statuses of the answers the server sends until it closes, framed by their Content-Length."""
    sock.settimeout(WAIT)
    data = b""
    with contextlib.suppress(ConnectionResetError, ssl.SSLError):
        while chunk := sock.recv(65536):
            data += chunk
    statuses = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        statuses.append(int(lines[0].split()[1]))
        length = next(
            (
                int(v)
                for k, _, v in (line.partition(b": ") for line in lines)
                if k.lower() == b"content-length"
            ),
            0,
        )
        data = data[length:]
    return statuses


def test_slow_clients_are_cut_at_their_deadline_shed_over_the_cap_and_phones_are_served(serve):
    server, token = serve("--http-max-connections", "60", nofile=256)
    targets = list(ports(server).values())
    base = fds(server)
    with contextlib.ExitStack() as stack:
        slow = []
        for n in range(150):  # a slowloris: a head, then a byte a second, never its end
            sock = stack.enter_context(socket.socket())
            sock.bind((f"127.0.0.{2 + n % 3}", 0))
            sock.connect(("127.0.0.1", targets[n % 3]))
            sock.sendall(b"GET /")
            slow.append(sock)
        time.sleep(0.5)
        assert fds(server) <= base + 60 + 5  # the cap: each new one over it shed the longest waiting
        for service, port in ports(server).items():  # and a legitimate client is served at once
            started = time.monotonic()
            assert legitimate(server, token, service, port) == 200
            assert time.monotonic() - started < 2
        for _ in range(HEAD_TIMEOUT + 3):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"a")
            time.sleep(1)
        assert all(closed_by_server(sock) for sock in slow)  # the trickle did not hold any of them
        timed_out = [sock for sock in slow if answers(sock) == [408]]
        assert 50 <= len(timed_out) <= 60  # the others were shed (reset, no answer)
    assert any("shed (waiting on its client the longest)" in line for line in server.log)


def test_a_body_slower_than_the_minimum_rate_is_cut(serve):
    server, _ = serve("--http-min-rate", "100")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Length: 10000\r\n\r\n")
        started = time.monotonic()
        while not closed_by_server(sock) and time.monotonic() - started < WAIT:
            with contextlib.suppress(OSError):
                sock.send(b"x" * 50)  # 50 bytes/s: half the minimum
            time.sleep(1)
        assert answers(sock) == [408]
    assert HEAD_TIMEOUT < time.monotonic() - started < HEAD_TIMEOUT + 10


def test_a_client_that_pipelines_and_never_reads_costs_a_bounded_buffer_and_is_let_go(serve):
    server, token = serve("--session-timeout", "3")
    before = rss_mb(server)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setblocking(False)
        burst = pending = GET * 512
        sent, started = 0, time.monotonic()
        while time.monotonic() - started < 8:  # 2 MB/s of requests at most, never a byte read
            try:
                done = sock.send(pending)
            except BlockingIOError:
                done = 0
            except ConnectionResetError:
                break  # the server let it go already
            sent += done
            pending = pending[done:] or burst  # whole requests: a cut one is finished first
            time.sleep(len(burst) / 2e6)
        grown = rss_mb(server) - before
        assert grown < 16, f"the server grew by {grown:.0f} MB for {sent / 1e6:.0f} MB of requests"
        deadline = time.monotonic() + WAIT
        while not closed_by_server(sock) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert closed_by_server(sock), "the server keeps a connection whose client takes nothing"
    assert legitimate(server, token, "CWMP", server.port) == 200


def test_a_pipelined_burst_with_a_head_over_the_limit_is_answered_then_431(serve):
    server, _ = serve()
    for port in (server.port,):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(GET * 3 + b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n" + GET)
            assert answers(sock) == [405, 405, 405, 431]


@pytest.mark.parametrize("service", ["CWMP", "profiles", "NBI"])
def test_a_half_closed_client_gets_its_answer(serve, service):
    server, token = serve()
    requests = {
        "CWMP": b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s"
        % (len(inform()), inform()),
        "profiles": b"GET /%s.cfg HTTP/1.1\r\nHost: acs\r\n\r\n" % MAC.encode(),
        "NBI": b"GET /devices?limit=1 HTTP/1.1\r\nHost: acs\r\nAuthorization: Bearer %s\r\n\r\n"
        % token.encode(),
    }
    with socket.create_connection(("127.0.0.1", ports(server)[service])) as sock:
        sock.sendall(requests[service])
        sock.shutdown(socket.SHUT_WR)  # all it will send: curl --no-keepalive, nc -N, scripts do this
        assert answers(sock) == [200]


@pytest.mark.parametrize("service", ["CWMP", "profiles", "NBI"])
def test_the_https_ports_have_the_deadlines_too(serve, tmp_path, service):
    pki = Pki(tmp_path)
    server, token = serve("--tls-cert", str(pki.server()))
    port = {"CWMP": server.tls_port, "profiles": server.profile_tls_port, "NBI": server.nbi_tls_port}[service]
    context = ssl.create_default_context(cafile=str(pki.directory / "ca.pem"))
    with (
        socket.create_connection(("127.0.0.1", port)) as silent,
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as slow,
    ):
        slow.sendall(b"GET /")  # a head over TLS, a byte a second
        for _ in range(HEAD_TIMEOUT + 3):
            with contextlib.suppress(OSError):
                slow.send(b"a")
            time.sleep(1)
        assert closed_by_server(silent)  # no handshake at all: the head's deadline runs from the opening
        assert answers(slow) == [408]
    assert legitimate(server, token, service, port, tls=pki) == 200
