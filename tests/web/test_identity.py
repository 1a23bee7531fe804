"""Who may speak for a device, against the real ``acs serve`` on SQLite and PostgreSQL: shared
credentials never for a device with its own, a session's cookie only with its opener's credentials,
and a CPE's answer writes only what its request asked for."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from acs import cwmp
from acs.cwmp import rpc
from acs.web.auth import DigestAuth
from tests.cwmp_messages import inform, message
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, Server, start_server
from tests.web.test_serve import BOOT_PARAMS, DEVICE, acs

SIP_PASSWORD = "Device.Services.VoiceService.1.SIP.Client.1.AuthPassword"


@dataclass
class Cpe:
    """One keep-alive connection that answers Digest challenges with the credentials it is given."""

    server: Server
    username: str = CPE_USERNAME
    password: str = CPE_PASSWORD
    cookie: str | None = None
    conn: http.client.HTTPConnection = field(init=False)
    auth: DigestAuth = field(init=False)
    last: http.client.HTTPResponse | None = None

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
        self.auth = DigestAuth(self.username, self.password)

    def post(self, body: bytes, cookie: str | None = None) -> tuple[int, bytes]:
        """POST ``body``; a challenge is answered once. ``cookie`` in place of the one this CPE has."""
        status, data = self._post(body, cookie)
        if status == 401 and self.auth.challenge(self.last.headers.get_all("WWW-Authenticate") or ()):
            status, data = self._post(body, cookie)
        return status, data

    def _post(self, body: bytes, cookie: str | None) -> tuple[int, bytes]:
        headers = {"Content-Type": 'text/xml; charset="utf-8"'}
        if cookie or self.cookie:
            headers["Cookie"] = cookie or self.cookie or ""
        answer = self.auth.authorization("POST", "/", body)
        if answer:
            headers["Authorization"] = answer
        self.conn.request("POST", "/", body, headers)
        self.last = r = self.conn.getresponse()
        data = r.read()
        if r.getheader("Set-Cookie"):
            self.cookie = r.getheader("Set-Cookie").split(";")[0]
        return r.status, data

    def close(self) -> None:
        self.conn.close()


def show(server: Server, key: str, *args: str) -> dict:
    return json.loads(acs("device", "show", key, *args, "--db", server.db_url, "--json"))


def tasks(server: Server) -> list[dict]:
    return json.loads(acs("task", "list", "--db", server.db_url, "--json"))


def log_lines(server: Server, text: str) -> list[str]:
    return [line for line in server.log if text in line]


def api(server: Server, method: str, path: str, token: str, body: Any) -> int:
    """A call to the server's REST API (the NBI); its status."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(server.nbi_url + path, json.dumps(body).encode(), headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


@pytest.fixture
def known(server: Server) -> Server:
    """The phone 00562b043615 is known (one session with the shared credentials), and then given
    credentials of its own, phone-1 / pw-1, and a SetParameterValues carrying a SIP password."""
    cpe = Cpe(server)
    assert cpe.post(inform("1 BOOT", params=BOOT_PARAMS))[0] == 200
    assert cpe.post(b"") == (204, b"")
    acs("device", "credentials", DEVICE, "--username", "phone-1", "--password", "pw-1", "--db", server.db_url)
    acs("task", "add", "set-values", f"{SIP_PASSWORD}:string=sip-secret", "-d", DEVICE, "--db", server.db_url)
    return server


def test_shared_credentials_do_not_speak_for_a_device_with_its_own(known: Server) -> None:
    server = known
    before = show(server, DEVICE)
    events = acs("device", "events", DEVICE, "--db", server.db_url, "--json")
    impostor = Cpe(server)  # the fleet's shared credentials, the device's serial number and MAC
    for _ in range(8):
        status, body = impostor.post(inform("2 PERIODIC", params=BOOT_PARAMS))
        assert (status, body) == (403, b"this device has credentials of its own; use them\n")
        assert impostor.cookie is None
    assert impostor.post(b"")[0] == 400  # no session was opened
    # nothing was written: no Inform recorded, the task still waits for the device
    assert show(server, DEVICE)["last_inform"] == before["last_inform"]
    assert acs("device", "events", DEVICE, "--db", server.db_url, "--json") == events
    assert [t["status"] for t in tasks(server)] == ["pending"]
    refused = log_lines(server, "which has its own (" + DEVICE + ")")
    assert 1 <= len(refused) <= 5  # 8 refusals, logged at a bounded rate

    phone = Cpe(server, "phone-1", "pw-1")  # the device itself
    assert phone.post(inform("2 PERIODIC", params=BOOT_PARAMS))[0] == 200
    status, body = phone.post(b"")
    request = cwmp.parse(body).body
    assert status == 200 and isinstance(request, rpc.SetParameterValues)
    assert request.ParameterList[0].Value == "sip-secret"
    assert "sip-secret" not in "".join(server.log)
    server.stop()  # the refusals not written are counted in one line, at the latest when it stops
    deadline = time.monotonic() + 5
    while not log_lines(server, "more like it in the last 10 s"):
        assert time.monotonic() < deadline, "".join(server.log)
        time.sleep(0.1)


