"""The CWMP session state machine: one message in, one message out, no I/O.

The Twisted shell feeds it each POST body and carries out what it asks for:
it records the ``effects`` in the store and, when the session ``wants_task``,
claims the device's next queued task and hands it to :meth:`Session.send`.
Keeping the protocol rules here means they are tested with plain bytes and
every worker process behaves alike, whichever one a CPE's next POST reaches.

    CPE                      Session
    Inform            ->     InformResponse                 (state: cpe_turn)
    TransferComplete  ->     TransferCompleteResponse       (CPE requests, unless held)
    empty POST        ->     wants_task -> send(task) or 204 (state: acs_turn)
    ...Response/Fault ->     TaskDone/TaskFailed, wants_task
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from acs import cwmp
from acs.cwmp import rpc
from acs.cwmp.faults import CwmpError, describe, soap_faultcode

#: the methods this ACS implements, as GetRPCMethods from a CPE is answered
ACS_METHODS = ("Inform", "GetRPCMethods", "TransferComplete", "AutonomousTransferComplete", "RequestDownload")
SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")


class Turn(enum.StrEnum):
    """Where a session stands: whose turn it is to send (the values are what the store keeps)."""

    #: nothing received yet: only an Inform may open the session
    AWAITING_INFORM = "awaiting_inform"
    #: the CPE sends its requests (TransferComplete...) until its empty POST
    CPE_TURN = "cpe_turn"
    #: the ACS sends its requests, one at a time, until nothing is left
    ACS_TURN = "acs_turn"
    ENDED = "ended"


# --- what the session asks the shell to record ------------------------------------------------


@dataclass(slots=True, frozen=True)
class InformReceived:
    """A session started: store the device's identity, its events and the parameters it sent."""

    device_id: str
    inform: rpc.Inform
    version: str


@dataclass(slots=True, frozen=True)
class TransferCompleted:
    """The CPE reports a transfer finished (Download task with this CommandKey, or autonomous)."""

    message: rpc.TransferComplete | rpc.AutonomousTransferComplete


@dataclass(slots=True, frozen=True)
class TaskDone:
    task_id: int
    response: rpc.Message


@dataclass(slots=True, frozen=True)
class TaskFailed:
    """A task the CPE answered with a fault, or with something that was not its response."""

    task_id: int
    #: None when the CPE gave no CWMP fault code: ``fault_string`` then says what happened
    fault_code: int | None
    fault_string: str
    detail: rpc.Fault | None = None


@dataclass(slots=True, frozen=True)
class SessionEnded:
    reason: str


Effect = InformReceived | TransferCompleted | TaskDone | TaskFailed | SessionEnded


class ProtocolError(CwmpError):
    """A message that breaks the session rules (e.g. no Inform first); HTTP 400 with the reason."""


@dataclass(slots=True)
class Step:
    """What one POST produced: the reply envelope (None: end with HTTP 204) and the effects."""

    reply: cwmp.Envelope | None = None
    effects: list[Effect] = field(default_factory=list)
    #: the shell must claim the next task and call Session.send (or Session.finish)
    wants_task: bool = False


def device_id(device: rpc.DeviceIdStruct) -> str:
    """The device's id (``rpc.device_key``) from its Inform's DeviceId."""
    return rpc.device_key(device.OUI, device.ProductClass, device.SerialNumber)


