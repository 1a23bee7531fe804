"""The real ``acs serve`` under requests anyone can send: what its log keeps of them.

Every path where the server logs what a client sent is driven with a secret in the request (an
API token, a CPE password, a SIP password in SetParameterValues, a WS-Security password), and
the log the process wrote is searched for it. Then a flood of each kind of bad request, on each
port: at most LOG_BURST lines of a kind, and one line counting the rest when the interval ends.
"""

from __future__ import annotations

import base64
import http.client
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from acs.web.boundedlog import LOG_BURST, LOG_INTERVAL
from tests.cwmp_messages import inform
from tests.web.conftest import ACS, CPE_PASSWORD, CPE_USERNAME, Server, start_server
from tests.web.test_serve import BOOT_PARAMS, Cpe

HTTP_TIMEOUT = 15
#: a phone with credentials of its own, for the profile port's authentication
PHONE_MAC, PHONE_USER, PHONE_PASSWORD = "00562b0a0b0c", "phone9", "pw9-never-logged"
INVENTORY = "mac,serial,model,username,password\n" + ",".join(
    (PHONE_MAC, "FCH0A0B0C0D", "CP-8841-3PCC", PHONE_USER, PHONE_PASSWORD)
)
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def secret(name: str) -> str:
    return f"S3cr3t{name}Xq7"


