"""A task whose answer was lost is not done twice where TR-069 lets the ACS know (SQLite and PostgreSQL).

The crash comes between the phone's answer and the ACS's commit: the phone applied the
request, the store never learnt it. The phone's next Inform tells: its ParameterKey for a
SetParameterValues, AddObject or DeleteObject, its ``M`` events and TransferComplete for
Download, Upload, Reboot and ScheduleInform, ``0 BOOTSTRAP`` for FactoryReset. The session
backend (``SessionHandler``) is driven in-process by a simulated phone, which counts what it
carried out (``SimulatedPhone.applied``).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.cwmp import parse, rpc, serialize
from acs.jobs import queue
from acs.session.service import SessionHandler
from acs.store.schema import devices, parameters
from acs.testing import SimulatedPhone
from tests.provisioning.inprocess import phone_session

INTERVAL = "Device.ManagementServer.PeriodicInformInterval"
HOST_NAME = "Device.DeviceInfo.HostName"
INFORM_PARAMETER = "Device.ManagementServer.InformParameter."
VOIP_PROFILE = "Device.Services.VoiceService.1.VoIPProfile."
PARAMETER_KEY = "Device.ManagementServer.ParameterKey"
FIRMWARE = "http://files.example/sip88xx.12-0-2MPP-3.loads"


def lost_answer(engine: Engine, phone: SimulatedPhone, kind: type[rpc.Request]) -> rpc.Message:
    """A session in which the phone answers the first ``kind`` request and the ACS crashes before
    recording it: that message's transaction is rolled back and the session goes no further.
    Returns the phone's answer."""
    backend = SessionHandler(engine)
    cpe = phone.session()
    body: bytes | None = cpe.start()
    sid: str | None = None
    try:
        while body is not None:
            state, step = backend.step(sid, parse(body) if body else None, "192.0.2.10")
            sid = state.id
            body = cpe.receive(serialize(step.reply) if step.reply is not None else b"")
            if step.reply is not None and isinstance(step.reply.body, kind):
                answer = parse(body)
                with engine.connect() as conn, conn.begin() as crashed:
                    backend.handle(conn, sid, answer, "192.0.2.10")
                    crashed.rollback()
                return answer.body
        raise AssertionError(f"the ACS sent no {kind.__name__}")
    finally:
        cpe.close()  # not completed: the phone carries out what it accepted all the same


def task_of(engine: Engine, task_id: int) -> queue.Task:
    task = queue.get(engine, task_id)
    assert task is not None
    return task


def stored(engine: Engine, device_id: str, prefix: str) -> dict[str, Any]:
    c = parameters.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.path, c.value).where(c.device_id == device_id, c.path.startswith(prefix))
        )
        return dict(rows.all())


def new_phone(engine: Engine, **options: Any) -> SimulatedPhone:
    phone = SimulatedPhone(**options)
    phone_session(engine, phone)
    return phone


