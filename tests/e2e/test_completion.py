"""Completion rules that real CPEs break, end to end: a real ``acs serve``, the ``acs`` CLI, its
REST and SOAP API, and simulated phones told to behave as phones seen in the field do.

- a Reboot reported by ``1 BOOT`` alone or ``M Reboot`` with an empty CommandKey is done; a
  ScheduleInform by ``3 SCHEDULED`` alone;
- a Reboot whose phone never comes back becomes, at its deadline, a fault that says so in words,
  in the CLI (``--wait`` and ``show``), the REST API and the SOAP API alike;
- an AddObject answered with InstanceNumber 0 and a fault code as its Status is that fault, with
  no phantom instance stored; a fault written inside ``faultstring`` keeps its code;
- a phone speaking a CWMP namespace newer than the ACS knows is answered in CWMP 1.4;
- a phone whose agent crashes on more than 31 names is discovered all the same.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
import zeep
from click.testing import CliRunner
from lxml import etree
from zeep.transports import Transport

import cwmp_schemas
from acs.cli import main
from acs.cwmp import rpc
from acs.testing import SessionError, run_session
from tests.e2e.conftest import AUTH, SESSION_TIMEOUT, Acs, Operator, new_phone
from tests.e2e.test_bootstrap import assert_tree_is_the_phones
from tests.e2e.test_nbi import call, token
from tests.e2e.test_wait import wait_for_pending_task
from tests.web.conftest import ACS, Server, start_server

#: the server's session timeout, hence its sweep's period: deadlines pass within seconds
SWEEP = "2"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS_1_2 = "urn:dslforum-org:cwmp-1-2"


@pytest.fixture
def quick(cli: Operator) -> Iterator[Callable[..., Acs]]:
    """``acs serve`` sweeping every 2 s: ``quick(discovery=False)``."""
    started: list[Server] = []

    def start(*, discovery: bool = False) -> Acs:
        if not discovery:
            cli("policy", "disable", "discovery")
        server = start_server(cli.db_url, *AUTH, "--session-timeout", SWEEP, discovery=True)
        started.append(server)
        return Acs(server, cli)

    yield start
    for server in started:
        server.stop()


def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.2)
    return found


@pytest.mark.parametrize("m_events", ["none", "empty-key"])
def test_a_reboot_and_a_schedule_inform_reported_without_their_command_key_are_done(
    quick: Callable[..., Acs], m_events: str
) -> None:
    acs = quick()
    phone = new_phone(m_events=m_events)
    acs.session(phone)
    reboot = acs.cli.queue("reboot", "--device", phone.mac)
    scheduled = acs.cli.queue("schedule-inform", "--delay", "5s", "--device", phone.mac)

    log = acs.session(phone)

    assert [type(r) for r in log.requests] == [rpc.Reboot, rpc.ScheduleInform]
    assert [acs.cli.task(t)["status"] for t in (reboot, scheduled)] == ["sent", "sent"]

    log = acs.session(phone)

    events = [(e.EventCode, e.CommandKey) for e in log.inform.Event]
    expected = {
        "none": [("1 BOOT", ""), ("3 SCHEDULED", "")],
        "empty-key": [("1 BOOT", ""), ("M Reboot", ""), ("3 SCHEDULED", ""), ("M ScheduleInform", "")],
    }[m_events]
    assert events == expected
    assert log.requests == []  # neither is sent again
    assert [acs.cli.task(t)["status"] for t in (reboot, scheduled)] == ["done", "done"]
    assert acs.errors() == []


def test_a_reboot_whose_phone_never_comes_back_is_a_fault_in_words_everywhere(
    quick: Callable[..., Acs],
) -> None:
    acs = quick()
    phone = new_phone()
    acs.session(phone)
    command = [ACS, "task", "add", "reboot", "--device", phone.mac, "--complete-within", "1s", "--wait", "60"]
    process = subprocess.Popen(
        [*command, "--db", acs.cli.db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_pending_task(acs, phone.mac)
        log = run_session(phone, acs.url, timeout=SESSION_TIMEOUT)  # answers RebootResponse, never back
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert [type(r) for r in log.requests] == [rpc.Reboot]

    words = "the device did not come back with 1 BOOT within 1 second of its RebootResponse"
    (task_id,) = [t["id"] for t in acs.cli.tasks("--device", phone.mac)]
    assert process.returncode == 1, err
    assert out.endswith(f"1 fault\ntask {task_id} ({phone.device_id}): fault {words}\n")
    assert "None" not in out

    shown = acs.cli.task(task_id)
    assert (shown["status"], shown["fault_code"], shown["fault_string"], shown["fault_meaning"]) == (
        "fault",
        None,
        words,
        words,
    )
    assert shown["complete_within"] == 1 and shown["deadline_at"] is not None
    text = acs.cli("task", "show", str(task_id))
    assert f"\nfault         {words}\n" in text
    assert "None" not in text
    assert words in acs.cli("task", "list", "--device", phone.mac)

    reader = token(acs, "read", "dashboard")
    status, over_api = call(acs, "GET", f"/tasks/{task_id}", reader)
    assert status == 200 and over_api == shown
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {reader}"
    soap = zeep.Client(f"{acs.server.nbi_url}/soap?wsdl", transport=Transport(session=session, timeout=30))
    record = soap.service.GetTask(TaskId=task_id)
    assert (record.Status, record.FaultCode, record.FaultString, record.FaultMeaning) == (
        "fault",
        None,
        words,
        words,
    )
    assert record.CompleteWithin == 1
    assert acs.errors() == []


def test_complete_within_is_taken_over_the_api_and_refused_for_rpcs_done_at_their_response(
    quick: Callable[..., Acs],
) -> None:
    acs = quick()
    phone = new_phone()
    acs.session(phone)
    oss = token(acs, "operator", "oss")

    status, task = call(
        acs,
        "POST",
        f"/devices/{phone.mac}/tasks",
        oss,
        {
            "kind": "Download",
            "args": {"URL": "http://fw.example.com/sip88xx.12-0-2MPP-3.loads"},
            "complete_within": 1800,
        },
    )
    assert status == 202 and task["complete_within"] == 1800
    body = {"kind": "GetRPCMethods", "complete_within": 60}
    status, problem = call(acs, "POST", f"/devices/{phone.mac}/tasks", oss, body)
    assert status == 400 and problem["field"] == "body.complete_within"
    assert "GetRPCMethods is complete with its response" in problem["detail"]
    refused = acs.cli.run("task", "add", "get-rpc-methods", "--device", phone.mac, "--complete-within", "1m")
    assert refused.exit_code == 2 and "No such option '--complete-within'" in refused.output
    api = ["--api", acs.server.nbi_url, "--token", oss, "--json"]
    for selection in (["--device", phone.mac], ["--product-class", "CP-8841-3PCC"]):  # one device, a job
        remote = CliRunner().invoke(
            main, ["task", "add", "factory-reset", *selection, "--complete-within", "5m", *api]
        )
        assert remote.exit_code == 0, remote.output
        (queued,) = json.loads(remote.stdout)["tasks"]
        assert acs.cli.task(queued)["complete_within"] == 300
        acs.cli("task", "cancel", str(queued))

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {oss}"
    soap = zeep.Client(f"{acs.server.nbi_url}/soap?wsdl", transport=Transport(session=session, timeout=30))
    record = soap.service.CreateTask(Device=phone.mac, Kind="Reboot", CompleteWithin=120)
    assert (record.Kind, record.CompleteWithin, record.DeadlineAt) == ("Reboot", 120, None)
    with pytest.raises(zeep.exceptions.Fault, match="GetRPCMethods is complete with its response"):
        soap.service.CreateTask(Device=phone.mac, Kind="GetRPCMethods", CompleteWithin=120)

    acs.session(phone)  # both answered: the Download's half hour and the Reboot's 2 minutes start
    shown = acs.cli.task(task["id"])
    assert shown["status"] == "sent"
    answered_at = datetime.fromisoformat(shown["answered_at"])
    assert datetime.fromisoformat(shown["deadline_at"]) == answered_at + timedelta(seconds=1800)
    text = acs.cli("task", "show", str(task["id"]))
    assert "\nwithin        30 minutes\n" in text and "\ndeadline      " in text
    assert soap.service.GetTask(TaskId=record.Id).DeadlineAt is not None


def test_broken_answers_are_faults_with_the_phone_s_code_and_store_no_phantom_instance(
    quick: Callable[..., Acs],
) -> None:
    acs = quick()
    phone = new_phone(add_object_fault_in_status=True, fault_in_faultstring=True)
    acs.session(phone)
    table = "Device.Services.VoiceService.1.NoSuchTable."
    added = acs.cli.queue("add-object", table, "--device", phone.mac)
    read = acs.cli.queue("get-values", "Device.NoSuchParameter", "--device", phone.mac)

    log = acs.session(phone)

    assert log.responses[0] == rpc.AddObjectResponse(InstanceNumber=0, Status=9005)
    assert b"<faultstring><cwmp:Fault>" in log.exchanges[-1].sent  # the GetParameterValues' fault
    shown = acs.cli.task(added)
    assert (shown["status"], shown["fault_code"], shown["fault_meaning"]) == (
        "fault",
        9005,
        "Invalid parameter name",
    )
    assert shown["fault_string"] == (
        "the CPE answered AddObject with InstanceNumber 0 and Status 9005 (Invalid parameter name): "
        "no instance was created"
    )
    assert not [p for p in acs.cli.tree(phone.mac) if p.startswith(table)]
    assert not acs.cli.tasks("--device", phone.mac, "--kind", "GetParameterNames")  # no refresh of it
    shown = acs.cli.task(read)
    assert (shown["fault_code"], shown["fault_string"]) == (
        9005,
        "Device.NoSuchParameter is not a parameter or object of this phone",
    )
    assert "None" not in acs.cli("task", "show", str(read))


def test_a_phone_in_a_newer_namespace_is_answered_in_cwmp_1_4(quick: Callable[..., Acs]) -> None:
    acs = quick()
    phone = new_phone(cwmp_version="1.4", namespace="urn:dslforum-org:cwmp-1-5")
    acs.session(phone)  # known from its first Inform
    task_id = acs.cli.queue("get-rpc-methods", "--device", phone.mac)

    log = acs.session(phone)

    inform, request = [e for e in log.exchanges if e.status == 200][:2]  # (after the Digest challenge)
    assert b'xmlns:cwmp="urn:dslforum-org:cwmp-1-5"' in inform.sent
    assert isinstance(request.received_message, rpc.GetRPCMethods)
    for answer in (inform.received, request.received):
        root = etree.fromstring(answer)
        validator = cwmp_schemas.validator("1.4")
        assert validator.validate(root), validator.error_log
        assert root.nsmap["cwmp"] == NS_1_2
        assert b"cwmp-1-5" not in answer
    header = etree.fromstring(inform.received).find(f"{{{SOAP_ENV}}}Header")
    assert header.find(f"{{{NS_1_2}}}UseCWMPVersion").text == "1.4"
    assert acs.cli.task(task_id)["status"] == "done"
    assert acs.cli.device(phone.mac)["cwmp_version"] == "1.4"


def test_a_phone_that_crashes_above_31_names_is_discovered_at_its_next_session(
    quick: Callable[..., Acs],
) -> None:
    acs = quick(discovery=True)
    phone = new_phone(crash_above=31)

    with pytest.raises(SessionError, match="crashed on a GetParameterValues of 32 names"):
        run_session(phone, acs.url, timeout=SESSION_TIMEOUT)
    log = acs.session(phone)  # the batch that died, halved, and the rest split again

    sizes = [len(r.ParameterNames) for r in log.requests if isinstance(r, rpc.GetParameterValues)]
    assert max(sizes) == 16 and phone.crashes == 1
    assert_tree_is_the_phones(acs.cli.tree(phone.mac), phone)
    assert acs.cli.device(phone.mac)["discovery_batch"] == 16
    assert acs.errors() == []

    reset = acs.cli.queue("factory-reset", "--device", phone.mac)
    acs.session(phone)
    log = acs.session(phone)  # 0 BOOTSTRAP: discovered again, in batches of 16 from the start

    assert acs.cli.task(reset)["status"] == "done"
    assert max(len(r.ParameterNames) for r in log.requests if isinstance(r, rpc.GetParameterValues)) == 16
    assert phone.crashes == 1


def test_an_operator_sets_the_discovery_batch_per_model_with_acs_policy_and_the_api(
    quick: Callable[..., Acs],
) -> None:
    acs = quick(discovery=True)
    said = acs.cli("policy", "discovery-batch", "discovery", "8", "--product-class", "CP-8841-3PCC")
    assert said == "policy discovery: on NEW, 0 BOOTSTRAP: Discover (batch 32; CP-8841-3PCC: 8)\n"
    admin = token(acs, "admin", "ops")
    status, policy = call(acs, "GET", "/policies/discovery", admin)
    assert status == 200
    models = [{"product_class": "CP-8841-3PCC", "batch": 8}, {"product_class": "CP-7841-3PCC", "batch": 4}]
    tasks = [{"kind": "Discover", "args": {"batch": 32, "models": models}}]
    assert policy["tasks"] == [{"kind": "Discover", "args": {"batch": 32, "models": models[:1]}}]
    status, policy = call(acs, "PATCH", "/policies/discovery", admin, {"tasks": tasks})
    assert status == 200 and policy["tasks"] == tasks
    assert "Discover (batch 32; CP-8841-3PCC: 8; CP-7841-3PCC: 4)" in acs.cli("policy", "list")

    for model, batch in (("CP-8841-3PCC", 8), ("CP-7841-3PCC", 4), ("CP-8851-3PCC", 32)):
        phone = new_phone(model, f"FCH22{batch:02d}AAAA", f"00562b0a0b{batch:02x}", crash_above=batch)
        log = acs.session(phone)
        sizes = [len(r.ParameterNames) for r in log.requests if isinstance(r, rpc.GetParameterValues)]
        assert max(sizes) == batch, model
        assert_tree_is_the_phones(acs.cli.tree(phone.mac), phone)

    status, problem = call(
        acs,
        "PATCH",
        "/policies/discovery",
        admin,
        {"tasks": [{"kind": "Discover", "args": {"models": [models[0], models[0]]}}]},
    )
    assert status == 400 and "CP-8841-3PCC twice" in problem["detail"]


def test_wait_and_show_say_in_words_what_became_of_an_expired_or_cancelled_task(
    quick: Callable[..., Acs],
) -> None:
    acs = quick()
    phone = new_phone()
    acs.session(phone)
    done = subprocess.run(
        [
            ACS,
            "task",
            "add",
            "reboot",
            "--device",
            phone.mac,
            "--expires",
            "1s",
            "--wait",
            "60",
            "--db",
            acs.cli.db_url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )  # the phone never informs: the sweep expires it

    (task,) = acs.cli.tasks("--device", phone.mac)
    assert done.returncode == 1, done.stderr
    expiry = task["expires_at"][:19].replace("T", " ")
    assert done.stdout.endswith(
        f"1 expired\ntask {task['id']} ({phone.device_id}): expired: not sent before {expiry} (its expiry)\n"
    )
    assert f"\noutcome       expired: not sent before {expiry} (its expiry)\n" in acs.cli(
        "task", "show", str(task["id"])
    )

    cancelled = acs.cli.queue("get-rpc-methods", "--device", phone.mac)
    acs.cli("task", "cancel", str(cancelled))
    shown = acs.cli("task", "show", str(cancelled))
    assert "\noutcome       cancelled, at " in shown
    assert "None" not in shown
