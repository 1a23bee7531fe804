"""The CWMP session service: each message's work inside one transaction.

Runs on a thread pool, never on a reactor (it imports no Twisted, and reaches the database only
through ``acs.store``'s functions). Each POST loads its session from the store (locked, so two
POSTs of one session never interleave), lets the state machine (``acs.session.machine``) handle
the message, records the effects (device, events, parameters, task outcomes), claims the next
task, and saves the session's state, all in one transaction (which, under load,
``acs.web.groupcommit`` shares among the messages that waited together). So any worker process
can continue any session, a task is never claimed twice nor lost between two steps, and a session
superseded by a newer Inform from the same device cannot touch the tasks the newer one now owns.

Who may speak for a device is decided here too, in the same transaction, before anything is
written (``_admit``): the endpoint says who the request authenticated as (a ``Principal``), and
a device with credentials of its own is served only to them; the session remembers who opened
it, and a request on another connection must be from them. A CPE's answer writes only what its
request asked for (``_asked``).

Time is the ``clock``'s (the real one by default): session time-outs, task deadlines and expiry
are tested by moving it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from acs import cwmp
from acs.cwmp import rpc
from acs.jobs import delivery, policies, queue
from acs.jobs.requests import build_request, to_json
from acs.provisioning import tr069
from acs.session import machine
from acs.session.machine import ProtocolError, Session, Step, Turn
from acs.store import Connection, Engine, inventory, nonces
from acs.store import sessions as rows
from acs.store.schema import TaskStatus, utcnow

log = logging.getLogger(__name__)

#: What completes an answered task of these kinds: its "M <Method>" event carrying its CommandKey,
#: matched first; else, as real CPEs report it (1 BOOT alone, M Reboot with an empty CommandKey),
#: the single event or an "M" event without a key, which closes the oldest answered one.
#: (TransferComplete closes transfers.)
_COMPLETED_BY: dict[str, tuple[str | None, str]] = {
    "Reboot": ("M Reboot", "1 BOOT"),
    "ScheduleInform": ("M ScheduleInform", "3 SCHEDULED"),
    "FactoryReset": (None, "0 BOOTSTRAP"),
}
#: an Inform with none of these (a periodic one) costs no statement for them
_COMPLETING_CODES = frozenset(code for pair in _COMPLETED_BY.values() for code in pair if code)

#: For crash tests: CWMP messages after whose handling the process kills itself with SIGKILL, before
#: their transaction commits: the moment between a CPE's answer and the ACS's record of it, hit every
#: time. ``SetParameterValuesResponse,RebootResponse`` kills at the first of them, ``...:3`` at the third.
KILL_BEFORE_COMMIT = "ACS_TEST_KILL_BEFORE_COMMIT"


class Swept(NamedTuple):
    """What one sweep did: sessions timed out, pending tasks expired, answered tasks past their deadline."""

    timed_out: int
    expired: int
    missed: int


def _request(conn: Connection, task: queue.Task) -> rpc.Request:
    """The task's request; SetParameterValues values given without a type take the stored one."""
    request = build_request(task.kind, task.args)
    if isinstance(request, rpc.SetParameterValues):
        untyped = [p.Name for p in request.ParameterList if not p.Type]
        if untyped:
            types = inventory.stored_types(conn, task.device_id, untyped)
            for p in request.ParameterList:
                p.Type = p.Type or types.get(p.Name, "")
    return request


@contextlib.contextmanager
def _late_answers(task_id: int) -> Iterator[None]:
    """An answer to a task an operator cancelled (or deleted) meanwhile is kept off the task, and the
    session goes on: what the CPE said about its own tree is still recorded."""
    try:
        yield
    except queue.QueueError as e:
        log.info("answer to task %s not recorded on it: %s", task_id, e)


class SessionGone(ProtocolError):
    """The cookie names a session that ended, timed out or was superseded by a newer Inform."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request authenticated as: the shared credentials, a device's own, a client certificate."""

    kind: str  # "shared", "device" or "cert"
    #: the shared user name, the device whose credentials these are, the certificate's subject
    name: str
    #: device credentials sent by this ``IssueCredentials`` task and not yet confirmed by its answer
    issued: int | None = None

    @property
    def key(self) -> str:
        """What the session keeps of it (``Session.principal``)."""
        return "shared" if self.kind == "shared" else f"{self.kind}:{self.name}"

    def continues(self, session: Session) -> bool:
        """Whether this may continue ``session`` on another connection: whoever opened it, or the
        device's own credentials (a CPE that applied credentials the session just sent it)."""
        return self.key == session.principal or self.key == f"device:{session.device_id}"


