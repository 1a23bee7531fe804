"""What a session's store steps leave behind when an Inform finds the device busy (SQLite and PostgreSQL).

The Inform step ends the device's sessions still open and puts back the tasks a dead session
had been sent, and skips both statements when there is nothing of the kind: these tests drive
``SessionHandler.step`` in-process to both cases.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.cwmp import rpc
from acs.jobs import queue
from acs.session.service import SessionGone, SessionHandler
from acs.store.schema import sessions
from acs.testing import SimulatedPhone


def inform(cwmp: SessionHandler, phone: SimulatedPhone, events: list[str]) -> str:
    """A new session's Inform; its id."""
    session, step = cwmp.step(None, phone.envelope(phone.inform(events)), "192.0.2.10")
    assert step.reply is not None and isinstance(step.reply.body, rpc.InformResponse)
    return session.id


def statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(sessions.c.id, sessions.c.status)).all())


def test_a_periodic_session_on_a_quiet_device_opens_and_ends_its_own_row(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone = SimulatedPhone()
    first = inform(cwmp, phone, ["0 BOOTSTRAP", "1 BOOT"])
    session, step = cwmp.step(first, None, "192.0.2.10")
    assert step.reply is None and session.state == "ended"

    second = inform(cwmp, phone, ["2 PERIODIC"])
    cwmp.step(second, None, "192.0.2.10")

    assert statuses(engine) == {first: "ended", second: "ended"}


def test_a_new_inform_ends_the_open_session_and_sends_its_unanswered_task_again(
    engine: Engine, cwmp: SessionHandler
) -> None:
    phone = SimulatedPhone()
    old = inform(cwmp, phone, ["0 BOOTSTRAP", "1 BOOT"])
    task_id = queue.enqueue(engine, phone.device_id, "GetRPCMethods")
    _, step = cwmp.step(old, None, "192.0.2.10")
    assert step.reply is not None and isinstance(step.reply.body, rpc.GetRPCMethods)
    sent = queue.get(engine, task_id)
    assert sent is not None and (sent.status, sent.session_id) == ("sent", old)

    new = inform(cwmp, phone, ["2 PERIODIC"])  # the phone gave up on the old session

    assert statuses(engine) == {old: "failed", new: "open"}
    requeued = queue.get(engine, task_id)
    assert requeued is not None and (requeued.status, requeued.session_id) == ("pending", None)
    with pytest.raises(SessionGone):
        cwmp.step(old, None, "192.0.2.10")
    _, step = cwmp.step(new, None, "192.0.2.10")
    assert step.reply is not None and isinstance(step.reply.body, rpc.GetRPCMethods)
    again = queue.get(engine, task_id)
    assert again is not None and (again.status, again.session_id, again.attempts) == ("sent", new, 2)
