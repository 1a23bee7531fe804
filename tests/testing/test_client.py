"""The simulated phone over real HTTP: one keep-alive connection, the cookie echoed, challenges answered."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from acs import cwmp
from acs.cwmp import rpc
from acs.testing import SessionError, SimulatedPhone, run_session
from acs.testing.client import main
from acs.web.auth import DigestAuth, digest_response, parse_challenges
from tests.testing.scripted import Clock


@dataclass
class Seen:
    """One request as the server saw it."""

    headers: dict[str, str]
    body: bytes
    port: int


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Script:
    """The server's answers, one callable per POST, and what it was sent."""

    steps: list[Callable[[Seen], Reply]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)


class ScriptedACS(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a CWMP server does

    def do_POST(self) -> None:
        script: Script = self.server.script  # type: ignore[attr-defined]
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = Seen(dict(self.headers.items()), body, self.client_address[1])
        script.seen.append(seen)
        try:
            status, headers, reply = (
                script.steps.pop(0)(seen) if script.steps else (500, {}, b"script ran out")
            )
        except AssertionError as e:  # fails the session, so the test reports it
            status, headers, reply = 500, {}, f"the script's check failed: {e}".encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        if reply:
            self.send_header("Content-Type", 'text/xml; charset="utf-8"')
        self.end_headers()
        self.wfile.write(reply)

    def _chunked(self) -> bytes:
        body = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return body

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def acs() -> Iterator[tuple[str, Script]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedACS)
    server.script = Script()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cwmp", server.script  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def soap(
    message: rpc.Message, ID: str = "acs-1", headers: dict[str, str] | None = None
) -> Callable[[Seen], Reply]:
    body = cwmp.serialize(cwmp.Envelope(message, ID=ID, ns=cwmp.NAMESPACES["1.2"]))
    return lambda seen: (200, headers or {}, body)


def end(seen: Seen) -> Reply:
    return 204, {}, b""


def test_a_session_keeps_one_connection_echoes_the_cookie_and_records_the_exchange(acs):
    url, script = acs
    script.steps = [
        soap(rpc.InformResponse(1), headers={"Set-Cookie": "session=abc123def; Path=/; HttpOnly"}),
        soap(rpc.GetParameterValues(["Device.DeviceInfo.SoftwareVersion"]), ID="gpv-1"),
        end,
    ]
    phone = SimulatedPhone(clock=Clock())
    log = run_session(phone, url)

    inform, empty, answer = script.seen
    assert "Cookie" not in inform.headers
    assert empty.headers["Cookie"] == answer.headers["Cookie"] == "session=abc123def"
    assert inform.port == empty.port == answer.port  # one keep-alive connection
    assert isinstance(cwmp.parse(inform.body).body, rpc.Inform)
    assert inform.headers["Content-Type"] == 'text/xml; charset="utf-8"'
    assert inform.headers["SOAPAction"] == ""
    assert inform.headers["User-Agent"] == "Cisco-CP-8841-3PCC/12.0.1 (00562b043615)"
    assert empty.body == b"" and empty.headers["Content-Length"] == "0"
    response = cwmp.parse(answer.body)
    assert response.ID == "gpv-1"
    assert response.body.ParameterList == [
        rpc.ParameterValueStruct("Device.DeviceInfo.SoftwareVersion", "sip88xx.12-0-1MPP-1", "string")
    ]

    assert log.statuses == [200, 200, 204]
    assert log.cookies == {"session": "abc123def"}
    assert log.requests == [rpc.GetParameterValues(["Device.DeviceInfo.SoftwareVersion"])]
    assert log.responses == [response.body]
    assert log.inform.event_codes == ["0 BOOTSTRAP", "1 BOOT"]
    assert log.transcript() == [
        "POST Inform -> 200 InformResponse",
        "POST (empty) -> 200 GetParameterValues",
        "POST GetParameterValuesResponse -> 204 (empty)",
    ]
    assert phone.pending_events == [] and phone.retry_count == 0


