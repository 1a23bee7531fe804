"""The REST API of a real ``acs serve``: a token from ``acs token create``, a simulated phone, an OSS
client over HTTP that queues a task and waits for its result."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import requests
import zeep
from zeep.transports import Transport

from acs.testing import run_session
from tests.e2e.conftest import SESSION_TIMEOUT, Acs, new_phone
from tests.web.conftest import ACS


def call(acs: Acs, method: str, path: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(acs.server.nbi_url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def token(acs: Acs, role: str, name: str) -> str:
    done = subprocess.run(
        [ACS, "token", "create", "--role", role, "--name", name, "--db", acs.cli.db_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "cannot be shown again" in done.stderr
    return done.stdout.strip()


def test_the_soap_flavour_is_served_on_the_nbi_port_with_the_same_tokens(acs: Acs) -> None:
    reader = token(acs, "read", "soap-reader")
    phone = new_phone()
    acs.session(phone)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {reader}"
    client = zeep.Client(f"{acs.server.nbi_url}/soap?wsdl", transport=Transport(session=session, timeout=30))
    assert [d.Id for d in client.service.ListDevices()] == [phone.device_id]
    with pytest.raises(zeep.exceptions.Fault) as refused:
        client.service.CreateTask(Device=phone.mac, Kind="Reboot")
    assert "role read" in str(refused.value.message)
    session.headers["Authorization"] = "Bearer acs_not-a-token"
    with pytest.raises(zeep.exceptions.Fault):
        client.service.ListDevices()
    assert reader not in "".join(acs.server.log)


def test_an_oss_queues_a_task_over_the_api_and_gets_the_result_within_its_timeout(acs: Acs) -> None:
    oss, reader = token(acs, "operator", "oss"), token(acs, "read", "dashboard")
    assert call(acs, "GET", "/devices", None)[0] == 401
    phone = new_phone()
    acs.session(phone)
    status, devices = call(acs, "GET", f"/devices?mac={phone.mac}", reader)
    assert status == 200 and [d["id"] for d in devices] == [phone.device_id]

    status, problem = call(acs, "POST", f"/devices/{phone.mac}/tasks", reader, {"kind": "Reboot"})
    assert status == 403 and problem["field"] == "header.Authorization"

    errors: list[BaseException] = []

    def phone_informs() -> None:
        try:
            time.sleep(1)
            run_session(phone, acs.url, timeout=SESSION_TIMEOUT)
        except BaseException as e:  # re-raised in the test's thread
            errors.append(e)

    session = threading.Thread(target=phone_informs)
    session.start()
    names = ["Device.DeviceInfo.SoftwareVersion"]
    status, task = call(
        acs,
        "POST",
        f"/devices/{phone.mac}/tasks",
        oss,
        {"kind": "GetParameterValues", "args": {"ParameterNames": names}, "timeout": 30},
    )
    session.join(SESSION_TIMEOUT)
    assert errors == []
    assert status == 200, task
    assert task["status"] == "done"
    assert task["result"] == {"ParameterList": [[names[0], phone.software_version, "string"]]}
    # the CLI shows the same task the same way
    assert acs.cli.task(task["id"]) | {"connection_request": None} == task | {"connection_request": None}

    # nothing listens at the phone's ConnectionRequestURL here: the task stays queued, and says why
    body = {"kind": "Reboot", "timeout": 1, "connection_request": True}
    status, queued = call(acs, "POST", f"/devices/{phone.mac}/tasks", oss, body)
    assert status == 202 and queued["status"] == "pending"
    assert queued["connection_request"]["device_id"] == phone.device_id
    assert queued["connection_request"]["outcome"] != "sent", queued["connection_request"]

    subprocess.run([ACS, "token", "revoke", "oss", "--db", acs.cli.db_url], check=True, capture_output=True)
    assert call(acs, "GET", "/devices", oss)[0] == 401

    log = "".join(acs.server.log)
    assert "NBI POST" in log and "(token oss)" in log
    assert oss not in log and reader not in log
    assert acs.errors() == []
