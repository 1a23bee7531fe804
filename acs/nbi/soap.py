"""The northbound API's SOAP flavour: devices and tasks as a SOAP 1.1 service with a WSDL.

For OSS systems that speak SOAP rather than REST. spyne declares the service and
writes its WSDL (``GET /soap?wsdl``); the operations call the same service functions
as the CLI and the REST API (``acs.store.inventory``, ``acs.jobs.queue``). spyne's
Twisted server does not import with current Twisted, so the spyne WSGI application
is served by ``twisted.web.wsgi.WSGIResource`` on a thread pool: its store work never
runs on the reactor. This is an OSS path, not a per-CPE-message one: spyne's cost
(about a millisecond per message) does not matter here.

Authentication takes the NBI's API tokens, presented either as an HTTP header
``Authorization: Bearer <token>`` or, for SOAP stacks that cannot set headers, as a
WS-Security ``UsernameToken`` whose ``Password`` (PasswordText) is the token (the
``Username`` is free). Reading needs the ``read`` role, changing tasks ``operator``.
Every refusal is a SOAP Fault whose faultstring says what was wrong:
``Client.Unauthorized``, ``Client.Forbidden``, ``Client.NotFound``,
``Client.AmbiguousDevice`` (a MAC or serial number several devices share; the
faultstring lists their ids), ``Client.InvalidArgument`` (and spyne's ``Client.SchemaValidationError`` for a
message that does not fit the WSDL).

What reaches spyne was read first by the CWMP codec's hardened parser (``SoapGuard``): a
body that is not well-formed XML, has a DOCTYPE (entity expansion, external entities) or
is over the NBI's body cap is answered with a Client fault there, without spyne. spyne's
own loggers are silenced (they log a refused request whole, WS-Security password and all,
and a traceback per fault); each fault is logged here as one line, at a bounded rate and
with secrets masked (``acs.web.boundedlog``).
"""

from __future__ import annotations

import io
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lxml import etree

from acs.nbi import spyne_compat  # noqa: F401  # isort: skip - before spyne, which needs it on Python 3.12+
from spyne import (
    Application,
    Array,
    Boolean,
    ComplexModel,
    DateTime,
    Enum,
    Fault,
    Integer,
    Integer32,
    ServiceBase,
    Unicode,
    UnsignedInteger,
    rpc,
)
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from sqlalchemy.engine import Engine
from twisted.python.threadpool import ThreadPool
from twisted.web import server
from twisted.web.wsgi import WSGIResource

from acs.cwmp.codec import hardened_parser, has_doctype
from acs.jobs import queue
from acs.jobs.requests import redacted
from acs.nbi.routing import BadJson, parse_json
from acs.nbi.tokens import AccessDenied, Authorize
from acs.store import inventory
from acs.store.schema import TASK_STATUSES, utcnow
from acs.usecases import tasks as usecases
from acs.web.boundedlog import BoundedLog, Long

#: The target namespace of the WSDL and of every element in it.
NAMESPACE = "urn:acs:nbi:soap:1"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#: the UsernameToken Password Type of a digest, which cannot carry a token the server keeps hashed
_DIGEST_FORM = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)

log = logging.getLogger(__name__)
# spyne logs a request it cannot read whole (a WS-Security UsernameToken's password, a SIP
# password in ParameterValues), a value it refuses, and a traceback per Client fault, at any
# rate: none of its lines is written. ``SoapGuard`` and ``_log_faults`` write ours instead.
logging.getLogger("spyne").setLevel(logging.CRITICAL + 1)
#: the SOAP 1.1 envelope namespace (``soap11env`` in spyne's faults, and in ours)
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True)
class Caller:
    """What an operation works with: the store, and who called (the API token's name: a task's origin)."""

    engine: Engine
    who: str


# --- the WSDL's types ------------------------------------------------------------------------


def _required(kind: Any) -> Any:
    return kind(min_occurs=1, nillable=False)


