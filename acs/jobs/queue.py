"""The durable per-device task queue: RPCs the ACS sends a CPE, one at a time, in order.

A task's life: pending -> sent (in session S) -> done | fault | expired | cancelled.
It is written and committed before ``enqueue`` returns, so an acknowledged task is
never lost; a task sent in a session that died goes back to pending and is sent
again in the device's next session (``requeue_orphans``), where its CommandKey or
ParameterKey lets the CPE and the ACS recognise the retry, unless the device's
Inform shows it was done (``acs.jobs.delivery``, before the orphans are put back).

Every function takes an Engine or a Connection (see ``acs.store.transaction``: a
Connection already in a transaction is joined, and the caller commits). Statements
are built once, at import: the session layer calls ``claim_next`` per message. The
functions that read the time take ``now`` (the real time when not given), so a
caller's clock, a test's too, decides it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from acs.cwmp import rpc
from acs.cwmp.faults import describe
from acs.jobs.requests import TaskError, build_request, redacted
from acs.store.engine import transaction
from acs.store.inventory import session_ref
from acs.store.prepared import Prepared
from acs.store.schema import TASK_STATUSES, TaskStatus, UTCDateTime, tasks, utcnow

#: The RPCs a task can be: the CPE methods phones implement.
KINDS: tuple[str, ...] = (
    "GetRPCMethods",
    "GetParameterNames",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterAttributes",
    "SetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "FactoryReset",
    "Download",
    "ScheduleInform",
    "Upload",
)
#: Each kind's argument names: the element names of its RPC record in the codec.
ARGUMENTS: dict[str, frozenset[str]] = {
    kind: frozenset(f.name for f in dataclasses.fields(getattr(rpc, kind))) for kind in KINDS
}
#: TR-069 caps CommandKey and ParameterKey at 32 characters.
KEY_MAX_LENGTH = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Awaited:
    """What an answered task waits for before it is done, and how long by default."""

    event: str  # the EventCode (or message) that completes it
    words: str  # what the device must do, for the fault when it does not
    seconds: int  # the default deadline, counted from the response (plus any DelaySeconds)


#: Kinds whose response is not the end: the task stays ``sent``, answered, until the event comes
#: (``acs.session.service`` closes it), or until its deadline, when the server's sweep makes it a fault.
AWAITED: dict[str, Awaited] = {
    "Reboot": Awaited("1 BOOT", "come back with 1 BOOT", 600),
    "FactoryReset": Awaited("0 BOOTSTRAP", "come back with 0 BOOTSTRAP", 600),
    "ScheduleInform": Awaited("3 SCHEDULED", "inform with 3 SCHEDULED", 600),
    "Download": Awaited("TransferComplete", "send its TransferComplete", 3600),
    "Upload": Awaited("TransferComplete", "send its TransferComplete", 3600),
}
#: the longest ``complete_within`` accepted: a week
COMPLETE_WITHIN_MAX = 7 * 86400

Bind = Engine | Connection


#: Statuses a task never leaves (but by an operator's retry): what "finished" means to every door.
FINAL = (TaskStatus.DONE, TaskStatus.FAULT, TaskStatus.EXPIRED, TaskStatus.CANCELLED)


class QueueError(ValueError):
    """A queue request that cannot be done, saying what was wrong and what is allowed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Origin:
    """Where a task comes from and why, kept in columns of their own: code matches on them, never
    on ``created_by`` (a policy named ``office:night`` is not policy ``office``'s discovery).

    ``kind``: policy, api, cli, soap, refresh or profile; ``name``: the policy's or token's name;
    ``purpose``: discover, values or credentials (None: a plain task); ``step``: a discovery's batch.
    """

    kind: str
    name: str | None = None
    purpose: str | None = None
    step: int | None = None

    @property
    def text(self) -> str:
        """The ``created_by`` people read (``policy:NAME:discover:32``): display only."""
        parts = (self.kind, self.name, self.purpose, None if self.step is None else str(self.step))
        return ":".join(p for p in parts if p is not None)