def test_another_devices_credentials_do_not_inform_as_this_one(known: Server) -> None:
    server = known
    other = Cpe(server)
    assert other.post(inform("1 BOOT", serial="OTHER-1"))[0] == 200
    other_id = DEVICE.replace("FCH2233A1B2", "OTHER-1")
    acs(
        "device",
        "credentials",
        other_id,
        "--username",
        "phone-2",
        "--password",
        "pw-2",
        "--db",
        server.db_url,
    )
    status, body = Cpe(server, "phone-2", "pw-2").post(inform("2 PERIODIC", params=BOOT_PARAMS))
    assert (status, body) == (403, b"these credentials belong to another device\n")
    assert [t["status"] for t in tasks(server)] == ["pending"]


def test_a_preregistered_device_with_credentials_is_adopted_by_them_only(server: Server) -> None:
    """A placeholder made by MAC before the phone ever informed (POST /devices), with credentials and a
    task: an Inform with that MAC and the shared credentials would have adopted both."""
    token = acs("token", "create", "--role", "admin", "--name", "admin", "--db", server.db_url).split()[0]
    mac = "00:56:2b:04:36:99"
    assert api(server, "POST", "/devices", token, {"mac": mac}) == 201
    body = {"username": "pre-1", "password": "pw-pre"}
    assert api(server, "PUT", "/devices/mac:00562b043699/credentials", token, body) == 200
    acs("task", "add", "get-values", "Device.DeviceInfo.", "-d", "mac:00562b043699", "--db", server.db_url)
    params = BOOT_PARAMS | {"Device.LAN.MACAddress": mac}

    status, _ = Cpe(server).post(inform("1 BOOT", serial="NEW-1", params=params))
    assert status == 403
    assert show(server, "mac:00562b043699")["id"] == "mac:00562b043699"  # not adopted

    phone = Cpe(server, "pre-1", "pw-pre")
    assert phone.post(inform("1 BOOT", serial="NEW-1", params=params))[0] == 200
    adopted = show(server, "00562b043699")
    assert adopted["id"] == "00562B-CP-7841-3PCC-NEW-1"
    status, body = phone.post(b"")
    assert isinstance(cwmp.parse(body).body, rpc.GetParameterValues)  # the task it adopted


def test_shared_credentials_make_no_new_device_with_cpe_shared_new_deny(db_url: str, tmp_path: Path) -> None:
    server = start_server(
        db_url, "--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD, "--cpe-shared-new", "deny"
    )
    try:
        status, body = Cpe(server).post(inform("1 BOOT", params=BOOT_PARAMS))
        assert (status, body) == (403, b"unknown device: import it first\n")
        assert json.loads(acs("device", "list", "--db", db_url, "--json")) == []
        inventory = tmp_path / "phones.csv"
        inventory.write_text("mac,serial,model,oui\n00:56:2b:04:36:15,FCH2233A1B2,CP-7841-3PCC,00562B\n")
        acs("device", "import", str(inventory), "--db", db_url)
        assert Cpe(server).post(inform("1 BOOT", params=BOOT_PARAMS))[0] == 200  # known: served
        assert log_lines(server, "unknown (--cpe-shared-new deny)")
    finally:
        server.stop()


