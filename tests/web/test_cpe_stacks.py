"""What CPE HTTP stacks do before they authenticate, against the real ``acs serve``: libcurl's Digest
(an empty probe first), ``Expect: 100-continue`` without credentials, Basic on plain HTTP."""

from __future__ import annotations

import ctypes
import ctypes.util
import http.client
import socket
import subprocess
import time
from pathlib import Path

from acs import cwmp
from acs.cwmp import rpc
from tests.cwmp_messages import inform
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, Server
from tests.web.test_serve import BOOT_PARAMS, DEVICE, acs


def curl_post(server: Server, data: str, jar: Path, out: Path, *, digest: bool = True) -> tuple[str, str]:
    """``curl [--digest -u ...]`` POSTing ``data`` (``@file`` or text) with a cookie jar: (status, trace)."""
    trace = jar.with_suffix(".trace")
    auth = ["--digest", "-u", f"{CPE_USERNAME}:{CPE_PASSWORD}"] if digest else []
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "15", *auth, "-H", 'Content-Type: text/xml; charset="utf-8"',
         "--data-binary", data, "-b", str(jar), "-c", str(jar), "-o", str(out), "-w", "%{http_code}",
         "--trace-ascii", str(trace), server.url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout, trace.read_text()


def test_curl_digest_opens_a_session_with_its_empty_probe_and_goes_on_with_the_cookie(
    server: Server, tmp_path: Path
) -> None:
    """``curl --digest`` POSTs an empty probe first (Content-Length: 0), to be challenged, then the
    Inform with its answer; the session goes on with the cookie, and on a new connection (each curl
    is one) with the cookie and the credentials again: the cookie alone is refused."""
    body = tmp_path / "inform.xml"
    body.write_bytes(inform("1 BOOT", params=BOOT_PARAMS))
    jar, out = tmp_path / "cookies", tmp_path / "out"
    jar.write_text("")

    status, trace = curl_post(server, f"@{body}", jar, out)

    assert status == "200"
    probe, inform_sent = trace.split("=> Send header")[1:3]
    assert "Content-Length: 0" in probe and "Authorization" not in probe
    assert "Authorization: Digest " in inform_sent
    assert isinstance(cwmp.parse(out.read_bytes()).body, rpc.InformResponse)
    status, trace = curl_post(server, "", jar, out, digest=False)  # the cookie alone, on a new connection
    assert status == "401" and "Cookie: session=" in trace and "Authorization" not in trace
    status, trace = curl_post(server, "", jar, out)  # the empty POST, in the session
    assert (status, out.read_bytes()) == ("204", b"")
    assert "Cookie: session=" in trace and "Authorization: Digest " in trace
    assert f'"id": "{DEVICE}"' in acs("device", "show", DEVICE, "--db", server.db_url, "--json")


