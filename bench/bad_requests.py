"""A stranger's bad requests on every port of a real acs serve: the answers, their cost, what the log keeps.

Run: ``python bench/bad_requests.py`` (eight scenarios of 1,000 requests, ~2.5 min), or e.g.
``python bench/bad_requests.py --scenario "SOAP billion laughs" --requests 200``.

Loopback only, and bounded: ``--requests`` requests per scenario (10,000 at most), one at a
time on a keep-alive connection. It makes a temp SQLite database and an admin token
(``acs token create``), starts ``acs serve`` on 127.0.0.1 with shared CPE credentials, and
for each scenario sends its requests, waits ``--settle`` seconds (11 by default: a bounded
log's interval ends and writes its count), and prints a row: the answers (status: count),
the median and slowest answer in milliseconds, the lines and bytes the server logged
meanwhile, how many of those lines hold the secret the requests carried (a password or a
token), and how many hold a traceback.

Scenarios: *CWMP unknown user* (a stale cookie, a body that is not XML, Digest for a user name
no device has); *CWMP wrong password*
(an Inform with a Digest answer for the wrong password); *profile unknown phone*; *REST
unknown token*; *REST 100,000 [* (with a good token); *SOAP unreadable* (a cut WS-Security
request, its UsernameToken password the secret); *SOAP billion laughs* (a DOCTYPE whose
entities expand to 3 GB); *OpenAPI document* (public, a GET anyone can send).

Figures only: nothing is asserted. To measure another checkout's server, put it first on
``PYTHONPATH``: the ``acs serve`` started is the one Python imports.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sessions import ACS, _git_revision
from bench.tftp_flood import server_code

CPE_USERNAME, CPE_PASSWORD = "acs", "bench-cpe-password"
SECRET = "S3cretNeverLogged"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
LAUGHS = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10 if n else "lol"}">' for n in range(10))
ENVELOPE = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:acs="urn:acs:nbi:soap:1" '
    f'xmlns:wsse="{WSSE}"><soap:Header>{{}}</soap:Header><soap:Body>{{}}</soap:Body></soap:Envelope>'
)
INFORM = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><soap:Header><cwmp:ID soap:mustUnderstand="1">1</cwmp:ID>'
    "</soap:Header><soap:Body><cwmp:Inform>"
    "<DeviceId><Manufacturer>Cisco</Manufacturer><OUI>00562B</OUI><ProductClass>CP-8841-3PCC</ProductClass>"
    "<SerialNumber>FCH0000BENCH</SerialNumber></DeviceId><Event><EventStruct><EventCode>1 BOOT</EventCode>"
    "<CommandKey></CommandKey></EventStruct></Event><MaxEnvelopes>1</MaxEnvelopes>"
    "<CurrentTime>2026-01-01T00:00:00Z</CurrentTime><RetryCount>0</RetryCount><ParameterList/>"
    "</cwmp:Inform></soap:Body></soap:Envelope>"
)
COLUMNS = (
    ("scenario", 22),
    ("requests", 8),
    ("answers", 16),
    ("ms median/max", 13),
    ("log lines", 9),
    ("log bytes", 9),
    ("secret in log", 13),
    ("tracebacks", 10),
)


@dataclass
class Row:
    scenario: str
    requests: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    median_ms: float = 0.0
    max_ms: float = 0.0
    log_lines: int = 0
    log_bytes: int = 0
    secret_lines: int = 0
    tracebacks: int = 0

    def cells(self) -> list[str]:
        return [
            self.scenario,
            str(self.requests),
            " ".join(f"{status}:{n}" for status, n in sorted(self.answers.items())),
            f"{self.median_ms:.1f}/{self.max_ms:.0f}",
            str(self.log_lines),
            str(self.log_bytes),
            str(self.secret_lines),
            str(self.tracebacks),
        ]


def table_line(cells: list[str]) -> str:
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


class Server:
    """``acs serve`` on 127.0.0.1 (every port on 0), its stderr kept line by line."""

    def __init__(self, db_url: str) -> None:
        env = os.environ | {"PYTHONUNBUFFERED": "1", "ACS_CPE_USERNAME": CPE_USERNAME}
        env["ACS_CPE_PASSWORD"] = CPE_PASSWORD
        args = ["serve", "--db", db_url, "--host", "127.0.0.1", "--port", "0", "--profile-port", "0"]
        self.process = subprocess.Popen(
            [ACS, *args, "--nbi-port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        self.lines: list[bytes] = []
        self.ports: dict[str, int] = {}
        started = threading.Event()
        threading.Thread(target=self._read, args=(started,), daemon=True).start()
        if not started.wait(60):
            self.stop()
            raise RuntimeError("acs serve did not start:\n" + b"".join(self.lines).decode(errors="replace"))

    def _read(self, started: threading.Event) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            for name in ("CWMP", "profiles", "NBI"):
                marker = f"acs: {name} on http://127.0.0.1:".encode()
                if line.startswith(marker):
                    self.ports[name] = int(line[len(marker) :].split(b"/")[0])
            if "CWMP" in self.ports:
                started.set()
        started.set()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)


def digest_answer(challenge: str, password: str) -> str:
    """What a phone answers to a Digest challenge (qop=auth, MD5), written here for any server version."""
    fields = dict(
        part.strip().split("=", 1) for part in challenge.removeprefix("Digest ").split(",") if "=" in part
    )
    realm, nonce = fields["realm"].strip('"'), fields["nonce"].strip('"')

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()  # HTTP Digest is MD5

    cnonce, nc = os.urandom(8).hex(), "00000001"
    response = md5(f"{md5(f'{CPE_USERNAME}:{realm}:{password}')}:{nonce}:{nc}:{cnonce}:auth:{md5('POST:/')}")
    return (
        f'Digest username="{CPE_USERNAME}", realm="{realm}", nonce="{nonce}", uri="/", qop=auth, nc={nc}, '
        f'cnonce="{cnonce}", response="{response}", algorithm=MD5'
    )


Request = tuple[str, str, bytes, dict[str, str]]  # method, path, body, headers


def scenarios(token: str) -> dict[str, tuple[str, Callable[[int], Request]]]:
    """Each scenario: the port it goes to, and its n-th request."""
    wsse = (
        "<wsse:Security><wsse:UsernameToken><wsse:Username>oss</wsse:Username>"
        f"<wsse:Password>{SECRET}</wsse:Password></wsse:UsernameToken></wsse:Security>"
    )
    cut = ENVELOPE.format(wsse, "<acs:GetTask><acs:TaskId>1</acs:TaskId>").encode()[:-30]
    laughs = f"<!DOCTYPE d [{LAUGHS}]>" + ENVELOPE.format("", "<acs:GetDevice><acs:Device>&l9;</acs:Device>")
    xml = {"Content-Type": "text/xml; charset=utf-8"}
    return {
        "CWMP unknown user": ("CWMP", lambda n: ("POST", "/", b"<not-xml", _ghost(n))),
        "CWMP wrong password": ("CWMP", lambda n: ("POST", "/", INFORM.encode(), {"Authorization": "?"})),
        "profile unknown phone": ("profiles", lambda n: ("GET", f"/{n:012x}.cfg", b"", {})),
        "REST unknown token": (
            "NBI",
            lambda n: ("GET", "/devices", b"", {"Authorization": f"Bearer {SECRET}"}),
        ),
        "REST 100,000 [": (
            "NBI",
            lambda n: ("POST", "/tasks", b"[" * 100_000, {"Authorization": f"Bearer {token}"} | _JSON),
        ),
        "SOAP unreadable": ("NBI", lambda n: ("POST", "/soap", cut, xml)),
        "SOAP billion laughs": ("NBI", lambda n: ("POST", "/soap", laughs.encode(), xml)),
        "OpenAPI document": ("NBI", lambda n: ("GET", "/openapi.json", b"", {})),
    }


_JSON = {"Content-Type": "application/json"}


def _ghost(n: int) -> dict[str, str]:
    """A stale cookie, and Digest for a user name no device has: refused before the body is read."""
    digest = f'Digest username="ghost{n}", realm="acs", nonce="0", uri="/", response="{"0" * 32}"'
    return {"Cookie": f"session=stale{n:08d}", "Authorization": digest}


def run(
    server: Server, name: str, port: str, make: Callable[[int], Request], args: argparse.Namespace
) -> Row:
    row = Row(name, args.requests)
    before = len(server.lines)
    conn = http.client.HTTPConnection("127.0.0.1", server.ports[port], timeout=30)
    answers: Counter[str] = Counter()
    took = []
    challenge = ""
    for n in range(args.requests):
        method, path, body, headers = make(n)
        if headers.get("Authorization") == "?":  # a Digest answer to the last challenge, wrong password
            if not challenge:
                conn.request(method, path, body)
                response = conn.getresponse()
                response.read()
                challenge = response.getheader("WWW-Authenticate") or ""
            headers = {"Authorization": digest_answer(challenge, SECRET)}
        started = time.perf_counter()
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            response.read()
            status = str(response.status)
            if response.getheader("WWW-Authenticate", "").startswith("Digest"):
                challenge = response.getheader("WWW-Authenticate") or challenge
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
            conn.close()
        took.append((time.perf_counter() - started) * 1000)
        answers[status] += 1
    conn.close()
    time.sleep(args.settle)
    logged = server.lines[before:]
    row.answers = dict(answers)
    row.median_ms, row.max_ms = statistics.median(took), max(took)
    row.log_lines = len(logged)
    row.log_bytes = sum(len(line) for line in logged)
    row.secret_lines = sum(SECRET.encode() in line for line in logged)
    row.tracebacks = sum(b"Traceback (most recent call last)" in line for line in logged)
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", help="default: all eight")
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario (default 1000)")
    parser.add_argument("--settle", type=float, default=11.0, help="seconds waited after each (default 11)")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 10_000 or not 0 <= args.settle <= 60:
        parser.error("bounded: 1 to 10,000 requests per scenario, a settle of 0 to 60 s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"# bench/bad_requests.py  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  acs {_git_revision()}  "
        f"Python {platform.python_version()}  {os.cpu_count()} CPUs"
    )
    print(
        f"# {args.requests} requests per scenario, one at a time; the log counted until "
        f"{args.settle:g} s after"
    )
    print(f"# the server's code: {server_code()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="acs-bench-bad-") as workdir:
        db_url = f"sqlite:///{Path(workdir) / 'acs.db'}"
        for command in (["db", "upgrade"], ["token", "create", "--role", "admin", "--name", "bench"]):
            done = subprocess.run([ACS, *command, "--db", db_url], capture_output=True, text=True, check=True)
        token = done.stdout.strip()
        server = Server(db_url)
        try:
            known = scenarios(token)
            unknown = set(args.scenario or ()) - set(known)
            if unknown:
                raise SystemExit(f"no scenario {', '.join(sorted(unknown))}; there are: {', '.join(known)}")
            print(table_line([name for name, _ in COLUMNS]))
            for name, (port, make) in known.items():
                if args.scenario and name not in args.scenario:
                    continue
                row = run(server, name, port, make, args)
                print(table_line(row.cells()), flush=True)
                rows.append(row)
        finally:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