@dataclass(slots=True)
class Session:
    """The state of one CWMP session; plain data, so a store can keep it between POSTs."""

    id: str
    device_id: str | None = None
    ns: str = cwmp.NAMESPACES["1.0"]
    version: str = "1.0"
    #: awaiting_inform -> cpe_turn -> acs_turn -> ended (``Turn``)
    state: Turn = Turn.AWAITING_INFORM
    hold_requests: bool = False
    #: the request in flight: task id, method and the cwmp:ID it was sent with
    pending: dict[str, Any] | None = None
    sent: int = 0
    #: who opened the session (``shared``, ``device:<id>``, ``cert:<subject>``; None without
    #: authentication): a request on another connection must be from them, or from the device's own
    #: credentials (the shell checks; the cookie alone is not enough)
    principal: str | None = None

    def receive(self, body: bytes, *, max_size: int = cwmp.codec.DEFAULT_MAX_SIZE) -> Step:
        """Handle one POST body (empty means the CPE has nothing more to ask)."""
        return self.handle(cwmp.parse(body, max_size=max_size) if body.strip() else None)

    def handle(self, env: cwmp.Envelope | None) -> Step:
        """Handle one parsed message; None is the empty POST."""
        if self.state == Turn.ENDED:
            raise ProtocolError("this session has ended; a new one starts with an Inform")
        if env is None:
            return self._empty_post()
        message = env.body
        if self.state == Turn.AWAITING_INFORM:
            if not isinstance(message, rpc.Inform):
                raise ProtocolError(f"a session starts with an Inform, not {message.method()}")
            return self._inform(env, message)
        if isinstance(message, rpc.Inform):
            raise ProtocolError("a second Inform in one session; open a new session for it")
        if self.pending is not None:
            return self._response(env, message)
        if isinstance(message, rpc.Response | rpc.Fault):
            raise ProtocolError(f"{message.method()} answers nothing: no request is outstanding")
        return self._cpe_request(env, message)

    def send(self, task_id: int, request: rpc.Request) -> Step:
        """The next queued request for the CPE, in the ACS's turn."""
        if self.state != Turn.ACS_TURN or self.pending is not None:
            raise RuntimeError(f"cannot send a request in state {self.state}")
        self.sent += 1
        message_id = f"{task_id}.{self.sent}"
        self.pending = {"task": task_id, "method": request.method(), "id": message_id}
        return Step(reply=cwmp.Envelope(body=request, ID=message_id, ns=self.ns))

    def finish(self, reason: str = "nothing left to send") -> Step:
        """Nothing is queued: the empty HTTP 204 that ends the session."""
        self.state = Turn.ENDED
        return Step(reply=None, effects=[SessionEnded(reason)])

    # --- the rules ---------------------------------------------------------------------------

    def _inform(self, env: cwmp.Envelope, inform: rpc.Inform) -> Step:
        self.device_id = device_id(inform.DeviceId)
        self.ns = env.ns
        self.version = env.version
        self.state = Turn.CPE_TURN
        newer = cwmp.codec.newer_than_known(self.version)
        if newer:  # cwmp-1-5 and later: answered in the newest version this ACS speaks, not echoed
            self.version = cwmp.codec.NEWEST
            self.ns = cwmp.NAMESPACES[self.version]
        reply = cwmp.Envelope(body=rpc.InformResponse(MaxEnvelopes=1), ID=env.ID, ns=self.ns)
        common = [v for v in env.SupportedCWMPVersions or () if v in SUPPORTED_VERSIONS]
        if common:
            reply.UseCWMPVersion = self.version = max(common, key=lambda v: int(v.split(".")[1]))
            self.ns = reply.ns = cwmp.NAMESPACES[self.version] if newer else self.ns
        elif newer:
            reply.UseCWMPVersion = self.version  # the CPE's namespace is not ours: say which we speak
        if self.hold_requests:
            reply.HoldRequests = True
        return Step(reply=reply, effects=[InformReceived(self.device_id, inform, self.version)])

    def _empty_post(self) -> Step:
        if self.state == Turn.AWAITING_INFORM:
            raise ProtocolError("an empty POST cannot open a session; send an Inform first")
        if self.pending is not None:
            # The CPE gave up on our request without answering: record it and move on.
            task = self.pending["task"]
            self.pending = None
            self.state = Turn.ACS_TURN
            failed = TaskFailed(task, 8003, "the CPE answered the request with an empty POST")
            return Step(effects=[failed], wants_task=True)
        self.state = Turn.ACS_TURN
        return Step(wants_task=True)

    def _cpe_request(self, env: cwmp.Envelope, message: rpc.Message) -> Step:
        if self.hold_requests:
            return self._fault(env, 8001, f"requests are held in this session; {message.method()} refused")
        effects: list[Effect] = []
        if isinstance(message, rpc.TransferComplete):
            body: rpc.Message = rpc.TransferCompleteResponse()
            effects.append(TransferCompleted(message))
        elif isinstance(message, rpc.AutonomousTransferComplete):
            body = rpc.AutonomousTransferCompleteResponse()
            effects.append(TransferCompleted(message))
        elif isinstance(message, rpc.GetRPCMethods):
            body = rpc.GetRPCMethodsResponse(MethodList=list(ACS_METHODS))
        elif isinstance(message, rpc.RequestDownload):
            body = rpc.RequestDownloadResponse()
        else:
            return self._fault(env, 8000, f"method {message.method()} is not supported by this ACS")
        return Step(reply=cwmp.Envelope(body=body, ID=env.ID, ns=self.ns), effects=effects)

    def _response(self, env: cwmp.Envelope, message: rpc.Message) -> Step:
        pending = self.pending
        assert pending is not None
        self.pending = None
        task = pending["task"]
        if isinstance(message, rpc.Fault):
            effect: Effect = TaskFailed(task, message.FaultCode, _fault_words(message), message)
        elif message.is_response and message.method() == pending["method"]:
            broken = _broken(message)
            effect = TaskDone(task, message) if broken is None else TaskFailed(task, *broken)
        else:
            effect = TaskFailed(task, 8003, f"expected {pending['method']}Response, got {message.method()}")
        return Step(effects=[effect], wants_task=True)

    def _fault(self, env: cwmp.Envelope, code: int, text: str) -> Step:
        fault = rpc.Fault(FaultCode=code, FaultString=text, faultcode=soap_faultcode(code))
        return Step(reply=cwmp.Envelope(body=fault, ID=env.ID, ns=self.ns))

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fields as they are (``pending`` copied): ``dataclasses.asdict``'s deep walk cost a
        tenth of a periodic session's store step."""
        data = {f: getattr(self, f) for f in _SESSION_FIELDS}
        if self.pending is not None:
            data["pending"] = dict(self.pending)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        session = cls(**data)
        session.state = Turn(session.state)  # the store keeps its value
        return session