class Owner(NamedTuple):
    """The device a CPE user name belongs to, and its password."""

    device: str
    password: str
    #: the ``IssueCredentials`` task these come from, while its answer is not in
    #: (``policies.unconfirmed_credentials``)
    issued: int | None = None


class Refused(NamedTuple):
    """A request refused for who sent it, with nothing written: ``handle``'s answer instead of a step."""

    status: int  # 403, or 401 for an answer to challenge again
    reason: str  # what the CPE is told
    kind: str  # the log's kind (bounded: strangers can cause it)
    words: str  # what the log says
    stale: bool = False  # a 401 with stale=true: the credentials were right, the nonce count was not


def _log_note(kind: str, level: int, message: str, *args: Any) -> None:
    log.log(level, message, *args)


class SessionHandler:
    """The CWMP session service: one message of a session at a time, in the caller's transaction."""

    def __init__(
        self,
        engine: Engine,
        *,
        session_timeout: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
        shared_new: bool = True,
    ) -> None:
        self.engine = engine
        self.session_timeout = timedelta(seconds=session_timeout)
        #: now, aware (tests move it): session time-outs, task deadlines and expiry, the rows' times
        self.clock = clock
        #: whether the shared credentials may make a device the store does not know (--cpe-shared-new)
        self.shared_new = shared_new
        #: where lines a CPE can cause go: ``note(kind, level, message, *args)``; ``acs serve`` gives a
        #: BoundedLog's, called on the reactor (``acs.web.boundedlog``)
        self.note: Callable[..., None] = _log_note
        self._lock_rows = engine.dialect.name == "postgresql"
        names, _, nth = os.environ.get(KILL_BEFORE_COMMIT, "").partition(":")
        self._kill_on = frozenset(name for name in names.split(",") if name)
        self._kill_countdown = int(nth or 1)

    def step(
        self, sid: str | None, env: cwmp.Envelope | None, remote_addr: str | None
    ) -> tuple[Session, Step] | Refused:
        """``handle`` in a transaction of its own, committed on return."""
        with self.engine.begin() as conn:
            return self.handle(conn, sid, env, remote_addr)

    def handle(
        self,
        conn: Connection,
        sid: str | None,
        env: cwmp.Envelope | None,
        remote_addr: str | None,
        principal: Principal | None = None,
        nonce: tuple[str, int, int] | None = None,
    ) -> tuple[Session, Step] | Refused:
        """Handle one message of session ``sid`` (None: the message must be an Inform, opening one),
        in the caller's transaction (``acs.web.groupcommit`` shares one among many messages).

        ``principal``: who the request authenticated as (None: the endpoint vouches for the
        connection, or authentication is off); ``nonce``: its Digest nonce, nonce count and expiry,
        to be used once (``acs.store.nonces``). A request they do not admit is ``Refused``, and
        nothing is written."""
        now = self.clock()
        opening = sid is None or (env is not None and isinstance(env.body, rpc.Inform))
        if opening:
            if principal is not None:
                assert env is not None and isinstance(env.body, rpc.Inform)
                refused = self._admit(conn, env.body, principal)
                if refused is not None:
                    return refused
            session = Session(secrets.token_urlsafe(18))
            session.principal = principal.key if principal is not None else None
        else:
            assert sid is not None
            session = self._load(conn, sid, now)
            if principal is not None and session.principal is not None and not principal.continues(session):
                return Refused(
                    403,
                    "these credentials do not speak for this session's device",
                    "cookie",
                    f"a request for session {inventory.session_ref(sid)} of {session.device_id} came on a "
                    f"new connection as {principal.key}, not as {session.principal}; refused",
                )
        if nonce is not None and not nonces.use(conn, *nonce):
            return Refused(
                401,
                "this Digest nonce count was used already",
                "replay",
                f"a Digest answer with nonce count {nonce[1]} (or a higher one) seen before; refused",
                stale=True,
            )
        if opening and principal is not None and principal.issued is not None:
            assert env is not None and isinstance(env.body, rpc.Inform)
            self._confirm_issued(conn, machine.device_id(env.body.DeviceId), principal.issued, now)
        step = session.handle(env)
        for effect in step.effects:
            self._apply(conn, session, effect, remote_addr, now)
        if step.wants_task:
            step = self._next(conn, session, remote_addr, now)
        if session.state != Turn.ENDED and not (opening and not step.wants_task):
            rows.save_state(conn, session.id, session.to_dict(), now=now)
        if self._kill_on and env is not None and type(env.body).__name__ in self._kill_on:
            self._kill_countdown -= 1
            if self._kill_countdown <= 0:
                log.warning("%s: killed before commit (%s)", type(env.body).__name__, KILL_BEFORE_COMMIT)
                os.kill(os.getpid(), signal.SIGKILL)
        return session, step

    def _admit(self, conn: Connection, inform: rpc.Inform, principal: Principal) -> Refused | None:
        """Whether ``principal`` may open a session for the device ``inform`` names (reads only).

        A device with credentials of its own (or, before its first Inform, the placeholder it would
        adopt) is served to them alone; the shared credentials serve the others, and make new
        devices unless ``shared_new`` is off. A client certificate was checked against the device.
        """
        if principal.kind == "cert":
            return None
        did = machine.device_id(inform.DeviceId)
        if principal.kind == "device" and principal.name == did:
            return None
        mac = inventory.device_facts(inform.ParameterList).get("mac")
        known = inventory.known_as(conn, did, inform.DeviceId.SerialNumber, mac)
        if principal.kind == "device":
            if principal.name in known.owners:
                return None  # a pre-registered placeholder's credentials: its first Inform adopts them
            words = f"the credentials of {principal.name} were used to inform as {did}; refused"
            return Refused(403, "these credentials belong to another device", "identity", words)
        if known.owners:
            owner = ", ".join(sorted(known.owners))
            words = f"the shared credentials were used to inform as {did}, which has its own ({owner})"
            return Refused(403, "this device has credentials of its own; use them", "identity", words)
        if not known.known and not self.shared_new:
            words = f"the shared credentials were used to inform as {did}, unknown (--cpe-shared-new deny)"
            return Refused(403, "unknown device: import it first", "unknown-device", words)
        return None

    def _confirm_issued(self, conn: Connection, device: str, task_id: int, now: datetime) -> None:
        """The device authenticated with the credentials an ``IssueCredentials`` task sent it in a
        session that died before its answer: it applied them. They become its own, the task done."""
        task = queue.get(conn, task_id)
        pair = (
            policies.issued_credentials(task) if task is not None and task.status == TaskStatus.SENT else None
        )
        if task is None or pair is None or task.device_id != device:
            return
        inventory.set_credentials(conn, device, *pair)
        words = "the device authenticated with the credentials this task sets: it applied them"
        queue.complete(conn, task.id, {"recovered": words}, now=now)
        log.info("task %s (%s of %s): %s", task.id, task.kind, device, words)

    def _load(self, conn: Connection, sid: str, now: datetime) -> Session:
        state = rows.load_state(conn, sid, heard_since=now - self.session_timeout)
        if state is None:
            raise SessionGone(f"session {sid[:8]}... is over (ended, timed out or replaced by a new Inform)")
        return Session.from_dict(state)

    def cpe_password(self, conn: Connection, username: str) -> tuple[Owner | None, int | None]:
        """The device that owns this CPE user name and its password, unsealed (None if no device does), and
        the credentials' revision (for the cache of names no device has).

        A name no device has yet may be a device's id with issued credentials in flight
        (``policies.unconfirmed_credentials``): they are its password until their answer comes."""
        revision, device, password = rows.device_password(conn, username)
        if device is not None:
            return (Owner(device, password.reveal()) if password is not None else None), revision
        task = policies.unconfirmed_credentials(conn, username)
        pair = policies.issued_credentials(task) if task is not None else None
        if task is not None and pair is not None and pair[0] == username:
            return Owner(username, pair[1], task.id), revision
        return None, revision

    def sweep(self) -> Swept:
        """The time-based transitions: time out sessions silent for longer than the timeout (their
        tasks go back to pending at the device's next Inform), mark overdue pending tasks expired,
        and make answered tasks whose event did not come by their deadline faults."""
        now = self.clock()
        with self.engine.begin() as conn:
            timed_out = rows.time_out(conn, silent_since=now - self.session_timeout, now=now)
            expired = queue.expire_overdue(conn, now)
            missed = queue.fail_overdue(conn, now)
            nonces.purge(conn, now.timestamp())
        for task in missed:
            log.info("task %s (%s of %s): %s", task.id, task.kind, task.device_id, task.fault_string)
        return Swept(timed_out, expired, len(missed))

    def _next(self, conn: Connection, session: Session, remote_addr: str | None, now: datetime) -> Step:
        """The session's next request, or the end of the session when nothing is queued."""
        assert session.device_id is not None
        while (task := queue.claim_next(conn, session.device_id, session.id, now=now)) is not None:
            try:
                return session.send(task.id, _request(conn, task))
            except ValueError as e:  # a task stored with arguments no request can carry
                queue.fail(conn, task.id, 8003, str(e), now=now)
        step = session.finish()
        for effect in step.effects:
            self._apply(conn, session, effect, remote_addr, now)
        return step

    def _apply(
        self, conn: Connection, session: Session, effect: Any, remote_addr: str | None, now: datetime
    ) -> None:
        match effect:
            case machine.InformReceived(device_id=device_id, inform=inform, version=version):
                if self._lock_rows:
                    # first: a POST locks its session row before the device's, the Inform must too
                    rows.supersede(conn, device_id, now=now)
                device = inventory.record_device(
                    conn, device_id, inform, version=version, remote_addr=remote_addr, now=now
                )
                if not self._lock_rows and device["open_sessions"]:
                    # SQLite: one writer at a time, no row locks; mostly no session to end
                    rows.supersede(conn, device_id, now=now)
                # the session's row, with the state the Inform left it in: nothing more to save this step
                rows.open_session(
                    conn,
                    session.id,
                    device_id,
                    now=now,
                    remote_addr=remote_addr,
                    ns=session.ns,
                    state=session.to_dict(),
                )
                # mostly no task of a dead session: the statements for them are skipped
                orphaned = device["sent_tasks"]
                reported = delivery.reported_parameter_key(inform.ParameterList) if orphaned else None
                known = inventory.stored_values(conn, device_id, [reported[0]]) if reported else {}
                inventory.record_report(conn, device_id, inform, session_id=session.id, now=now)
                codes = inform.event_codes
                if _COMPLETING_CODES.intersection(codes):  # first: a Reboot its M Reboot closes is no orphan
                    _complete_by_events(conn, device_id, inform.Event, now)
                if orphaned:
                    key = (reported[1], known.get(reported[0])) if reported else None
                    orphans = self._orphans(conn, session.id, device_id, inform, key, now)
                    policies.after_orphans(conn, device_id, orphans)  # a discovery batch that died: halved
                root = policies.root_of(p.Name for p in inform.ParameterList)
                device["shared"] = session.principal == "shared"  # IssueCredentials serves those
                policies.on_inform(conn, device, codes, new=device["first_inform"] == now, root=root)
            case machine.TransferCompleted(message=message):
                if isinstance(message, rpc.TransferComplete) and session.device_id:
                    self._transfer_complete(conn, session.device_id, message, now)
            case machine.TaskDone(task_id=task_id, response=response):
                with _late_answers(task_id):
                    self._task_done(conn, session, task_id, response, now)
            case machine.TaskFailed(task_id=task_id, fault_code=code, fault_string=text, detail=detail):
                with _late_answers(task_id):
                    result = to_json(detail) if detail is not None else None
                    self._after(conn, queue.fail(conn, task_id, code, text, result, now=now))
            case machine.SessionEnded():
                rows.end(conn, session.id, now=now)

    def _task_done(
        self, conn: Connection, session: Session, task_id: int, response: rpc.Message, now: datetime
    ) -> None:
        device_id = session.device_id
        assert device_id is not None
        task = queue.get(conn, task_id)
        if task is None:
            raise queue.QueueError(f"no task {task_id}")
        response = self._asked(task, response)
        result = to_json(response)
        match response:
            case rpc.GetParameterValuesResponse(ParameterList=params):
                inventory.store_values(conn, device_id, params, now)
                inventory.record_facts(conn, device_id, params, written=False)
            case rpc.GetParameterNamesResponse(ParameterList=infos):
                inventory.store_names(conn, device_id, infos, now)
                policies.after_names(conn, task, (i.Name for i in infos))
            case rpc.GetParameterAttributesResponse(ParameterList=attrs):
                inventory.store_attributes(conn, device_id, attrs, now)
            case rpc.SetParameterValuesResponse() | rpc.DeleteObjectResponse():
                _applied(conn, task, now)
            case rpc.SetParameterAttributesResponse():
                request = cast(rpc.SetParameterAttributes, build_request(task.kind, task.args))
                inventory.set_attributes(conn, device_id, request.ParameterList)
            case rpc.AddObjectResponse(InstanceNumber=number):
                _applied(conn, task, now, number)
            case rpc.RebootResponse() | rpc.ScheduleInformResponse() | rpc.FactoryResetResponse():
                # Done when the CPE comes back (1 BOOT, 3 SCHEDULED, 0 BOOTSTRAP), or a fault at the
                # deadline; not sent again meanwhile.
                queue.answer(conn, task_id, result, now=now)
                return
            case rpc.DownloadResponse(Status=1) | rpc.UploadResponse(Status=1):
                # Status 1: the transfer completes later and TransferComplete closes the task.
                queue.answer(conn, task_id, result, now=now)
                return
        queue.record_done(conn, task_id, result, now=now)  # the task is in hand: nothing read back
        self._after(conn, task)

    def _asked(self, task: queue.Task, response: rpc.Message) -> rpc.Message:
        """The response with only what its request asked for: parameters named by, or under, the
        GetParameterValues' or GetParameterAttributes' names, the GetParameterNames' path. A CPE
        that answers more (an unasked ManagementServer.URL, a ConnectionRequestURL) writes
        nothing of it; what it tried is logged."""
        if isinstance(response, rpc.GetParameterNamesResponse):
            asked: Iterable[str] = [str(task.args.get("ParameterPath") or "")]
            items: list[Any] = response.ParameterList
        elif isinstance(response, rpc.GetParameterValuesResponse | rpc.GetParameterAttributesResponse):
            asked = [str(n) for n in task.args.get("ParameterNames") or ()]
            items = response.ParameterList
        else:
            return response
        exact = {n for n in asked if n and not n.endswith(".")}
        prefixes = tuple(n for n in asked if not n or n.endswith("."))
        kept = [i for i in items if i.Name in exact or i.Name.startswith(prefixes)]
        if len(kept) == len(items):
            return response
        extra = [i.Name for i in items if i.Name not in exact and not i.Name.startswith(prefixes)]
        self.note(
            "unasked",
            logging.WARNING,
            "%s answered %s (task %s) with %d parameter(s) it was not asked for, ignored: %s",
            task.device_id,
            response.method(),
            task.id,
            len(extra),
            ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else ""),
        )
        # mypy types replace() on a union of dataclasses as taking Never
        return dataclasses.replace(response, ParameterList=kept)  # type: ignore[arg-type]

    def _orphans(
        self,
        conn: Connection,
        live: str,
        device_id: str,
        inform: rpc.Inform,
        key: tuple[str, str | None] | None,
        now: datetime,
    ) -> list[queue.Task]:
        """The device's tasks sent in a session that died, unanswered: what the Inform reports done
        is recorded as done (``acs.jobs.delivery``), the rest goes back to the queue; returns that.

        ``key``: the ParameterKey the Inform reports and the one the store knew before it.
        """
        found = queue.orphans(conn, device_id, live)
        if not found:
            return []
        verdicts = delivery.judge(found, inform.Event, *(key or (None, None)))
        if verdicts.applied is not None:
            task = verdicts.applied
            assert key is not None
            result: dict[str, Any] = {"recovered": delivery.applied_words(task, key[0])}
            reread = _applied(conn, task, now)
            if task.kind == "AddObject":
                result |= {"InstanceNumber": None, "reread_by": reread}
                result["recovered"] += (
                    "; the instance number was not returned: tasks "
                    f"{', '.join(map(str, reread))} read {task.args.get('ObjectName')} again"
                )
            queue.complete(conn, task.id, result, now=now)
            log.info("task %s (%s of %s): %s", task.id, task.kind, device_id, result["recovered"])
        for task in verdicts.transferred:
            queue.answer(conn, task.id, {"recovered": delivery.transferred_words(task)}, now=now)
            log.info("task %s (%s of %s): reported by its M event", task.id, task.kind, device_id)
        return queue.requeue_orphans(conn, device_id, live, keep=[t.id for t in verdicts.held], now=now)

    def _after(self, conn: Connection, task: queue.Task) -> None:
        """What an answered task leads to beyond itself: a finished discovery provisions the phone."""
        if policies.finishes_discovery(conn, task):
            tr069.provision_discovered(conn, task.device_id)

    def _transfer_complete(
        self, conn: Connection, device_id: str, message: rpc.TransferComplete, now: datetime
    ) -> None:
        task = queue.find_by_command_key(conn, device_id, "Download", message.CommandKey)
        task = task or queue.find_by_command_key(conn, device_id, "Upload", message.CommandKey)
        if task is None:
            return  # an autonomous or already closed transfer: the event is stored, nothing to close
        fault = message.FaultStruct
        result = to_json(message)
        if fault.FaultCode:
            queue.fail(conn, task.id, fault.FaultCode, fault.FaultString, result, now=now)
        else:
            queue.complete(conn, task.id, result, now=now)


