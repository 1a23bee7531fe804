"""``acs serve`` end to end: a CPE speaking HTTP to the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import http.client
import json
import time

from click.testing import CliRunner

from acs import cwmp
from acs.cli import main
from acs.cwmp import rpc
from acs.web.auth import DigestAuth
from tests.cwmp_messages import inform, message
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, Server, start_server

DEVICE = "00562B-CP-7841-3PCC-FCH2233A1B2"
BOOT_PARAMS = {
    "Device.DeviceInfo.SoftwareVersion": "sip78xx.12-0-1MPP-1",
    "Device.ManagementServer.ConnectionRequestURL": "http://192.0.2.41:7547/cr",
    "Device.LAN.MACAddress": "00:56:2b:04:36:15",
}


class Cpe:
    """A CPE on one keep-alive connection that answers Digest challenges and returns the cookie."""

    def __init__(self, server: Server, *, cookies: bool = True, password: str = CPE_PASSWORD) -> None:
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        self.cookies = cookies
        self.cookie: str | None = None
        self.password = password
        self.last: http.client.HTTPResponse | None = None

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, data = self._post(body, headers)
        challenge = self.last.getheader("WWW-Authenticate") if self.last else None
        if status == 401 and challenge and challenge.startswith("Digest"):
            answer = authorization(challenge, CPE_USERNAME, self.password, "POST", "/")
            status, data = self._post(body, (headers or {}) | {"Authorization": answer})
        return status, data

    def _post(self, body: bytes, headers: dict[str, str] | None) -> tuple[int, bytes]:
        headers = dict(headers or {})
        if self.cookie and self.cookies:
            headers.setdefault("Cookie", self.cookie)
        self.conn.request("POST", "/", body, headers)
        self.last = r = self.conn.getresponse()
        data = r.read()
        if r.getheader("Set-Cookie"):
            self.cookie = r.getheader("Set-Cookie").split(";")[0]
        return r.status, data


def authorization(challenge: str, username: str, password: str, method: str = "POST", uri: str = "/") -> str:
    """What a phone answers to this challenge (the simulator's client, as a phone does it)."""
    auth = DigestAuth(username, password)
    assert auth.challenge([challenge])
    answer = auth.authorization(method, uri)
    assert answer is not None
    return answer


def acs(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_bootstrap_session_stores_the_device_and_ends_with_204(server: Server) -> None:
    cpe = Cpe(server)
    status, body = cpe.post(inform("0 BOOTSTRAP", "1 BOOT", params=BOOT_PARAMS))
    assert status == 200
    assert isinstance(cwmp.parse(body).body, rpc.InformResponse)
    assert cpe.cookie and cpe.cookie.startswith("session=")
    assert cpe.post(b"") == (204, b"")

    shown = json.loads(
        acs("device", "show", "00:56:2B:04:36:15", "--db", server.db_url, "--params", ".", "--json")
    )
    assert shown["id"] == DEVICE
    assert shown["mac"] == "00562b043615"
    assert shown["software_version"] == "sip78xx.12-0-1MPP-1"
    assert shown["connection_request_url"] == "http://192.0.2.41:7547/cr"
    paths = {p["path"]: p["value"] for p in shown["parameters"]}
    assert paths["Device.DeviceInfo.SoftwareVersion"] == "sip78xx.12-0-1MPP-1"
    listed = acs("device", "list", "--db", server.db_url)
    assert DEVICE in listed
    assert "00562b043615" in listed
    events = json.loads(acs("device", "events", "00562b043615", "--db", server.db_url, "--json"))
    assert sorted(e["code"] for e in events) == ["0 BOOTSTRAP", "1 BOOT"]
    assert "0 BOOTSTRAP" in acs("device", "events", DEVICE, "--db", server.db_url)


def test_queued_task_reaches_the_cpe_and_its_result_is_shown(server: Server) -> None:
    cpe = Cpe(server)
    cpe.post(inform("1 BOOT", params=BOOT_PARAMS))
    cpe.post(b"")
    queued = json.loads(
        acs(
            "task",
            "add",
            "get-values",
            "Device.DeviceInfo.",
            "--device",
            "00562b043615",
            "--db",
            server.db_url,
            "--json",
        )
    )
    (task_id,) = queued["tasks"]

    cpe = Cpe(server)
    cpe.post(inform("2 PERIODIC", params=BOOT_PARAMS))
    status, body = cpe.post(b"")
    assert status == 200
    request = cwmp.parse(body)
    assert isinstance(request.body, rpc.GetParameterValues)
    assert request.body.ParameterNames == ["Device.DeviceInfo."]
    assert request.ID
    uptime = rpc.ParameterValueStruct("Device.DeviceInfo.UpTime", 4242, "unsignedInt")
    assert cpe.post(message(rpc.GetParameterValuesResponse([uptime]), id=request.ID)) == (204, b"")

    shown = json.loads(acs("task", "show", str(task_id), "--db", server.db_url, "--json"))
    assert shown["status"] == "done"
    assert shown["result"] == {"ParameterList": [["Device.DeviceInfo.UpTime", 4242, "unsignedInt"]]}
    stored = json.loads(
        acs("device", "show", DEVICE, "--db", server.db_url, "--params", "Device.DeviceInfo.UpTime", "--json")
    )
    assert stored["parameters"][0]["value"] == "4242"
    assert stored["parameters"][0]["type"] == "unsignedInt"


def test_cpe_fault_is_stored_and_shown_in_words(server: Server) -> None:
    cpe = Cpe(server)
    cpe.post(inform("1 BOOT", params=BOOT_PARAMS))
    cpe.post(b"")
    acs("task", "add", "set-values", "Device.Nope:string=1", "-d", DEVICE, "--db", server.db_url)
    cpe = Cpe(server)
    cpe.post(inform("2 PERIODIC"))
    _, body = cpe.post(b"")
    request = cwmp.parse(body)
    assert isinstance(request.body, rpc.SetParameterValues)
    fault = rpc.Fault(
        FaultCode=9003,
        FaultString="Invalid arguments",
        faultcode="Client",
        SetParameterValuesFault=[rpc.SetParameterValuesFault("Device.Nope", 9005, "no such parameter")],
    )
    assert cpe.post(message(fault, id=request.ID))[0] == 204
    listed = json.loads(acs("task", "list", "--db", server.db_url, "--json"))
    assert listed[0]["status"] == "fault"
    shown = acs("task", "show", str(listed[0]["id"]), "--db", server.db_url)
    assert "9003 Invalid arguments" in shown
    assert "Device.Nope" in shown  # the per-parameter fault is kept in the result


def test_a_cpe_without_cookies_is_followed_by_its_connection(server: Server) -> None:
    cpe = Cpe(server, cookies=False)
    assert cpe.post(inform("1 BOOT"))[0] == 200
    assert cpe.post(b"") == (204, b"")


def test_a_cookie_echoed_with_its_attributes_still_names_the_session(server: Server) -> None:
    first = Cpe(server)
    first.post(inform("1 BOOT"))
    other = Cpe(server)  # a new TCP connection: only the cookie can tie it to the session
    assert other.post(b"", {"Cookie": f"{first.cookie}; Path=/; HttpOnly"}) == (204, b"")


def test_bad_input_gets_a_clear_answer_and_the_server_goes_on(server: Server) -> None:
    cpe = Cpe(server)
    status, body = cpe.post(b"<html>not soap</html>")
    assert status == 400
    assert b"not a SOAP envelope" in body
    status, body = Cpe(server).post(b"<unclosed")
    assert status == 400
    assert b"not well-formed" in body
    status, body = Cpe(server).post(b"")
    assert status == 400
    assert b"starts with an Inform" in body
    status, body = Cpe(server).post(b"<a>" + b"x" * (2 << 20) + b"</a>")
    assert status == 413
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().status == 405
    # the server still serves phones
    assert Cpe(server).post(inform("1 BOOT"))[0] == 200


def test_cpes_must_authenticate_with_digest(server: Server) -> None:
    cpe = Cpe(server)
    status, _ = cpe._post(inform("1 BOOT"), None)
    assert status == 401
    challenges = cpe.last.headers.get_all("WWW-Authenticate")
    assert any(c.startswith('Digest realm="acs"') and 'qop="auth,auth-int"' in c for c in challenges)
    assert not any(c.startswith("Basic") for c in challenges)  # not on plain HTTP
    assert cpe.cookie is None  # no session was opened
    # challenged before its body is read: a CPE without credentials learns that first
    assert cpe._post(b"<unclosed", None)[0] == 401

    assert Cpe(server, password="wrong").post(inform("1 BOOT"))[0] == 401
    basic = "Basic " + base64.b64encode(f"{CPE_USERNAME}:{CPE_PASSWORD}".encode()).decode()
    assert Cpe(server)._post(inform("1 BOOT"), {"Authorization": basic})[0] == 401
    assert Cpe(server).post(inform("1 BOOT"))[0] == 200
    assert "s3cret" not in "".join(server.log)  # secrets are never logged


def test_rfc_2069_digest_without_qop_is_accepted(server: Server) -> None:
    cpe = Cpe(server)
    cpe._post(inform("1 BOOT"), None)
    challenge = cpe.last.getheader("WWW-Authenticate").replace('qop="auth,auth-int", ', "")
    answer = authorization(challenge, CPE_USERNAME, CPE_PASSWORD, "POST", "/")
    assert "qop" not in answer
    assert cpe._post(inform("1 BOOT"), {"Authorization": answer})[0] == 200


def test_per_device_credentials_open_sessions_for_that_device_only(server: Server) -> None:
    assert Cpe(server).post(inform("1 BOOT", params=BOOT_PARAMS))[0] == 200
    out = acs(
        "device",
        "credentials",
        "00562b043615",
        "--username",
        "phone-1",
        "--password",
        "pw-1",
        "--db",
        server.db_url,
    )
    assert "authenticates as 'phone-1'" in out

    def session_as(username: str, password: str, serial: str) -> int:
        cpe = Cpe(server)
        cpe._post(inform("2 PERIODIC", serial=serial), None)
        challenge = cpe.last.getheader("WWW-Authenticate")
        answer = authorization(challenge, username, password, "POST", "/")
        return cpe._post(inform("2 PERIODIC", serial=serial), {"Authorization": answer})[0]

    assert session_as("phone-1", "pw-1", "FCH2233A1B2") == 200
    assert session_as("phone-1", "wrong", "FCH2233A1B2") == 401
    assert session_as("phone-1", "pw-1", "OTHER-SERIAL") == 403  # not this device's credentials
    shown = json.loads(acs("device", "show", DEVICE, "--db", server.db_url, "--json"))
    assert "password" not in shown
    assert "pw-1" not in "".join(server.log)


def test_compressed_and_chunked_bodies_are_read(server: Server) -> None:
    import gzip
    import zlib

    cpe = Cpe(server)
    assert cpe.post(gzip.compress(inform("1 BOOT")), {"Content-Encoding": "gzip"})[0] == 200
    assert cpe.post(b"") == (204, b"")
    raw = zlib.compressobj(wbits=-15)
    deflated = raw.compress(inform("1 BOOT")) + raw.flush()
    assert Cpe(server).post(deflated, {"Content-Encoding": "deflate"})[0] == 200

    # chunked, as the Thomson capture sends its Inform
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    body = inform("1 BOOT")
    conn.request("POST", "/", iter([body[:100], body[100:]]), encode_chunked=True)
    r = conn.getresponse()
    r.read()
    assert r.status == 401  # read whole, then challenged
    challenge = r.getheader("WWW-Authenticate")
    answer = authorization(challenge, CPE_USERNAME, CPE_PASSWORD)
    conn.request("POST", "/", iter([body[:100], body[100:]]), {"Authorization": answer}, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 200
    assert b"InformResponse" in r.read()


def test_compressed_bombs_and_unknown_encodings_are_refused(server: Server) -> None:
    import gzip

    bomb = gzip.compress(b"<a>" + b" " * (8 << 20) + b"</a>")
    assert len(bomb) < 100_000
    status, body = Cpe(server).post(bomb, {"Content-Encoding": "gzip"})
    assert status == 413
    assert b"inflates to over" in body
    status, body = Cpe(server).post(b"junk", {"Content-Encoding": "gzip"})
    assert status == 400
    assert b"not valid gzip" in body
    status, body = Cpe(server).post(inform("1 BOOT"), {"Content-Encoding": "br"})
    assert status == 415
    assert b"use gzip or deflate" in body


def test_an_answer_to_a_task_cancelled_meanwhile_is_kept_off_it(server: Server) -> None:
    cpe = Cpe(server)
    cpe.post(inform("1 BOOT", params=BOOT_PARAMS))
    cpe.post(b"")
    task = json.loads(
        acs("task", "add", "get-values", "Device.DeviceInfo.", "-d", DEVICE, "--db", server.db_url, "--json")
    )["tasks"][0]
    cpe = Cpe(server)
    cpe.post(inform("2 PERIODIC"))
    _, body = cpe.post(b"")
    request = cwmp.parse(body)
    assert "now cancelled" in acs("task", "cancel", str(task), "--db", server.db_url)
    uptime = rpc.ParameterValueStruct("Device.DeviceInfo.UpTime", 7, "unsignedInt")
    assert cpe.post(message(rpc.GetParameterValuesResponse([uptime]), id=request.ID)) == (204, b"")
    assert (
        json.loads(acs("task", "show", str(task), "--db", server.db_url, "--json"))["status"] == "cancelled"
    )


def test_a_cpe_that_hangs_up_mid_request_breaks_nothing(server: Server) -> None:
    import socket
    import time

    body = inform("1 BOOT")
    probe = Cpe(server)
    probe._post(body, None)
    answer = authorization(probe.last.getheader("WWW-Authenticate"), CPE_USERNAME, CPE_PASSWORD).encode()
    for _ in range(5):  # authenticated, so the server does the whole step, then finds nobody to answer
        with socket.create_connection((server.host, server.port), timeout=5) as s:
            s.sendall(
                b"POST / HTTP/1.1\r\nHost: acs\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (answer, len(body), body)
            )
    time.sleep(1)
    assert Cpe(server).post(inform("1 BOOT"))[0] == 200
    assert "Traceback" not in "".join(server.log)


def test_the_access_log_is_off_unless_asked_for(server: Server, db_url: str) -> None:
    assert Cpe(server).post(inform("1 BOOT"))[0] == 200
    logged = start_server(
        db_url, "--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD, "--access-log"
    )
    try:
        assert Cpe(logged).post(inform("1 BOOT"))[0] == 200
        deadline = time.monotonic() + 5
        while not any('"POST / HTTP/1.1" 200' in line for line in logged.log) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any('"POST / HTTP/1.1" 401' in line for line in logged.log)  # through the server's log
        assert any('"POST / HTTP/1.1" 200' in line for line in logged.log)
    finally:
        logged.stop()
    assert not any("POST / HTTP/1.1" in line for line in server.log)
