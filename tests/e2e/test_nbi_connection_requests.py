"""The issue's OSS path end to end: a task created over the REST API with ``connection_request=true``.

A real ``acs serve`` (CWMP and NBI ports), an OSS client speaking plain HTTP/JSON
(urllib), and a simulated phone that listens for connection requests: kicked by HTTP
Digest or by UDP it opens a session, runs the task, and the API answers 200 with the
result within the time-out; a phone that never answers leaves the task queued and the
API answers 202. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from acs.testing.connreq import CONNECTION_REQUEST, ConnectionRequestListener, Received
from tests.e2e.conftest import SESSION_TIMEOUT, Acs, new_phone

CR = "Device.ManagementServer.ConnectionRequest"
SOFTWARE_VERSION = "Device.DeviceInfo.SoftwareVersion"


class Oss:
    """An OSS system: JSON over HTTP with its operator token, nothing of acs imported."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def phone_listening(
    serve: Callable[..., Acs],
) -> Iterator[Callable[..., tuple[Acs, Oss, ConnectionRequestListener]]]:
    """``phone_listening(**listener_options)``: a server, an OSS with an operator token, and a phone
    that listens for connection requests, has had its first session and whose connection-request
    credentials the ACS knows."""
    listeners: list[ConnectionRequestListener] = []

    def start(**options: Any) -> tuple[Acs, Oss, ConnectionRequestListener]:
        acs = serve()
        token = acs.cli.json("token", "create", "--role", "operator", "--name", "oss")["token"]
        listener = ConnectionRequestListener(new_phone(), acs.url, session_timeout=SESSION_TIMEOUT, **options)
        listeners.append(listener.start())
        phone = listener.phone
        acs.session(phone)
        phone.model.set(f"{CR}Username", "cr-user")
        phone.model.set(f"{CR}Password", "cr-s3cret")
        acs.cli(
            "device",
            "credentials",
            phone.mac,
            "--connection-request",
            "--username",
            "cr-user",
            "--password",
            "cr-s3cret",
        )
        return acs, Oss(acs.server.nbi_url, token), listener

    yield start
    for listener in listeners:
        listener.close()


def test_a_task_with_connection_request_kicks_by_http_digest_and_answers_200_with_the_result(
    phone_listening,
) -> None:
    acs, oss, listener = phone_listening()
    phone = listener.phone

    status, body = oss.post(
        f"/devices/{phone.device_id}/tasks",
        {
            "kind": "GetParameterValues",
            "args": {"ParameterNames": [SOFTWARE_VERSION]},
            "connection_request": True,
            "timeout": 30,
        },
    )

    assert status == 200, body
    assert body["status"] == "done"
    assert body["result"] == {"ParameterList": [[SOFTWARE_VERSION, phone.software_version, "string"]]}
    kick = body["connection_request"]
    assert (kick["outcome"], kick["method"], kick["summary"]) == ("sent", "http", "sent by HTTP: HTTP 200")
    assert listener.received == [
        Received("http", "challenged", "no credentials"),
        Received("http", "accepted"),
    ]
    (session,) = listener.wait_for_sessions(1)
    assert session.inform.event_codes == [CONNECTION_REQUEST]
    assert acs.errors() == []


def test_a_task_with_connection_request_kicks_a_udp_only_phone_and_answers_200(phone_listening) -> None:
    acs, oss, listener = phone_listening(http=False, udp=True)
    phone = listener.phone

    status, body = oss.post(
        f"/devices/{phone.device_id}/tasks", {"kind": "Reboot", "connection_request": True, "timeout": 30}
    )

    assert status == 200, body
    assert body["status"] == "done"
    kick = body["connection_request"]
    assert (kick["outcome"], kick["method"]) == ("sent", "udp")
    assert kick["summary"].startswith(f"sent by UDP: 3 datagrams to {listener.udp_address}")
    kicked, rebooted = listener.wait_for_sessions(2)
    assert kicked.inform.event_codes == [CONNECTION_REQUEST]
    assert [type(r).__name__ for r in kicked.requests] == ["Reboot"]
    assert set(rebooted.inform.event_codes) == {"1 BOOT", "M Reboot"}
    assert listener.received[0] == Received("udp", "accepted")
    assert acs.errors() == []


def test_against_a_phone_that_never_answers_the_api_answers_202_and_the_task_stays_queued(
    phone_listening, monkeypatch
) -> None:
    monkeypatch.setenv("ACS_CONNREQ_TIMEOUT", "1.5")  # read by acs serve when it starts
    acs, oss, listener = phone_listening(mute=True)
    phone = listener.phone

    status, body = oss.post(
        f"/devices/{phone.device_id}/tasks", {"kind": "Reboot", "connection_request": True, "timeout": 2}
    )

    assert status == 202, body
    assert body["status"] == "pending"
    kick = body["connection_request"]
    assert (kick["outcome"], kick["summary"]) == ("timed_out", "HTTP timed_out: no answer within 1.5 s")
    assert listener.received == [Received("http", "ignored", "mute")]
    (task,) = acs.cli.tasks("--device", phone.mac)
    assert (task["id"], task["status"]) == (body["id"], "pending")
    (row,) = acs.cli.json("device", "connection-requests", phone.mac)
    assert (row["method"], row["outcome"]) == ("http", "timed_out")
