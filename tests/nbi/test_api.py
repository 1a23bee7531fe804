"""Every endpoint of the NBI over HTTP on a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest_twisted
import sqlalchemy as sa
from twisted.internet import reactor, task, threads

from acs.cwmp import rpc
from acs.jobs import queue
from acs.store import inventory
from acs.store.schema import api_tokens, devices, sessions, utcnow
from tests.nbi.conftest import Api, inform_of, session

ensure = pytest_twisted.ensureDeferred


def _fleet(engine) -> list[str]:
    """Three phones: two 8841 (one tagged lab, one on an old software version), one 7841."""
    ids = [
        session(engine, inform_of("FCH0001", mac="00:56:2b:00:00:01")),
        session(
            engine,
            inform_of(
                "FCH0002",
                mac="00:56:2b:00:00:02",
                params={"Device.DeviceInfo.SoftwareVersion": "sip88xx.11-3-1MPP"},
            ),
        ),
        session(engine, inform_of("FCH0003", model="CP-7841-3PCC", mac="00:56:2b:00:00:03")),
    ]
    with engine.begin() as conn:
        inventory.set_tags(conn, ids[0], add=["lab"])
    return ids


# --- authentication and roles ----------------------------------------------------------------------


@ensure
async def test_no_token_is_401_problem_naming_the_authorization_header(api: Api):
    answer = await api.get("/devices", role=None)
    assert answer.status == 401
    assert answer.problem["field"] == "header.Authorization"
    assert "acs token create" in answer.problem["allowed"]
    assert answer.headers["www-authenticate"].startswith("Bearer")


@ensure
async def test_unknown_and_revoked_tokens_are_401(api: Api, engine):
    answer = await api.get("/devices", headers={"Authorization": "Bearer acs_not-a-token"}, role=None)
    assert answer.status == 401 and "unknown or revoked" in answer.problem["detail"]
    assert (await api.get("/devices", role="read")).status == 200
    with engine.begin() as conn:
        conn.execute(sa.delete(api_tokens).where(api_tokens.c.role == "read"))
    assert (await api.get("/devices", role="read")).status == 401


@ensure
async def test_a_read_token_cannot_create_tasks_and_an_operator_cannot_delete_devices(api: Api, engine):
    (dev, *_) = _fleet(engine)
    refused = await api.post(f"/devices/{dev}/tasks", {"kind": "Reboot"}, role="read")
    assert refused.status == 403
    assert refused.problem["field"] == "header.Authorization"
    assert "role read" in refused.problem["detail"] and "needs operator" in refused.problem["detail"]
    assert refused.problem["allowed"] == "a token with role operator or admin"
    assert queue.list_tasks(engine) == []
    assert (await api.delete(f"/devices/{dev}", role="operator")).status == 403
    assert (await api.post("/policies", {}, role="operator")).status == 403
    assert (await api.post(f"/devices/{dev}/tasks", {"kind": "Reboot"}, role="operator")).status == 202


@ensure
async def test_tokens_are_stored_hashed_and_never_logged(api: Api, engine, caplog):
    caplog.set_level(logging.DEBUG)
    (dev, *_) = _fleet(engine)
    await api.post(f"/devices/{dev}/tasks", {"kind": "Reboot"}, role="operator")
    await api.get("/devices", role="read")
    await api.get("/devices", headers={"Authorization": "Bearer acs_wrong-one"}, role=None)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(api_tokens)).mappings()]
    stored = " ".join(str(v) for row in rows for v in row.values())
    for token in api.tokens.values():
        assert token not in stored
        assert inventory_hash(token) in stored
    logged = caplog.text
    assert "NBI POST" in logged and "operator-client" in logged  # the log names who, by name
    assert "unknown or revoked token" in logged
    for token in [*api.tokens.values(), "acs_wrong-one"]:
        assert token not in logged


def inventory_hash(token: str) -> str:
    from acs.nbi.tokens import hash_token

    return hash_token(token)


@ensure
async def test_unknown_paths_are_404_and_wrong_methods_405_with_allow(api: Api):
    missing = await api.get("/nothing")
    assert missing.status == 404 and missing.problem["field"] == "path"
    wrong = await api.call("PUT", "/devices")
    assert wrong.status == 405
    assert wrong.headers["allow"] == "GET, POST" and wrong.problem["allowed"] == "GET, POST"


@ensure
async def test_the_openapi_document_is_served_without_a_token_and_lists_every_route(api: Api):
    from acs.nbi.api import router

    doc = await api.get("/openapi.json", role=None)
    assert doc.status == 200 and doc.body["openapi"].startswith("3.1")
    for route in router.routes:
        operation = doc.body["paths"][route.path][route.method.lower()]
        assert operation["x-acs-role"] == route.role
        assert "401" in operation["responses"] and "400" in operation["responses"]


# --- bad input names the field and what is allowed ---------------------------------------------------


@ensure
async def test_bad_query_parameters_name_the_parameter_and_what_is_allowed(api: Api):
    for params, field, allowed in [
        ({"limit": "0"}, "query.limit", "a whole number from 1 to 1000"),
        ({"limit": "ten"}, "query.limit", "a whole number from 1 to 1000"),
        ({"sort": "color"}, "query.sort", "one of id, mac"),
        ({"last_inform_after": "yesterday"}, "query.last_inform_after", "RFC 3339"),
        ({"last_inform_after": "2026-11-24T10:00:00"}, "query.last_inform_after", "time zone"),
        ({"fields": ["id", "password"]}, "query.fields", "one of id,"),
        ({"fields": ""}, "query.fields", "one of id,"),
        ({"parameter": "Device.X"}, "query.parameter", "text matching"),
        ({"colour": "red"}, "query.colour", "product_class"),
    ]:
        answer = await api.get("/devices", params=params)
        assert answer.status == 400, params
        assert answer.problem["field"] == field, answer.body
        assert allowed in answer.problem["allowed"], answer.body


@ensure
async def test_bad_bodies_name_the_field_and_what_is_allowed(api: Api, engine):
    (dev, *_) = _fleet(engine)
    path = f"/devices/{dev}/tasks"
    cases = [
        ({"kind": "Reboop"}, "body.kind", "one of GetRPCMethods"),
        ({}, "body.kind", "one of GetRPCMethods"),
        ({"kind": "Reboot", "colour": 1}, "body.colour", "kind, args"),
        ({"kind": "Reboot", "timeout": 301}, "body.timeout", "from 0 to 300"),
        ({"kind": "GetParameterValues", "args": {"Names": ["x"]}}, "body.args.Names", "ParameterNames"),
        ({"kind": "Reboot", "args": {"CommandKey": 7}}, "body.args.CommandKey", "text"),
        ({"kind": "Reboot", "expires_at": "soon"}, "body.expires_at", "RFC 3339"),
    ]
    for body, field, allowed in cases:
        answer = await api.post(path, body)
        assert answer.status == 400, body
        assert answer.problem["field"] == field, answer.body
        assert allowed in answer.problem["allowed"], answer.body
    not_json = await api.call(
        "POST", path, data=b"{kind: Reboot}", headers={"Content-Type": "application/json"}
    )
    assert not_json.status == 400 and not_json.problem["field"] == "body"
    form = await api.call("POST", path, data=b"kind=Reboot", headers={"Content-Type": "text/plain"})
    assert form.status == 415 and form.problem["allowed"] == "application/json"
    assert queue.list_tasks(engine) == []


@ensure
async def test_text_a_database_cannot_store_is_refused_not_a_server_error(api: Api, engine):
    (dev, *_) = _fleet(engine)
    nul_query = await api.get("/devices", params={"tag": "a\x00b"})
    assert nul_query.status == 400 and nul_query.problem["field"] == "query.tag"
    nul_path = await api.get("/policies/a%00b")
    assert nul_path.status == 400 and nul_path.problem["field"] == "path.name"
    bad_path = await api.get("/policies/%ff")
    assert bad_path.status == 400 and bad_path.problem["allowed"] == "UTF-8 text without NUL characters"
    for body, field in [
        (b'{"kind": "Reboot", "args": {"CommandKey": "a\\u0000"}}', "body.args.CommandKey"),
        (b'{"kind": "Reboot", "args": {"CommandKey": "\\ud800"}}', "body.args.CommandKey"),
    ]:
        answer = await api.call(
            "POST", f"/devices/{dev}/tasks", data=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status == 400 and answer.problem["field"] == field, answer.body
    integral = await api.post(
        f"/devices/{dev}/tasks", {"kind": "Reboot", "max_attempts": 2.0}, role="operator"
    )
    assert integral.status == 202 and integral.body["max_attempts"] == 2


# --- devices --------------------------------------------------------------------------------------------


@ensure
async def test_device_list_filters(api: Api, engine):
    ids = _fleet(engine)
    earlier = (utcnow() - timedelta(hours=1)).isoformat()

    async def found(**params: object) -> list[str]:
        answer = await api.get("/devices", params=params, role="read")
        assert answer.status == 200, answer.body
        assert int(answer.headers["x-total-count"]) == len(answer.body)
        return [d["id"] for d in answer.body]

    assert await found() == sorted(ids)
    assert await found(id=ids[1]) == [ids[1]]
    assert await found(mac="00:56:2B:00:00:03") == [ids[2]]
    assert await found(mac=["00562b000001", "00562b000002"]) == ids[:2]
    assert await found(serial_number="FCH0002") == [ids[1]]
    assert await found(product_class="CP-7841-3PCC") == [ids[2]]
    assert await found(software_version="sip88xx.11-3-1MPP") == [ids[1]]
    assert await found(tag="lab") == [ids[0]]
    assert await found(last_inform_after=earlier) == sorted(ids)
    assert await found(last_inform_before=earlier) == []
    current = "Device.DeviceInfo.SoftwareVersion=sip88xx.12-0-1MPP-1"
    assert await found(parameter=current) == sorted([ids[0], ids[2]])
    assert await found(parameter_prefix="Device.DeviceInfo.SoftwareVersion=sip88xx.11") == [ids[1]]
    assert await found(product_class="CP-8841-3PCC", tag="lab") == [ids[0]]


@ensure
async def test_device_list_pages_sorts_and_projects(api: Api, engine):
    ids = _fleet(engine)
    page = await api.get("/devices", params={"limit": "2", "offset": "1", "sort": "-serial_number"})
    assert [d["serial_number"] for d in page.body] == ["FCH0002", "FCH0001"]
    assert page.headers["x-total-count"] == "3"
    projected = await api.get("/devices", params={"fields": ["mac", "tags"], "sort": "mac", "limit": "1"})
    assert projected.body == [{"id": ids[0], "mac": "00562b000001", "tags": ["lab"]}]
    full = await api.get("/devices", params={"limit": "1"})
    assert "password" not in full.body[0] and "connection_request_password" not in full.body[0]
    assert full.body[0]["product_class"] == "CP-7841-3PCC" and full.body[0]["last_inform"]  # first by id


@ensure
async def test_get_device_with_parameters_by_subtree_and_paths_secrets_masked(api: Api, engine):
    dev = session(
        engine,
        inform_of(
            "FCH0009",
            mac="00:56:2b:00:00:09",
            params={
                "Device.DeviceInfo.ModelName": "CP-8841-3PCC",
                "Device.Services.VoiceService.1.SIP.Client.1.AuthPassword": "hunter2",
            },
        ),
    )
    plain = await api.get("/devices/00:56:2B:00:00:09", role="read")
    assert plain.status == 200 and plain.body["id"] == dev and "parameters" not in plain.body
    subtree = await api.get(f"/devices/{dev}", params={"parameters": "Device.DeviceInfo."})
    assert [p["path"] for p in subtree.body["parameters"]] == [
        "Device.DeviceInfo.ModelName",
        "Device.DeviceInfo.SoftwareVersion",
    ]
    paths = await api.get(
        "/devices/FCH0009",
        params={
            "parameters": ["Device.DeviceInfo.ModelName", "Device.Services.VoiceService.1.SIP.Client.1."]
        },
    )
    shown = {p["path"]: p["value"] for p in paths.body["parameters"]}
    assert shown == {
        "Device.DeviceInfo.ModelName": "CP-8841-3PCC",
        "Device.Services.VoiceService.1.SIP.Client.1.AuthPassword": inventory.MASK,
    }
    everything = await api.get(f"/devices/{dev}", params={"parameters": ".", "fields": "tags"})
    assert set(everything.body) == {"id", "tags", "parameters"} and len(everything.body["parameters"]) == 4
    missing = await api.get("/devices/nope")
    assert missing.status == 404 and missing.problem["field"] == "path.device"
    assert "MAC or serial number" in missing.problem["allowed"]


@ensure
async def test_delete_a_device_forgets_it_and_its_tasks(api: Api, engine):
    (dev, *_) = _fleet(engine)
    queue.enqueue(engine, dev, "Reboot")
    assert (await api.delete(f"/devices/{dev}")).status == 204
    assert (await api.get(f"/devices/{dev}")).status == 404
    assert queue.list_tasks(engine, device_id=dev) == []
    assert (await api.delete(f"/devices/{dev}")).status == 404


@ensure
async def test_tags_are_added_and_removed(api: Api, engine):
    (dev, *_) = _fleet(engine)
    added = await api.post(
        f"/devices/{dev}/tags", {"add": ["floor-2", "vip"], "remove": ["lab"]}, role="operator"
    )
    assert added.status == 200 and added.body == {"id": dev, "tags": ["floor-2", "vip"]}
    removed = await api.delete(f"/devices/{dev}/tags/vip", role="operator")
    assert removed.body == {"id": dev, "tags": ["floor-2"]}
    assert (await api.delete(f"/devices/{dev}/tags/vip", role="operator")).problem["field"] == "path.tag"
    blank = await api.post(f"/devices/{dev}/tags", {"add": [""]}, role="operator")
    assert blank.status == 400 and blank.problem["field"] == "body.add.0"


@ensure
async def test_a_preregistered_device_keeps_its_tags_and_tasks_when_it_first_informs(api: Api, engine):
    made = await api.post("/devices", {"mac": "00-56-2B-00-00-42", "tags": ["floor-3"]})
    assert made.status == 201 and made.body["id"] == "mac:00562b000042"
    assert made.headers["location"] == "/devices/mac:00562b000042"
    queued = await api.post("/devices/00562b000042/tasks", {"kind": "Reboot"}, role="operator")
    assert queued.status == 202
    again = await api.post("/devices", {"mac": "00562b000042"})
    assert again.status == 409
    bad = await api.post("/devices", {"mac": "not-a-mac"})
    assert bad.status == 400 and bad.problem["field"] == "body.mac"
    neither = await api.post("/devices", {"tags": ["x"]})
    assert neither.status == 400
    assert (await api.post("/devices", {"mac": "00562b000043"}, role="operator")).status == 403
    exact = await api.post(
        "/devices", {"mac": "00562b000044", "serial_number": "FCH0044", "product_class": "CP-8841-3PCC"}
    )
    assert (
        exact.status == 201
        and exact.body["id"] == "00562B-CP-8841-3PCC-FCH0044"
        and exact.body["oui"] == "00562B"
    )

    dev = session(
        engine, inform_of("FCH0042", mac="00:56:2b:00:00:42"), respond=lambda _: rpc.RebootResponse()
    )
    shown = await api.get("/devices/00562b000042")
    assert shown.body["id"] == dev and shown.body["tags"] == ["floor-3"] and shown.body["first_inform"]
    assert (await api.get("/devices/mac:00562b000042")).status == 404
    # a device pre-registered with its real id informs as a new device: NEW policies see it
    exact_id = session(engine, inform_of("FCH0044", mac="00:56:2b:00:00:44"))
    assert exact_id == exact.body["id"]
    assert (await api.get(f"/devices/{exact_id}")).body["first_inform"]
    (task_,) = (await api.get(f"/devices/{dev}/tasks")).body
    assert task_["id"] == queued.body["id"] and task_["status"] == "sent"  # sent in its first session


@ensure
async def test_events_and_sessions_history_name_sessions_by_reference_not_cookie(api: Api, engine):
    (dev, *_) = _fleet(engine)
    session(engine, inform_of("FCH0001", events=("2 PERIODIC",)))
    events = await api.get(f"/devices/{dev}/events", role="read")
    assert [e["code"] for e in events.body] == ["2 PERIODIC", "1 BOOT"]
    sessions_ = await api.get(f"/devices/{dev}/sessions", params={"limit": "5"}, role="read")
    assert [s["status"] for s in sessions_.body] == ["ended", "ended"]
    with engine.connect() as conn:
        cookies = set(conn.execute(sa.select(sessions.c.id).where(sessions.c.device_id == dev)).scalars())
    shown = {s["id"] for s in sessions_.body}
    assert shown.isdisjoint(cookies) and {inventory.session_ref(c) for c in cookies} == shown
    assert {e["session_id"] for e in events.body} == shown
    assert len((await api.get(f"/devices/{dev}/events", params={"limit": "1", "offset": "1"})).body) == 1


# --- tasks ----------------------------------------------------------------------------------------------


@ensure
async def test_create_a_task_202_queued_then_list_get_cancel_retry(api: Api, engine):
    (dev, *_) = _fleet(engine)
    created = await api.post(
        f"/devices/{dev}/tasks",
        {"kind": "GetParameterValues", "args": {"ParameterNames": ["Device.DeviceInfo."]}, "max_attempts": 2},
        role="operator",
    )
    assert created.status == 202 and created.body["status"] == "pending"
    assert created.headers["location"] == f"/tasks/{created.body['id']}"
    assert created.body["created_by"] == "api:operator-client" and created.body["max_attempts"] == 2
    assert "connection_request" not in created.body
    task_id = created.body["id"]
    assert (await api.get(f"/tasks/{task_id}", role="read")).body == created.body
    listed = await api.get("/tasks", params={"device": "FCH0001", "status": "pending"}, role="read")
    assert [t["id"] for t in listed.body] == [task_id]
    assert (await api.get("/tasks", params={"kind": "Reboot"})).body == []
    assert (await api.get("/tasks", params={"device": "nope"})).problem["field"] == "query.device"
    cancelled = await api.post(f"/tasks/{task_id}/cancel", role="operator")
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    conflict = await api.post(f"/tasks/{task_id}/cancel", role="operator")
    assert conflict.status == 409 and conflict.problem["allowed"] == "a pending or sent task"
    retried = await api.post(f"/tasks/{task_id}/retry", role="operator")
    assert retried.status == 200 and retried.body["status"] == "pending"
    assert (await api.get("/tasks/999999")).status == 404
    assert (await api.get("/tasks/abc")).problem["field"] == "path.task"


@ensure
async def test_a_task_done_within_the_timeout_answers_200_with_its_result(api: Api, engine):
    (dev, *_) = _fleet(engine)
    names = ["Device.DeviceInfo.SoftwareVersion"]

    def phone_session() -> None:
        session(
            engine,
            inform_of("FCH0001", events=("6 CONNECTION REQUEST",)),
            respond=lambda _: rpc.GetParameterValuesResponse(
                [rpc.ParameterValueStruct(names[0], "v2", "string")]
            ),
        )

    # the phone comes while the API waits
    later = task.deferLater(reactor, 0.5, threads.deferToThread, phone_session)
    answer = await api.post(
        f"/devices/{dev}/tasks",
        {
            "kind": "GetParameterValues",
            "args": {"ParameterNames": names},
            "timeout": 15,
            "connection_request": True,
        },
        role="operator",
    )
    await later
    assert answer.status == 200, answer.body
    assert answer.body["status"] == "done"
    assert answer.body["result"] == {"ParameterList": [[names[0], "v2", "string"]]}
    assert answer.body["connection_request"]["outcome"] == "sent"
    assert answer.body["connection_request"]["summary"] == "sent by HTTP: HTTP 200"
    assert api.kicked == [dev]


@ensure
async def test_a_task_not_done_within_the_timeout_answers_202_and_stays_queued(api: Api, engine):
    (dev, *_) = _fleet(engine)
    answer = await api.post(f"/devices/{dev}/tasks", {"kind": "Reboot", "timeout": 0.3}, role="operator")
    assert answer.status == 202 and answer.body["status"] == "pending"
    assert queue.get(engine, answer.body["id"]).status == "pending"


@ensure
async def test_bulk_tasks_over_a_filter_make_a_job_with_progress(api: Api, engine):
    ids = _fleet(engine)
    queued = await api.post(
        "/tasks", {"kind": "Reboot", "devices": {"product_class": "CP-8841-3PCC"}}, role="operator"
    )
    assert queued.status == 202 and len(queued.body["tasks"]) == 2
    job = queued.body["job"]
    assert queued.headers["location"] == f"/jobs/{job}"
    progress = await api.get(f"/jobs/{job}", role="read")
    assert (
        progress.body["total"] == 2 and progress.body["pending"] == 2 and progress.body["finished"] is False
    )
    session(engine, inform_of("FCH0001"), respond=lambda _: rpc.RebootResponse())
    queue.cancel(engine, queued.body["tasks"][1])
    progress = await api.get(f"/jobs/{job}")
    assert (progress.body["sent"], progress.body["cancelled"], progress.body["finished"]) == (1, 1, False)
    listed = await api.get("/tasks", params={"job": job})
    assert sorted(t["device_id"] for t in listed.body) == sorted(ids[:2])
    everyone = await api.post("/tasks", {"kind": "GetRPCMethods", "devices": {"all": True}}, role="operator")
    assert len(everyone.body["tasks"]) == 3
    nobody = await api.post("/tasks", {"kind": "Reboot", "devices": {"tag": "none"}}, role="operator")
    assert nobody.status == 404 and nobody.problem["field"] == "body.devices"
    unsaid = await api.post("/tasks", {"kind": "Reboot", "devices": {}}, role="operator")
    assert unsaid.status == 400 and "all" in unsaid.problem["allowed"]
    assert (await api.get("/jobs/nope")).status == 404


# --- faults ---------------------------------------------------------------------------------------------


@ensure
async def test_faults_are_listed_retried_and_cleared(api: Api, engine):
    first, second, _ = _fleet(engine)
    for dev, serial in ((first, "FCH0001"), (second, "FCH0002")):
        queue.enqueue(engine, dev, "GetParameterValues", {"ParameterNames": ["Device.Nope."]})
        session(engine, inform_of(serial), respond=lambda _: rpc.Fault(9005, "Invalid parameter name"))
    faults = await api.get("/faults", role="read")
    assert [f["device_id"] for f in faults.body] == [second, first]
    assert (
        faults.body[0]["fault_code"] == 9005 and faults.body[0]["fault_meaning"] == "Invalid parameter name"
    )
    mine = await api.get(f"/devices/{first}/faults")
    assert [f["device_id"] for f in mine.body] == [first]
    assert [f["device_id"] for f in (await api.get("/faults", params={"device": "FCH0002"})).body] == [second]
    cleared = await api.delete(f"/faults/{mine.body[0]['id']}", role="operator")
    assert cleared.status == 200 and cleared.body["cleared_at"] and cleared.body["status"] == "fault"
    assert [f["device_id"] for f in (await api.get("/faults")).body] == [second]
    retried = await api.post(f"/faults/{faults.body[0]['id']}/retry", role="operator")
    assert retried.status == 200 and retried.body["status"] == "pending"
    assert (await api.get("/faults")).body == []
    again = await api.post(f"/faults/{faults.body[0]['id']}/retry", role="operator")
    assert again.status == 404 and "is pending" in again.problem["allowed"]


# --- policies -------------------------------------------------------------------------------------------


@ensure
async def test_policies_crud(api: Api):
    body = {
        "name": "inform-hourly",
        "events": ["NEW", "0 BOOTSTRAP"],
        "tasks": [
            {
                "kind": "SetParameterValues",
                "args": {
                    "ParameterList": [["{root}ManagementServer.PeriodicInformInterval", 3600, "unsignedInt"]]
                },
            }
        ],
        "match_product_class": "CP-8841-3PCC",
    }
    created = await api.post("/policies", body)
    assert created.status == 201 and created.headers["location"] == "/policies/inform-hourly"
    assert created.body["match_product_class"] == "CP-8841-3PCC" and created.body["enabled"] is True
    assert (await api.post("/policies", body)).status == 409
    names = [p["name"] for p in (await api.get("/policies", role="read")).body]
    assert names == ["discovery", "inform-hourly"]
    changed = await api.patch("/policies/inform-hourly", {"enabled": False, "match_product_class": None})
    assert (
        changed.status == 200
        and changed.body["enabled"] is False
        and changed.body["match_product_class"] is None
    )
    assert (await api.get("/policies/inform-hourly")).body == changed.body
    invalid = await api.patch(
        "/policies/inform-hourly", {"tasks": [{"kind": "Reboot", "args": {"Delay": 1}}]}
    )
    assert invalid.status == 400 and invalid.problem["field"] == "body.tasks.0.args.Delay"
    assert invalid.problem["allowed"] == "CommandKey"
    assert (await api.patch("/policies/inform-hourly", {"events": []})).problem["field"] == "body.events"
    assert (await api.delete("/policies/inform-hourly", role="operator")).status == 403
    assert (await api.delete("/policies/inform-hourly")).status == 204
    assert (await api.get("/policies/inform-hourly")).status == 404


# --- a MAC two devices share ---------------------------------------------------------------------


@ensure
async def test_a_mac_two_devices_share_is_409_listing_both_wherever_a_device_is_named(api: Api, engine):
    desk = session(engine, inform_of("FCH0001", mac="00:56:2b:00:00:01"))
    twin = session(engine, inform_of("FCH7777", model="CP-7841-3PCC", mac="00:56:2b:00:00:01"))
    with engine.begin() as conn:  # the MAC stayed with desk; a database from before 0012 shares it
        assert inventory.get_device(conn, "00562b000001")["id"] == desk
        conn.execute(devices.update().where(devices.c.id == twin).values(mac="00562b000001"))
    both = sorted([desk, twin])
    expected = f"'00:56:2B:00:00:01' names 2 devices: {', '.join(both)}; give the id of the one you mean"

    async def refused(answer_of: object, field: str) -> None:
        answer = await answer_of  # type: ignore[misc]
        assert answer.status == 409, answer.body
        assert answer.problem["detail"] == expected.replace("00:56:2B:00:00:01", key)
        assert (answer.problem["field"], answer.problem["devices"]) == (field, both)
        assert answer.problem["allowed"] == f"one device's id: {', '.join(both)}"

    key = "00:56:2B:00:00:01"
    await refused(api.get(f"/devices/{key}"), "path.device")
    await refused(api.post(f"/devices/{key}/tasks", {"kind": "Reboot"}), "path.device")
    await refused(api.post(f"/devices/{key}/tags", {"add": ["x"]}), "path.device")
    await refused(api.get("/tasks", params={"device": key}), "query.device")
    await refused(api.get("/devices", params={"key": key}), "query.key")
    await refused(api.post("/tasks", {"kind": "Reboot", "devices": {"key": [key]}}), "body.devices.key")
    key = "00562b000001"
    await refused(api.get(f"/devices/{key}/profile"), "path.device")
    await refused(
        api.call("PUT", f"/devices/{key}/credentials", json_body={"username": "u", "password": "p"}),
        "path.device",
    )
    with engine.connect() as conn:
        assert queue.list_tasks(conn) == [] and inventory.get_device(conn, desk)["tags"] == []
    assert [d["id"] for d in (await api.get("/devices", params={"mac": key})).body] == both
    assert (await api.get(f"/devices/{twin}")).status == 200
    assert (await api.get("/devices/FCH7777")).body["id"] == twin
    document = (await api.get("/openapi.json", role=None)).body
    assert "409" in document["paths"]["/devices/{device}"]["get"]["responses"]
    assert "409" in document["paths"]["/devices"]["get"]["responses"]


# --- what acs device import, move and kick ask of the API ------------------------------------------------


@ensure
async def test_import_creates_and_updates_devices_and_refuses_bad_ones_by_index(api: Api, engine):
    desk = session(engine, inform_of("FCH0001", mac="00:56:2b:00:00:01"))
    body = {
        "devices": [
            {
                "mac": "00:56:2B:AA:00:01",
                "serial_number": "FCHIMP1",
                "product_class": "CP-8851-3PCC",
                "tags": ["floor-3", "room 12"],
                "username": "imp1",
                "password": "pw1",
            },
            {"mac": "00562b000001", "serial_number": "FCHIMP2", "product_class": "CP-8851-3PCC"},
            {"mac": "zz", "serial_number": "FCHIMP3", "product_class": "CP-8851-3PCC"},
            {
                "mac": "00562baa0001",
                "serial_number": "FCHIMP4",
                "product_class": "CP-8851-3PCC",
                "oui": None,
                "profile": None,
            },
            {
                "mac": "00562baa0005",
                "serial_number": "FCHIMP5",
                "product_class": "CP-8851-3PCC",
                "oui": "0A0B0C",
                "username": "only-a-name",
            },
        ]
    }
    assert (await api.post("/devices/import", body, role="operator")).status == 403
    answer = await api.post("/devices/import", body)
    assert answer.status == 200, answer.body
    assert answer.body == {
        "created": 1,
        "updated": 0,
        "refused": [
            {"index": 1, "reason": f"MAC 00562b000001 belongs to device {desk} already"},
            {"index": 2, "reason": "mac 'zz' is not a MAC address (12 hex digits, any notation)"},
            {"index": 3, "reason": "MAC 00562baa0001 is also at index 0"},
            {"index": 4, "reason": "give username and password together, or neither"},
        ],
    }
    with engine.connect() as conn:
        made = inventory.get_device(conn, "00562B-CP-8851-3PCC-FCHIMP1")
    assert (made["mac"], made["tags"], made["username"], made["password"].reveal()) == (
        "00562baa0001",
        ["floor-3", "room 12"],
        "imp1",
        "pw1",
    )
    again = await api.post("/devices/import", {"devices": body["devices"][:1]})
    assert (again.body["created"], again.body["updated"]) == (0, 1)
    empty = await api.post("/devices/import", {"devices": []})
    assert empty.status == 400 and empty.problem["field"] == "body.devices"
    tag = await api.post("/devices/import", {"devices": [body["devices"][0] | {"tags": [" "]}]})
    assert tag.status == 400 and tag.problem["field"] == "body.devices.0.tags.0"


@ensure
async def test_profile_redirect_is_set_and_cleared_by_an_admin(api: Api, engine):
    desk = session(engine, inform_of("FCH0001", mac="00:56:2b:00:00:01"))
    path = "/devices/00562b000001/profile-redirect"
    body = {"url": "https://prov2.example.net:7567/"}
    assert (await api.call("PUT", path, json_body=body, role="operator")).status == 403
    moved = await api.call("PUT", path, json_body=body | {"temporary": True})
    assert moved.status == 200 and moved.body == {"id": desk, "url": body["url"], "status": 302}
    shown = (await api.get(f"/devices/{desk}")).body
    assert (shown["profile_redirect"], shown["profile_redirect_status"]) == (body["url"], 302)
    bad = await api.call("PUT", path, json_body={"url": "ftp://x/"})
    assert bad.status == 400 and bad.problem["field"] == "body.url"
    assert bad.problem["detail"].startswith("'ftp://x/' is not an http:// or https:// URL")
    cleared = await api.call("PUT", path, json_body={"url": None})
    assert cleared.body == {"id": desk, "url": None, "status": None}
    assert (await api.get(f"/devices/{desk}")).body["profile_redirect"] is None
    missing = await api.call("PUT", "/devices/FCH0000/profile-redirect", json_body=body)
    assert missing.status == 404 and missing.problem["field"] == "path.device"


@ensure
async def test_a_connection_request_is_sent_for_an_operator_and_answered_with_its_outcome(api: Api, engine):
    desk = session(engine, inform_of("FCH0001", mac="00:56:2b:00:00:01"))
    assert (await api.post("/devices/00562b000001/connection-request", role="read")).status == 403
    answer = await api.post("/devices/00562b000001/connection-request", role="operator")
    assert answer.status == 200, answer.body
    assert (answer.body["device_id"], answer.body["outcome"], answer.body["summary"]) == (
        desk,
        "sent",
        "sent by HTTP: HTTP 200",
    )
    assert api.kicked == [desk]
    missing = await api.post("/devices/FCH0000/connection-request", role="operator")
    assert missing.status == 404 and api.kicked == [desk]
    document = (await api.get("/openapi.json", role=None)).body
    assert set(document["paths"]["/devices/{device}/connection-request"]["post"]["responses"]) >= {
        "200",
        "409",
    }
    assert "put" in document["paths"]["/devices/{device}/profile-redirect"]
    assert "post" in document["paths"]["/devices/import"]