_SESSION_FIELDS = tuple(f.name for f in dataclasses.fields(Session))


def _fault_words(fault: rpc.Fault) -> str:
    """What a CPE's fault says; a bare SOAP fault (no CWMP code) is described, not given a code."""
    if fault.FaultCode is not None:
        return fault.FaultString or fault.faultstring
    said = (fault.faultstring or "").strip()
    return f"the CPE answered with a SOAP fault {fault.faultcode or ''} without a CWMP fault code" + (
        f": {said}" if said else ""
    )


def _broken(response: rpc.Message) -> tuple[int | None, str] | None:
    """A response that cannot be the success it claims to be, as (fault code, words); None if sound.

    A Status is 0 (applied) or 1 (applied later); CPEs that put a fault code there (seen: an
    AddObjectResponse with InstanceNumber 0 and Status 9005 for an unknown table) mean that
    fault. No instance is numbered 0 or less: such an AddObjectResponse created nothing.
    """
    status = getattr(response, "Status", 0)
    bad_status = status not in (0, 1)
    number = response.InstanceNumber if isinstance(response, rpc.AddObjectResponse) else 1
    if not bad_status and number >= 1:
        return None
    what = [f"InstanceNumber {number}"] if number < 1 else []
    what += [f"Status {status}"] if bad_status else []
    code = status if bad_status and 9000 <= status <= 9999 else None
    meaning = f" ({describe(code)})" if code is not None else ""
    consequence = "no instance was created" if number < 1 else "not a success (Status is 0 or 1)"
    return code, f"the CPE answered {response.method()} with {' and '.join(what)}{meaning}: {consequence}"
