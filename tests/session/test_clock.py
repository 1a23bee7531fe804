"""Time in the session service and the queue is a clock's: tests move it, nothing sleeps.

``SessionHandler(clock=...)`` reads the time from its clock for every row it writes and every
limit it checks (a silent session's time-out, a pending task's expiry, an answered task's
deadline); the queue's functions take ``now=``. SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.cwmp import rpc
from acs.jobs import policies, queue
from acs.session.machine import Turn
from acs.session.service import SessionGone, SessionHandler, Swept
from acs.store.schema import SessionStatus, TaskStatus, sessions
from acs.testing import SimulatedPhone

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
REMOTE = "192.0.2.10"


class FakeClock:
    """Now, as a test sets it: starts at ``T0`` and moves only when told."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def handler(engine: Engine, clock: FakeClock) -> SessionHandler:
    """The session service on a fake clock, a 30 s session timeout, no built-in discovery."""
    with engine.begin() as conn:
        policies.set_enabled(conn, "discovery", False)
    return SessionHandler(engine, session_timeout=30, clock=clock)


def inform(handler: SessionHandler, phone: SimulatedPhone) -> str:
    session, step = handler.step(None, phone.envelope(phone.inform(["2 PERIODIC"])), REMOTE)
    assert step.reply is not None and isinstance(step.reply.body, rpc.InformResponse)
    return session.id


def session_row(engine: Engine, sid: str) -> sa.RowMapping:
    with engine.connect() as conn:
        return conn.execute(sa.select(sessions).where(sessions.c.id == sid)).mappings().one()


def test_the_session_rows_carry_the_clock_s_time(
    engine: Engine, handler: SessionHandler, clock: FakeClock
) -> None:
    phone = SimulatedPhone()
    sid = inform(handler, phone)
    clock.advance(12)
    session, step = handler.step(sid, None, REMOTE)

    assert step.reply is None and session.state == Turn.ENDED
    row = session_row(engine, sid)
    assert (row["status"], row["started_at"], row["ended_at"]) == (
        SessionStatus.ENDED,
        T0,
        T0 + timedelta(seconds=12),
    )


def test_a_session_silent_past_its_timeout_is_gone_and_the_sweep_times_it_out(
    engine: Engine, handler: SessionHandler, clock: FakeClock
) -> None:
    phone = SimulatedPhone()
    sid = inform(handler, phone)
    queue.enqueue(engine, phone.device_id, "GetRPCMethods")
    clock.advance(30)  # at the limit: still on
    _, step = handler.step(sid, None, REMOTE)
    assert step.reply is not None and isinstance(step.reply.body, rpc.GetRPCMethods)

    clock.advance(29)
    assert handler.sweep() == Swept(timed_out=0, expired=0, missed=0)
    clock.advance(2)  # 31 s since the last message

    with pytest.raises(SessionGone):
        handler.step(sid, None, REMOTE)
    assert handler.sweep() == Swept(timed_out=1, expired=0, missed=0)
    row = session_row(engine, sid)
    assert (row["status"], row["ended_at"]) == (SessionStatus.TIMED_OUT, clock.now)
    assert handler.sweep().timed_out == 0


def test_a_pending_task_past_its_expiry_is_not_sent_and_the_sweep_marks_it_expired(
    engine: Engine, handler: SessionHandler, clock: FakeClock
) -> None:
    phone = SimulatedPhone()
    inform(handler, phone)  # the device exists
    early = queue.enqueue(engine, phone.device_id, "GetRPCMethods", expires_at=T0 + timedelta(minutes=5))
    late = queue.enqueue(engine, phone.device_id, "Reboot", expires_at=T0 + timedelta(minutes=5))

    clock.advance(4 * 60)  # the first session: before the expiry
    sid = inform(handler, phone)
    _, step = handler.step(sid, None, REMOTE)
    assert step.reply is not None and step.reply.body.method() == "GetRPCMethods"
    _, step = handler.step(sid, phone.envelope(rpc.GetRPCMethodsResponse(MethodList=[])), REMOTE)
    assert step.reply is not None and step.reply.body.method() == "Reboot"
    queue.cancel(engine, late, now=clock.now)  # gone before it is answered
    again = queue.enqueue(engine, phone.device_id, "Reboot", expires_at=T0 + timedelta(minutes=5))

    clock.advance(60)  # the next session: at the expiry
    sid = inform(handler, phone)
    _, step = handler.step(sid, None, REMOTE)

    assert step.reply is None  # nothing sent: the Reboot expired; claiming wrote nothing on it
    task = queue.get(engine, again)
    assert task is not None and task.status == TaskStatus.PENDING
    assert handler.sweep() == Swept(timed_out=0, expired=1, missed=0)
    task = queue.get(engine, again)
    assert task is not None and (task.status, task.completed_at) == (TaskStatus.EXPIRED, clock.now)
    done = queue.get(engine, early)
    answered_at = T0 + timedelta(minutes=4)
    assert done is not None and (done.status, done.completed_at) == (TaskStatus.DONE, answered_at)


def test_an_answered_reboot_becomes_a_fault_at_its_deadline_on_the_clock(
    engine: Engine, handler: SessionHandler, clock: FakeClock
) -> None:
    phone = SimulatedPhone()
    inform(handler, phone)
    task_id = queue.enqueue(engine, phone.device_id, "Reboot", complete_within=120)
    sid = inform(handler, phone)
    _, step = handler.step(sid, None, REMOTE)
    assert step.reply is not None and step.reply.body.method() == "Reboot"
    clock.advance(5)
    handler.step(sid, phone.envelope(rpc.RebootResponse()), REMOTE)

    answered = queue.get(engine, task_id)
    assert answered is not None and answered.status == TaskStatus.SENT
    assert (answered.answered_at, answered.deadline_at) == (clock.now, clock.now + timedelta(seconds=120))

    clock.advance(119)
    assert handler.sweep().missed == 0
    clock.advance(1)
    assert handler.sweep().missed == 1
    task = queue.get(engine, task_id)
    assert task is not None and (task.status, task.fault_code, task.completed_at) == (
        TaskStatus.FAULT,
        None,
        clock.now,
    )
    words = "the device did not come back with 1 BOOT within 2 minutes of its RebootResponse"
    assert task.fault_string == words
