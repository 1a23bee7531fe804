"""The task queue keeps every task, in order, and sends each exactly once per attempt."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from acs.jobs import queue
from acs.jobs.queue import QueueError
from acs.store import devices, tasks, utcnow
from acs.store.schema import sessions

PHONE = "00562B-CP-8841-3PCC-FCH1234ABCD"
OTHER = "00562B-CP-7841-3PCC-FCH5678EFGH"


def _open_session(engine: sa.Engine, session_id: str, device_id: str = PHONE) -> str:
    with engine.begin() as conn:
        conn.execute(sa.insert(sessions).values(id=session_id, device_id=device_id))
    return session_id


@pytest.fixture
def phones(engine):
    with engine.begin() as conn:
        for device_id in (PHONE, OTHER):
            oui, serial = device_id.split("-")[0], device_id.rsplit("-", 1)[1]
            conn.execute(sa.insert(devices).values(id=device_id, oui=oui, serial_number=serial))
    return engine


@pytest.fixture
def session(phones):
    return _open_session(phones, "s1")


def test_task_mirrors_the_table():
    assert [f.name for f in dataclasses.fields(queue.Task)] == [c.name for c in tasks.columns]


def test_enqueue_commits_before_it_returns(phones):
    with phones.connect() as conn:
        task_id = queue.enqueue(conn, PHONE, "GetParameterValues", {"ParameterNames": ["Device.DeviceInfo."]})
        # Another connection sees it while this one is still open: it is durable.
        assert queue.get(phones, task_id).status == "pending"


def test_enqueue_joins_the_callers_transaction(phones):
    with phones.connect() as conn, conn.begin() as tx:
        queue.enqueue(conn, PHONE, "Reboot")
        tx.rollback()
    assert queue.list_tasks(phones) == []


def test_a_new_task_is_pending_with_its_facts(phones):
    expires = utcnow() + timedelta(hours=1)
    args = {"ParameterPath": "Device.", "NextLevel": False}
    task_id = queue.enqueue(
        phones,
        PHONE,
        "GetParameterNames",
        args,
        max_attempts=5,
        expires_at=expires,
        job_id="job-7",
        created_by="ops",
    )

    task = queue.get(phones, task_id)

    assert (task.device_id, task.kind, task.status, task.attempts, task.max_attempts) == (
        PHONE,
        "GetParameterNames",
        "pending",
        0,
        5,
    )
    assert task.args == {"ParameterPath": "Device.", "NextLevel": False}
    assert (task.expires_at, task.job_id, task.created_by) == (expires, "job-7", "ops")
    assert task.created_at.tzinfo is not None and task.sent_at is None and task.command_key is None


def test_tasks_are_claimed_oldest_first_per_device(phones, session):
    first = queue.enqueue(phones, PHONE, "GetRPCMethods")
    queue.enqueue(phones, OTHER, "GetRPCMethods")
    second = queue.enqueue(phones, PHONE, "FactoryReset")

    claimed = [queue.claim_next(phones, PHONE, session) for _ in range(3)]

    assert [t.id if t else None for t in claimed] == [first, second, None]
    assert queue.list_tasks(phones, device_id=OTHER)[0].status == "pending"


def test_claiming_marks_the_task_sent_in_the_session(phones, session):
    task_id = queue.enqueue(phones, PHONE, "Reboot")
    before = utcnow()

    task = queue.claim_next(phones, PHONE, session)

    assert (task.id, task.status, task.session_id, task.attempts) == (task_id, "sent", session, 1)
    assert before <= task.sent_at <= utcnow()
    assert queue.get(phones, task_id) == task


def test_complete_stores_the_response(phones, session):
    queue.enqueue(phones, PHONE, "GetRPCMethods")
    sent = queue.claim_next(phones, PHONE, session)

    done = queue.complete(phones, sent.id, {"MethodList": ["GetRPCMethods", "Inform"]})

    assert done.status == "done"
    assert done.result == {"MethodList": ["GetRPCMethods", "Inform"]}
    assert done.completed_at >= done.sent_at and done.answered_at == done.completed_at
    with pytest.raises(QueueError, match=f"task {sent.id} is done: only sent tasks can be completed"):
        queue.complete(phones, sent.id, {})


def test_record_done_is_complete_without_reading_the_task_back(phones, session):
    queue.enqueue(phones, PHONE, "GetParameterValues", {"ParameterNames": ["Device.A", "Device.B"]})
    sent = queue.claim_next(phones, PHONE, session)
    result = {"ParameterList": [["Device.A", "1", "string"], ["Device.B", True, "boolean"]]}

    assert queue.record_done(phones, sent.id, result) is None

    done = queue.get(phones, sent.id)
    assert (done.status, done.result) == ("done", result)
    assert done.completed_at >= done.sent_at and done.answered_at == done.completed_at
    with pytest.raises(QueueError, match=f"task {sent.id} is done: only sent tasks can be completed"):
        queue.record_done(phones, sent.id, {})
    pending = queue.enqueue(phones, PHONE, "GetRPCMethods")
    with pytest.raises(QueueError, match=f"task {pending} is pending: only sent tasks can be completed"):
        queue.record_done(phones, pending, {})
    with pytest.raises(QueueError, match="no task 999999"):
        queue.record_done(phones, 999999, {})


def test_only_a_sent_task_can_be_completed(phones):
    task_id = queue.enqueue(phones, PHONE, "GetRPCMethods")

    with pytest.raises(QueueError, match=f"task {task_id} is pending: only sent tasks can be completed"):
        queue.complete(phones, task_id, {})
    with pytest.raises(QueueError, match="no task 999999"):
        queue.complete(phones, 999999, {})


def test_a_fault_is_kept_with_its_code_and_meaning(phones, session):
    queue.enqueue(phones, PHONE, "SetParameterValues", {"ParameterList": [["Device.Nope", "1", "string"]]})
    sent = queue.claim_next(phones, PHONE, session)

    failed = queue.fail(phones, sent.id, 9005, "", {"FaultCode": 9005})

    assert (failed.status, failed.fault_code, failed.result) == ("fault", 9005, {"FaultCode": 9005})
    assert failed.fault_string == failed.fault_meaning == "Invalid parameter name"
    assert queue.get(phones, sent.id).fault_meaning == "Invalid parameter name"


def test_the_cpes_fault_string_is_kept_as_it_came(phones, session):
    queue.enqueue(phones, PHONE, "Download", {"URL": "http://fw/sip88xx.loads"})
    sent = queue.claim_next(phones, PHONE, session)

    failed = queue.fail(phones, sent.id, 9016, "HTTP 404 /sip88xx.loads")

    assert (failed.fault_string, failed.fault_meaning) == (
        "HTTP 404 /sip88xx.loads",
        "File transfer failure: unable to access file",
    )


def test_cancel_pending_or_sent_but_nothing_finished(phones, session):
    sent_id = queue.enqueue(phones, PHONE, "GetRPCMethods")
    pending_id = queue.enqueue(phones, PHONE, "Reboot")
    queue.claim_next(phones, PHONE, session)

    assert queue.cancel(phones, pending_id).status == "cancelled"
    assert queue.cancel(phones, sent_id).status == "cancelled"
    assert queue.claim_next(phones, PHONE, session) is None
    with pytest.raises(QueueError, match=f"task {sent_id} is cancelled: only pending or sent tasks can be"):
        queue.cancel(phones, sent_id)
    with pytest.raises(QueueError, match="is cancelled: only sent tasks can be completed"):
        queue.complete(phones, sent_id, {})


def test_a_done_task_cannot_be_cancelled(phones, session):
    queue.enqueue(phones, PHONE, "GetRPCMethods")
    done = queue.complete(phones, queue.claim_next(phones, PHONE, session).id, {})

    with pytest.raises(QueueError, match=f"task {done.id} is done: only pending or sent tasks can be cancel"):
        queue.cancel(phones, done.id)


def test_retry_puts_a_fault_back_from_scratch(phones, session):
    task_id = queue.enqueue(phones, PHONE, "Reboot")
    queue.fail(phones, queue.claim_next(phones, PHONE, session).id, 9002, "busy")

    again = queue.retry(phones, task_id)

    assert (again.status, again.attempts, again.fault_code, again.fault_string, again.result) == (
        "pending",
        0,
        None,
        None,
        None,
    )
    assert (again.sent_at, again.session_id, again.completed_at) == (None, None, None)
    assert again.command_key == f"acs-{task_id}"
    assert queue.claim_next(phones, PHONE, session).id == task_id
    with pytest.raises(QueueError, match="is sent: only fault, expired or cancelled tasks can be retried"):
        queue.retry(phones, task_id)


def test_an_expired_task_is_never_sent(phones, session):
    stale = queue.enqueue(phones, PHONE, "Reboot", expires_at=utcnow() - timedelta(seconds=1))
    fresh = queue.enqueue(phones, PHONE, "GetRPCMethods", expires_at=utcnow() + timedelta(hours=1))

    assert queue.claim_next(phones, PHONE, session).id == fresh
    assert queue.get(phones, stale).status == "pending"  # until the server's sweep marks it

    assert queue.expire_overdue(phones) == 1
    expired = queue.get(phones, stale)
    assert expired.status == "expired" and expired.attempts == 0 and expired.completed_at is not None
    assert queue.expire_overdue(phones) == 0


def test_retrying_an_expired_task_lifts_its_expiry(phones, session):
    stale = queue.enqueue(phones, PHONE, "Reboot", expires_at=utcnow() - timedelta(seconds=1))
    assert queue.claim_next(phones, PHONE, session) is None
    queue.expire_overdue(phones)

    later = utcnow() + timedelta(minutes=5)
    assert queue.retry(phones, stale, expires_at=later).expires_at == later
    assert queue.claim_next(phones, PHONE, session).id == stale


def test_a_task_sent_in_a_dead_session_is_sent_again_in_the_next(phones, session):
    first = queue.enqueue(phones, PHONE, "SetParameterValues", {"ParameterList": [["Device.X", "1", "int"]]})
    second = queue.enqueue(phones, PHONE, "GetRPCMethods")
    lost = queue.claim_next(phones, PHONE, session)  # ... and the session dies here
    live = _open_session(phones, "s2")

    requeued = queue.requeue_orphans(phones, PHONE, live)
    again = queue.claim_next(phones, PHONE, live)

    assert [t.id for t in requeued] == [first] and requeued[0].status == "pending"
    assert (again.id, again.session_id, again.attempts) == (first, live, 2)
    assert again.args["ParameterKey"] == lost.args["ParameterKey"] == f"acs-{first}"
    assert queue.claim_next(phones, PHONE, live).id == second


def test_requeue_leaves_the_live_session_and_answered_tasks_alone(phones, session):
    reboot = queue.enqueue(phones, PHONE, "Reboot")
    current = queue.enqueue(phones, PHONE, "GetRPCMethods")
    queue.answer(phones, queue.claim_next(phones, PHONE, session).id, {})  # waits for "M Reboot"
    live = _open_session(phones, "s2")
    queue.claim_next(phones, PHONE, live)

    assert queue.requeue_orphans(phones, PHONE, live) == []
    assert [queue.get(phones, i).status for i in (reboot, current)] == ["sent", "sent"]


def test_requeue_without_a_live_session_takes_every_unanswered_task(phones, session):
    task_id = queue.enqueue(phones, PHONE, "GetRPCMethods")
    queue.claim_next(phones, PHONE, session)

    assert [t.id for t in queue.requeue_orphans(phones, PHONE)] == [task_id]
    assert queue.get(phones, task_id).status == "pending"


def test_a_task_that_never_gets_an_answer_faults_after_max_attempts(phones):
    task_id = queue.enqueue(phones, PHONE, "GetRPCMethods", max_attempts=2)
    for n in range(1, 4):
        live = _open_session(phones, f"s{n}")
        changed = queue.requeue_orphans(phones, PHONE, live)
        if n < 3:
            assert queue.claim_next(phones, PHONE, live).attempts == n

    assert [(t.id, t.status) for t in changed] == [(task_id, "fault")]
    task = queue.get(phones, task_id)
    assert (task.status, task.fault_code) == ("fault", None)
    assert task.fault_string == (
        "no response after 2 attempts: each session it was sent in ended before the device answered"
    )
    assert task.fault_meaning == task.fault_string  # a fault with no code is said in words
    assert queue.task_json(task)["fault_meaning"] == task.fault_string


def test_an_event_closes_the_task_it_names(phones, session):
    reboot = queue.enqueue(phones, PHONE, "Reboot")
    download = queue.enqueue(phones, PHONE, "Download", {"URL": "http://fw/f.loads"}, command_key="fw-12.0.1")
    for _ in range(2):
        queue.answer(phones, queue.claim_next(phones, PHONE, session).id, {"Status": 1})
    live = _open_session(phones, "s2")
    queue.requeue_orphans(phones, PHONE, live)

    # as the session service closes them (its TransferComplete, acs.session.service)
    named = queue.find_by_command_key(phones, PHONE, "Reboot", f"acs-{reboot}")
    closed = queue.complete(phones, named.id, None)
    transfer = queue.find_by_command_key(phones, PHONE, "Download", "fw-12.0.1")
    failed = queue.fail(phones, transfer.id, 9010, "bad image")

    assert (closed.id, closed.status, closed.result) == (reboot, "done", None)
    assert (failed.id, failed.status, failed.fault_code) == (download, "fault", 9010)
    assert queue.find_by_command_key(phones, PHONE, "Reboot", f"acs-{reboot}") is None
    assert queue.find_by_command_key(phones, PHONE, "Download", "fw-12.0.1") is None
    assert queue.find_by_command_key(phones, PHONE, "Reboot", "not-ours") is None


def test_rpcs_with_a_command_key_get_one(phones):
    kinds = ("Reboot", "Download", "ScheduleInform", "Upload")
    ids = {kind: queue.enqueue(phones, PHONE, kind) for kind in kinds}
    given = queue.enqueue(phones, PHONE, "Reboot", command_key="maintenance")
    in_args = queue.enqueue(phones, PHONE, "ScheduleInform", {"DelaySeconds": 5, "CommandKey": "later"})

    for task_id in ids.values():
        task = queue.get(phones, task_id)
        assert task.command_key == task.args["CommandKey"] == f"acs-{task_id}"
    assert queue.get(phones, given).args == {"CommandKey": "maintenance"}
    assert queue.get(phones, in_args).command_key == "later"


def test_rpcs_with_a_parameter_key_get_one(phones):
    kinds = ("SetParameterValues", "AddObject", "DeleteObject")
    ids = {kind: queue.enqueue(phones, PHONE, kind) for kind in kinds}
    given = queue.enqueue(phones, PHONE, "AddObject", {"ObjectName": "Device.X.", "ParameterKey": "v42"})
    plain = queue.enqueue(phones, PHONE, "GetParameterValues", {"ParameterNames": ["Device."]})

    for task_id in ids.values():
        assert queue.get(phones, task_id).args["ParameterKey"] == f"acs-{task_id}"
    assert queue.get(phones, given).args["ParameterKey"] == "v42"
    assert queue.get(phones, plain).args == {"ParameterNames": ["Device."]}
    assert {queue.get(phones, i).command_key for i in (*ids.values(), given, plain)} == {None}


@pytest.mark.parametrize(
    ("kind", "args", "kwargs", "message"),
    [
        ("Rebot", {}, {}, r"unknown task kind 'Rebot' \(did you mean Reboot\?\); allowed: GetRPCMethods, "),
        ("Reboot", {"Delay": 5}, {}, "Reboot has no argument Delay; it takes CommandKey"),
        ("FactoryReset", {"Now": True}, {}, "FactoryReset has no argument Now; it takes no arguments"),
        ("Reboot", {}, {"command_key": "k" * 33}, "CommandKey must be at most 32 characters"),
        ("AddObject", {"ParameterKey": "p" * 33}, {}, "ParameterKey must be a string of at most 32"),
        ("AddObject", {}, {"command_key": "x"}, r"AddObject takes no CommandKey; it has a ParameterKey"),
        ("Reboot", {"CommandKey": "a"}, {"command_key": "b"}, "two CommandKeys given: 'b' and"),
        ("Reboot", {}, {"max_attempts": 0}, "max_attempts must be a whole number of at least 1, not 0"),
        ("Reboot", {}, {"expires_at": datetime(2030, 1, 1)}, "expires_at 2030-01-01T00:00:00 has no time"),
        ("Download", {"URL": b"http://x"}, {}, "Download arguments must be JSON"),
    ],
)
def test_a_bad_request_says_what_is_allowed(phones, kind, args, kwargs, message):
    with pytest.raises(QueueError, match=message):
        queue.enqueue(phones, PHONE, kind, args, **kwargs)
    assert queue.list_tasks(phones) == []


def test_every_kind_listed_in_the_error(phones):
    with pytest.raises(QueueError) as caught:
        queue.enqueue(phones, PHONE, "Frobnicate")
    assert str(caught.value).endswith("allowed: " + ", ".join(queue.KINDS))
    assert len(queue.KINDS) == 13


def test_a_task_for_an_unknown_device_is_refused(phones):
    with pytest.raises(QueueError, match="no device 'nobody' in the store"):
        queue.enqueue(phones, "nobody", "Reboot")


def test_list_tasks_filters_newest_first(phones, session):
    a = queue.enqueue(phones, PHONE, "Reboot", job_id="j1")
    b = queue.enqueue(phones, PHONE, "GetRPCMethods", job_id="j1")
    c = queue.enqueue(phones, OTHER, "Reboot")
    queue.claim_next(phones, PHONE, session)

    def ids(**filters):
        return [t.id for t in queue.list_tasks(phones, **filters)]

    assert ids() == [c, b, a]
    assert ids(device_id=PHONE) == [b, a]
    assert ids(status="sent") == [a]
    assert ids(kind="Reboot") == [c, a]
    assert ids(job_id="j1", status="pending") == [b]
    assert ids(limit=1) == [c]
    with pytest.raises(QueueError, match=r"unknown task status 'dne' \(did you mean done\?\)"):
        queue.list_tasks(phones, status="dne")


def test_parallel_claims_never_share_a_task(phones):
    """Four workers drain one device's queue: every task is claimed exactly once."""
    task_ids = [queue.enqueue(phones, PHONE, "GetRPCMethods") for _ in range(50)]
    for n in range(4):
        _open_session(phones, f"w{n}")
    claimed: dict[int, list[int]] = {n: [] for n in range(4)}
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with phones.connect() as conn:
                start.wait()
                while (task := queue.claim_next(conn, PHONE, f"w{n}")) is not None:
                    claimed[n].append(task.id)
        except BaseException as exc:  # surfaced below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    every = sorted(i for ids in claimed.values() for i in ids)
    assert every == task_ids
    sessions_of = {t.id: t.session_id for t in queue.list_tasks(phones, limit=None)}
    assert all(sessions_of[i] == f"w{n}" for n, ids in claimed.items() for i in ids)


def test_timestamps_are_utc(phones, session):
    queue.enqueue(phones, PHONE, "Reboot", expires_at=datetime(2099, 1, 1, 9, tzinfo=UTC))
    task = queue.claim_next(phones, PHONE, session)
    assert {t.utcoffset() for t in (task.created_at, task.sent_at, task.expires_at)} == {timedelta(0)}