def test_transfer_complete_follows_the_inform_response_and_a_reboot_follows_the_session(acs):
    url, script = acs
    phone = SimulatedPhone(clock=Clock())
    script.steps = [soap(rpc.InformResponse()), end]
    run_session(phone, url)
    script.steps = [
        soap(rpc.InformResponse()),
        soap(rpc.Download("dl-1", "1 Firmware Upgrade Image", "http://fw/sip88xx.12-0-2MPP-3.loads")),
        soap(rpc.Reboot("rb-1")),
        end,
    ]
    run_session(phone, url, events=["6 CONNECTION REQUEST"])
    script.steps = [soap(rpc.InformResponse()), soap(rpc.TransferCompleteResponse()), end]
    log = run_session(phone, url)
    assert log.inform.event_codes == ["1 BOOT", "7 TRANSFER COMPLETE", "M Download", "M Reboot"]
    assert log.transcript() == [
        "POST Inform -> 200 InformResponse",
        "POST TransferComplete -> 200 TransferCompleteResponse",
        "POST (empty) -> 204 (empty)",
    ]
    complete = log.exchanges[1].sent_message
    assert isinstance(complete, rpc.TransferComplete)
    assert (complete.CommandKey, complete.FaultStruct.FaultCode) == ("dl-1", 0)
    assert phone.software_version == "sip88xx.12-0-2MPP-3"


def test_a_digest_challenge_is_answered_and_later_requests_carry_credentials(acs):
    url, script = acs
    challenge = 'Digest realm="acs", nonce="n0nce", qop="auth,auth-int", algorithm=MD5, opaque="op"'

    def checked(step: Callable[[Seen], Reply]) -> Callable[[Seen], Reply]:
        def check(seen: Seen) -> Reply:
            params = parse_challenges([seen.headers["Authorization"]])[0][1]
            expected = digest_response(
                "00562B-FCH2233A1B2",
                "pa ss",
                "POST",
                "/cwmp",
                realm="acs",
                nonce="n0nce",
                qop="auth",
                nc=params["nc"],
                cnonce=params["cnonce"],
            )
            assert params["response"] == expected, "wrong digest response"
            assert params["opaque"] == "op" and params["uri"] == "/cwmp"
            return step(seen)

        return check

    script.steps = [
        lambda seen: (401, {"WWW-Authenticate": challenge}, b"who are you?"),
        checked(soap(rpc.InformResponse())),
        checked(end),
    ]
    phone = SimulatedPhone(username="00562B-FCH2233A1B2", password="pa ss", clock=Clock())
    log = run_session(phone, url)
    assert log.statuses == [401, 200, 204]
    first, inform, empty = script.seen
    assert "Authorization" not in first.headers
    assert inform.body == first.body  # the same Inform, sent again with credentials
    assert "nc=00000001" in inform.headers["Authorization"]
    assert "nc=00000002" in empty.headers["Authorization"]


def test_a_basic_challenge_is_answered(acs):
    url, script = acs
    script.steps = [
        lambda seen: (401, {"WWW-Authenticate": 'Basic realm="acs"'}, b""),
        lambda seen: (
            (200, {}, cwmp.serialize(cwmp.Envelope(rpc.InformResponse(), ns=cwmp.NAMESPACES["1.2"])))
            if seen.headers.get("Authorization") == "Basic YWRtaW46c2VjcmV0"
            else (403, {}, b"")
        ),
        end,
    ]
    assert run_session(SimulatedPhone(username="admin", password="secret"), url).statuses == [401, 200, 204]


def test_refused_or_missing_credentials_are_a_clear_error(acs):
    url, script = acs
    challenge = {"WWW-Authenticate": 'Digest realm="acs", nonce="n1", qop="auth"'}
    script.steps = [lambda seen: (401, challenge, b"no"), lambda seen: (401, challenge, b"still no")]
    with pytest.raises(SessionError, match="HTTP 401") as e:
        run_session(SimulatedPhone(username="u", password="wrong"), url)
    assert e.value.status == 401 and e.value.body == b"still no"
    assert e.value.log.statuses == [401, 401]
    script.steps = [lambda seen: (401, challenge, b"")]
    with pytest.raises(SessionError, match="HTTP 401"):
        run_session(SimulatedPhone(), url)  # no ManagementServer.Username/Password
    assert len(script.seen) == 3


def test_an_acs_that_keeps_challenging_gets_two_retries_per_message(acs):
    url, script = acs
    script.steps = [
        lambda seen, n=n: (401, {"WWW-Authenticate": f'Digest realm="acs", nonce="n{n}", qop="auth"'}, b"")
        for n in range(5)
    ]
    with pytest.raises(SessionError, match="HTTP 401"):
        run_session(SimulatedPhone(username="u", password="p"), url)
    assert len(script.seen) == 3


