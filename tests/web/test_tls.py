"""HTTPS on every port of the real ``acs serve``: ALPN as clients offer it, HTTP and HTTPS side by
side, workers sharing both CWMP ports; with real ``curl``, Python's ``ssl`` and the simulated phone."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acs.testing import SimulatedPhone, run_session
from acs.testing.client import tls_context
from tests.web.conftest import ACS, CPE_PASSWORD, CPE_USERNAME, Server, start_server
from tests.web.pki import Pki

AUTH = ("--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD)
#: each HTTPS port, a path on it and what a GET there answers
PORTS = {
    "CWMP": ("tls_port", "/", 405),
    "profiles": ("profile_tls_port", "/000000000000.cfg", 404),
    "NBI": ("nbi_tls_port", "/openapi.json", 200),
}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def tls_server(db_url: str, pki: Pki) -> Iterator[Server]:
    server = start_server(db_url, *AUTH, "--tls-cert", str(pki.server()))
    yield server
    server.stop()


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "15", *args], capture_output=True, text=True, timeout=30, check=False
    )


def handshake(port: int, alpn: list[str] | None, cafile: Path) -> str | None:
    """A TLS handshake offering ``alpn`` (None: no ALPN), then a GET over it: the protocol selected."""
    context = ssl.create_default_context(cafile=str(cafile))
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: acs\r\nConnection: close\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 ")
        return tls.selected_alpn_protocol()


@pytest.mark.parametrize("service", PORTS)
def test_curl_gets_http_1_1_on_every_https_port_whatever_it_offers(
    tls_server: Server, pki: Pki, service: str
) -> None:
    attribute, path, status = PORTS[service]
    url = f"https://127.0.0.1:{getattr(tls_server, attribute)}{path}"
    for offer in ("", "--http2", "--no-alpn", "--http1.1"):
        written = "%{http_code} %{http_version}"
        done = curl("-v", "--cacert", str(pki.ca_path), "-o", "/dev/null", "-w", written, *offer.split(), url)
        assert (done.returncode, done.stdout) == (0, f"{status} 1.1"), (offer, done.stderr)
        if offer == "--no-alpn":
            assert "ALPN" not in done.stderr
        else:
            assert "ALPN: server accepted http/1.1" in done.stderr, done.stderr


@pytest.mark.parametrize("service", PORTS)
def test_python_ssl_alpn_http_1_1_or_none_is_served_and_h2_alone_gets_the_alert(
    tls_server: Server, pki: Pki, service: str
) -> None:
    port = getattr(tls_server, PORTS[service][0])
    assert handshake(port, ["http/1.1"], pki.ca_path) == "http/1.1"
    assert handshake(port, ["h2", "http/1.1"], pki.ca_path) == "http/1.1"
    assert handshake(port, None, pki.ca_path) is None
    with pytest.raises(ssl.SSLError, match="alert no application protocol"):
        handshake(port, ["h2"], pki.ca_path)
    assert handshake(port, ["http/1.1"], pki.ca_path) == "http/1.1"  # and the port still serves


def test_the_simulated_phone_runs_a_whole_session_over_https_from_the_shell(
    tls_server: Server, pki: Pki
) -> None:
    url = f"https://127.0.0.1:{tls_server.tls_port}/"
    done = subprocess.run(
        [sys.executable, "-m", "acs.testing.client", url, "--cafile", str(pki.ca_path),
         "--username", CPE_USERNAME, "--password", CPE_PASSWORD, "--follow"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1:] == [
        "  POST Inform -> 401 (empty)",
        "  POST Inform -> 200 InformResponse",
        "  POST (empty) -> 204 (empty)",
    ], done.stdout


def test_http_and_https_side_by_side_on_every_service(tls_server: Server, pki: Pki) -> None:
    """--tls-cert adds the HTTPS ports beside the HTTP ones; the start-up lines say which is which."""
    lines = "".join(tls_server.log)
    for service in ("CWMP", "profiles", "NBI"):
        assert f"{service} on http://127.0.0.1:" in lines and " and https://127.0.0.1:" in lines
    assert f"acs: HTTPS with {pki.directory / 'acs.pem'}; no client certificates asked for" in lines
    plain = SimulatedPhone.numbered(1, username=CPE_USERNAME, password=CPE_PASSWORD)
    secure = SimulatedPhone.numbered(2, username=CPE_USERNAME, password=CPE_PASSWORD)
    http_log = run_session(plain, f"http://127.0.0.1:{tls_server.port}/", timeout=15)
    https_log = run_session(
        secure,
        f"https://127.0.0.1:{tls_server.tls_port}/",
        timeout=15,
        ssl_context=tls_context(str(pki.ca_path)),
    )
    assert http_log.statuses == https_log.statuses == [401, 200, 204]
    listed = subprocess.run(
        [ACS, "device", "list", "--db", tls_server.db_url], capture_output=True, text=True, check=True
    ).stdout
    assert plain.device_id in listed and secure.device_id in listed


def _listening(pid: int) -> set[int]:
    """The TCP ports process ``pid`` has listening sockets on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_workers_share_both_cwmp_ports_and_only_them(db_url: str, pki: Pki) -> None:
    server = start_server(db_url, *AUTH, "--tls-cert", str(pki.server()), "--workers", "2")
    try:
        (worker,) = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
        assert server.tls_port is not None
        assert _listening(int(worker)) == {server.port, server.tls_port}
        context = tls_context(str(pki.ca_path))
        for n in range(10):  # each session on new connections: either process may take them
            phone = SimulatedPhone.numbered(n, username=CPE_USERNAME, password=CPE_PASSWORD)
            url = f"https://127.0.0.1:{server.tls_port}/"
            assert run_session(phone, url, timeout=15, ssl_context=context).statuses == [401, 200, 204]
    finally:
        server.stop()


