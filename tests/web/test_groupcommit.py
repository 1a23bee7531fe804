"""Group commit (SQLite and PostgreSQL): messages that wait together share one transaction,
are answered only after its commit, and one bad message costs the others nothing.

The pool and the reactor are run by hand, so a test decides what waits while the store is busy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from twisted.python.failure import Failure

from acs.cwmp import rpc
from acs.jobs import queue
from acs.session.service import SessionGone, SessionHandler
from acs.store.schema import devices, sessions
from acs.testing import SimulatedPhone
from acs.web.groupcommit import GroupCommit


class HandPool:
    """``callInThread`` kept until the test runs it."""

    def __init__(self) -> None:
        self.work: list[Callable[[], None]] = []

    def callInThread(self, f: Callable[[], None]) -> None:
        self.work.append(f)

    def run_one(self) -> None:
        self.work.pop(0)()


class Reactor:
    def callFromThread(self, f: Callable[..., None], *args: Any) -> None:
        f(*args)


class Answers:
    """What each message got back, in the order answered."""

    def __init__(self) -> None:
        self.got: list[tuple[str, bool, Any]] = []

    def to(self, name: str) -> Callable[[bool, Any], None]:
        return lambda ok, result: self.got.append((name, ok, result))


def commits(engine: Engine) -> list[int]:
    """A list that grows by one at each commit on ``engine``."""
    seen: list[int] = []
    sa.event.listen(engine, "commit", lambda conn: seen.append(1))
    return seen


def test_messages_that_wait_together_share_one_commit_and_are_answered_after_it(
    engine: Engine, cwmp: SessionHandler
) -> None:
    pool, answers = HandPool(), Answers()
    store = GroupCommit(engine, pool, Reactor())
    committed = commits(engine)
    phones = [SimulatedPhone(serial=f"PSN{n:05d}", mac=f"00562b0400{n:02x}") for n in range(5)]

    store.call(answers.to("first"), cwmp.handle, None, phones[0].envelope(phones[0].inform()), "192.0.2.1")
    pool.run_one()  # nothing else waited: alone, at once
    assert [a[0] for a in answers.got] == ["first"] and len(committed) == 1

    for n, phone in enumerate(phones[1:], 1):  # four arrive while the store's thread is busy
        store.call(answers.to(f"phone {n}"), cwmp.handle, None, phone.envelope(phone.inform()), "192.0.2.1")
    assert len(pool.work) == 1  # one batch in flight, whatever comes meanwhile
    pool.run_one()
    assert [a[0] for a in answers.got] == ["first", "phone 1", "phone 2", "phone 3", "phone 4"]
    assert len(committed) == 2 and pool.work == []
    assert all(ok and isinstance(step.reply.body, rpc.InformResponse) for _, ok, (_, step) in answers.got)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(devices.c.id)).scalars())
        open_sessions = conn.execute(sa.select(sa.func.count()).where(sessions.c.status == "open")).scalar()
    assert stored == {p.device_id for p in phones} and open_sessions == 5


def test_nothing_is_answered_before_it_is_committed(engine: Engine, cwmp: SessionHandler) -> None:
    pool, seen_from_outside = HandPool(), []
    store = GroupCommit(engine, pool, Reactor())
    phone = SimulatedPhone()

    def on_result(ok: bool, result: Any) -> None:  # another connection sees the work already
        with engine.connect() as conn:
            seen_from_outside.append(conn.execute(sa.select(devices.c.id)).scalars().all())

    store.call(on_result, cwmp.handle, None, phone.envelope(phone.inform()), "192.0.2.1")
    pool.run_one()
    assert seen_from_outside == [[phone.device_id]]


def test_a_message_that_fails_rolls_back_alone_and_the_others_are_answered(
    engine: Engine, cwmp: SessionHandler
) -> None:
    pool, answers = HandPool(), Answers()
    store = GroupCommit(engine, pool, Reactor())
    good, other = SimulatedPhone(), SimulatedPhone(serial="PSN00077", mac="00562b040077")

    def writes_then_fails(conn: Connection, device: str) -> None:
        queue.enqueue(conn, device, "Reboot")
        raise RuntimeError("a bug after a write")

    store.call(answers.to("busy"), cwmp.handle, None, good.envelope(good.inform()), "192.0.2.1")
    store.call(answers.to("good"), cwmp.handle, None, good.envelope(good.inform(["2 PERIODIC"])), "192.0.2.1")
    store.call(answers.to("stale cookie"), cwmp.handle, "no-such-session", None, "192.0.2.2")
    store.call(answers.to("bug"), writes_then_fails, good.device_id)
    store.call(answers.to("other"), cwmp.handle, None, other.envelope(other.inform()), "192.0.2.3")
    pool.run_one()  # one batch: rolled back, then each alone

    by_name = {name: (ok, result) for name, ok, result in answers.got}
    assert [name for name, _, _ in answers.got] == ["busy", "good", "stale cookie", "bug", "other"]
    assert by_name["good"][0] and by_name["other"][0]
    stale, bug = by_name["stale cookie"], by_name["bug"]
    assert not stale[0] and isinstance(stale[1], Failure) and stale[1].check(SessionGone)
    assert not bug[0] and bug[1].check(RuntimeError)
    assert queue.list_tasks(engine, device_id=good.device_id) == []  # the failed work left nothing
    with engine.connect() as conn:
        rows = dict(
            conn.execute(sa.select(sessions.c.device_id, sa.func.count()).group_by("device_id")).all()
        )
    assert rows == {good.device_id: 2, other.device_id: 1}  # "good" and "other" were committed


def test_batches_are_bounded_and_run_side_by_side_as_many_as_allowed(engine: Engine) -> None:
    pool, answers = HandPool(), Answers()
    store = GroupCommit(engine, pool, Reactor(), max_batch=3, in_flight=2)

    def count(conn: Connection, n: int) -> int:
        return int(conn.execute(sa.select(sa.literal(n))).scalar_one())

    for n in range(8):
        store.call(answers.to(str(n)), count, n)
    assert len(pool.work) == 2  # two batches at once, no more
    pool.run_one()  # takes 3 of the 8
    assert [name for name, _, _ in answers.got] == ["0", "1", "2"] and len(pool.work) == 2
    while pool.work:
        pool.run_one()
    assert [result for _, _, result in answers.got] == list(range(8))


def test_an_answer_that_raises_does_not_stop_the_queue(engine: Engine) -> None:
    pool, answers = HandPool(), Answers()
    store = GroupCommit(engine, pool, Reactor())

    def broken(ok: bool, result: Any) -> None:
        raise RuntimeError("a bug in a callback")

    def one(conn: Connection) -> int:
        return 1

    store.call(broken, one)
    store.call(answers.to("after"), one)
    while pool.work:
        pool.run_one()
    assert answers.got == [("after", True, 1)]