class ParameterValueStruct(ComplexModel):
    """A parameter and its value, as in TR-069 (Type is an xsd type such as xsd:unsignedInt)."""

    __namespace__ = NAMESPACE
    Name = _required(Unicode)
    Value = Unicode
    Type = Unicode


class SetParameterAttributesStruct(ComplexModel):
    """One SetParameterAttributes item, as in TR-069 (a partial path ending in '.' covers its subtree)."""

    __namespace__ = NAMESPACE
    Name = _required(Unicode)
    NotificationChange = Boolean
    Notification = Integer32(ge=0, le=6)
    AccessListChange = Boolean
    AccessList = Array(Unicode)


class TaskArguments(ComplexModel):
    """A task's RPC arguments by their TR-069 element names; give those of the task's Kind.

    ``ParameterValues`` is SetParameterValues' ParameterList, ``ParameterAttributes``
    SetParameterAttributes' one. Omitted arguments take TR-069's defaults (CommandKey and
    ParameterKey: ``acs-<task id>``).
    """

    __namespace__ = NAMESPACE
    ParameterNames = Array(Unicode)
    ParameterPath = Unicode
    NextLevel = Boolean
    ParameterValues = Array(ParameterValueStruct)
    ParameterAttributes = Array(SetParameterAttributesStruct)
    ParameterKey = Unicode
    ObjectName = Unicode
    CommandKey = Unicode
    FileType = Unicode
    URL = Unicode
    Username = Unicode
    Password = Unicode
    FileSize = UnsignedInteger
    TargetFileName = Unicode
    DelaySeconds = UnsignedInteger
    SuccessURL = Unicode
    FailureURL = Unicode


class Parameter(ComplexModel):
    """A stored parameter of a device (secret values masked)."""

    __namespace__ = NAMESPACE
    Path = Unicode
    Value = Unicode
    Type = Unicode
    Writable = Boolean
    ReadAt = DateTime


class Device(ComplexModel):
    """What the ACS knows of a device; Parameters only when GetDevice is given a ParameterPath."""

    __namespace__ = NAMESPACE
    Id = Unicode
    OUI = Unicode
    ProductClass = Unicode
    SerialNumber = Unicode
    Manufacturer = Unicode
    MACAddress = Unicode
    SoftwareVersion = Unicode
    HardwareVersion = Unicode
    ProvisioningCode = Unicode
    IPAddress = Unicode
    ConnectionRequestURL = Unicode
    CWMPVersion = Unicode
    ParameterKey = Unicode
    FirstInform = DateTime
    LastInform = DateTime
    LastBoot = DateTime
    LastBootstrap = DateTime
    CreatedAt = DateTime
    Tags = Array(Unicode)
    Parameters = Array(Parameter)


TaskKind = Enum(*queue.KINDS, type_name="TaskKind")
TaskStatus = Enum(*TASK_STATUSES, type_name="TaskStatus")


class Task(ComplexModel):
    """A queued RPC and what became of it. Arguments and Result are JSON text (secrets masked);
    ParameterValues holds a GetParameterValues answer, typed."""

    __namespace__ = NAMESPACE
    Id = Integer
    DeviceId = Unicode
    Kind = TaskKind
    Status = TaskStatus
    Arguments = Unicode
    CommandKey = Unicode
    JobId = Unicode
    Attempts = Integer
    MaxAttempts = Integer
    CreatedAt = DateTime
    SentAt = DateTime
    SessionId = Unicode
    AnsweredAt = DateTime
    CompletedAt = DateTime
    ExpiresAt = DateTime
    CreatedBy = Unicode
    FaultCode = Integer
    FaultString = Unicode
    FaultMeaning = Unicode
    CompleteWithin = Integer
    DeadlineAt = DateTime
    Result = Unicode
    ParameterValues = Array(ParameterValueStruct)


# --- rows -> SOAP records ------------------------------------------------------------------