def _applied(conn: Connection, task: queue.Task, now: datetime, number: int | None = None) -> list[int]:
    """Record in the store what a SetParameterValues, AddObject (instance ``number``) or DeleteObject
    the device applied changed, its ParameterKey included; returns the tasks queued to read again
    what changed. An AddObject whose instance number is unknown (``None``: its response was lost)
    has its whole table read again."""
    device_id = task.device_id
    name = task.args.get("ObjectName", "")
    written = (
        cast(rpc.SetParameterValues, _request(conn, task)).ParameterList
        if task.kind == "SetParameterValues"
        else []
    )
    key = task.args.get("ParameterKey") or ""
    root = policies.root_of([name] if name else [p.Name for p in written])
    written = [*written, rpc.ParameterValueStruct(root + delivery.PARAMETER_KEY[1:], key, "string")]
    inventory.store_values(conn, device_id, written, now)
    inventory.record_facts(conn, device_id, written, written=True)
    issued = policies.issued_credentials(task)
    if issued is not None:  # the device applied credentials a policy made: they are its own now
        try:
            inventory.set_credentials(conn, device_id, *issued)
        except ValueError as e:
            log.error("task %s: the credentials %s applied are not recorded: %s", task.id, device_id, e)
    if task.kind == "AddObject":
        path = name if number is None else f"{name}{number}."
        if number is not None:
            inventory.add_object(conn, device_id, name, number, now)
        return policies.refresh(conn, device_id, path, inventory.entries_count(name))
    if task.kind == "DeleteObject":
        inventory.delete_object(conn, device_id, name)
        table = name.rstrip(".").rpartition(".")[0] + "."
        return policies.refresh(conn, device_id, None, inventory.entries_count(table))
    return []


def _complete_by_events(
    conn: Connection, device_id: str, events: list[rpc.EventStruct], now: datetime
) -> None:
    """Close the tasks an Inform's events report done (``_COMPLETED_BY``), with one statement.

    Runs before the device's orphans are put back: a Reboot whose session died before its
    RebootResponse (CPEs that reboot at once) is done, not sent again, once the device is back.
    An event without a key takes the oldest answered task, else the oldest unanswered one.
    """
    waiting = queue.waiting(conn, device_id, _COMPLETED_BY)
    if not waiting:
        return
    for kind, (method_event, single) in _COMPLETED_BY.items():
        mine = [t for t in waiting if t.kind == kind]
        if not mine:
            continue
        keys = {e.CommandKey for e in events if e.EventCode == method_event and e.CommandKey}
        done = [t for t in mine if t.command_key in keys]
        unkeyed = any(e.EventCode in (method_event, single) and not e.CommandKey for e in events)
        if not done and unkeyed:
            answered = sorted((t for t in mine if t.answered_at), key=lambda t: (t.answered_at, t.id))
            done = (answered or [t for t in mine if t.answered_at is None])[:1]
        for task in done:
            queue.complete(conn, task.id, task.result, now=now)
