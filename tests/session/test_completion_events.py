"""Answered tasks are completed by the event that reports them, as real CPEs send it (SQLite and PostgreSQL).

TR-069 has a CPE report a Reboot with ``1 BOOT`` and ``M Reboot`` carrying the request's CommandKey;
real ones come back with ``1 BOOT`` alone, or ``M Reboot`` with an empty CommandKey. The session
backend (``SessionHandler.step``, driven in-process by a simulated phone told to report that way)
matches the CommandKey first, else closes the oldest answered task of the kind.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from acs.cwmp import rpc
from acs.jobs import queue
from acs.session.service import SessionHandler
from acs.testing import SimulatedPhone
from tests.provisioning.inprocess import phone_session


def status(engine: Engine, task_id: int) -> str:
    task = queue.get(engine, task_id)
    assert task is not None
    return task.status


def boot(cwmp: SessionHandler, phone: SimulatedPhone, events: list[rpc.EventStruct]) -> str:
    """A session that opens with exactly ``events`` and asks for nothing: its id."""
    inform = phone.inform()
    inform.Event = events
    session, _ = cwmp.step(None, phone.envelope(inform), "192.0.2.10")
    return session.id


@pytest.mark.parametrize("m_events", ["none", "empty-key"])
def test_a_reboot_is_done_when_the_phone_comes_back_without_its_command_key(
    engine: Engine, cwmp: SessionHandler, m_events: str
) -> None:
    phone = SimulatedPhone(m_events=m_events)
    phone_session(engine, phone)
    task = queue.enqueue(engine, phone.device_id, "Reboot")

    assert [type(r) for r in phone_session(engine, phone)] == [rpc.Reboot]
    assert status(engine, task) == "sent"

    expected = [("1 BOOT", "")] + ([("M Reboot", "")] if m_events == "empty-key" else [])
    assert [(e.EventCode, e.CommandKey) for e in phone.inform().Event] == expected

    back = phone_session(engine, phone)

    assert back == []  # not sent again
    assert status(engine, task) == "done"


def test_a_schedule_inform_is_done_at_3_scheduled_alone(engine: Engine, cwmp: SessionHandler) -> None:
    phone = SimulatedPhone(m_events="none")
    phone_session(engine, phone)
    task = queue.enqueue(engine, phone.device_id, "ScheduleInform", {"DelaySeconds": 5})
    phone_session(engine, phone)
    assert status(engine, task) == "sent"

    assert [e.EventCode for e in phone.inform().Event] == ["3 SCHEDULED"]
    phone_session(engine, phone)

    assert status(engine, task) == "done"


def test_the_command_key_is_matched_before_the_oldest_answered_reboot(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone = SimulatedPhone()
    phone_session(engine, phone)
    older = queue.enqueue(engine, phone.device_id, "Reboot", {"CommandKey": "first"})
    newer = queue.enqueue(engine, phone.device_id, "Reboot", {"CommandKey": "second"})
    phone_session(engine, phone)  # both answered; the phone will reboot once
    assert (status(engine, older), status(engine, newer)) == ("sent", "sent")

    boot(cwmp, phone, [rpc.EventStruct("1 BOOT", ""), rpc.EventStruct("M Reboot", "second")])

    assert (status(engine, older), status(engine, newer)) == ("sent", "done")

    boot(cwmp, phone, [rpc.EventStruct("1 BOOT", "")])  # the next boot: the oldest left

    assert status(engine, older) == "done"


def test_an_m_reboot_with_an_unknown_key_and_1_boot_close_the_oldest_answered(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone, other = SimulatedPhone(), SimulatedPhone(serial="FCH9999Z9Z9", mac="00562b049999")
    for p in (phone, other):
        phone_session(engine, p)
    task = queue.enqueue(engine, phone.device_id, "Reboot")
    phone_session(engine, phone)
    boot(cwmp, other, [rpc.EventStruct("1 BOOT", "")])  # another device's boot
    boot(cwmp, phone, [rpc.EventStruct("2 PERIODIC", "")])
    assert status(engine, task) == "sent"

    boot(cwmp, phone, [rpc.EventStruct("1 BOOT", ""), rpc.EventStruct("M Reboot", "acs-trunc")])

    assert status(engine, task) == "done"


def test_a_reboot_whose_session_died_before_its_response_is_done_at_1_boot_not_sent_again(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone = SimulatedPhone(m_events="none")
    phone_session(engine, phone)
    task = queue.enqueue(engine, phone.device_id, "Reboot")
    sid = boot(cwmp, phone, [rpc.EventStruct("2 PERIODIC", "")])
    _, step = cwmp.step(sid, None, "192.0.2.10")
    assert isinstance(step.reply.body, rpc.Reboot)  # and the phone rebooted at once, unanswered

    sid = boot(cwmp, phone, [rpc.EventStruct("1 BOOT", "")])

    assert status(engine, task) == "done"
    _, step = cwmp.step(sid, None, "192.0.2.10")
    assert step.reply is None  # nothing sent again


def test_a_periodic_inform_asks_nothing_about_waiting_tasks(
    engine: Engine, cwmp: SessionHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = SimulatedPhone()
    phone_session(engine, phone)
    queue.enqueue(engine, phone.device_id, "Reboot")
    phone_session(engine, phone)  # a Reboot waits

    def asked(*args: object) -> list[queue.Task]:
        raise AssertionError("a periodic Inform looked for waiting tasks")

    monkeypatch.setattr(queue, "waiting", asked)
    boot(cwmp, phone, [rpc.EventStruct("2 PERIODIC", "")])


def test_a_factory_reset_waits_for_0_bootstrap(engine: Engine, cwmp: SessionHandler) -> None:
    phone = SimulatedPhone()
    phone_session(engine, phone)
    task = queue.enqueue(engine, phone.device_id, "FactoryReset")

    phone_session(engine, phone)

    answered = queue.get(engine, task)
    assert answered is not None
    assert (answered.status, answered.answered_at is not None) == ("sent", True)
    assert answered.deadline_at is not None

    assert [e.EventCode for e in phone.inform().Event] == ["0 BOOTSTRAP", "1 BOOT"]
    phone_session(engine, phone)

    assert status(engine, task) == "done"