#: devices column -> Device element; the credentials columns are never shown
_DEVICE_FIELDS = {
    "id": "Id",
    "oui": "OUI",
    "product_class": "ProductClass",
    "serial_number": "SerialNumber",
    "manufacturer": "Manufacturer",
    "mac": "MACAddress",
    "software_version": "SoftwareVersion",
    "hardware_version": "HardwareVersion",
    "provisioning_code": "ProvisioningCode",
    "ip": "IPAddress",
    "connection_request_url": "ConnectionRequestURL",
    "cwmp_version": "CWMPVersion",
    "parameter_key": "ParameterKey",
    "first_inform": "FirstInform",
    "last_inform": "LastInform",
    "last_boot": "LastBoot",
    "last_bootstrap": "LastBootstrap",
    "created_at": "CreatedAt",
    "tags": "Tags",
}


def device_record(row: Mapping[str, Any], params: list[dict[str, Any]] | None = None) -> Device:
    record = Device(**{name: row[column] for column, name in _DEVICE_FIELDS.items() if column in row})
    if params is not None:
        record.Parameters = [
            Parameter(
                Path=p["path"],
                Value=p["value"],  # secrets come masked (get_parameters without show_secrets)
                Type=p["type"],
                Writable=p["writable"],
                ReadAt=p["read_at"],
            )
            for p in params
        ]
    return record


def task_record(t: queue.Task) -> Task:
    record = Task(
        Id=t.id,
        DeviceId=t.device_id,
        Kind=t.kind,
        Status=t.status,
        Arguments=json.dumps(redacted(t.args)),
        CommandKey=t.command_key,
        JobId=t.job_id,
        Attempts=t.attempts,
        MaxAttempts=t.max_attempts,
        CreatedAt=t.created_at,
        SentAt=t.sent_at,
        SessionId=t.session_id,
        AnsweredAt=t.answered_at,
        CompletedAt=t.completed_at,
        ExpiresAt=t.expires_at,
        CreatedBy=t.created_by,
        FaultCode=t.fault_code,
        FaultString=t.fault_string,
        FaultMeaning=t.fault_meaning,
        CompleteWithin=t.complete_within,
        DeadlineAt=t.deadline_at,
        Result=json.dumps(t.result) if t.result is not None else None,
    )
    if t.kind == "GetParameterValues" and isinstance(t.result, dict):
        record.ParameterValues = [
            ParameterValueStruct(Name=p[0], Value=_masked(p[0], p[1]), Type=p[2] if len(p) > 2 else None)
            for p in t.result.get("ParameterList") or []
            if isinstance(p, list) and len(p) >= 2
        ]
    return record


def _masked(name: str, value: Any) -> Any:
    return inventory.redact(value) if inventory.is_secret(name) else value


# --- SOAP records -> task arguments ----------------------------------------------------------


