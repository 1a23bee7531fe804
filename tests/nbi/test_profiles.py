"""The profile endpoints of the NBI over HTTP on a real socket, on SQLite and PostgreSQL.

Phones come as they come: a simulated Cisco 8841's session through the CWMP backend, its
tree read by the discovery policy.
"""

from __future__ import annotations

import pytest_twisted
import sqlalchemy as sa
from twisted.internet import reactor, task, threads

from acs.jobs import policies, queue
from acs.provisioning import flatprofile, store
from acs.store.schema import profiles
from acs.testing import SimulatedPhone
from tests.nbi.conftest import Api, inform_of, session
from tests.provisioning.inprocess import phone_session

ensure = pytest_twisted.ensureDeferred
XML = {"Content-Type": "application/xml"}
INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
NTP = "Device.Time.NTPServer1"

BASE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- every phone of the provider -->
<flat-profile>
  <Periodic_Inform_Interval ua="na">3600</Periodic_Inform_Interval>
  <Primary_NTP_Server ua="na">ntp.example.net</Primary_NTP_Server>
  <Profile_Rule ua="na">https://prov.example.net/$PSN/$MA.xml</Profile_Rule>
  <Station_Name ua="rw">desk-$MA</Station_Name>
</flat-profile>
"""
ALICE = """<flat-profile>
  <!-- Alice's line -->
  <User_ID_1_ ua="na">1001</User_ID_1_>
  <Password_1_ ua="na">s3cr3t-sip</Password_1_>