def _server(db_url: str, tmp_path: Path, *args: str) -> Server:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(INVENTORY)
    subprocess.run([ACS, "device", "import", str(inventory), "--db", db_url], check=True, capture_output=True)
    return start_server(db_url, "--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD, *args)


@pytest.fixture
def logged(db_url: str, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """``acs serve`` with its access log on (every request leaves a line), and an admin's API token."""
    server = _server(db_url, tmp_path, "--access-log")
    made = subprocess.run(
        [ACS, "token", "create", "--role", "admin", "--name", "oss", "--db", db_url],
        check=True,
        capture_output=True,
        text=True,
    )
    yield server, made.stdout.strip()
    server.stop()


@pytest.fixture
def quiet(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """``acs serve`` as it runs by default."""
    server = _server(db_url, tmp_path)
    yield server
    server.stop()


def soap(server: Server, body: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        f"{server.nbi_url}/soap",
        data=body.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"} | (headers or {}),
        timeout=HTTP_TIMEOUT,
    )


def soap_envelope(body: str, header: str = "") -> str:
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:acs="urn:acs:nbi:soap:1" xmlns:wsse="{WSSE}">'
        f"<soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    )


def username_token(password: str) -> str:
    return (
        "<wsse:Security><wsse:UsernameToken><wsse:Username>oss</wsse:Username>"
        f"<wsse:Password>{password}</wsse:Password></wsse:UsernameToken></wsse:Security>"
    )


def create_task(sip_password: str) -> str:
    return (
        "<acs:CreateTask><acs:Device>x</acs:Device><acs:Kind>SetParameterValues</acs:Kind><acs:Arguments>"
        "<acs:ParameterValues><acs:ParameterValueStruct>"
        "<acs:Name>Device.Services.VoiceService.1.SIP.Client.1.AuthPassword</acs:Name>"
        f"<acs:Value>{sip_password}</acs:Value></acs:ParameterValueStruct></acs:ParameterValues>"
        "</acs:Arguments></acs:CreateTask>"
    )


def rest(server: Server, method: str, path: str, token: str | None, body: bytes | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(server.nbi_url + path, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def raw(host: str, port: int, data: bytes) -> bytes:
    """Bytes to a port as they are, and what comes back before the server closes."""
    with socket.create_connection((host, port), timeout=HTTP_TIMEOUT) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def profile(server: Server, path: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection(server.host, server.profile_port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_for(server: Server, *texts: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = "".join(server.log)
        if all(t in log for t in texts):
            return log
        time.sleep(0.05)
    log = "".join(server.log)
    missing = [t for t in texts if t not in log]
    raise AssertionError(f"not logged: {missing}\n{log}")


def test_no_secret_a_client_sends_reaches_the_log(logged: tuple[Server, str]) -> None:
    server, token = logged
    answers: dict[str, object] = {}
    # SOAP: a request spyne cannot read, with a WS-Security password and a SIP password in it
    cut = soap_envelope(create_task(secret("Sip")), username_token(secret("Wsse")))[:-20]
    answers["soap unreadable"] = soap(server, cut).text
    # ... one that does not fit the WSDL, one with a DOCTYPE, two with an unknown token
    misfit = soap_envelope(create_task(secret("Sip2")).replace("<acs:Device>x</acs:Device>", "<acs:Nope/>"))
    answers["soap misfit"] = soap(server, misfit, {"Authorization": "Bearer x"}).text
    doctype = '<!DOCTYPE x [<!ENTITY e "e">]>' + soap_envelope("", username_token(secret("Doctype")))
    answers["soap doctype"] = soap(server, doctype).text
    get_task = "<acs:GetTask><acs:TaskId>1</acs:TaskId></acs:GetTask>"
    bearer = {"Authorization": f"Bearer {secret('Soap')}"}
    answers["soap bearer"] = soap(server, soap_envelope(get_task), bearer).text
    answers["soap wsse"] = soap(server, soap_envelope(get_task, username_token(secret("Ws2")))).text
    # REST: an unknown token, a token in a query string, secrets in bodies the API refuses
    answers["rest token"] = rest(server, "GET", "/devices", secret("Rest"))
    answers["rest query"] = rest(server, "GET", f"/devices?access_token={secret('Query')}", None)
    deep = b'{"password": "' + secret("Deep").encode() + b'", "a": ' + b"[" * 100_000
    answers["rest deep"] = rest(server, "POST", "/tasks", token, deep)
    huge = b'{"kind": "SetParameterValues", "args": {"ParameterList": [["Device.X.Password", "%s", 1e999]]}}'
    answers["rest huge"] = rest(server, "POST", "/devices/x/tasks", token, huge % secret("Huge").encode())
    # CWMP: a wrong Digest password, Basic on plain HTTP, a token in the URL, malformed HTTP
    cpe = Cpe(server, password=secret("Digest"))
    answers["cwmp digest"] = cpe.post(inform("1 BOOT", params=BOOT_PARAMS))[0]
    basic = base64.b64encode(f"{CPE_USERNAME}:{secret('Basic')}".encode()).decode()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=HTTP_TIMEOUT)
    conn.request("POST", f"/?token={secret('Url')}", inform("1 BOOT"), {"Authorization": f"Basic {basic}"})
    answers["cwmp basic"] = conn.getresponse().status
    conn.close()
    malformed = b"POST / HTTP/1.1\r\nAuthorization: Bearer %s\r\nX\x01: y\r\n\r\n" % secret("Http").encode()
    answers["http malformed"] = raw(server.host, server.port, malformed)[:12]
    # profiles: Basic on plain HTTP, a wrong Digest password, a password in the URL
    phone_basic = base64.b64encode(f"{PHONE_USER}:{secret('ProfileBasic')}".encode()).decode()
    answers["profile basic"] = profile(server, f"/{PHONE_MAC}.cfg", {"Authorization": f"Basic {phone_basic}"})
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, f"http://{server.host}:{server.profile_port}/", PHONE_USER, secret("Wrong"))
    digest = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))
    try:
        digest.open(f"http://{server.host}:{server.profile_port}/{PHONE_MAC}.cfg", timeout=HTTP_TIMEOUT)
    except urllib.error.HTTPError as e:
        answers["profile digest"] = e.code
    answers["profile url"] = profile(server, f"/unknown.cfg?password={secret('ProfileUrl')}")

    wait_for(server, "/unknown.cfg?password=")  # the last request's access line: everything is logged
    log = "".join(server.log)
    names = ["Sip", "Wsse", "Sip2", "Doctype", "Soap", "Ws2", "Rest", "Query", "Deep", "Huge", "Digest"]
    names += ["Basic", "Url", "Http", "ProfileBasic", "Wrong", "ProfileUrl"]
    assert [name for name in names if secret(name) in log] == [], log
    for credential in (PHONE_PASSWORD, CPE_PASSWORD, basic, phone_basic):
        assert credential not in log
    assert "Traceback" not in log and " ERROR " not in log and " CRITICAL " not in log, log

    assert {name: answer for name, answer in answers.items() if not name.startswith("soap")} == {
        "rest token": 401,
        "rest query": 401,
        "rest deep": 400,
        "rest huge": 400,
        "cwmp digest": 401,
        "cwmp basic": 401,
        "http malformed": b"HTTP/1.1 400",
        "profile basic": 401,
        "profile digest": 401,
        "profile url": 404,
    }
    for name, fault in [
        ("soap unreadable", "Client.XMLSyntaxError"),
        ("soap misfit", "Client.SchemaValidationError"),
        ("soap doctype", "Client.DoctypeNotAllowed"),
        ("soap bearer", "Client.Unauthorized"),
        ("soap wsse", "Client.Unauthorized"),
    ]:
        assert f"<faultcode>soap11env:{fault}</faultcode>" in str(answers[name]), (name, answers[name])
    # each path did log what it refused, secrets masked
    wait_for(
        server,
        "NBI SOAP Client.XMLSyntaxError from 127.0.0.1: not well-formed XML",
        "<wsse:Username>oss</wsse:Username><wsse:Password>****",  # the body's beginning, the password masked
        "NBI SOAP Client.SchemaValidationError",
        "NBI SOAP Client.DoctypeNotAllowed",
        "NBI SOAP Client.Unauthorized",
        "NBI: unknown or revoked token from 127.0.0.1",
        "access_token=********",
        f"CPE authentication failed for user {CPE_USERNAME!r} from 127.0.0.1",
        f"CPE {CPE_USERNAME!r} from 127.0.0.1: HTTP Basic refused",
        '"POST /?token=******** HTTP/1.1" 401',
        "HTTP 400 from 127.0.0.1",
        "profile fetch for 00562B-CP-8841-3PCC-FCH0A0B0C0D from 127.0.0.1: HTTP Basic refused",
        f"profile fetch: authentication failed for user {PHONE_USER!r} from 127.0.0.1",
        '"GET /unknown.cfg?password=******** HTTP/1.1" 404',
    )


#: bad requests of each kind: more than a burst, sent well within one interval
FLOOD = 2 * LOG_BURST + 3


def test_a_flood_of_bad_requests_is_logged_at_a_bounded_rate_on_every_port(quiet: Server) -> None:
    server = quiet
    started = time.monotonic()
    garbage = soap_envelope("<acs:GetTask>")[:-30]
    unknown = soap_envelope("<acs:GetTask><acs:TaskId>1</acs:TaskId></acs:GetTask>")
    for n in range(FLOOD):
        # CWMP: a user name no device has (a stale cookie and a body it never parses), a wrong
        # password, malformed HTTP
        conn = http.client.HTTPConnection(server.host, server.port, timeout=HTTP_TIMEOUT)
        ghost = f'Digest username="ghost{n}", realm="acs", nonce="0", uri="/", response="{"0" * 32}"'
        conn.request("POST", "/", b"<not-xml", {"Cookie": f"session=stale{n:08d}", "Authorization": ghost})
        assert conn.getresponse().status == 401
        conn.close()
        assert Cpe(server, password="wrong").post(inform("1 BOOT", params=BOOT_PARAMS))[0] == 401
        assert raw(server.host, server.port, b"NOT HTTP\r\n\r\n").startswith(b"HTTP/1.1 400")
        # the profile server: a phone nobody knows
        assert profile(server, f"/{n:012x}.cfg") == 404
        # the NBI: REST with an unknown token, SOAP unreadable and with an unknown token, the OpenAPI document
        assert rest(server, "GET", "/devices", f"guess-{n}") == 401
        assert "Client.XMLSyntaxError" in soap(server, garbage).text
        assert "Client.Unauthorized" in soap(server, unknown, {"Authorization": f"Bearer guess-{n}"}).text
        assert rest(server, "GET", "/openapi.json", None) == 200
    assert time.monotonic() - started < LOG_INTERVAL  # one interval holds the whole flood

    kinds = {
        "CPE from 127.0.0.1: no device has the user name": "ghost",
        "CPE authentication failed for user": "from 127.0.0.1",
        "HTTP 400 from": "",
        "profile /": ": 404 no phone known by",
        "NBI: unknown or revoked token from": "",
        "NBI SOAP Client.XMLSyntaxError from": "",
        "NBI SOAP Client.Unauthorized from": "the token is unknown or revoked",
    }
    counted = f"(and {FLOOD - LOG_BURST} more like it in the last {LOG_INTERVAL:g} s)"
    log = wait_for(server, *kinds, counted, timeout=LOG_INTERVAL + 10)
    deadline = time.monotonic() + 5  # every kind's interval ends within seconds of the first one's
    while log.count(counted) < len(kinds) and time.monotonic() < deadline:
        time.sleep(0.1)
        log = "".join(server.log)
    lines = log.splitlines()
    for kind, detail in kinds.items():
        mine = [line for line in lines if kind in line and detail in line]
        assert len(mine) == LOG_BURST + 1, (kind, mine)
        assert mine[-1].endswith(counted), (kind, mine[-1])
    assert not any("GET /openapi.json" in line for line in lines)  # no access log unless --access-log
    assert "Traceback" not in log and " ERROR " not in log