class Libcurl:
    """One libcurl easy handle for a whole session, as CPE agents built on libcurl keep it
    (easycwmp: CURLOPT_HTTPAUTH Digest, a cookie engine, one handle per session)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.lib = ctypes.CDLL(ctypes.util.find_library("curl"))
        self.lib.curl_easy_init.restype = ctypes.c_void_p
        self.lib.curl_easy_setopt.argtypes = [ctypes.c_void_p, ctypes.c_int]  # then one variadic argument
        self.lib.curl_easy_perform.argtypes = [ctypes.c_void_p]
        self.lib.curl_easy_getinfo.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_long)]
        self.lib.curl_easy_cleanup.argtypes = [ctypes.c_void_p]
        self.handle = self.lib.curl_easy_init()
        self.body = b""
        self.statuses: list[int] = []  # every response, the 401s libcurl answers by itself included
        callback = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t,
                                    ctypes.c_size_t, ctypes.c_void_p)  # fmt: skip
        self._write = callback(self._on_body)
        self._header = callback(self._on_header)
        self.setopt(10002, url.encode())  # CURLOPT_URL
        self.setopt(107, ctypes.c_long(2))  # CURLOPT_HTTPAUTH: CURLAUTH_DIGEST
        self.setopt(10005, f"{username}:{password}".encode())  # CURLOPT_USERPWD
        self.setopt(10031, b"")  # CURLOPT_COOKIEFILE: the cookie engine, no file
        self.setopt(13, ctypes.c_long(15))  # CURLOPT_TIMEOUT
        self.setopt(20011, self._write)  # CURLOPT_WRITEFUNCTION
        self.setopt(20079, self._header)  # CURLOPT_HEADERFUNCTION

    def setopt(self, option: int, value: object) -> None:
        assert self.lib.curl_easy_setopt(self.handle, option, value) == 0, option

    def _on_body(self, data: object, size: int, count: int, _: object) -> int:
        self.body += ctypes.string_at(data, size * count)
        return size * count

    def _on_header(self, data: object, size: int, count: int, _: object) -> int:
        line = ctypes.string_at(data, size * count)
        if line.startswith(b"HTTP/"):
            self.statuses.append(int(line.split()[1]))
        return size * count

    def post(self, body: bytes) -> tuple[int, bytes]:
        self.body = b""
        self.setopt(60, ctypes.c_long(len(body)))  # CURLOPT_POSTFIELDSIZE
        self.setopt(10165, body)  # CURLOPT_COPYPOSTFIELDS
        assert self.lib.curl_easy_perform(self.handle) == 0
        code = ctypes.c_long()
        self.lib.curl_easy_getinfo(self.handle, 0x200002, ctypes.byref(code))  # CURLINFO_RESPONSE_CODE
        return code.value, self.body

    def close(self) -> None:
        self.lib.curl_easy_cleanup(self.handle)


def test_a_libcurl_digest_agent_runs_a_whole_session(server: Server) -> None:
    """Its first POST goes as an empty probe: it must be challenged, not refused."""
    agent = Libcurl(server.url, CPE_USERNAME, CPE_PASSWORD)
    try:
        status, body = agent.post(inform("1 BOOT", params=BOOT_PARAMS))
        assert status == 200 and isinstance(cwmp.parse(body).body, rpc.InformResponse)
        assert agent.post(b"") == (204, b"")
        assert agent.statuses == [401, 200, 204]
    finally:
        agent.close()
    assert f'"id": "{DEVICE}"' in acs("device", "show", DEVICE, "--db", server.db_url, "--json")


def test_an_empty_post_outside_a_session_gets_the_challenge(server: Server) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("POST", "/", b"")
        r = conn.getresponse()
        r.read()
        assert r.status == 401
        assert r.getheader("WWW-Authenticate", "").startswith("Digest ")
    finally:
        conn.close()


def test_expect_100_continue_without_credentials_gets_401_before_the_body(server: Server) -> None:
    body = inform("1 BOOT", params=BOOT_PARAMS)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        answer = b""
        while b"\r\n\r\n" not in answer:  # the body is never sent
            chunk = sock.recv(4096)
            assert chunk, answer
            answer += chunk
        head = answer.split(b"\r\n\r\n")[0].decode()
        assert head.startswith("HTTP/1.1 401 ")
        assert "WWW-Authenticate: Digest " in head
        assert "Connection: close" in head  # the body stays unread: the connection ends
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
        assert b"100 Continue" not in answer + rest


def test_expect_100_continue_with_credentials_continues(server: Server) -> None:
    from tests.web.test_serve import authorization

    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/", inform("1 BOOT"))
    challenge = conn.getresponse()
    challenge.read()
    conn.close()
    answer = authorization(challenge.getheader("WWW-Authenticate"), CPE_USERNAME, CPE_PASSWORD)
    body = inform("1 BOOT", params=BOOT_PARAMS)
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: acs\r\nExpect: 100-continue\r\nAuthorization: %s\r\n"
            b"Content-Length: %d\r\n\r\n" % (answer.encode(), len(body))
        )
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")


def test_basic_on_plain_http_is_logged_as_refused_not_as_a_wrong_password(server: Server) -> None:
    import base64

    basic = "Basic " + base64.b64encode(f"{CPE_USERNAME}:{CPE_PASSWORD}".encode()).decode()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("POST", "/", inform("1 BOOT", params=BOOT_PARAMS), {"Authorization": basic})
        r = conn.getresponse()
        r.read()
    finally:
        conn.close()
    assert r.status == 401
    assert [c.split()[0] for c in r.headers.get_all("WWW-Authenticate")] == ["Digest"]
    wanted = f"CPE {CPE_USERNAME!r} from 127.0.0.1: HTTP Basic refused on plain HTTP"
    deadline = time.monotonic() + 10
    while not any(wanted in line for line in server.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    (line,) = [line for line in server.log if wanted in line]
    assert "enable --allow-basic, use the HTTPS port, or configure the CPE for Digest" in line
    assert not any("authentication failed" in line for line in server.log)