def task_arguments(kind: str, typed: TaskArguments | None, as_json: str | None) -> dict[str, Any]:
    """The JSON arguments of a ``kind`` task from the typed record or the JSON text (not both)."""
    if typed is not None and as_json:
        raise _fault("InvalidArgument", "give Arguments or ArgumentsJSON, not both")
    if as_json:
        try:
            parsed = parse_json(as_json)
        except BadJson as e:
            raise _fault("InvalidArgument", f"ArgumentsJSON is not JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise _fault("InvalidArgument", "ArgumentsJSON must be a JSON object of argument names")
        return parsed
    args: dict[str, Any] = {}
    for name, value in (typed.as_dict() if typed is not None else {}).items():
        if value is None:
            continue
        if name == "ParameterValues":
            name, value = "ParameterList", [[p.Name, p.Value or "", p.Type or ""] for p in value]
        elif name == "ParameterAttributes":
            if kind != "SetParameterAttributes":
                raise _fault(
                    "InvalidArgument", f"ParameterAttributes is for SetParameterAttributes, not {kind}"
                )
            name, value = "ParameterList", [_attributes(a) for a in value]
        elif name in ("ParameterNames",):
            value = list(value)
        args[name] = value
    return args


def _attributes(a: SetParameterAttributesStruct) -> dict[str, Any]:
    return {
        "Name": a.Name,
        "NotificationChange": bool(a.NotificationChange),
        "Notification": a.Notification or 0,
        "AccessListChange": bool(a.AccessListChange),
        "AccessList": list(a.AccessList or []),
    }


# --- the service -----------------------------------------------------------------------------


def _fault(code: str, message: str) -> Fault:
    return Fault(faultcode=f"Client.{code}", faultstring=message)


def _ambiguous(e: inventory.AmbiguousDevice) -> Fault:
    """A MAC or serial number several devices share: the fault lists them (as REST's 409 does)."""
    return _fault("AmbiguousDevice", str(e))


def _find_device(conn: Any, key: str) -> dict[str, Any]:
    try:
        dev = inventory.get_device(conn, key)
    except inventory.AmbiguousDevice as e:
        raise _ambiguous(e) from None
    if dev is None:
        raise _fault("NotFound", _no_device(key))
    return dev


def _no_device(key: str) -> str:
    return f"no device {key!r}: give a device id, a MAC or a serial number"


def _context(ctx: Any) -> Caller:
    caller: Caller = ctx.udc
    return caller


def _queue_call(action: Callable[[], queue.Task]) -> Task:
    try:
        return task_record(action())
    except queue.QueueError as e:
        code = "NotFound" if str(e).startswith("no task") else "InvalidArgument"
        raise _fault(code, str(e)) from None


class AcsNbi(ServiceBase):
    """Devices the ACS knows, and tasks: RPCs queued for them (``read`` to look, ``operator`` to queue
    or change a task). One service, one port: the WSDL's one address."""

    @rpc(
        Unicode(max_occurs="unbounded"),
        Unicode,
        Unicode,
        Unicode,
        Unicode,
        UnsignedInteger,
        UnsignedInteger(ge=1, le=10000),
        UnsignedInteger,
        _in_variable_names={
            "devices": "Device",
            "product_class": "ProductClass",
            "oui": "OUI",
            "software_version": "SoftwareVersion",
            "tag": "Tag",
            "seen_within": "SeenWithinSeconds",
            "limit": "Limit",
            "offset": "Offset",
        },
        _returns=Array(Device),
        _out_variable_name="Devices",
    )
    def ListDevices(
        ctx: Any,
        devices: list[str] | None,
        product_class: str | None,
        oui: str | None,
        software_version: str | None,
        tag: str | None,
        seen_within: int | None,
        limit: int | None,
        offset: int | None,
    ) -> list[Device]:
        """Devices matching every filter given (Device: ids, MACs or serials), by id; Limit default 1000."""
        limit, offset = limit or 1000, offset or 0
        with _context(ctx).engine.connect() as conn:
            try:
                rows = inventory.find_devices(
                    conn,
                    keys=devices or (),
                    product_class=product_class,
                    oui=oui,
                    software_version=software_version,
                    tag=tag,
                    informed_after=utcnow() - timedelta(seconds=seen_within) if seen_within else None,
                    limit=limit,
                    offset=offset,
                    tags=True,
                )
            except inventory.AmbiguousDevice as e:
                raise _ambiguous(e) from None
        return [device_record(r) for r in rows]

    @rpc(
        _required(Unicode),
        Unicode,
        _in_variable_names={"key": "Device", "prefix": "ParameterPath"},
        _returns=Device,
        _out_variable_name="Device",
    )
    def GetDevice(ctx: Any, key: str, prefix: str | None) -> Device:
        """A device by id, MAC or serial; with ParameterPath (a name, or a partial path ending in '.';
        '.' for all), its stored parameters, passwords masked."""
        with _context(ctx).engine.connect() as conn:
            dev = _find_device(conn, key)
            params = (
                inventory.get_parameters(
                    conn, dev["id"], paths=() if prefix == "." else (prefix,), show_secrets=False
                )
                if prefix is not None
                else None
            )
        return device_record(dev, params)

    @rpc(
        _required(Unicode),
        _required(TaskKind),
        TaskArguments,
        Unicode,
        UnsignedInteger(ge=1, le=100),
        DateTime,
        UnsignedInteger(ge=1, le=queue.COMPLETE_WITHIN_MAX),
        _in_variable_names={
            "key": "Device",
            "kind": "Kind",
            "typed": "Arguments",
            "as_json": "ArgumentsJSON",
            "max_attempts": "MaxAttempts",
            "expires_at": "ExpiresAt",
            "complete_within": "CompleteWithin",
        },
        _returns=Task,
        _out_variable_name="Task",
    )
    def CreateTask(
        ctx: Any,
        key: str,
        kind: str,
        typed: TaskArguments | None,
        as_json: str | None,
        max_attempts: int | None,
        expires_at: Any,
        complete_within: int | None,
    ) -> Task:
        """Queue one RPC for one device (id, MAC or serial); it is committed before the answer.
        CompleteWithin (Reboot, FactoryReset, ScheduleInform, Download, Upload): seconds the device may
        take after its response to complete it, before the task is a fault."""
        kind = str(kind)  # spyne hands an Enum's value as an EnumValue
        args = task_arguments(kind, typed, as_json)
        if expires_at is not None and expires_at.utcoffset() is None:
            raise _fault("InvalidArgument", "ExpiresAt needs a time zone, e.g. 2030-01-01T00:00:00Z")
        options = usecases.Options(
            max_attempts=max_attempts or 3,
            expires_at=expires_at,
            complete_within=int(complete_within) if complete_within is not None else None,
            origin=queue.Origin("api", _context(ctx).who),
        )
        with _context(ctx).engine.begin() as conn:
            try:
                queued = usecases.queue_task(conn, kind, args, usecases.OneDevice(key), options)
            except usecases.AmbiguousDevice as e:
                raise _fault("AmbiguousDevice", str(e)) from None
            except usecases.UnknownDevice:
                raise _fault("NotFound", _no_device(key)) from None
            except usecases.BadArguments as e:
                raise _fault("InvalidArgument", str(e)) from None
            task = queue.get(conn, queued.task_ids[0])
            assert task is not None
            return task_record(task)

    @rpc(
        _required(Integer), _in_variable_names={"task_id": "TaskId"}, _returns=Task, _out_variable_name="Task"
    )
    def GetTask(ctx: Any, task_id: int) -> Task:
        """A task: its RPC, status, timestamps, and the response or the fault in words."""
        task = queue.get(_context(ctx).engine, task_id)
        if task is None:
            raise _fault("NotFound", f"no task {task_id}")
        return task_record(task)

    @rpc(
        Unicode,
        TaskStatus,
        TaskKind,
        Unicode,
        UnsignedInteger(ge=1, le=10000),
        _in_variable_names={
            "key": "Device",
            "status": "Status",
            "kind": "Kind",
            "job": "JobId",
            "limit": "Limit",
        },
        _returns=Array(Task),
        _out_variable_name="Tasks",
    )
    def ListTasks(
        ctx: Any, key: str | None, status: str | None, kind: str | None, job: str | None, limit: int | None
    ) -> list[Task]:
        """Tasks matching every filter given, newest first; Limit default 100."""
        with _context(ctx).engine.connect() as conn:
            device_id = _find_device(conn, key)["id"] if key else None
            status, kind = (str(v) if v is not None else None for v in (status, kind))
            tasks = queue.list_tasks(
                conn, device_id=device_id, status=status, kind=kind, job_id=job, limit=limit or 100
            )
        return [task_record(t) for t in tasks]

    @rpc(
        _required(Integer), _in_variable_names={"task_id": "TaskId"}, _returns=Task, _out_variable_name="Task"
    )
    def CancelTask(ctx: Any, task_id: int) -> Task:
        """Cancel a pending or sent task."""
        return _queue_call(lambda: queue.cancel(_context(ctx).engine, task_id))

    @rpc(
        _required(Integer), _in_variable_names={"task_id": "TaskId"}, _returns=Task, _out_variable_name="Task"
    )
    def RetryTask(ctx: Any, task_id: int) -> Task:
        """Queue a fault, expired or cancelled task again."""
        return _queue_call(lambda: queue.retry(_context(ctx).engine, task_id))


#: the role each operation needs; read-only ones need ``read``
_WRITES = frozenset({"CreateTask", "CancelTask", "RetryTask"})


# --- authentication --------------------------------------------------------------------------


def presented_token(environ: Mapping[str, Any], envelope: Any) -> str | None:
    """The token of a request: ``Authorization: Bearer``, else a WS-Security UsernameToken's Password."""
    header = environ.get("HTTP_AUTHORIZATION")
    if header:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _fault("Unauthorized", "the Authorization header must be 'Bearer <API token>'")
        return token.strip()
    if envelope is None:
        return None
    password = envelope.find(f".//{{{WSSE}}}Security/{{{WSSE}}}UsernameToken/{{{WSSE}}}Password")
    if password is None:
        return None
    if password.get("Type") == _DIGEST_FORM:
        raise _fault(
            "Unauthorized", "WS-Security PasswordDigest cannot carry an API token: send it as PasswordText"
        )
    return (password.text or "").strip() or None


def _caller(ctx: Any, engine: Engine, authorize: Authorize) -> Caller:
    """Who calls, if the token they presented has the role the operation needs."""
    role = "operator" if ctx.method_request_string.rpartition("}")[2] in _WRITES else "read"
    envelope = ctx.in_document if etree.iselement(ctx.in_document) else None
    token = presented_token(ctx.transport.req_env, envelope)
    try:
        return Caller(engine, authorize(token, role))
    except AccessDenied as e:
        raise _fault("Unauthorized" if e.status == 401 else "Forbidden", str(e)) from None


def soap_application(engine: Engine, authorize: Authorize, say: BoundedLog | None = None) -> WsgiApplication:
    """The WSGI application of the SOAP service on this store, checking tokens with ``authorize``;
    each fault is logged with ``say``."""
    app = Application(
        [AcsNbi],
        tns=NAMESPACE,
        name="AcsNbi",
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )

    def on_call(ctx: Any) -> None:
        ctx.udc = _caller(ctx, engine, authorize)

    app.event_manager.add_listener("method_call", on_call)
    wsgi = WsgiApplication(app)
    if say is not None:
        _log_faults(app, wsgi, say)
    return wsgi


# --- what spyne is spared, and what is logged ---------------------------------------------------


def _log_faults(app: Application, wsgi: WsgiApplication, say: BoundedLog) -> None:
    """One line per fault answered (its code, the caller's address, its faultstring), and the
    traceback of a server error; at a bounded rate, secrets masked."""

    def answered(ctx: Any) -> None:
        error = ctx.in_error or ctx.out_error
        code = str(getattr(error, "faultcode", "Server"))
        level = logging.INFO
        if code.startswith("Server"):
            level = logging.ERROR
        elif code in ("Client.Unauthorized", "Client.Forbidden"):
            level = logging.WARNING
        peer = ctx.transport.req_env.get("REMOTE_ADDR")
        say(code, level, "NBI SOAP %s from %s: %s", code, peer, str(getattr(error, "faultstring", error)))

    def failed(ctx: Any) -> None:
        if sys.exc_info()[0] is not None and str(ctx.out_error.faultcode).startswith("Server"):
            say("crash", logging.ERROR, "NBI SOAP operation failed: %s", Long(traceback.format_exc()))

    wsgi.event_manager.add_listener("wsgi_exception", answered)
    app.event_manager.add_listener("method_exception_object", failed)


def fault_body(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault envelope, as spyne writes them."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap11env": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap11env:{code}"
    etree.SubElement(fault, "faultstring").text = message
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


_FAULT_HEADERS = [("Content-Type", "text/xml; charset=utf-8")]


def envelope_problem(body: bytes) -> tuple[str, str] | None:
    """Why a request body is not for spyne: (fault code, words), or None when it may go on.

    Read with the CWMP codec's hardened parser (no entity resolution, no DTD, no network,
    libxml2's depth and size limits), and refused with a DOCTYPE, as SOAP 1.1 says a message
    must not have one. spyne's parser leaves entities unresolved, and its schema validation
    then fails on them with an lxml internal error: an empty 500 and a traceback.
    """
    if not body.strip():
        return "Client.XMLSyntaxError", "empty body: a SOAP request is a SOAP envelope"
    if b"<!DOCTYPE" in body:  # at once: libxml2 would weigh its entities first (UTF-16: see below)
        return _DOCTYPE
    try:
        root = etree.fromstring(body, hardened_parser())
    except etree.XMLSyntaxError as e:
        return "Client.XMLSyntaxError", f"not well-formed XML: {e}"
    except ValueError as e:  # NUL bytes, an encoding lxml does not know
        return "Client.XMLSyntaxError", f"unreadable XML: {e}"
    if has_doctype(root):
        return _DOCTYPE
    return None


_DOCTYPE = ("Client.DoctypeNotAllowed", "a DOCTYPE is not allowed in a SOAP message")


class SoapGuard:
    """The WSGI application twisted.web runs: a request's body is checked (``envelope_problem``)
    before spyne reads it (all but ``GET ?wsdl``), and whatever spyne raises is a Server fault,
    never an empty 500."""

    def __init__(self, spyne: WsgiApplication, say: BoundedLog) -> None:
        self.spyne = spyne
        self.say = say

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.spyne.is_wsdl_request(environ):
            body = environ["wsgi.input"].read()
            problem = envelope_problem(body)
            if problem is not None:
                code, why = problem
                peer = environ.get("REMOTE_ADDR")
                self.say(
                    code,
                    logging.INFO,
                    "NBI SOAP %s from %s: %s; the body began %s",
                    code,
                    peer,
                    why,
                    body,
                )
                start_response("500 Internal Server Error", _FAULT_HEADERS)
                return [fault_body(code, why)]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        try:
            return list(self.spyne(environ, start_response))
        except Exception:
            self.say("crash", logging.ERROR, "NBI SOAP request failed: %s", Long(traceback.format_exc()))
            start_response("500 Internal Server Error", _FAULT_HEADERS, sys.exc_info())
            return [fault_body("Server", "internal error; see the server's log")]


class SoapResource(WSGIResource):
    """``/soap``: a body over the NBI's cap (dropped as it came, ``LimitedRequest``) is a Client fault
    answered here; the rest goes to ``SoapGuard`` and spyne on the thread pool."""

    def __init__(self, reactor: Any, pool: ThreadPool, guard: SoapGuard) -> None:
        super().__init__(reactor, pool, guard)
        self.say = guard.say

    def render(self, request: server.Request) -> Any:
        if getattr(request, "too_large", False):
            why = f"body over the {getattr(request, 'max_size', '?')}-byte limit"
            peer = getattr(request.getClientAddress(), "host", None)
            self.say(
                "Client.RequestTooLong", logging.INFO, "NBI SOAP Client.RequestTooLong from %s: %s", peer, why
            )
            body = fault_body("Client.RequestTooLong", why)
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/xml; charset=utf-8")
            request.setHeader(b"content-length", str(len(body)).encode())
            return body
        return super().render(request)


def soap_resource(engine: Engine, authorize: Authorize, reactor: Any, pool: ThreadPool) -> WSGIResource:
    """The service as a twisted.web resource: spyne and the store run on ``pool``, never on the reactor."""
    say = BoundedLog(reactor, log)
    return SoapResource(reactor, pool, SoapGuard(soap_application(engine, authorize, say), say))
