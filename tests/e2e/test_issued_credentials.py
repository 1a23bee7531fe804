"""Credentials of its own for every phone, issued by the ACS on first contact (``acs policy add NAME
--on NEW --issue-credentials``): the simulated phone comes with the shared credentials, is sent a
ManagementServer.Username/Password of its own, authenticates with them from its next session on, and
the shared credentials no longer speak for it; also when the server died before the phone's answer
was committed."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from acs.session.service import KILL_BEFORE_COMMIT
from acs.testing import SimulatedPhone, run_session
from acs.testing.phone import SessionError
from tests.e2e.conftest import AUTH, SESSION_TIMEOUT, Acs, Operator, new_phone
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, start_server

SIP_PASSWORD = "Device.Services.VoiceService.1.SIP.Client.1.AuthPassword"


def _impostor_refused(url: str, phone: SimulatedPhone) -> None:
    """A CPE with the shared credentials, the phone's serial number and MAC: refused, told why."""
    impostor = new_phone(phone.identity.model.product_class, phone.identity.serial, phone.mac)
    with pytest.raises(SessionError) as refused:
        run_session(impostor, url, timeout=SESSION_TIMEOUT)
    assert refused.value.status == 403
    assert b"credentials of its own" in refused.value.body


def test_a_new_phone_gets_credentials_of_its_own_and_uses_them(serve: Callable[..., Acs]) -> None:
    acs = serve()
    acs.cli("policy", "add", "own-credentials", "--on", "NEW", "--issue-credentials")
    phone = new_phone()

    first = acs.session(phone)

    (sent,) = first.requests
    assert [p.Name for p in sent.ParameterList] == [
        "Device.ManagementServer.Username",
        "Device.ManagementServer.Password",
    ]
    assert phone.username == phone.device_id  # the phone applied them to its own authentication
    assert phone.password not in ("", CPE_PASSWORD) and len(phone.password) == 24
    device = acs.cli.device(phone.device_id)
    assert device["username"] == phone.device_id and "password" not in device
    (task,) = acs.cli.tasks()
    assert task["status"] == "done" and task["created_by"] == "policy:own-credentials:credentials"
    assert phone.password not in acs.cli("task", "show", str(task["id"]))  # masked
    assert phone.password not in "".join(acs.server.log)

    acs.cli("task", "add", "set-values", f"{SIP_PASSWORD}:string=sip-secret", "-d", phone.device_id)
    _impostor_refused(acs.url, phone)
    second = acs.session(phone)  # with its own credentials: the SIP password goes to it alone
    assert second.statuses[0] == 401  # the challenge, then the Inform with its own credentials
    answered = second.exchanges[1].request_headers["Authorization"]
    assert answered.startswith(f'Digest username="{phone.device_id}"')
    assert [p.Value for p in second.requests[0].ParameterList] == ["sip-secret"]
    assert len(acs.cli.tasks()) == 2  # NEW fires once: nothing issued again


def test_credentials_the_phone_applied_before_the_server_died_are_taken_at_its_next_inform(
    db_url: str, cli: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The phone applies its new credentials and answers; the server dies before it commits the answer.
    The phone's next session authenticates with the new credentials, which the server finds in the
    task it sent: they become the device's own, and the task is done, not sent again."""
    cli("policy", "disable", "discovery")
    cli("policy", "add", "own-credentials", "--on", "NEW", "--issue-credentials")
    monkeypatch.setenv(KILL_BEFORE_COMMIT, "SetParameterValuesResponse")
    server = start_server(db_url, *AUTH, discovery=True)
    phone = new_phone()
    try:
        with pytest.raises(SessionError):
            run_session(phone, server.url, timeout=SESSION_TIMEOUT)
        assert server.process.wait(10) == -signal.SIGKILL
    finally:
        server.stop()
    assert phone.username == phone.device_id and phone.password != CPE_PASSWORD  # applied
    assert cli.device(phone.device_id)["username"] is None  # the answer was never committed
    monkeypatch.delenv(KILL_BEFORE_COMMIT)

    server = start_server(db_url, *AUTH, discovery=True)
    try:
        log = run_session(phone, server.url, timeout=SESSION_TIMEOUT)
        assert log.statuses[-1] == 204 and log.requests == []  # nothing sent again
        assert cli.device(phone.device_id)["username"] == phone.device_id
        (task,) = cli.tasks()
        assert task["status"] == "done" and "applied them" in task["result"]["recovered"]
        _impostor_refused(server.url, phone)
        assert run_session(phone, server.url, timeout=SESSION_TIMEOUT).statuses[-1] == 204
    finally:
        server.stop()


def test_issued_credentials_go_only_to_devices_on_the_shared_ones(serve: Callable[..., Acs]) -> None:
    acs = serve()
    acs.cli("policy", "add", "own-credentials", "--on", "*", "--issue-credentials")
    phone = new_phone()
    acs.session(phone)
    acs.session(phone)  # with its own now: nothing issued again, on any Inform
    acs.session(phone)
    assert [t["status"] for t in acs.cli.tasks()] == ["done"]
    assert phone.username == phone.device_id and phone.username != CPE_USERNAME