@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    """One row of ``tasks``, as the queue hands it out."""

    id: int
    device_id: str
    kind: str
    args: dict[str, Any]
    status: TaskStatus
    created_at: datetime
    sent_at: datetime | None
    session_id: str | None
    answered_at: datetime | None
    completed_at: datetime | None
    result: Any
    fault_code: int | None
    fault_string: str | None
    attempts: int
    max_attempts: int
    expires_at: datetime | None
    command_key: str | None
    job_id: str | None
    created_by: str | None
    origin_kind: str | None
    origin_name: str | None
    purpose: str | None
    step: int | None
    cleared_at: datetime | None
    complete_within: int | None
    deadline_at: datetime | None

    def __post_init__(self) -> None:
        # a row's status is the column's text
        object.__setattr__(self, "status", TaskStatus(self.status))

    @property
    def origin(self) -> Origin | None:
        """Where the task comes from (None: queued before origins were kept, or given none)."""
        if self.origin_kind is None:
            return None
        return Origin(self.origin_kind, self.origin_name, self.purpose, self.step)

    @property
    def fault_meaning(self) -> str | None:
        """The fault in words, for operators: the meaning of its code ("Invalid parameter name"), or,
        for a fault with no CWMP code (no answer, a deadline passed, a broken response), what happened."""
        if self.fault_code is not None:
            return describe(self.fault_code)
        if self.status == TaskStatus.FAULT:
            return self.fault_string or "a fault with no code and no words recorded"
        return None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Task:
        return cls(**row._mapping)


# --- statements, built once -----------------------------------------------------------

_t = tasks.c
_q = tasks.alias("q")  # the same table in subqueries, not correlated with the outer UPDATE
_NOW = sa.bindparam("now", type_=UTCDateTime())
_TASK_ID = sa.bindparam("task_id", type_=sa.BigInteger())
_DEVICE = sa.bindparam("device", type_=sa.Text())
_RESULT = sa.bindparam("new_result", type_=_t.result.type)

#: the columns ``enqueue`` gives a new task (the rest take the table's defaults)
_NEW_TASK = (
    "device_id",
    "kind",
    "args",
    "status",
    "created_at",
    "attempts",
    "max_attempts",
    "expires_at",
    "command_key",
    "job_id",
    "created_by",
    "origin_kind",
    "origin_name",
    "purpose",
    "step",
    "complete_within",
)
#: through SQL compiled once: a new phone's discovery queues a GetParameterValues per 100 names
_INSERT = Prepared(sa.insert(tasks).returning(_t.id), columns=_NEW_TASK)
_SET_KEY = (
    sa.update(tasks)
    .where(_t.id == _TASK_ID)
    .values(args=sa.bindparam("new_args", type_=_t.args.type), command_key=sa.bindparam("new_key"))
)
_GET = sa.select(tasks).where(_t.id == _TASK_ID)
_BY_COMMAND_KEY = (
    sa.select(tasks)
    .where(
        _t.device_id == _DEVICE,
        _t.status == TaskStatus.SENT,
        _t.kind == sa.bindparam("kind"),
        _t.command_key == sa.bindparam("command_key"),
    )
    .order_by(_t.id)
    .limit(1)
)

