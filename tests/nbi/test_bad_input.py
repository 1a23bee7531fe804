"""Bodies the REST API must refuse with a 400 problem, never a 500 and a traceback: JSON nested
deeper than anything the API takes, numbers no float or column holds, text that is not UTF-8,
a document that is not an object, an object that gives a key twice. Over HTTP on a real socket,
on SQLite and PostgreSQL; nothing is queued, and the server goes on serving."""

from __future__ import annotations

import logging
import time

import pytest
import pytest_twisted

from acs.jobs import queue
from tests.nbi.conftest import Api, inform_of, session

ensure = pytest_twisted.ensureDeferred

SPV = (
    b'{"kind": "SetParameterValues", "args": {"ParameterList": [["Device.DeviceInfo.ProvisioningCode", %s]]}}'
)
#: (what, body, what the problem's detail says)
BAD_BODIES = [
    ("100,000 [", b"[" * 100_000, "nested more than 32 levels deep"),
    ("100,000 {", b'{"a": ' * 100_000, "nested more than 32 levels deep"),
    (
        "deep but whole",
        b'{"kind": "Reboot", "args": {"CommandKey": ' + b"[" * 200 + b"]" * 200 + b"}}",
        "nested",
    ),
    ("1e999999", SPV % b"1e999999", "the number 1e999999 is out of range"),
    ("-1E400", SPV % b"-1E400", "the number -1E400 is out of range"),
    ("a 10^6-digit integer", SPV % (b"9" * 1_000_000), "an integer of 1000000 digits (at most 40)"),
    ("NaN", SPV % b"NaN", "NaN is not JSON"),
    ("Infinity", SPV % b"-Infinity", "-Infinity is not JSON"),
    ("invalid UTF-8", b'{"kind": "Reb\xff\xfeoot"}', "not UTF-8 (byte 13)"),
    ("a lone surrogate's bytes", b'{"kind": "\xed\xa0\x80"}', "not UTF-8 (byte 10)"),
    ("UTF-16", '{"kind": "Reboot"}'.encode("utf-16"), "not UTF-8 (byte 0)"),
    ("an array", b'[{"kind": "Reboot"}]', "body is an array, not a JSON object"),
    ("a string", b'"Reboot"', "body is a string, not a JSON object"),
    ("a number", b"7", "body is a number, not a JSON object"),
    ("null", b"null", "body is null, not a JSON object"),
    ("a key twice", b'{"kind": "Reboot", "kind": "FactoryReset"}', "the key 'kind' is given twice"),
    ("a key twice, inside", b'{"kind": "Reboot", "args": {"CommandKey": "a", "CommandKey": "b"}}', "twice"),
    ("not JSON", b"{kind: Reboot}", "Expecting property name enclosed in double quotes"),
]


@pytest.mark.parametrize(("what", "body", "detail"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
@ensure
async def test_a_body_the_api_cannot_take_is_a_400_problem(
    api: Api, engine, caplog: pytest.LogCaptureFixture, what: str, body: bytes, detail: str
) -> None:
    device = session(engine, inform_of("FCH0001"))
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    answer = await api.call(
        "POST", f"/devices/{device}/tasks", data=body, headers={"Content-Type": "application/json"}
    )
    took = time.monotonic() - started
    assert answer.status == 400, (what, answer.body)
    problem = answer.problem  # application/problem+json, with its status
    assert set(problem) == {"type", "title", "status", "detail", "field", "allowed"}
    assert problem["title"] == "Bad Request" and problem["field"] == "body"
    assert problem["allowed"] == "a TaskCreate object (see /openapi.json)"
    assert detail in problem["detail"], problem
    assert took < 5, took  # refused at once, whatever the body holds
    assert queue.list_tasks(engine) == []
    assert "Traceback" not in caplog.text and "NBI request failed" not in caplog.text
    queued = await api.post(f"/devices/{device}/tasks", {"kind": "Reboot"}, role="operator")
    assert queued.status == 202  # and the server goes on


@ensure
async def test_a_bulk_body_and_a_number_out_of_range_in_a_numeric_field(api: Api, engine) -> None:
    session(engine, inform_of("FCH0001"))
    deep = await api.call("POST", "/tasks", data=b"[" * 100_000, headers={"Content-Type": "application/json"})
    assert deep.status == 400 and deep.problem["allowed"] == "a BulkTaskCreate object (see /openapi.json)"
    timeout = await api.call(
        "POST",
        "/tasks",
        data=b'{"kind": "Reboot", "devices": {"serial_number": ["FCH0001"]}, "max_attempts": 1e999999}',
        headers={"Content-Type": "application/json"},
    )
    assert timeout.status == 400 and "out of range" in timeout.problem["detail"]
    bom = await api.call(
        "POST",
        "/tasks",
        data=b'\xef\xbb\xbf{"kind": "Reboot", "devices": {"serial_number": ["FCH0001"]}}',
        headers={"Content-Type": "application/json"},
    )
    assert bom.status == 202  # a UTF-8 BOM may be ignored (RFC 8259): it is
    assert [t.kind for t in queue.list_tasks(engine)] == ["Reboot"]