</flat-profile>
"""
#: line 8 has a ua a phone does not know
BROKEN = BASE.replace("</flat-profile>", '  <SIP_T1 ua="admin">.5</SIP_T1>\n</flat-profile>')


def discovered_phone(engine) -> SimulatedPhone:
    """A phone that has informed and whose tree the ACS read (the api fixture turns discovery off)."""
    with engine.begin() as conn:
        policies.set_enabled(conn, "discovery", True)
    phone = SimulatedPhone()
    phone_session(engine, phone)
    return phone


def stored_profiles(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(profiles).order_by(profiles.c.name)).mappings()]


@ensure
async def test_profiles_are_created_read_replaced_and_deleted_as_json_or_xml(api: Api):
    created = await api.post("/profiles", {"name": "base", "xml": BASE, "description": "all phones"})
    assert created.status == 201, created.body
    assert created.headers["location"] == "/profiles/base"
    assert created.body["xml"] == BASE and created.body["description"] == "all phones"
    assert created.body["warnings"] == [] and created.body["provisioned"] == []
    again = await api.post("/profiles", {"name": "base", "xml": BASE})
    assert again.status == 409 and again.problem["field"] == "body.name"
    assert (await api.post("/profiles", {"name": "x", "xml": BASE}, role="operator")).status == 403

    listed = await api.get("/profiles", role="read")
    assert [(p["name"], p["description"], p["assignments"]) for p in listed.body] == [
        ("base", "all phones", [])
    ]
    read = await api.get("/profiles/base", role="read")
    assert read.body["xml"] == BASE  # as written: declaration, comment, layout
    as_xml = await api.get("/profiles/base", role="read", headers={"Accept": "application/xml"})
    assert as_xml.status == 200 and as_xml.headers["content-type"] == "application/xml"
    assert as_xml.body == BASE.encode()
    prefers_json = await api.get("/profiles/base", headers={"Accept": "application/xml;q=0.5, */*"})
    assert prefers_json.headers["content-type"] == "application/json"

    put = await api.call("PUT", "/profiles/alice", data=ALICE.encode(), headers=XML)
    assert put.status == 201 and put.headers["location"] == "/profiles/alice"
    masked = await api.get("/profiles/alice", role="read")
    assert "s3cr3t-sip" not in masked.body["xml"]
    assert '<Password_1_ ua="na">********</Password_1_>' in masked.body["xml"]
    assert "<!-- Alice's line -->" in masked.body["xml"]  # masked in place, the rest as written
    refused = await api.get("/profiles/alice", role="operator", params={"show_secrets": "true"})
    assert refused.status == 403 and refused.problem["field"] == "query.show_secrets"
    shown = await api.get("/profiles/alice", params={"show_secrets": "true"})
    assert shown.body["xml"] == ALICE

    replaced = await api.call(
        "PUT", "/profiles/alice", json_body={"xml": ALICE.replace("1001", "1002"), "description": "Alice"}
    )
    assert replaced.status == 200 and "location" not in replaced.headers
    assert "1002" in replaced.body["xml"] and replaced.body["description"] == "Alice"
    xml_again = await api.call("PUT", "/profiles/alice", data=ALICE.encode(), headers=XML)
    assert xml_again.status == 200 and xml_again.body["description"] == "Alice"  # an XML body keeps it

    assert (await api.delete("/profiles/alice", role="operator")).status == 403
    assert (await api.delete("/profiles/alice")).status == 204
    gone = await api.get("/profiles/alice")
    assert gone.status == 404 and gone.problem["field"] == "path.name"
    assert (await api.delete("/profiles/alice")).status == 404


@ensure
async def test_a_malformed_upload_is_422_with_line_and_element_and_nothing_stored_changes(api: Api, engine):
    await api.post("/profiles", {"name": "base", "xml": BASE})
    before = stored_profiles(engine)

    as_xml = await api.call("PUT", "/profiles/base", data=BROKEN.encode(), headers=XML)
    assert as_xml.status == 422, as_xml.body
    problem = as_xml.problem
    assert problem["field"] == "body"
    assert 'line 8, <SIP_T1>: ua="admin" is not allowed' in problem["detail"]
    assert problem["detail"].endswith("nothing was stored")
    assert problem["problems"] == [
        {
            "line": 8,
            "element": "SIP_T1",
            "message": 'ua="admin" is not allowed; use ua="na", "ro" or "rw"',
            "severity": "error",
        }
    ]
    as_json = await api.call("PUT", "/profiles/base", json_body={"xml": BROKEN})
    assert as_json.status == 422 and as_json.problem["field"] == "body.xml"
    created = await api.post("/profiles", {"name": "other", "xml": "<flat-profile>\n<A>x</B>\n"})
    assert created.status == 422
    assert created.problem["problems"][0]["line"] == 2
    assert "not well-formed XML" in created.problem["problems"][0]["message"]
    latin1 = await api.call(
        "PUT", "/profiles/base", data="<flat-profile><A>é</A>".encode("latin-1"), headers=XML
    )
    assert latin1.status == 422 and "UTF-8" in latin1.problem["detail"]
    text = await api.call("PUT", "/profiles/base", data=BASE.encode(), headers={"Content-Type": "text/plain"})
    assert text.status == 415 and text.problem["allowed"] == "application/json or application/xml"
    bad_name = await api.call("PUT", "/profiles/-base", data=BASE.encode(), headers=XML)
    assert bad_name.status == 400 and bad_name.problem["field"] == "path.name"
    assert stored_profiles(engine) == before

    warned = await api.call(
        "PUT", "/profiles/base", data=BASE.replace("Station_Name", "Station_Nmae").encode(), headers=XML
    )
    assert warned.status == 200  # unknown names are kept, as phones ignore them, and said
    assert [(w["line"], w["element"], w["severity"]) for w in warned.body["warnings"]] == [
        (7, "Station_Nmae", "warning")
    ]


@ensure
async def test_assign_diff_push_and_unassign_on_a_discovered_phone(api: Api, engine):
    phone = discovered_phone(engine)
    dev = phone.device_id
    await api.post("/profiles", {"name": "base", "xml": BASE})

    assigned = await api.post(
        "/profiles/base/assignments", {"level": "model", "match": "CP-8841-3PCC"}, role="admin"
    )
    assert assigned.status == 200, assigned.body
    (outcome,) = assigned.body["provisioned"]
    assert outcome["device"] == dev and outcome["changes"] == 2 and outcome["task"] is not None
    sent = queue.get(engine, outcome["task"])
    assert {p[0] for p in sent.args["ParameterList"]} == {INTERVAL, NTP}
    assert sent.args["ParameterKey"] == outcome["parameter_key"]

    effective = await api.get(f"/devices/{phone.mac}/profile", role="read")
    assert effective.body["device"] == dev
    assert effective.body["layers"] == [
        {"name": "base", "level": "model", "match": "CP-8841-3PCC", "priority": 0}
    ]
    assert effective.body["parameter_key"] == outcome["parameter_key"]
    values = flatprofile.parse(effective.body["xml"].encode()).values()
    assert values["Station_Name"] == f"desk-{phone.mac}"  # macros expanded for the phone
    as_xml = await api.get(f"/devices/{dev}/profile", headers={"Accept": "application/xml"})
    assert flatprofile.parse(as_xml.body).values() == values

    diff = await api.get(f"/devices/{dev}/profile/diff", role="read")
    assert diff.body["managed"] is True
    assert {c["path"]: c["profile"] for c in diff.body["changes"]} == {
        INTERVAL: "3600",
        NTP: "ntp.example.net",
    }
    assert set(diff.body["unmapped"]) == {"Profile_Rule", "Station_Name"}

    assert (await api.post(f"/devices/{dev}/profile/push", role="read")).status == 403
    pushed = await api.call("POST", f"/devices/{dev}/profile/push", role="operator")  # no body at all
    assert pushed.status == 202, pushed.body
    assert pushed.body["kind"] == "SetParameterValues" and pushed.body["status"] == "pending"
    assert pushed.headers["location"] == f"/tasks/{pushed.body['id']}"
    assert queue.get(engine, outcome["task"]).status == "cancelled"  # replaced, never sent twice

    # the phone comes while the API waits, asked to by the connection request
    later = task.deferLater(reactor, 0.5, threads.deferToThread, phone_session, engine, phone)
    waited = await api.post(
        f"/devices/{dev}/profile/push", {"connection_request": True, "timeout": 15}, role="operator"
    )
    log = await later
    assert waited.status == 200, waited.body
    assert waited.body["status"] == "done" and waited.body["connection_request"]["outcome"] == "sent"
    assert api.kicked == [dev]
    assert [type(r).__name__ for r in log] == ["SetParameterValues"]
    assert phone.value(INTERVAL) == 3600
    settings = queue.list_tasks(engine, device_id=dev, kind="SetParameterValues")
    assert sorted(t.status for t in settings) == ["cancelled", "cancelled", "done"]

    assert (await api.get(f"/devices/{dev}/profile/diff")).body["changes"] == []
    unchanged = await api.post(f"/devices/{dev}/profile/push", {}, role="operator")
    assert unchanged.status == 204 and unchanged.body is None

    own = await api.post("/profiles/base/assignments", {"level": "device", "match": phone.mac, "priority": 2})
    assert own.body["match"] == dev and own.body["provisioned"] == [
        {
            "device": dev,
            "task": None,
            "parameter_key": outcome["parameter_key"],
            "changes": 0,
            "cancelled": [],
        }
    ]
    with engine.connect() as conn:
        assert store.get_profile(conn, "base")["assignments"] == [
            {"level": "device", "match": dev, "priority": 2},
            {"level": "model", "match": "CP-8841-3PCC", "priority": 0},
        ]
    removed = await api.delete("/profiles/base/assignments/model/CP-8841-3PCC")
    assert removed.status == 204
    missing = await api.delete("/profiles/base/assignments/model/CP-8841-3PCC")
    assert missing.status == 404 and missing.problem["field"] == "path.match"
    assert "no assignment of base to 'model CP-8841-3PCC'" in missing.problem["detail"]
    assert (await api.delete(f"/profiles/base/assignments/device/{phone.mac}", role="operator")).status == 403
    assert (await api.delete(f"/profiles/base/assignments/device/{phone.mac}")).status == 204
    assert (await api.get(f"/devices/{dev}/profile")).body["layers"] == []


@ensure
async def test_assignments_that_cannot_be_made_name_the_field(api: Api, engine):
    await api.post("/profiles", {"name": "base", "xml": BASE})
    for body, status, field in [
        ({"level": "model"}, 400, "body.match"),
        ({"level": "default", "match": "CP-8841-3PCC"}, 400, "body.match"),
        ({"level": "tag", "match": " "}, 400, "body.match"),
        ({"level": "device", "match": "00562bffffff"}, 404, "body.match"),
        ({"level": "group", "match": "x"}, 400, "body.level"),
        ({"level": "tag", "match": "lab", "priority": "high"}, 400, "body.priority"),
    ]:
        answer = await api.post("/profiles/base/assignments", body)
        assert answer.status == status, (body, answer.body)
        assert answer.problem["field"] == field, answer.body
    assert (await api.post("/profiles/base/assignments", {"level": "default"})).status == 200
    assert (await api.delete("/profiles/base/assignments/default")).status == 204
    assert (await api.delete("/profiles/base/assignments/default")).status == 404
    nowhere = await api.post("/profiles/nope/assignments", {"level": "default"})
    assert nowhere.status == 404 and nowhere.problem["field"] == "path.name"
    assert (
        await api.post("/profiles/base/assignments", {"level": "tag", "match": "lab"}, role="operator")
    ).status == 403
    with engine.connect() as conn:
        assert store.get_profile(conn, "base")["assignments"] == []


@ensure
async def test_a_device_not_discovered_gets_409_on_push_and_is_not_managed_in_its_diff(api: Api, engine):
    dev = session(engine, inform_of("FCH0009"))  # informed, never discovered: no tree but the Inform's
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM parameters"))
    await api.post("/profiles", {"name": "base", "xml": BASE})
    await api.post("/profiles/base/assignments", {"level": "default"})
    diff = await api.get(f"/devices/{dev}/profile/diff")
    assert diff.body["managed"] is False and diff.body["changes"] == []
    pushed = await api.post(f"/devices/{dev}/profile/push", {}, role="operator")
    assert pushed.status == 409 and pushed.problem["field"] == "path.device"
    assert "when its discovery finishes" in pushed.problem["detail"]
    unknown = await api.get("/devices/00562bffffff/profile")
    assert unknown.status == 404 and unknown.problem["field"] == "path.device"


@ensure
async def test_secrets_in_a_device_s_profile_need_an_admin_token(api: Api, engine):
    phone = discovered_phone(engine)
    await api.post("/profiles", {"name": "alice", "xml": ALICE})
    await api.post("/profiles/alice/assignments", {"level": "device", "match": phone.mac}, role="admin")
    for path in (f"/devices/{phone.mac}/profile", f"/devices/{phone.mac}/profile/diff"):
        masked = await api.get(path, role="read")
        assert "s3cr3t-sip" not in str(masked.body) and "********" in str(masked.body), path
        refused = await api.get(path, role="operator", params={"show_secrets": "true"})
        assert refused.status == 403 and refused.problem["field"] == "query.show_secrets"
        shown = await api.get(path, params={"show_secrets": "true"})
        assert "s3cr3t-sip" in str(shown.body), path
