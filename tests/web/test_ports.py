"""``acs serve`` on a busy port: the error, a non-zero exit at once, and no port left open."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.conftest import ACS
from tests.web.pki import Pki

#: each port option, with its socket type
OPTIONS = {
    "--port": socket.SOCK_STREAM,
    "--tls-port": socket.SOCK_STREAM,
    "--profile-port": socket.SOCK_STREAM,
    "--profile-tls-port": socket.SOCK_STREAM,
    "--tftp-port": socket.SOCK_DGRAM,
    "--nbi-port": socket.SOCK_STREAM,
    "--nbi-tls-port": socket.SOCK_STREAM,
}
#: what the error names for each
SERVICES = {
    "--port": "CWMP over HTTP",
    "--tls-port": "CWMP over HTTPS",
    "--profile-port": "profiles over HTTP",
    "--profile-tls-port": "profiles over HTTPS",
    "--tftp-port": "profiles over TFTP",
    "--nbi-port": "NBI over HTTP",
    "--nbi-tls-port": "NBI over HTTPS",
}


def held(kind: int) -> socket.socket:
    """A socket on 127.0.0.1, on a port the OS chose, held open (listening, for TCP)."""
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


@pytest.fixture
def ports() -> Iterator[dict[str, socket.socket]]:
    """A port of its own for every option: sockets the test holds until it gives them up."""
    socks = {option: held(kind) for option, kind in OPTIONS.items()}
    yield socks
    for sock in socks.values():
        sock.close()


def free(port: int, kind: int) -> bool:
    """Whether ``port`` can be bound again: nobody kept it."""
    probe = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


@pytest.mark.parametrize("busy", OPTIONS)
def test_a_busy_port_stops_the_start_at_once_and_leaves_no_port_open(
    db_url: str, tmp_path: Path, ports: dict[str, socket.socket], busy: str
) -> None:
    """Every other port is free when the server starts; the busy one is held by the test. The
    server says which port, exits 1 within the bound, and keeps none of the others (with a
    worker process too, which must not be started)."""
    numbers = {option: sock.getsockname()[1] for option, sock in ports.items()}
    for option, sock in ports.items():
        if option != busy:
            sock.close()
    args = [arg for option, port in numbers.items() for arg in (option, str(port))]
    cert = Pki(tmp_path).server()
    command = [ACS, "serve", "--db", db_url, "--host", "127.0.0.1", "--tls-cert", str(cert), "--workers", "2"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    port = numbers[busy]
    assert (
        f"Error: cannot listen: {SERVICES[busy]} on 127.0.0.1:{port}: Address already in use" in done.stderr
    )
    assert "Traceback" not in done.stderr
    ports[busy].close()
    assert [option for option, port in numbers.items() if not free(port, OPTIONS[option])] == []