def test_https_only_cwmp(db_url: str, pki: Pki) -> None:
    """--port off: CWMP on HTTPS alone, the line that says so starts with it."""
    server = start_server(db_url, *AUTH, "--tls-cert", str(pki.server()), "--port", "off")
    try:
        assert server.url == f"https://127.0.0.1:{server.tls_port}/"
        assert "CWMP on https://" in "".join(server.log) and "CWMP on http://" not in "".join(server.log)
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port, timeout=15, context=tls_context(str(pki.ca_path))
        )
        conn.request("GET", "/")
        assert conn.getresponse().status == 405
        conn.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-port", "0"], "--tls-port needs --tls-cert"),
        (["--nbi-tls-port", "0"], "--nbi-tls-port needs --tls-cert"),
        (["--tls-client-ca", "{ca}"], "--tls-client-ca needs --tls-cert"),
        (["--tls-cert", "{cert}", "--tls-port", "off", "--profile-tls-port", "off", "--nbi-tls-port", "off"],
         "--tls-cert is given but every HTTPS port is off"),
        (["--port", "off"], "no CWMP port: give --port or --tls-port"),
    ],
)  # fmt: skip
def test_port_options_that_cannot_do_what_was_meant_are_refused(
    db_url: str, pki: Pki, args: list[str], message: str
) -> None:
    args = [a.format(ca=pki.ca_path, cert=pki.server()) for a in args]
    done = subprocess.run(
        [ACS, "serve", "--db", db_url, "--host", "127.0.0.1", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize("which", ["--tls-cert", "--tls-client-ca"])
def test_a_file_that_is_no_certificate_stops_the_start_with_its_name(
    db_url: str, pki: Pki, which: str
) -> None:
    bad = pki.directory / "not-a-certificate.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    files = {"--tls-cert": str(pki.server()), "--tls-client-ca": str(pki.ca_path)} | {which: str(bad)}
    args = [arg for option, path in files.items() for arg in (option, path)]
    done = subprocess.run(
        [ACS, "serve", "--db", db_url, "--host", "127.0.0.1", "--port", "0", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"Error: cannot serve HTTPS: {bad}:" in done.stderr and "Traceback" not in done.stderr
