"""A phone gets its profile when its discovery finishes, in the same session (SQLite and PostgreSQL).

The session backend (``SessionHandler.step``, one transaction per message, as ``acs serve``
runs it) driven in-process by a simulated Cisco 8841, so a test can act between two
messages: an operator's assignment in the middle of a discovery, a batch that faults.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from acs.cwmp import rpc
from acs.jobs import policies, queue
from acs.provisioning import store, tr069
from acs.store.schema import devices
from acs.testing import SimulatedPhone
from acs.testing.phone import _CpeFault
from tests.provisioning.inprocess import phone_session

INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
PROFILE = b"""<flat-profile>
<Periodic_Inform_Interval ua="na">3600</Periodic_Inform_Interval>
<Primary_NTP_Server ua="na">ntp.example.net</Primary_NTP_Server>
</flat-profile>"""
CHANGES = {INTERVAL: "3600", "Device.Time.NTPServer1": "ntp.example.net"}


def assign(engine: Engine, level: str = "model", match: str = "CP-8841-3PCC") -> list[tr069.Plan]:
    with engine.begin() as conn:
        if store.get_profile(conn, "desk") is None:
            store.save_profile(conn, "desk", PROFILE)
        store.assign(conn, "desk", level, match)
        return tr069.provision_at(conn, level, match)


def profile_tasks(engine: Engine, device_id: str) -> list[tuple[str, str]]:
    found = queue.list_tasks(engine, device_id=device_id, kind="SetParameterValues")
    return [(t.status, t.created_by or "") for t in reversed(found)]


def kinds(requests: list[rpc.Message]) -> list[str]:
    """Request names, runs of discovery batches folded: [GetParameterNames, GetParameterValues..., ...]."""
    names = [type(r).__name__ for r in requests]
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1] or n != "GetParameterValues"]


def test_the_profile_follows_the_discovery_in_the_same_session(engine: Engine) -> None:
    assert assign(engine) == []  # no phone yet
    phone = SimulatedPhone()

    sent = phone_session(engine, phone)

    assert kinds(sent) == ["GetParameterNames", "GetParameterValues", "SetParameterValues"]
    assert {p.Name: str(p.Value) for p in sent[-1].ParameterList} == CHANGES
    assert sent[-1].ParameterKey.startswith("p-")
    assert profile_tasks(engine, phone.device_id) == [("done", "profile")]
    with engine.connect() as conn:
        assert tr069.plan(conn, phone.device_id).changes == []
    assert phone.value(INTERVAL) == 3600

    assert phone_session(engine, phone, events=["1 BOOT"]) == []  # a later Inform: nothing differs


def test_a_phone_without_a_profile_is_only_discovered(engine: Engine) -> None:
    phone = SimulatedPhone()
    assert kinds(phone_session(engine, phone)) == ["GetParameterNames", "GetParameterValues"]
    assert profile_tasks(engine, phone.device_id) == []


def test_a_batch_that_faults_does_not_hold_the_profile_back(engine: Engine) -> None:
    assign(engine)
    phone = SimulatedPhone()
    last = max(path for path, _ in phone.model.parameters("Device."))
    answer = phone.answer

    def faulty(request: rpc.Message) -> rpc.Message:
        if isinstance(request, rpc.GetParameterValues) and last in request.ParameterNames:
            return _CpeFault(9002, "Internal error").fault
        return answer(request)

    phone.answer = faulty  # type: ignore[method-assign]

    sent = phone_session(engine, phone)

    assert last in sent[-2].ParameterNames  # the last batch, answered with a fault
    assert isinstance(sent[-1], rpc.SetParameterValues)
    assert profile_tasks(engine, phone.device_id) == [("done", "profile")]
    assert phone.value(INTERVAL) == 3600


def test_an_assignment_during_the_discovery_is_replaced_not_sent_twice(engine: Engine) -> None:
    phone = SimulatedPhone()
    plans: list[tr069.Plan] = []

    def operator(request: rpc.Message) -> None:
        if isinstance(request, rpc.GetParameterValues) and not plans:
            plans.extend(assign(engine, "device", phone.device_id))  # the names are known, not the values

    sent = phone_session(engine, phone, on_request=operator)

    (early,) = plans
    assert early.task_id is not None  # against a tree of names only, everything differed
    assert kinds(sent) == ["GetParameterNames", "GetParameterValues", "SetParameterValues"]
    assert {p.Name for p in sent[-1].ParameterList} == set(CHANGES)
    assert profile_tasks(engine, phone.device_id) == [("cancelled", "profile"), ("done", "profile")]
    assert queue.get(engine, early.task_id).status == "cancelled"


def test_a_factory_reset_rediscovers_and_provisions_again(engine: Engine) -> None:
    assign(engine)
    phone = SimulatedPhone()
    phone_session(engine, phone)
    queue.enqueue(engine, phone.device_id, "FactoryReset")
    phone_session(engine, phone)
    assert phone.value(INTERVAL) != 3600

    sent = phone_session(engine, phone)  # 0 BOOTSTRAP

    assert kinds(sent) == ["GetParameterNames", "GetParameterValues", "SetParameterValues"]
    assert {p.Name for p in sent[-1].ParameterList} == set(CHANGES)
    assert profile_tasks(engine, phone.device_id) == [("done", "profile")] * 2
    assert phone.value(INTERVAL) == 3600


def add_device(engine: Engine, phone: SimulatedPhone) -> dict[str, str]:
    device = {"id": phone.device_id, "oui": "00562B", "serial_number": phone.identity.serial}
    with engine.begin() as conn:
        conn.execute(devices.insert(), device)
    return device | {"product_class": phone.identity.model.product_class}


@pytest.mark.parametrize("events", [["0 BOOTSTRAP"], ["1 BOOT"]])
def test_a_discovery_under_way_is_not_queued_again(engine: Engine, events: list[str]) -> None:
    device = add_device(engine, SimulatedPhone())
    with engine.begin() as conn:
        first = policies.on_inform(conn, device, ["0 BOOTSTRAP"], new=True, root="Device.")
        again = policies.on_inform(conn, device, events, new=False, root="Device.")
    assert len(first) == 1  # the GetParameterNames, still pending
    assert again == []


def test_only_a_policy_s_discovery_finishes_one(engine: Engine) -> None:
    device = add_device(engine, SimulatedPhone())["id"]
    names = {"ParameterPath": "Device.", "NextLevel": False}
    values = {"ParameterNames": ["Device.DeviceInfo.SoftwareVersion"]}
    with engine.begin() as conn:
        tasks = {
            origin.text: queue.get(conn, queue.enqueue(conn, device, kind, args, origin=origin))
            for kind, args, origin in [
                ("GetParameterNames", names, queue.Origin("policy", "discovery", "discover", 100)),
                ("GetParameterValues", values, queue.Origin("policy", "discovery", "values")),
                (
                    "GetParameterValues",
                    values,
                    queue.Origin("policy", "firmware"),
                ),  # its own GetParameterValues
                (
                    "GetParameterValues",
                    values,
                    queue.Origin("refresh", purpose="values"),
                ),  # after an AddObject
                ("GetParameterValues", values, queue.Origin("cli")),
            ]
        }
        finished = {creator: policies.finishes_discovery(conn, task) for creator, task in tasks.items()}
    assert finished == {
        "policy:discovery:discover:100": False,  # its batch is still to be read
        "policy:discovery:values": True,  # the last batch
        "policy:firmware": False,
        "refresh:values": False,
        "cli": False,
    }