def test_a_set_parameter_values_the_phone_applied_is_done_not_sent_again(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone = new_phone(engine)
    task_id = queue.enqueue(
        engine, phone.device_id, "SetParameterValues", {"ParameterList": [[INTERVAL, 120]]}
    )
    answer = lost_answer(engine, phone, rpc.SetParameterValues)
    assert isinstance(answer, rpc.SetParameterValuesResponse)
    assert task_of(engine, task_id).status == "sent"

    sent = phone_session(engine, phone)

    assert sent == []
    assert phone.applied[("SetParameterValues", f"acs-{task_id}")] == 1
    task = task_of(engine, task_id)
    assert task.status == "done"
    assert task.attempts == 1
    assert task.result == {
        "recovered": "applied: the session it was sent in ended before the device's "
        "SetParameterValuesResponse was recorded, and the device's next Inform reported its "
        f"ParameterKey 'acs-{task_id}'"
    }
    assert stored(engine, phone.device_id, INTERVAL) == {
        INTERVAL: "120"
    }  # what it wrote, as a response would


def test_an_add_object_the_phone_applied_makes_one_instance_and_the_table_is_read_again(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone = new_phone(engine)
    before = phone.model.instances(INFORM_PARAMETER)
    task_id = queue.enqueue(engine, phone.device_id, "AddObject", {"ObjectName": INFORM_PARAMETER})
    answer = lost_answer(engine, phone, rpc.AddObject)
    assert isinstance(answer, rpc.AddObjectResponse)

    sent = phone_session(engine, phone)

    assert phone.applied[("AddObject", f"acs-{task_id}")] == 1
    assert len(phone.model.instances(INFORM_PARAMETER)) == len(before) + 1
    assert not any(isinstance(r, rpc.AddObject) for r in sent)
    task = task_of(engine, task_id)
    assert task.status == "done"
    assert task.result["InstanceNumber"] is None
    reread = task.result["reread_by"]
    assert task.result["recovered"].endswith(
        f"ParameterKey 'acs-{task_id}'; the instance number was not returned: tasks "
        f"{', '.join(map(str, reread))} read {INFORM_PARAMETER} again"
    )
    # the same session read the table: the store knows the new instance and its values
    assert isinstance(sent[0], rpc.GetParameterNames) and sent[0].ParameterPath == INFORM_PARAMETER
    assert all(task_of(engine, t).status == "done" for t in reread)
    new = f"{INFORM_PARAMETER}{answer.InstanceNumber}."
    tree = stored(engine, phone.device_id, new)
    assert new in tree
    assert tree[f"{new}ParameterName"] == str(phone.value(f"{new}ParameterName"))


def test_a_delete_object_the_phone_applied_is_done_and_the_instance_leaves_the_store(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone = new_phone(engine)
    queue.enqueue(engine, phone.device_id, "GetParameterNames", {"ParameterPath": VOIP_PROFILE})
    phone_session(engine, phone)
    assert f"{VOIP_PROFILE}1." in stored(engine, phone.device_id, VOIP_PROFILE)
    task_id = queue.enqueue(engine, phone.device_id, "DeleteObject", {"ObjectName": f"{VOIP_PROFILE}1."})
    lost_answer(engine, phone, rpc.DeleteObject)

    sent = phone_session(engine, phone)

    assert not any(isinstance(r, rpc.DeleteObject) for r in sent)
    assert phone.applied[("DeleteObject", f"acs-{task_id}")] == 1
    assert task_of(engine, task_id).status == "done"
    assert not [p for p in stored(engine, phone.device_id, VOIP_PROFILE) if p.startswith(f"{VOIP_PROFILE}1.")]


def test_a_request_the_phone_never_got_is_sent_again(engine: Engine, cwmp: SessionHandler) -> None:
    """The session died after the ACS sent it: the ParameterKey the phone reports is an older one."""
    phone = new_phone(engine)
    task_id = queue.enqueue(engine, phone.device_id, "AddObject", {"ObjectName": INFORM_PARAMETER})
    backend = SessionHandler(engine)
    cpe = phone.session()
    session, _ = backend.step(None, parse(cpe.start()), "192.0.2.10")
    _, step = backend.step(session.id, None, "192.0.2.10")
    assert step.reply is not None and isinstance(step.reply.body, rpc.AddObject)  # ... lost on the way
    cpe.close()

    sent = phone_session(engine, phone)

    assert isinstance(sent[0], rpc.AddObject)
    assert phone.applied[("AddObject", f"acs-{task_id}")] == 1
    task = task_of(engine, task_id)
    assert (task.status, task.attempts) == ("done", 2)
    assert task.result == {"InstanceNumber": 1, "Status": 0}


def test_a_parameter_key_the_phone_already_had_cannot_tell_and_the_values_are_sent_again(
    engine: Engine, cwmp: SessionHandler
) -> None:
    """Two tasks with one ParameterKey (a profile version sent again) in one session: the first was
    recorded, the second's answer lost. The key the phone reports was already set by the first."""
    phone = new_phone(engine)
    first = queue.enqueue(
        engine,
        phone.device_id,
        "SetParameterValues",
        {"ParameterList": [[INTERVAL, 120]], "ParameterKey": "v1"},
    )
    second = queue.enqueue(
        engine,
        phone.device_id,
        "SetParameterValues",
        {"ParameterList": [[HOST_NAME, "desk"]], "ParameterKey": "v1"},
    )
    backend = SessionHandler(engine)
    cpe = phone.session()
    session, step = backend.step(None, parse(cpe.start()), "192.0.2.10")
    assert cpe.receive(serialize(step.reply)) == b""
    _, step = backend.step(session.id, None, "192.0.2.10")
    assert step.reply is not None and isinstance(step.reply.body, rpc.SetParameterValues)
    _, step = backend.step(session.id, parse(cpe.receive(serialize(step.reply))), "192.0.2.10")
    assert task_of(engine, first).status == "done"
    assert step.reply is not None and step.reply.body.ParameterList[0].Name == HOST_NAME
    cpe.receive(serialize(step.reply))  # the phone applies it; its answer never reaches the store
    cpe.close()
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(devices.c.parameter_key)).scalar() == "v1"
        )  # the first's, from its answer

    sent = phone_session(engine, phone)

    assert [type(r) for r in sent] == [rpc.SetParameterValues]
    assert phone.applied[("SetParameterValues", "v1")] == 3
    assert task_of(engine, second).status == "done"


@pytest.mark.parametrize("kind", ["Download", "Upload"])
def test_a_transfer_the_phone_reports_is_not_sent_again_and_its_transfer_complete_closes_it(
    engine: Engine, cwmp: SessionHandler, kind: str
) -> None:
    phone = new_phone(engine)
    args = {"FileType": "1 Firmware Upgrade Image", "URL": FIRMWARE}
    if kind == "Upload":
        args = {"FileType": "1 Vendor Configuration File", "URL": "http://files.example/up"}
    task_id = queue.enqueue(engine, phone.device_id, kind, args)
    answer = lost_answer(engine, phone, getattr(rpc, kind))
    assert answer.Status == 1
    assert (f"M {kind}", f"acs-{task_id}") in [(e.EventCode, e.CommandKey) for e in phone.inform().Event]

    sent = phone_session(engine, phone)

    assert sent == []
    assert phone.applied[(kind, f"acs-{task_id}")] == 1
    task = task_of(engine, task_id)
    assert task.status == "done"
    assert task.result["CommandKey"] == f"acs-{task_id}"  # the TransferComplete's


def test_a_transfer_complete_without_its_m_event_closes_the_download_before_the_acs_sends_anything(
    engine: Engine, cwmp: SessionHandler
) -> None:
    """Some CPEs report 7 TRANSFER COMPLETE without M Download: the TransferComplete, which follows
    the Inform, is waited for before the ACS's turn, when the Download would be sent again."""
    phone = new_phone(engine)
    task_id = queue.enqueue(
        engine, phone.device_id, "Download", {"FileType": "1 Firmware Upgrade Image", "URL": FIRMWARE}
    )
    lost_answer(engine, phone, rpc.Download)
    phone.pending_events = [e for e in phone.pending_events if e.EventCode != "M Download"]

    sent = phone_session(engine, phone)

    assert sent == []
    assert phone.applied[("Download", f"acs-{task_id}")] == 1
    assert task_of(engine, task_id).status == "done"


@pytest.mark.parametrize(
    ("kind", "args"),
    [("Reboot", {}), ("ScheduleInform", {"DelaySeconds": 0}), ("FactoryReset", {})],
)
def test_a_reboot_schedule_inform_or_factory_reset_reported_by_its_event_is_not_sent_again(
    engine: Engine, cwmp: SessionHandler, kind: str, args: dict[str, Any]
) -> None:
    phone = new_phone(engine)
    task_id = queue.enqueue(engine, phone.device_id, kind, args)
    lost_answer(engine, phone, getattr(rpc, kind))

    sent = phone_session(engine, phone)

    assert [r for r in sent if isinstance(r, getattr(rpc, kind))] == []
    assert phone.applied[(kind, "" if kind == "FactoryReset" else f"acs-{task_id}")] == 1
    assert task_of(engine, task_id).status == "done"


def test_a_read_whose_answer_was_lost_is_read_again(engine: Engine, cwmp: SessionHandler) -> None:
    """Reads change nothing on the phone: sent again, harmless."""
    phone = new_phone(engine)
    task_id = queue.enqueue(engine, phone.device_id, "GetParameterValues", {"ParameterNames": [INTERVAL]})
    lost_answer(engine, phone, rpc.GetParameterValues)

    assert [type(r) for r in phone_session(engine, phone)] == [rpc.GetParameterValues]
    assert task_of(engine, task_id).status == "done"