def test_an_error_status_is_raised_with_its_body_and_the_phone_retries_later(acs):
    url, script = acs
    script.steps = [lambda seen: (503, {}, b"database is down")]
    phone = SimulatedPhone()
    with pytest.raises(SessionError, match=r"HTTP 503 .*database is down") as e:
        run_session(phone, url)
    assert e.value.status == 503
    assert phone.retry_count == 1
    assert [ev.EventCode for ev in phone.pending_events] == ["0 BOOTSTRAP", "1 BOOT"]


def test_an_unreadable_body_is_raised_with_status_and_body(acs):
    url, script = acs
    script.steps = [lambda seen: (200, {}, b"<html>hello</html>")]
    with pytest.raises(SessionError, match=r"not a SOAP envelope.*HTTP 200.*<html>hello") as e:
        run_session(SimulatedPhone(), url)
    assert e.value.body == b"<html>hello</html>"


def test_chunked_bodies_and_a_phone_that_returns_no_cookie(acs):
    url, script = acs
    script.steps = [soap(rpc.InformResponse(), headers={"Set-Cookie": "session=abc123def"}), end]
    log = run_session(SimulatedPhone(), url, chunked=True, send_cookies=False)
    assert log.statuses == [200, 204]
    inform, empty = script.seen
    assert inform.headers["Transfer-Encoding"] == empty.headers["Transfer-Encoding"] == "chunked"
    assert isinstance(cwmp.parse(inform.body).body, rpc.Inform) and empty.body == b""
    assert "Cookie" not in empty.headers


def test_a_refused_connection_is_a_session_error():
    with pytest.raises(SessionError, match="failed"):
        run_session(SimulatedPhone(), "http://127.0.0.1:1/", timeout=2)
    with pytest.raises(SessionError, match="http:// or https://"):
        run_session(SimulatedPhone(), "ftp://acs/")


def test_main_runs_a_phone_and_its_follow_up_sessions(acs, capsys):
    url, script = acs
    script.steps = [soap(rpc.InformResponse()), soap(rpc.Reboot("rb")), end]
    script.steps += [soap(rpc.InformResponse()), end]
    assert main([url, "--follow", "--model", "CP-7841-3PCC"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "00562B-CP-7841-3PCC-FCH2233A1B2: 0 BOOTSTRAP, 1 BOOT"
    assert "  POST RebootResponse -> 204 (empty)" in out
    assert out[-3] == "00562B-CP-7841-3PCC-FCH2233A1B2: 1 BOOT, M Reboot"
    assert len(script.seen) == 5


# --- HTTP Digest arithmetic ------------------------------------------------------------------------------


def test_digest_responses_match_the_rfc_examples():
    # RFC 7616 section 3.9.1
    rfc7616 = dict(
        realm="http-auth@example.org",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert (
        digest_response("Mufasa", "Circle of Life", "GET", "/dir/index.html", algorithm="MD5", **rfc7616)
        == "8ca523f5e9506fed4657c9700eebdbec"
    )
    assert (
        digest_response("Mufasa", "Circle of Life", "GET", "/dir/index.html", algorithm="SHA-256", **rfc7616)
        == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )
    # RFC 2617 section 3.5
    assert (
        digest_response(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            realm="testrealm@host.com",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )


def test_rfc2069_digest_without_qop():
    auth = DigestAuth("u", "p")
    assert auth.challenge(['Digest realm="r", nonce="n"'])
    header = auth.authorization("POST", "/")
    assert "qop" not in header and "nc=" not in header
    ha1 = hashlib.md5(b"u:r:p").hexdigest()
    ha2 = hashlib.md5(b"POST:/").hexdigest()
    assert f'response="{hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()}"' in header


def test_challenges_parse_whatever_their_layout():
    assert parse_challenges(['Digest realm="a, b", qop="auth,auth-int", nonce=abc, Basic realm="x"']) == [
        ("digest", {"realm": "a, b", "qop": "auth,auth-int", "nonce": "abc"}),
        ("basic", {"realm": "x"}),
    ]
    assert parse_challenges(['Digest realm="say \\"hi\\""']) == [("digest", {"realm": 'say "hi"'})]