def test_a_sessions_cookie_alone_does_not_continue_it_on_another_connection(known: Server) -> None:
    server = known
    phone = Cpe(server, "phone-1", "pw-1")
    assert phone.post(inform("2 PERIODIC", params=BOOT_PARAMS))[0] == 200
    cookie = phone.cookie
    assert cookie

    stranger = Cpe(server, "", "")  # the cookie, no credentials
    assert stranger.post(b"", cookie) == (401, b"")
    shared = Cpe(server)  # the shared credentials: they do not speak for this device
    assert shared.post(b"", cookie) == (403, b"these credentials do not speak for this session's device\n")
    assert Cpe(server).post(inform("1 BOOT", serial="OTHER-2"))[0] == 200
    acs(
        "device",
        "credentials",
        "OTHER-2",
        "--username",
        "phone-2",
        "--password",
        "pw-2",
        "--db",
        server.db_url,
    )
    assert Cpe(server, "phone-2", "pw-2").post(b"", cookie)[0] == 403  # another device's own
    assert [t["status"] for t in tasks(server)] == ["pending"]  # nothing was sent to any of them
    assert log_lines(server, "came on a new connection as shared, not as device:" + DEVICE)

    again = Cpe(server, "phone-1", "pw-1")  # the device's own credentials, on a new connection
    status, body = again.post(b"", cookie)
    assert status == 200 and isinstance(cwmp.parse(body).body, rpc.SetParameterValues)
    # and the connection that opened the session goes on without them
    assert phone.post(message(rpc.SetParameterValuesResponse(Status=0), id="x"))[0] in (200, 204)


def _answer(server: Server, cpe: Cpe, kind: str, asked: list[str], response: rpc.Message) -> None:
    """Queue ``kind`` asking ``asked``; a session in which the phone answers with ``response``."""
    args = {"get-values": asked, "get-names": asked[:1], "get-attributes": asked}[kind]
    acs("task", "add", kind, *args, "-d", DEVICE, "--db", server.db_url)
    assert cpe.post(inform("2 PERIODIC"))[0] == 200
    status, body = cpe.post(b"")
    request = cwmp.parse(body)
    assert status == 200, body
    assert cpe.post(message(response, id=request.ID)) == (204, b"")


def test_a_cpe_answer_writes_only_what_its_request_asked(server: Server) -> None:
    cpe = Cpe(server)
    assert cpe.post(inform("1 BOOT", params=BOOT_PARAMS))[0] == 200
    assert cpe.post(b"") == (204, b"")
    pvs = rpc.ParameterValueStruct
    _answer(
        server,
        Cpe(server),
        "get-values",
        ["Device.DeviceInfo.", "Device.Time.LocalTimeZone"],
        rpc.GetParameterValuesResponse(
            [
                pvs("Device.DeviceInfo.UpTime", 42, "unsignedInt"),
                pvs("Device.Time.LocalTimeZone", "CET", "string"),
                pvs("Device.ManagementServer.URL", "http://acs.evil.example/", "string"),
                pvs("Device.ManagementServer.ConnectionRequestURL", "http://203.0.113.9:1/cr", "string"),
                pvs("Device.DeviceInfoX.Other", "x", "string"),
            ]
        ),
    )
    _answer(
        server,
        Cpe(server),
        "get-names",
        ["Device.DeviceInfo."],
        rpc.GetParameterNamesResponse(
            [
                rpc.ParameterInfoStruct("Device.DeviceInfo.Manufacturer", False),
                rpc.ParameterInfoStruct("Device.ManagementServer.Password", True),
            ]
        ),
    )
    _answer(
        server,
        Cpe(server),
        "get-attributes",
        ["Device.DeviceInfo.UpTime"],
        rpc.GetParameterAttributesResponse(
            [
                rpc.ParameterAttributeStruct("Device.DeviceInfo.UpTime", 0, []),
                rpc.ParameterAttributeStruct("Device.ManagementServer.Username", 2, ["Subscriber"]),
            ]
        ),
    )
    stored = {p["path"]: p for p in show(server, DEVICE, "--params", ".")["parameters"]}
    assert stored["Device.DeviceInfo.UpTime"]["value"] == "42"
    assert stored["Device.Time.LocalTimeZone"]["value"] == "CET"
    assert "Device.DeviceInfo.Manufacturer" in stored
    assert not [p for p in stored if p.startswith("Device.DeviceInfoX.")]
    # of ManagementServer, only what the Inform reported
    assert {p: v["value"] for p, v in stored.items() if p.startswith("Device.ManagementServer.")} == {
        "Device.ManagementServer.ConnectionRequestURL": "http://192.0.2.41:7547/cr"
    }
    device = show(server, DEVICE)
    assert device["connection_request_url"] == "http://192.0.2.41:7547/cr"  # as its Inform said
    (values_task,) = [t for t in tasks(server) if t["kind"] == "GetParameterValues"]
    assert [p[0] for p in values_task["result"]["ParameterList"]] == [
        "Device.DeviceInfo.UpTime",
        "Device.Time.LocalTimeZone",
    ]
    ignored = log_lines(server, "it was not asked for, ignored")
    assert len(ignored) == 3
    assert "Device.ManagementServer.URL, Device.ManagementServer.ConnectionRequestURL" in ignored[0]