#: Pending tasks past their ``expires_at``, all devices: the server's sweep marks them (claiming
#: skips them on its own, so the hot path never pays for the bookkeeping). Rows another worker
#: holds are skipped on PostgreSQL; SQLite has one writer at a time and renders no FOR UPDATE.
_EXPIRE = (
    sa.update(tasks)
    .where(
        _t.id.in_(
            sa.select(_q.c.id)
            .where(_q.c.status == TaskStatus.PENDING, _q.c.expires_at <= _NOW)
            .with_for_update(skip_locked=True)
        )
    )
    .values(status=TaskStatus.EXPIRED, completed_at=_NOW)
)
_NEXT_ID = (
    sa.select(_q.c.id)
    .where(
        _q.c.device_id == _DEVICE,
        _q.c.status == TaskStatus.PENDING,
        sa.or_(_q.c.expires_at.is_(None), _q.c.expires_at > _NOW),
    )
    .order_by(_q.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
#: run per CWMP message: through SQL compiled once (``acs.store.prepared``)
_CLAIM = Prepared(
    sa.update(tasks)
    .where(_t.id == _NEXT_ID)
    .values(
        status=TaskStatus.SENT, sent_at=_NOW, session_id=sa.bindparam("session"), attempts=_t.attempts + 1
    )
    .returning(*tasks.c)
)


def _transition(from_statuses: tuple[TaskStatus, ...], **values: Any) -> sa.Update:
    return (
        sa.update(tasks)
        .where(_t.id == _TASK_ID, _t.status.in_(from_statuses))
        .values(**values)
        .returning(*tasks.c)
    )


_ANSWERED = sa.func.coalesce(_t.answered_at, _NOW)
_COMPLETE = _transition(
    (TaskStatus.SENT,), status=TaskStatus.DONE, result=_RESULT, answered_at=_ANSWERED, completed_at=_NOW
)
_FAIL = _transition(
    (TaskStatus.SENT,),
    status=TaskStatus.FAULT,
    result=_RESULT,
    fault_code=sa.bindparam("new_fault_code", type_=sa.Integer()),
    fault_string=sa.bindparam("new_fault_string", type_=sa.Text()),
    answered_at=_ANSWERED,
    completed_at=_NOW,
)
_ANSWER = _transition(
    (TaskStatus.SENT,),
    result=_RESULT,
    answered_at=_NOW,
    deadline_at=sa.bindparam("new_deadline_at", type_=UTCDateTime()),
)
#: answered tasks past their deadline, all devices (the sweep's; ``ix_tasks_status_deadline_at``)
_OVERDUE = (
    sa.select(tasks)
    .where(_t.status == TaskStatus.SENT, _t.deadline_at <= _NOW)
    .order_by(_t.id)
    .with_for_update(skip_locked=True)
)
_MISSED = (
    sa.update(tasks)
    .where(_t.id == _TASK_ID, _t.status == TaskStatus.SENT)
    .values(
        status=TaskStatus.FAULT,
        fault_code=None,
        fault_string=sa.bindparam("new_fault_string", type_=sa.Text()),
        completed_at=_NOW,
    )
)
#: ``record_done``: ``_COMPLETE`` for a caller that holds the task already, so nothing is read back
#: (the row's result is the whole response: decoding what was just encoded cost as much again)
_RECORD_DONE = Prepared(
    sa.update(tasks)
    .where(_t.id == _TASK_ID, _t.status == TaskStatus.SENT)
    .values(status=TaskStatus.DONE, result=_RESULT, answered_at=_ANSWERED, completed_at=_NOW)
)
#: ``get`` runs per answered task of a session: through SQL compiled once
_GET_TASK = Prepared(_GET)
_CANCEL = _transition((TaskStatus.PENDING, TaskStatus.SENT), status=TaskStatus.CANCELLED, completed_at=_NOW)
_CLEAR = _transition((TaskStatus.FAULT,), cleared_at=sa.func.coalesce(_t.cleared_at, _NOW))
_RETRY = _transition(
    (TaskStatus.FAULT, TaskStatus.EXPIRED, TaskStatus.CANCELLED),
    status=TaskStatus.PENDING,
    attempts=0,
    expires_at=sa.bindparam("new_expires_at", type_=UTCDateTime()),
    sent_at=sa.null(),
    session_id=sa.null(),
    answered_at=sa.null(),
    completed_at=sa.null(),
    result=sa.null(),
    fault_code=sa.null(),
    fault_string=sa.null(),
    cleared_at=sa.null(),
    deadline_at=sa.null(),
)


def _orphaned(has_live_session: bool) -> sa.ColumnElement[bool]:
    """Sent, never answered, and not in the live session: its session died."""
    sent_unanswered = sa.and_(_t.device_id == _DEVICE, _t.status == TaskStatus.SENT, _t.answered_at.is_(None))
    if not has_live_session:
        return sent_unanswered
    live = sa.bindparam("live", type_=sa.Text())
    return sa.and_(sent_unanswered, sa.or_(_t.session_id.is_(None), _t.session_id != live))


def _given_up(then: Any, otherwise: Any) -> sa.Case[Any]:
    """``then`` for an orphan that has had its ``max_attempts``, ``otherwise`` for one sent again."""
    return sa.case((_t.attempts >= _t.max_attempts, then), else_=otherwise)


#: One statement puts a device's orphans back in the queue, or gives up on those sent too often.
_REQUEUE_STATEMENTS = {
    live: (
        sa.update(tasks)
        .where(_orphaned(live))
        .values(
            status=_given_up(TaskStatus.FAULT, TaskStatus.PENDING),
            completed_at=_given_up(_NOW, sa.null()),
            fault_string=_given_up(
                sa.literal("no response after ")
                + sa.cast(_t.attempts, sa.Text)
                + sa.literal(" attempts: each session it was sent in ended before the device answered"),
                _t.fault_string,
            ),
            sent_at=_given_up(_t.sent_at, sa.null()),
            session_id=_given_up(_t.session_id, sa.null()),
        )
        .returning(*tasks.c)
    )
    for live in (False, True)
}
_REQUEUE = {live: Prepared(statement) for live, statement in _REQUEUE_STATEMENTS.items()}


# --- the queue ------------------------------------------------------------------------


def enqueue(
    bind: Bind,
    device_id: str,
    kind: str,
    args: Mapping[str, Any] | None = None,
    *,
    max_attempts: int = 3,
    expires_at: datetime | None = None,
    command_key: str | None = None,
    job_id: str | None = None,
    created_by: str | None = None,
    complete_within: int | None = None,
    origin: Origin | None = None,
    now: datetime | None = None,
) -> int:
    """Queue the RPC ``kind`` with ``args`` (its arguments by element name) for a device.

    Returns the task id once the task is committed. Reboot, Download, ScheduleInform
    and Upload get a CommandKey, and SetParameterValues, AddObject and DeleteObject a
    ParameterKey, of ``acs-<task id>`` unless one is given (an empty key counts as
    none: it would make the task's event or retry unrecognisable). ``complete_within``:
    seconds a kind of ``AWAITED`` may take after its response (None: the kind's default).
    ``origin``: where the task comes from, in columns; ``created_by`` is derived from it unless given.
    ``now``: when it is queued (the real time unless given: for a clock that tests move).
    """
    if origin is not None and created_by is None:
        created_by = origin.text
    args = check_args(kind, args)
    check_complete_within(kind, complete_within)
    command_key = _command_key(kind, args, command_key)
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise QueueError(f"max_attempts must be a whole number of at least 1, not {max_attempts!r}")
    if expires_at is not None and expires_at.utcoffset() is None:
        raise QueueError(f"expires_at {expires_at.isoformat()} has no time zone; give an aware datetime")
    key_arg = _key_argument(kind)
    row = {
        "device_id": device_id,
        "kind": kind,
        "args": args,
        "status": TaskStatus.PENDING,
        "created_at": now or utcnow(),
        "attempts": 0,
        "max_attempts": max_attempts,
        "expires_at": expires_at,
        "command_key": command_key,
        "job_id": job_id,
        "created_by": created_by,
        "origin_kind": origin.kind if origin else None,
        "origin_name": origin.name if origin else None,
        "purpose": origin.purpose if origin else None,
        "step": origin.step if origin else None,
        "complete_within": complete_within,
    }
    with transaction(bind) as conn:
        try:
            task_id: int = _INSERT.scalar(conn, row)
        except sa.exc.IntegrityError as exc:
            raise _unknown_reference(exc, device_id=device_id) from exc
        if key_arg and not args.get(key_arg):
            key = f"acs-{task_id}"
            args[key_arg] = key
            conn.execute(
                _SET_KEY,
                {"task_id": task_id, "new_args": args, "new_key": key if key_arg == "CommandKey" else None},
            )
    return task_id


def claim_next(bind: Bind, device_id: str, session_id: str, *, now: datetime | None = None) -> Task | None:
    """Take the device's oldest pending task to send in ``session_id``; None when there is none.

    Tasks past their ``expires_at`` are never taken (``expire_overdue`` marks them). Two
    workers claiming for the same device never get the same task.
    """
    params = {"device": device_id, "session": session_id, "now": now or utcnow()}
    with transaction(bind) as conn:
        try:
            row = _CLAIM.first_mapping(conn, params)
        except sa.exc.IntegrityError as exc:
            raise _unknown_reference(exc, session_id=session_id) from exc
    return Task(**row) if row is not None else None


def expire_overdue(bind: Bind, now: datetime | None = None) -> int:
    """Mark every pending task whose ``expires_at`` has passed as ``expired``; returns how many."""
    with transaction(bind) as conn:
        return conn.execute(_EXPIRE, {"now": now or utcnow()}).rowcount


def fail_overdue(bind: Bind, now: datetime | None = None) -> list[Task]:
    """Make every answered task whose deadline has passed a fault that says what never came
    ("the device did not come back with 1 BOOT within 10 minutes of its RebootResponse").

    Returns them. The server's sweep calls it; rows another worker holds are left for the next.
    """
    now = now or utcnow()
    with transaction(bind) as conn:
        overdue = [Task.from_row(row) for row in conn.execute(_OVERDUE, {"now": now})]
        words = [missed_deadline(t) for t in overdue]
        missed = [
            {"task_id": t.id, "now": now, "new_fault_string": w} for t, w in zip(overdue, words, strict=True)
        ]
        if missed:
            conn.execute(_MISSED, missed)
    return [
        dataclasses.replace(t, status=TaskStatus.FAULT, fault_string=w, completed_at=now)
        for t, w in zip(overdue, words, strict=True)
    ]


def deadline(task: Task, answered_at: datetime) -> datetime | None:
    """When an answered ``task`` must have its event: ``answered_at`` plus its ``complete_within``
    (or its kind's default) plus the DelaySeconds it was given; None for kinds done at their response."""
    awaited = AWAITED.get(task.kind)
    if awaited is None:
        return None
    return answered_at + timedelta(seconds=(task.complete_within or awaited.seconds) + _delay(task.args))


def missed_deadline(task: Task) -> str:
    """What never came, in words, for a task whose deadline passed."""
    awaited = AWAITED[task.kind]
    within = task.complete_within or awaited.seconds
    text = f"the device did not {awaited.words} within {duration(within)} of its {task.kind}Response"
    delay = _delay(task.args)
    return text + (f" plus its DelaySeconds ({duration(delay)})" if delay else "")


def duration(seconds: int) -> str:
    """``600`` -> "10 minutes", ``3600`` -> "1 hour", ``90`` -> "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _delay(args: Mapping[str, Any]) -> int:
    delay = args.get("DelaySeconds", 0)
    return delay if isinstance(delay, int) and delay > 0 else 0


def complete(bind: Bind, task_id: int, result: Any, *, now: datetime | None = None) -> Task:
    """Record the CPE's response to a sent task: the task is done."""
    return _apply(bind, _COMPLETE, task_id, "completed", {"new_result": result}, now)


def record_done(bind: Bind, task_id: int, result: Any, *, now: datetime | None = None) -> None:
    """``complete`` without handing the task back: for the session service, which has it already."""
    with transaction(bind) as conn:
        params = {"task_id": task_id, "now": now or utcnow(), "new_result": result}
        if _RECORD_DONE.execute(conn, params) == 0:
            raise _refusal(conn, task_id, "completed")


def fail(
    bind: Bind,
    task_id: int,
    fault_code: int | None,
    fault_string: str | None,
    result: Any = None,
    *,
    now: datetime | None = None,
) -> Task:
    """Record a fault for a sent task, with its code and the CPE's words (or the code's meaning)."""
    params = {
        "new_fault_code": fault_code,
        "new_fault_string": fault_string or describe(fault_code),
        "new_result": result,
    }
    return _apply(bind, _FAIL, task_id, "failed", params, now)


def answer(bind: Bind, task_id: int, result: Any, *, now: datetime | None = None) -> Task:
    """Record the CPE's response to a task whose outcome comes later, in an event (``AWAITED``).

    A Reboot is done when the device comes back with ``1 BOOT``, a Download with Status 1
    at its TransferComplete: until then the task stays ``sent``, answered, and is not sent
    again when its session ends; it gets its deadline (``deadline``) now.
    """
    now = now or utcnow()
    with transaction(bind) as conn:
        task = get(conn, task_id)
        due = deadline(task, now) if task is not None else None
        params = {"new_result": result, "new_deadline_at": due, "now": now}
        return _apply(conn, _ANSWER, task_id, "answered", params, now)


def cancel(bind: Bind, task_id: int, *, now: datetime | None = None) -> Task:
    """Cancel a pending or sent task (a sent one may still reach the CPE; its answer is then refused)."""
    return _apply(bind, _CANCEL, task_id, "cancelled", {}, now)


def clear_fault(bind: Bind, task_id: int) -> Task:
    """Clear a fault an operator has dealt with: the task keeps it, but leaves ``list_faults``."""
    return _apply(bind, _CLEAR, task_id, "cleared", {})


def retry(bind: Bind, task_id: int, *, expires_at: datetime | None = None) -> Task:
    """Queue a fault, expired or cancelled task again, from scratch (attempts reset, no expiry
    unless a new ``expires_at`` is given), keeping its place by id and its CommandKey."""
    if expires_at is not None and expires_at.utcoffset() is None:
        raise QueueError(f"expires_at {expires_at.isoformat()} has no time zone; give an aware datetime")
    return _apply(bind, _RETRY, task_id, "retried", {"new_expires_at": expires_at})


def requeue_orphans(
    bind: Bind,
    device_id: str,
    live_session_id: str | None = None,
    *,
    keep: Collection[int] = (),
    now: datetime | None = None,
) -> list[Task]:
    """Put back the device's tasks sent in a session that died, unanswered; return them.

    Call it when a device's session starts (``live_session_id`` is that session): the
    tasks go back to pending, to be sent again in order, or become ``fault`` ("no
    response after N attempts") once they have been sent ``max_attempts`` times.
    Orphans whose outcome the device may still report (``keep``) stay as they are.
    """
    live = live_session_id is not None
    params = {"device": device_id, "live": live_session_id, "now": now or utcnow()}
    with transaction(bind) as conn:
        if keep:  # rare (a transfer's session): not worth a prepared statement
            statement = _REQUEUE_STATEMENTS[live].where(_t.id.not_in(list(keep)))
            rows = [dict(r) for r in conn.execute(statement, params).mappings()]
        else:
            rows = _REQUEUE[live].mappings(conn, params)
    return sorted((Task(**r) for r in rows), key=lambda task: task.id)


def orphans(bind: Bind, device_id: str, live_session_id: str | None = None) -> list[Task]:
    """The tasks ``requeue_orphans`` would put back, as they are: what the device's Inform may
    report done first (``acs.jobs.delivery``)."""
    live = live_session_id is not None
    query = sa.select(tasks).where(_orphaned(live)).order_by(_t.id)
    with transaction(bind) as conn:
        rows = conn.execute(query, {"device": device_id, "live": live_session_id})
        return [Task.from_row(row) for row in rows]


def get(bind: Bind, task_id: int) -> Task | None:
    with transaction(bind) as conn:
        row = _GET_TASK.first_mapping(conn, {"task_id": task_id})
    return Task(**row) if row is not None else None


def list_tasks(
    bind: Bind,
    *,
    device_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    job_id: str | None = None,
    open_faults: bool = False,
    limit: int | None = 100,
    offset: int = 0,
) -> list[Task]:
    """Tasks matching every filter given, newest first (what an operator looks at).

    ``open_faults``: only faults no one has cleared (``list_faults``).
    """
    query = sa.select(tasks).order_by(_t.id.desc()).offset(offset or None)
    if open_faults:
        query = query.where(_t.status == TaskStatus.FAULT, _t.cleared_at.is_(None))
    if device_id is not None:
        query = query.where(_t.device_id == device_id)
    if status is not None:
        _check_one_of("status", status, TASK_STATUSES)
        query = query.where(_t.status == status)
    if kind is not None:
        _check_one_of("kind", kind, KINDS)
        query = query.where(_t.kind == kind)
    if job_id is not None:
        query = query.where(_t.job_id == job_id)
    if limit is not None:
        query = query.limit(limit)
    with transaction(bind) as conn:
        return [Task.from_row(row) for row in conn.execute(query)]


def list_faults(
    bind: Bind, *, device_id: str | None = None, limit: int | None = 100, offset: int = 0
) -> list[Task]:
    """The tasks that ended in a fault no operator has cleared yet, newest first."""
    return list_tasks(bind, device_id=device_id, open_faults=True, limit=limit, offset=offset)


def task_json(task: Task) -> dict[str, Any]:
    """A task as the CLI's ``--json`` and the API show it: secrets in its arguments masked, the
    fault in words, its session by reference (``inventory.session_ref``), never by its cookie."""
    data = {name: getattr(task, name) for name in task.__dataclass_fields__}
    data["args"] = redacted(task.args)
    data["session_id"] = session_ref(task.session_id)
    data["fault_meaning"] = task.fault_meaning
    return data


# --- jobs: one RPC queued on many devices -----------------------------------------------------


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def enqueue_job(
    bind: Bind,
    device_ids: Iterable[str],
    kind: str,
    args: Mapping[str, Any] | None = None,
    *,
    job_id: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Queue the same RPC on every device, in one transaction: ``{"job": id, "tasks": [ids]}``.

    The tasks share ``job_id`` (a new one unless given; ``options`` go to ``enqueue``), so
    ``job_progress`` follows them. The arguments are checked once, before anything is written.
    """
    args = check_args(kind, args)
    with transaction(bind) as conn:
        ids = [enqueue(conn, d, kind, args, job_id=job_id, **options) for d in device_ids]
    return {"job": job_id, "tasks": ids}


_PROGRESS = (
    sa.select(_t.status, sa.func.count(), sa.func.min(_t.kind), sa.func.min(_t.created_at))
    .where(_t.job_id == sa.bindparam("job"))
    .group_by(_t.status)
)


def job_progress(bind: Bind, job_id: str) -> dict[str, Any] | None:
    """How far a job's tasks got: counts by status, and whether every one is final. None: no such job."""
    with transaction(bind) as conn:
        rows = conn.execute(_PROGRESS, {"job": job_id}).all()
    if not rows:
        return None
    counts = dict.fromkeys(TASK_STATUSES, 0) | {status: n for status, n, _, _ in rows}
    total = sum(counts.values())
    return {
        "job": job_id,
        "kind": min(kind for _, _, kind, _ in rows),
        "created_at": min(created for _, _, _, created in rows),
        "total": total,
        **counts,
        "finished": counts[TaskStatus.PENDING] + counts[TaskStatus.SENT] == 0,
    }


_WAITING = (
    sa.select(tasks)
    .where(
        _t.device_id == _DEVICE,
        _t.status == TaskStatus.SENT,
        _t.kind.in_(sa.bindparam("kinds", expanding=True)),
    )
    .order_by(_t.id)
)


def waiting(bind: Bind, device_id: str, kinds: Iterable[str]) -> list[Task]:
    """The device's sent tasks of these kinds, answered or not, oldest first: what an event may close."""
    with transaction(bind) as conn:
        rows = conn.execute(_WAITING, {"device": device_id, "kinds": list(kinds)})
        return [Task.from_row(row) for row in rows]


def find_by_command_key(bind: Bind, device_id: str, kind: str, command_key: str) -> Task | None:
    """The device's oldest sent ``kind`` task with this CommandKey: the one an event closes."""
    with transaction(bind) as conn:
        row = conn.execute(
            _BY_COMMAND_KEY, {"device": device_id, "kind": kind, "command_key": command_key}
        ).first()
    return Task.from_row(row) if row is not None else None


# --- helpers --------------------------------------------------------------------------


def _apply(
    bind: Bind,
    statement: sa.Update,
    task_id: int,
    done: str,
    params: dict[str, Any],
    now: datetime | None = None,
) -> Task:
    """Run a status transition at ``now`` (the real time unless given); explain a refusal by the
    task's actual status."""
    with transaction(bind) as conn:
        row = conn.execute(statement, {"task_id": task_id, "now": now or utcnow()} | params).one_or_none()
        if row is not None:
            return Task.from_row(row)
        raise _refusal(conn, task_id, done)


def _refusal(conn: Connection, task_id: int, done: str) -> QueueError:
    """Why a transition changed no row: no such task, or the status it is in."""
    current = _GET_TASK.first_mapping(conn, {"task_id": task_id})
    if current is None:
        return QueueError(f"no task {task_id}")
    allowed = {
        "completed": "sent",
        "failed": "sent",
        "answered": "sent",
        "cancelled": "pending or sent",
        "retried": "fault, expired or cancelled",
        "cleared": "fault",
    }[done]
    return QueueError(f"task {task_id} is {current['status']}: only {allowed} tasks can be {done}")


def _check_one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value in allowed:
        return
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise QueueError(f"unknown task {what} {value!r}{hint}; allowed: {', '.join(allowed)}")


def check_complete_within(kind: str, seconds: int | None) -> None:
    """QueueError unless ``seconds`` can be the ``complete_within`` of a ``kind`` task."""
    if seconds is None:
        return
    if kind not in AWAITED:
        waiting = ", ".join(AWAITED)
        raise QueueError(
            f"{kind} is complete with its response, so it takes no complete_within; {waiting} do"
        )
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= COMPLETE_WITHIN_MAX:
        raise QueueError(f"complete_within is whole seconds from 1 to {COMPLETE_WITHIN_MAX}, not {seconds!r}")


def check_kind(kind: str) -> None:
    """QueueError unless ``kind`` is an RPC a task can be, suggesting the closest one."""
    _check_one_of("kind", kind, KINDS)


def check_args(kind: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments of a ``kind`` task, checked as ``enqueue`` checks them; QueueError says what is wrong."""
    _check_one_of("kind", kind, KINDS)
    args = dict(args or {})
    unknown = sorted(set(args) - ARGUMENTS[kind])
    if unknown:
        takes = ", ".join(sorted(ARGUMENTS[kind])) or "no arguments"
        raise QueueError(f"{kind} has no argument {', '.join(unknown)}; it takes {takes}")
    try:
        json.dumps(args)
    except (TypeError, ValueError) as exc:
        raise QueueError(f"{kind} arguments must be JSON (strings, numbers, lists, objects): {exc}") from exc
    try:
        build_request(kind, args)  # what the session will send must be buildable now, not at send time
    except TaskError as exc:
        raise QueueError(str(exc)) from exc
    for key_arg in ("CommandKey", "ParameterKey"):
        key = args.get(key_arg)
        if key is not None and (not isinstance(key, str) or len(key) > KEY_MAX_LENGTH):
            raise QueueError(f"{key_arg} must be a string of at most {KEY_MAX_LENGTH} characters: {key!r}")
    return args


def _key_argument(kind: str) -> str | None:
    """The argument that makes a retry of this RPC recognisable, if it has one."""
    for key_arg in ("CommandKey", "ParameterKey"):
        if key_arg in ARGUMENTS[kind]:
            return key_arg
    return None


def _command_key(kind: str, args: dict[str, Any], command_key: str | None) -> str | None:
    """Reconcile the ``command_key`` keyword with ``args["CommandKey"]``; return the column's value."""
    if command_key is None:
        return args.get("CommandKey") or None
    if _key_argument(kind) != "CommandKey":
        other = "a ParameterKey (args['ParameterKey'])" if _key_argument(kind) else "no key"
        raise QueueError(f"{kind} takes no CommandKey; it has {other}")
    if args.get("CommandKey") not in (None, command_key):
        given = args["CommandKey"]
        raise QueueError(f"two CommandKeys given: {command_key!r} and args['CommandKey'] {given!r}")
    if len(command_key) > KEY_MAX_LENGTH:
        raise QueueError(f"CommandKey must be at most {KEY_MAX_LENGTH} characters: {command_key!r}")
    args["CommandKey"] = command_key
    return command_key or None


def _unknown_reference(exc: sa.exc.IntegrityError, **refs: str) -> Exception:
    """A foreign key that points nowhere, in words; any other integrity error as it was."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) != "23503" and "FOREIGN KEY" not in str(orig):
        return exc
    what = ", ".join(f"{name.removesuffix('_id')} {value!r}" for name, value in refs.items())
    hint = " (a device is known from its first Inform)" if "device_id" in refs else ""
    return QueueError(f"no {what} in the store{hint}")
