"""Answered tasks waiting for their event have a deadline, after which they are faults in words.

A Reboot whose device never comes back with ``1 BOOT``, a Download whose TransferComplete never
comes, would otherwise stay ``sent`` forever. The deadline is set when the response comes
(``queue.answer``): the kind's default or the task's ``complete_within``, plus any DelaySeconds;
the server's sweep (``SessionHandler.sweep``, its clock injectable) turns the overdue into faults.
SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from acs.jobs import policies, queue
from acs.jobs.queue import QueueError
from acs.session.service import SessionHandler, Swept
from acs.store import create_engine, upgrade
from acs.store.schema import devices, revisions, sessions, tasks, utcnow
from acs.store.schema import policies as policies_table

PHONE = "00562B-CP-8841-3PCC-FCH1234ABCD"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def phone(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(sa.insert(devices).values(id=PHONE, oui="00562B", serial_number="FCH1234ABCD"))
        conn.execute(sa.insert(sessions).values(id="s1", device_id=PHONE))
    return engine


def answered(
    engine: Engine, kind: str, args: dict | None = None, *, at: datetime = T0, **options
) -> queue.Task:
    """A ``kind`` task sent in session s1 and answered at ``at``."""
    task_id = queue.enqueue(engine, PHONE, kind, args, **options)
    claimed = queue.claim_next(engine, PHONE, "s1")
    assert claimed is not None and claimed.id == task_id
    return queue.answer(engine, task_id, {}, now=at)


@pytest.mark.parametrize(
    ("kind", "args", "after"),
    [
        ("Reboot", {}, timedelta(minutes=10)),
        ("FactoryReset", {}, timedelta(minutes=10)),
        ("ScheduleInform", {"DelaySeconds": 300}, timedelta(minutes=15)),
        ("Download", {"URL": "http://fw/x.loads", "DelaySeconds": 60}, timedelta(hours=1, minutes=1)),
        ("Upload", {"URL": "http://up/"}, timedelta(hours=1)),
    ],
)
def test_the_deadline_is_the_kind_s_default_after_the_response_plus_delay_seconds(
    phone: Engine, kind: str, args: dict, after: timedelta
) -> None:
    task = answered(phone, kind, args)

    assert (task.status, task.answered_at, task.deadline_at) == ("sent", T0, T0 + after)


def test_complete_within_replaces_the_default(phone: Engine) -> None:
    task = answered(phone, "Reboot", complete_within=90)

    assert (task.complete_within, task.deadline_at) == (90, T0 + timedelta(seconds=90))


@pytest.mark.parametrize(
    ("kind", "seconds", "words"),
    [
        (
            "GetParameterValues",
            60,
            "GetParameterValues is complete with its response, so it takes no "
            "complete_within; Reboot, FactoryReset, ScheduleInform, Download, Upload do",
        ),
        ("Reboot", 0, "complete_within is whole seconds from 1 to 604800, not 0"),
        ("Reboot", 86400 * 8, "complete_within is whole seconds from 1 to 604800, not 691200"),
    ],
)
def test_complete_within_is_refused_where_it_cannot_apply(
    phone: Engine, kind: str, seconds: int, words: str
) -> None:
    args = {"ParameterNames": ["Device."]} if kind == "GetParameterValues" else {}
    with pytest.raises(QueueError) as refused:
        queue.enqueue(phone, PHONE, kind, args, complete_within=seconds)
    assert str(refused.value) == words


def test_the_sweep_makes_an_overdue_reboot_a_fault_that_says_what_never_came(phone: Engine) -> None:
    reboot = answered(phone, "Reboot")
    download = answered(phone, "Download", {"URL": "http://fw/x.loads"})
    clock = [T0 + timedelta(minutes=9)]
    backend = SessionHandler(phone, clock=lambda: clock[0])

    assert backend.sweep() == Swept(timed_out=0, expired=0, missed=0)
    assert queue.get(phone, reboot.id).status == "sent"

    clock[0] = T0 + timedelta(minutes=10)
    assert backend.sweep().missed == 1

    task = queue.get(phone, reboot.id)
    words = "the device did not come back with 1 BOOT within 10 minutes of its RebootResponse"
    assert (task.status, task.fault_code, task.fault_string, task.completed_at) == (
        "fault",
        None,
        words,
        clock[0],
    )
    assert task.fault_meaning == words
    shown = queue.task_json(task)
    assert (shown["fault_code"], shown["fault_string"], shown["fault_meaning"]) == (None, words, words)
    assert queue.get(phone, download.id).status == "sent"  # an hour for a transfer

    clock[0] = T0 + timedelta(hours=1)
    assert backend.sweep().missed == 1
    assert queue.get(phone, download.id).fault_string == (
        "the device did not send its TransferComplete within 1 hour of its DownloadResponse"
    )
    assert backend.sweep().missed == 0


def test_the_words_name_the_time_given_and_the_delay(phone: Engine) -> None:
    task = answered(phone, "ScheduleInform", {"DelaySeconds": 300}, complete_within=90)

    (missed,) = queue.fail_overdue(phone, T0 + timedelta(seconds=390))

    assert missed.id == task.id
    assert queue.get(phone, task.id).fault_string == (
        "the device did not inform with 3 SCHEDULED within 90 seconds of its ScheduleInformResponse "
        "plus its DelaySeconds (5 minutes)"
    )


def test_a_task_done_before_its_deadline_stays_done(phone: Engine) -> None:
    task = answered(phone, "Reboot")
    queue.complete(phone, task.id, {})

    assert queue.fail_overdue(phone, T0 + timedelta(days=1)) == []
    assert queue.get(phone, task.id).status == "done"


def test_a_retried_task_waits_afresh(phone: Engine) -> None:
    task = answered(phone, "Reboot")
    queue.fail_overdue(phone, T0 + timedelta(hours=1))

    again = queue.retry(phone, task.id)

    assert (again.status, again.deadline_at) == ("pending", None)
    assert queue.fail_overdue(phone, T0 + timedelta(days=1)) == []


def test_the_migration_gives_waiting_tasks_a_deadline_and_discovery_a_batch_of_32(empty_db_url: str) -> None:
    upgrade(empty_db_url, "0008")
    engine = create_engine(empty_db_url)
    answered_at = utcnow().replace(microsecond=0)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(devices).values(id=PHONE, oui="00562B", serial_number="FCH1234ABCD"))
            rows = [
                {"kind": "Reboot", "args": {"CommandKey": "k"}, "status": "sent", "answered_at": answered_at},
                {
                    "kind": "ScheduleInform",
                    "args": {"DelaySeconds": 60},
                    "status": "sent",
                    "answered_at": answered_at,
                },
                {"kind": "Reboot", "args": {}, "status": "sent", "answered_at": None},
                {"kind": "GetRPCMethods", "args": {}, "status": "done", "answered_at": answered_at},
            ]
            for row in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO tasks (device_id, kind, args, status, created_at, answered_at, attempts,"
                        " max_attempts) VALUES (:d, :k, :a, :s, :c, :t, 1, 3)"
                    ).bindparams(
                        sa.bindparam("a", type_=tasks.c.args.type),
                        sa.bindparam("c", type_=tasks.c.created_at.type),
                        sa.bindparam("t", type_=tasks.c.answered_at.type),
                    ),
                    {
                        "d": PHONE,
                        "k": row["kind"],
                        "a": row["args"],
                        "s": row["status"],
                        "c": answered_at,
                        "t": row["answered_at"],
                    },
                )
            before = conn.execute(sa.select(revisions.c.revision)).scalar_one()
        engine.dispose()

        upgrade(empty_db_url)

        engine = create_engine(empty_db_url)
        with engine.connect() as conn:
            deadlines = [r.deadline_at for r in conn.execute(sa.select(tasks).order_by(tasks.c.id))]
            discovery = conn.execute(
                sa.select(policies_table.c.tasks).where(policies_table.c.name == "discovery")
            ).scalar_one()
            after = conn.execute(
                sa.select(revisions.c.revision).where(revisions.c.name == "policies")
            ).scalar_one()
        assert deadlines == [
            answered_at + timedelta(minutes=10),
            answered_at + timedelta(minutes=11),
            None,
            None,
        ]
        assert discovery == [{"kind": "Discover", "args": {"batch": policies.DISCOVERY_BATCH}}]
        assert policies.DISCOVERY_BATCH == 32
        assert after == before + 1  # servers read the policies again
    finally:
        engine.dispose()
