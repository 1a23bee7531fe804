"""A new phone's first session: the ACS discovers and stores its whole tree."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from acs.cwmp import values
from acs.jobs.policies import DISCOVERY_BATCH
from acs.testing import SimulatedPhone
from acs.testing.datamodel import Parameter
from acs.testing.phone import LOCAL_TIME, UPTIME
from tests.e2e.conftest import Acs, new_phone

#: values the phone computes when asked: only their type and writability are compared
CLOCKS = (UPTIME, LOCAL_TIME)


def expected_tree(phone: SimulatedPhone) -> dict[str, dict[str, Any]]:
    """What the ACS should know of ``phone``: every object and parameter, as the phone holds them."""
    tree: dict[str, dict[str, Any]] = {}
    for path, writable in phone.model.names("Device.", next_level=False):
        node = phone.model.get(path)
        if isinstance(node, Parameter):
            # a write-only secret (a password) reads back empty, as TR-069 has it
            value = "" if node.hidden else values.encode(node.value, node.type)
            tree[path] = {"value": value, "type": node.type, "writable": writable, "object": False}
        else:
            tree[path] = {"value": None, "type": None, "writable": writable, "object": True}
    return tree


def assert_tree_is_the_phones(stored: dict[str, dict[str, Any]], phone: SimulatedPhone) -> None:
    expected = expected_tree(phone)
    assert sorted(set(expected) - set(stored)) == [], "parameters the ACS did not store"
    assert sorted(set(stored) - set(expected)) == [], "parameters the phone does not have"
    for path, want in expected.items():
        got = {k: stored[path][k] for k in want}
        if path in CLOCKS:
            got["value"] = want["value"]
        assert got == want, path


def test_a_new_phone_s_first_session_stores_its_full_tree(serve: Callable[..., Acs]) -> None:
    acs = serve(discovery=True)
    phone = new_phone("CP-8841-3PCC", "FCH2240ABCD", "00562b0a0b0c")

    log = acs.session(phone)

    assert [e.EventCode for e in log.inform.Event] == ["0 BOOTSTRAP", "1 BOOT"]
    stored = acs.cli.tree("00:56:2B:0A:0B:0C")
    assert len(stored) > 600
    assert_tree_is_the_phones(stored, phone)

    device = acs.cli.device(phone.mac)
    assert device["id"] == "00562B-CP-8841-3PCC-FCH2240ABCD"
    assert device["product_class"] == "CP-8841-3PCC"
    assert device["software_version"] == phone.software_version
    assert device["mac"] == phone.mac

    # the discovery ran in that one session: the names of the root, then values in batches of 32
    tasks = acs.cli.tasks("--device", phone.mac)
    leaves = sum(1 for p in stored.values() if not p["object"])
    assert sorted(t["kind"] for t in tasks) == ["GetParameterNames"] + ["GetParameterValues"] * math.ceil(
        leaves / DISCOVERY_BATCH
    )
    assert {t["status"] for t in tasks} == {"done"}
    assert all(
        t["attempts"] == 1 and t["created_by"] == "policy:discovery:values"
        for t in tasks
        if t["kind"] == "GetParameterValues"
    )
    shown = acs.cli.task(min(t["id"] for t in tasks))
    assert shown["kind"] == "GetParameterNames"
    assert shown["args"] == {"ParameterPath": "Device.", "NextLevel": False}
    assert len(shown["result"]["ParameterList"]) == len(stored)
    assert acs.errors() == []
