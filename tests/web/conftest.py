"""A real ``acs serve`` process on 127.0.0.1, on a port the OS chooses, stopped after the test."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ACS = str(Path(sys.executable).with_name("acs"))
_LISTENING = re.compile(r"CWMP on (https?)://([\d.]+):(\d+)/")
_CWMP_TLS = re.compile(r"CWMP on .*?https://[\d.]+:(\d+)/")
_PROFILES = re.compile(r"profiles on http://[\d.]+:(\d+)/")
_PROFILES_TLS = re.compile(r"profiles on .*?https://[\d.]+:(\d+)/")
_TFTP = re.compile(r"profiles over TFTP on [\d.]+:(\d+)")
_NBI = re.compile(r"NBI on http://[\d.]+:(\d+)/")
_NBI_TLS = re.compile(r"NBI on .*?https://[\d.]+:(\d+)/")
#: the HTTPS ports' options: each on a port of its own when the test gives --tls-cert
_TLS_PORTS = ("--tls-port", "--profile-tls-port", "--nbi-tls-port")
START_TIMEOUT = 30


@dataclass
class Server:
    process: subprocess.Popen[str]
    host: str
    #: the first CWMP port the server names (plain HTTP unless it is off)
    port: int
    db_url: str
    log: list[str] = field(default_factory=list)
    scheme: str = "http"

    def port_of(self, pattern: re.Pattern[str]) -> int | None:
        return next((int(m.group(1)) for line in self.log if (m := pattern.search(line))), None)

    @property
    def profile_port(self) -> int | None:
        """The profile server's HTTP port (``--profile-port 0`` unless the test gave one)."""
        return self.port_of(_PROFILES)

    @property
    def tls_port(self) -> int | None:
        """The CWMP port over HTTPS (``--tls-port 0`` with ``--tls-cert`` unless the test gave one)."""
        return self.port_of(_CWMP_TLS)

    @property
    def profile_tls_port(self) -> int | None:
        return self.port_of(_PROFILES_TLS)

    @property
    def nbi_tls_port(self) -> int | None:
        return self.port_of(_NBI_TLS)

    @property
    def tftp_port(self) -> int | None:
        return self.port_of(_TFTP)

    @property
    def nbi_port(self) -> int | None:
        """The northbound API's port (``--nbi-port 0`` unless the test gave one)."""
        return self.port_of(_NBI)

    @property
    def nbi_url(self) -> str:
        return f"http://{self.host}:{self.nbi_port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_server(db_url: str, *args: str, discovery: bool = False, nofile: int | None = None) -> Server:
    """Start ``acs serve`` and wait for the line that names its CWMP port (the last one it prints).

    The built-in discovery policy is switched off unless asked for: these tests speak
    CWMP by hand, and a new device's first session would otherwise read its whole tree.
    ``nofile``: the server's descriptor limit (RLIMIT_NOFILE), as ``ulimit -n`` sets it.
    """
    if not discovery:
        subprocess.run(
            [ACS, "policy", "disable", "discovery", "--db", db_url], check=True, capture_output=True
        )
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    # a port of its own for the profile server too: 7567 may be taken by another test's server
    profile_port = [] if "--profile-port" in args else ["--profile-port", "0"]
    nbi_port = [] if "--nbi-port" in args or "--no-nbi" in args else ["--nbi-port", "0"]
    tls_ports = [arg for o in _TLS_PORTS if "--tls-cert" in args and o not in args for arg in (o, "0")]
    cwmp_port = [] if "--port" in args else ["--port", "0"]
    process = subprocess.Popen(
        [
            ACS,
            "serve",
            "--db",
            db_url,
            "--host",
            "127.0.0.1",
            *cwmp_port,
            *profile_port,
            *nbi_port,
            *tls_ports,
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=None
        if nofile is None
        else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)),
    )
    log: list[str] = []
    found = threading.Event()
    address: list[tuple[str, str, int]] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            m = _LISTENING.search(line)
            if m and not found.is_set():
                address.append((m.group(1), m.group(2), int(m.group(3))))
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(START_TIMEOUT) or not address:
        process.kill()
        process.wait(10)
        pytest.fail(f"acs serve did not start: {''.join(log)}")
    scheme, host, port = address[0]
    return Server(process, host, port, db_url=db_url, log=log, scheme=scheme)


CPE_USERNAME = "acs"
CPE_PASSWORD = "s3cret"


@pytest.fixture
def server(db_url: str) -> Iterator[Server]:
    s = start_server(db_url, "--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD)
    yield s
    s.stop()
