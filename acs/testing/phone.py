"""A simulated Cisco MPP phone: the CPE side of CWMP as pure logic, with no sockets.

The ACS is tested against this phone end to end, so it behaves as TR-069 asks
of a CPE: it answers every RPC the ACS may send, with the faults a real phone
gives (9005 unknown name, 9008 not writable, 9007 bad value, 9003 with one
``SetParameterValuesFault`` per bad parameter, 9000 for a method it lacks); it
applies Reboot, FactoryReset and transfers *after* the session, and opens the
next one with the events that report them (``1 BOOT`` + ``M Reboot``,
``0 BOOTSTRAP``, ``7 TRANSFER COMPLETE`` + ``M Download`` and a
TransferComplete call). Keeping it free of I/O lets tests drive it message by
message; :mod:`acs.testing.client` carries its bytes over HTTP.

    phone = SimulatedPhone("CP-8841-3PCC", "FCH2233A1B2", "00562b043615")
    session = phone.session()          # the Inform: 0 BOOTSTRAP + 1 BOOT on first contact
    body = session.start()
    while body is not None:            # POST body, then whatever the ACS answers
        body = session.receive(post(body))
    session.close()                    # deferred Reboot/Download/... happen now
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from acs import cwmp
from acs.cwmp import rpc, values
from acs.cwmp.faults import CwmpError, describe, soap_faultcode
from acs.testing.datamodel import (
    MODELS,
    OUI,
    Object,
    Parameter,
    PhoneIdentity,
    Table,
    build_phone,
    firmware_version,
    ip_for_mac,
)

#: the RPCs this phone implements, as it answers GetRPCMethods
METHODS = (
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "Download",
    "Upload",
    "FactoryReset",
    "ScheduleInform",
)
VERSIONS = tuple(cwmp.NAMESPACES)
#: events that stay pending until their TransferComplete is acknowledged, not just the InformResponse
TRANSFER_EVENTS = ("7 TRANSFER COMPLETE", "M Download", "M Upload")
TRANSFER_SCHEMES = ("http", "https", "tftp")
#: Cisco loads come as .loads (and .zip bundles); the name before it is the version string
LOAD_SUFFIXES = (".loads", ".zip", ".bin", ".img", ".tar", ".sbn")

UPTIME = "Device.DeviceInfo.UpTime"
LOCAL_TIME = "Device.Time.CurrentLocalTime"
SOFTWARE_VERSION = "Device.DeviceInfo.SoftwareVersion"
PARAMETER_KEY = "Device.ManagementServer.ParameterKey"
ACS_URL = "Device.ManagementServer.URL"
INFORM_PARAMETERS = "Device.ManagementServer.InformParameter."
FIRMWARE_IMAGES = "Device.DeviceInfo.FirmwareImage."


class SessionError(Exception):
    """A CWMP session that could not complete: what went wrong, and the HTTP status and body if any.

    ``log`` is the client's record of the session up to the error, when a
    client raised it (:class:`acs.testing.client.SessionLog`).
    """

    def __init__(self, message: str, *, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.log: Any = None


class ConnectionDropped(SessionError):
    """The phone's agent crashed on a request: it drops the connection without answering."""


#: the requests that change the phone, and the argument that names each (``SimulatedPhone.applied``)
CHANGES: dict[type, str | None] = {
    rpc.SetParameterValues: "ParameterKey",
    rpc.AddObject: "ParameterKey",
    rpc.DeleteObject: "ParameterKey",
    rpc.SetParameterAttributes: None,
    rpc.Reboot: "CommandKey",
    rpc.FactoryReset: None,
    rpc.Download: "CommandKey",
    rpc.Upload: "CommandKey",
    rpc.ScheduleInform: "CommandKey",
}

#: how a phone reports a Reboot or ScheduleInform it was asked for: the "M" event with the
#: request's CommandKey (TR-069), the "M" event with an empty CommandKey, or only 1 BOOT / 3 SCHEDULED
M_EVENTS = ("command-key", "empty-key", "none")


class _CpeFault(Exception):
    """Raised inside an RPC handler: the phone answers with this CWMP fault instead."""

    def __init__(self, code: int, message: str, details: Iterable[rpc.SetParameterValuesFault] = ()) -> None:
        super().__init__(message)
        self.fault = rpc.Fault(
            FaultCode=code,
            FaultString=message,
            SetParameterValuesFault=list(details),
            faultcode=soap_faultcode(code),
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _event(event: str | rpc.EventStruct) -> rpc.EventStruct:
    return event if isinstance(event, rpc.EventStruct) else rpc.EventStruct(event, "")


class SimulatedPhone:
    """One Cisco MPP phone: its data model, attributes, ParameterKey, pending events and transfers.

    ``transfer_faults`` maps a URL substring to the fault code a Download or
    Upload of such a URL ends with (by default a URL containing ``missing``
    fails with 9016, "unable to access file"); ``clock`` makes times
    deterministic in tests.

    Off by default, the ways real CPEs bend TR-069, to test the ACS against them:
    ``m_events`` (``M_EVENTS``: how a Reboot or ScheduleInform is reported back);
    ``crash_above`` (a GetParameterValues of more names drops the connection unanswered,
    as a C agent seen in the field does above 31, each time); ``fault_in_faultstring``
    (the cwmp:Fault written inside ``faultstring``, no ``detail``); ``add_object_fault_in_status``
    (an AddObject it refuses answered with InstanceNumber 0 and the fault code as Status);
    ``namespace`` (a ``cwmp-1-N`` namespace other than its version's, e.g. a newer one).
    """

    # set by _fresh_state (on creation and on a factory reset)
    _reported: dict[str, None]
    pending_events: list[rpc.EventStruct]
    pending_transfers: list[tuple[str, rpc.TransferComplete]]

    def __init__(
        self,
        model: str = "CP-8841-3PCC",
        serial: str = "FCH2233A1B2",
        mac: str = "00562b043615",
        software_version: str | None = None,
        *,
        cwmp_version: str = "1.2",
        acs_url: str = "",
        username: str = "",
        password: str = "",
        ip: str | None = None,
        clock: Callable[[], datetime] = _now,
        transfer_faults: Mapping[str, int] | None = None,
        m_events: str = "command-key",
        crash_above: int | None = None,
        fault_in_faultstring: bool = False,
        add_object_fault_in_status: bool = False,
        namespace: str | None = None,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown phone model {model!r}; known: {', '.join(MODELS)}")
        mac = mac.lower().replace(":", "").replace("-", "")
        if len(mac) != 12 or any(c not in "0123456789abcdef" for c in mac):
            raise ValueError(f"a MAC address is twelve hex digits, not {mac!r}")
        if cwmp_version not in VERSIONS:
            raise ValueError(f"unknown CWMP version {cwmp_version!r}; known: {', '.join(VERSIONS)}")
        phone_model = MODELS[model]
        self.identity = PhoneIdentity(
            model=phone_model,
            serial=serial,
            mac=mac,
            software_version=software_version or phone_model.default_software_version,
            ip=ip or ip_for_mac(mac),
            acs_url=acs_url,
            username=username,
            password=password,
        )
        self.cwmp_version = cwmp_version
        self.clock = clock
        self.transfer_faults = dict({"missing": 9016} if transfer_faults is None else transfer_faults)
        if m_events not in M_EVENTS:
            raise ValueError(f"m_events is one of {', '.join(M_EVENTS)}, not {m_events!r}")
        self.m_events = m_events
        self.crash_above = crash_above
        #: how many requests the phone crashed on (``crash_above``)
        self.crashes = 0
        self.fault_in_faultstring = fault_in_faultstring
        self.add_object_fault_in_status = add_object_fault_in_status
        self.namespace = namespace
        self.retry_count = 0
        #: the requests it carried out, by (method, ParameterKey or CommandKey or ""): a count above
        #: 1 is a request done twice (an AddObject that made two instances, a second reboot)
        self.applied: Counter[tuple[str, str]] = Counter()
        self._ids = itertools.count(1)
        self._after_session: list[Callable[[], None]] = []
        self.model = build_phone(self.identity, now=clock())
        self._fresh_state()

    @classmethod
    def numbered(cls, index: int, model: str = "CP-8841-3PCC", **kwargs: Any) -> SimulatedPhone:
        """Phone number ``index`` of a fleet: a MAC and serial of its own, for load and concurrency tests."""
        if not 0 <= index < 1 << 24:
            raise ValueError("a fleet index must fit in the MAC's last three octets")
        serial = f"FCH{2233 + (index >> 16):04d}{index & 0xFFFF:04X}"
        return cls(model, serial, f"{OUI.lower()}{index:06x}", **kwargs)

    # --- what the phone is ------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        """``OUI-ProductClass-SerialNumber``, the key the ACS files this phone under."""
        return rpc.device_key(OUI, self.identity.model.product_class, self.identity.serial)

    @property
    def ns(self) -> str:
        return self.namespace or cwmp.NAMESPACES[self.cwmp_version]

    @property
    def mac(self) -> str:
        return self.identity.mac

    @property
    def software_version(self) -> str:
        return str(self.model.parameter(SOFTWARE_VERSION).value)

    @property
    def parameter_key(self) -> str:
        return str(self.model.parameter(PARAMETER_KEY).value)

    @property
    def username(self) -> str:
        """The ACS credentials the phone answers HTTP authentication with."""
        return str(self.model.parameter("Device.ManagementServer.Username").value)

    @property
    def password(self) -> str:
        return str(self.model.parameter("Device.ManagementServer.Password").value)

    @property
    def user_agent(self) -> str:
        """Cisco's default ``HTTP_User_Agent_Name``, ``$VERSION ($MA)``."""
        version = firmware_version(self.software_version).partition("MPP")[0]
        return f"Cisco-{self.identity.model.product_class}/{version} ({self.mac})"

    def listen_for_connection_requests(self, http_url: str, udp_address: str) -> None:
        """Where the phone takes connection requests ("": not that way), as its Informs then report.

        Set by :class:`acs.testing.connreq.ConnectionRequestListener`; kept across a factory reset,
        like the network address it stands for.
        """
        self.identity = dataclasses.replace(self.identity, http_listener=http_url, udp_listener=udp_address)
        ms = "Device.ManagementServer."
        self.model.set(ms + "ConnectionRequestURL", self.identity.connection_request_url)
        self.model.set(ms + "HTTPConnectionRequestEnable", bool(http_url))
        udp = self.model.parameter(ms + "UDPConnectionRequestAddress")
        udp.value, udp.forced_inform = udp_address, bool(udp_address)

    def value(self, path: str) -> Any:
        """A parameter's value as the phone holds it (secrets included), for tests and drivers."""
        return self._read(path, self.model.parameter(path), reveal=True)

    def notification(self, path: str) -> int:
        return self._notification.get(path, _default_notification(self.model.parameter(path)))

    def local_change(self, path: str, value: Any) -> None:
        """A change made on the phone itself (keypad, web page), not by the ACS.

        With passive notification the new value rides along in the next Inform;
        with active notification it also raises ``4 VALUE CHANGE``.
        """
        self.model.parameter(path).value = value
        notification = self.notification(path)
        if notification in (1, 2, 4, 6):
            self._reported[path] = None
        if notification == 2:
            self._raise("4 VALUE CHANGE")

    # --- the session --------------------------------------------------------------------------

    def session(self, events: Iterable[str | rpc.EventStruct] | None = None) -> PhoneSession:
        """Open a session: the Inform carries ``events`` and whatever is still pending."""
        return PhoneSession(self, self.inform(events))

    def inform(self, events: Iterable[str | rpc.EventStruct] | None = None) -> rpc.Inform:
        """The Inform that opens the next session.

        Given events join the pending ones, which stay until an InformResponse
        acknowledges them, except ``6 CONNECTION REQUEST``, which TR-069 has a
        CPE drop when its session fails. With nothing to report the session is
        a periodic one.
        """
        once: list[rpc.EventStruct] = []
        for event in map(_event, events or ()):
            if event.EventCode == "6 CONNECTION REQUEST":
                once = [event]
            else:
                self._raise(event.EventCode, event.CommandKey)
        if not self.pending_events and not once:
            self._raise("2 PERIODIC")
        event_list = [dataclasses.replace(e) for e in self.pending_events + once]
        return rpc.Inform(
            DeviceId=rpc.DeviceIdStruct(
                Manufacturer=str(self.model.parameter("Device.DeviceInfo.Manufacturer").value),
                OUI=OUI,
                ProductClass=self.identity.model.product_class,
                SerialNumber=self.identity.serial,
            ),
            Event=event_list,
            MaxEnvelopes=1,
            CurrentTime=self.clock(),
            RetryCount=self.retry_count,
            ParameterList=self._inform_parameters([e.EventCode for e in event_list]),
        )

    def envelope(self, body: rpc.Message, ID: str | None = None) -> cwmp.Envelope:
        """An envelope in this phone's CWMP version; the phone's own requests get a fresh ID."""
        if ID is None and isinstance(body, rpc.Request):
            ID = str(next(self._ids))
        env = cwmp.Envelope(body, ID=ID, ns=self.ns)
        if isinstance(body, rpc.Inform) and self.cwmp_version >= "1.3":
            env.SessionTimeout = 30
            if self.cwmp_version == "1.4":
                env.SupportedCWMPVersions = VERSIONS
        return env

    def _inform_parameters(self, codes: list[str]) -> list[rpc.ParameterValueStruct]:
        """Forced-inform parameters, the ACS's InformParameter entries, then changed notified ones."""
        names = [path for path, p in self.model.parameters() if p.forced_inform]
        for i in self.model.instances(INFORM_PARAMETERS):
            entry = f"{INFORM_PARAMETERS}{i}."
            wanted = str(self.model.parameter(entry + "ParameterName").value)
            event_list = str(self.model.parameter(entry + "EventList").value)
            if not self.model.parameter(entry + "Enable").value or not wanted:
                continue
            if event_list and not set(event_list.split(",")) & set(codes):
                continue
            try:
                names += [path for path, _ in self.model.parameters(wanted)]
            except KeyError:
                continue  # a name the phone does not have is skipped, as CPEs do
        names += [path for path in self._reported if path in self.model]
        return [self._value_struct(path) for path in dict.fromkeys(names)]

    def _raise(self, code: str, command_key: str = "") -> None:
        """Add a pending event; single events (numbered codes) are held once."""
        for e in self.pending_events:
            if e.EventCode == code and (code[0].isdigit() or e.CommandKey == command_key):
                return
        self.pending_events.append(rpc.EventStruct(code, command_key))

    def _delivered(self, inform: rpc.Inform) -> None:
        """The InformResponse came: its events are delivered, but transfer events wait for their RPC."""
        sent = {(e.EventCode, e.CommandKey) for e in inform.Event if e.EventCode not in TRANSFER_EVENTS}
        self.pending_events = [e for e in self.pending_events if (e.EventCode, e.CommandKey) not in sent]
        reported = {p.Name for p in inform.ParameterList}
        self._reported = {path: None for path in self._reported if path not in reported}

    def _transfer_acknowledged(self, method: str, complete: rpc.TransferComplete) -> None:
        self.pending_transfers = [t for t in self.pending_transfers if t[1] is not complete]
        key = complete.CommandKey
        if not any(t[1].CommandKey == key and t[0] == method for t in self.pending_transfers):
            self.pending_events = [
                e for e in self.pending_events if not (e.EventCode == f"M {method}" and e.CommandKey == key)
            ]
        if not self.pending_transfers:
            self.pending_events = [e for e in self.pending_events if e.EventCode != "7 TRANSFER COMPLETE"]

    def _session_closed(self, completed: bool) -> None:
        """Whatever the ACS asked for happens now that the session is over, completed or not."""
        self.retry_count = 0 if completed else self.retry_count + 1
        actions, self._after_session = self._after_session, []
        for action in actions:
            action()

    # --- answering the ACS --------------------------------------------------------------------

    def answer(self, request: rpc.Message) -> rpc.Message:
        """The response (or CWMP fault) to one request from the ACS."""
        handler = self._handlers.get(type(request))
        if handler is None:
            name = request.name if isinstance(request, rpc.UnknownMethod) else request.method()
            return _CpeFault(9000, f"{name} is not supported by this phone").fault
        try:
            response = handler(self, request)
        except _CpeFault as e:
            if self.add_object_fault_in_status and isinstance(request, rpc.AddObject):
                return rpc.AddObjectResponse(InstanceNumber=0, Status=e.fault.FaultCode or 9002)
            return e.fault
        if type(request) in CHANGES:
            key = CHANGES[type(request)]
            self.applied[request.method(), getattr(request, key) if key else ""] += 1
        return response

    def _get_rpc_methods(self, _: rpc.GetRPCMethods) -> rpc.Message:
        return rpc.GetRPCMethodsResponse(MethodList=list(METHODS))

    def _get_parameter_names(self, req: rpc.GetParameterNames) -> rpc.Message:
        try:
            names = self.model.names(req.ParameterPath, req.NextLevel)
        except KeyError:
            raise _CpeFault(9005, f"{req.ParameterPath} is not a parameter or object of this phone") from None
        except ValueError as e:
            raise _CpeFault(9003, str(e)) from None
        return rpc.GetParameterNamesResponse([rpc.ParameterInfoStruct(n, w) for n, w in names])

    def _get_parameter_values(self, req: rpc.GetParameterValues) -> rpc.Message:
        found = [path for name in req.ParameterNames for path, _ in self._lookup(name)]
        return rpc.GetParameterValuesResponse([self._value_struct(path) for path in found])

    def _set_parameter_values(self, req: rpc.SetParameterValues) -> rpc.Message:
        """All or nothing: one bad parameter and none is written, nor the ParameterKey."""
        faults: list[rpc.SetParameterValuesFault] = []
        updates: dict[str, Any] = {}
        seen: set[str] = set()
        for pvs in req.ParameterList:
            name = pvs.Name
            node = self.model.get(name)
            if name in seen:
                faults.append(rpc.SetParameterValuesFault(name, 9003, "the parameter is listed twice"))
                continue
            seen.add(name)
            if not isinstance(node, Parameter):
                faults.append(rpc.SetParameterValuesFault(name, 9005, f"{name} is not a parameter"))
            elif not node.writable:
                faults.append(rpc.SetParameterValuesFault(name, 9008, f"{name} is read-only"))
            else:
                try:
                    updates[name] = _coerce(node, pvs)
                except ValueError as e:
                    faults.append(rpc.SetParameterValuesFault(name, 9007, str(e)))
        if faults:
            raise _CpeFault(9003, "Invalid arguments", faults)
        if ACS_URL in updates and updates[ACS_URL] != self.model.parameter(ACS_URL).value:
            self._raise("0 BOOTSTRAP")  # TR-069: a CPE whose ACS URL changes bootstraps with the new ACS
        for name, value in updates.items():
            self.model.set(name, value)
        self.model.set(PARAMETER_KEY, req.ParameterKey)
        return rpc.SetParameterValuesResponse(Status=0)

    def _get_parameter_attributes(self, req: rpc.GetParameterAttributes) -> rpc.Message:
        found = [path for name in req.ParameterNames for path, _ in self._lookup(name)]
        return rpc.GetParameterAttributesResponse(
            [rpc.ParameterAttributeStruct(p, self.notification(p), list(self._access(p))) for p in found]
        )

    def _set_parameter_attributes(self, req: rpc.SetParameterAttributes) -> rpc.Message:
        """Checked in full before anything changes; a partial path skips what it may not change."""
        highest = 6 if self.cwmp_version == "1.4" else 2
        notifications: dict[str, int] = {}
        access: dict[str, list[str]] = {}
        for s in req.ParameterList:
            targets = self._lookup(s.Name)
            if s.NotificationChange and not 0 <= s.Notification <= highest:
                raise _CpeFault(9003, f"Notification {s.Notification} is not 0-{highest}")
            if s.AccessListChange and set(s.AccessList) - {"Subscriber"}:
                raise _CpeFault(9003, "the only AccessList entry defined is Subscriber")
            explicit = len(targets) == 1 and targets[0][0] == s.Name
            for path, param in targets:
                if s.NotificationChange:
                    refusal = _refuses(param, s.Notification)
                    if refusal and explicit:
                        raise _CpeFault(9009, f"{path}: {refusal}")
                    if not refusal:
                        notifications[path] = s.Notification
                if s.AccessListChange:
                    access[path] = list(s.AccessList)
        self._notification.update(notifications)
        self._access_list.update(access)
        return rpc.SetParameterAttributesResponse()

    def _add_object(self, req: rpc.AddObject) -> rpc.Message:
        path = req.ObjectName
        table = self.model.get(path)
        if not isinstance(table, Table) or not table.writable:
            raise _CpeFault(9005, f"{path} is not a table the ACS may add to")
        if table.max_entries is not None and len(self.model.instances(path)) >= table.max_entries:
            raise _CpeFault(9004, f"{path} is full: this phone has room for {table.max_entries}")
        number = self.model.add_instance(path)
        self.model.set(PARAMETER_KEY, req.ParameterKey)
        return rpc.AddObjectResponse(InstanceNumber=number, Status=0)

    def _delete_object(self, req: rpc.DeleteObject) -> rpc.Message:
        path = req.ObjectName
        node = self.model.get(path)
        if not isinstance(node, Object) or not node.writable:
            raise _CpeFault(9005, f"{path} is not an instance the ACS may delete")
        self.model.delete_instance(path)
        for attributes in (self._notification, self._access_list, self._reported):
            for name in [n for n in attributes if n.startswith(path)]:
                del attributes[name]
        self.model.set(PARAMETER_KEY, req.ParameterKey)
        return rpc.DeleteObjectResponse(Status=0)

    def _reboot(self, req: rpc.Reboot) -> rpc.Message:
        self._after_session.append(lambda: self._rebooted(self._m_event_key(req.CommandKey)))
        return rpc.RebootResponse()

    def _m_event_key(self, command_key: str) -> str | None:
        """The CommandKey its "M" event reports (``m_events``); None: no "M" event."""
        return {"command-key": command_key, "empty-key": "", "none": None}[self.m_events]

    def _factory_reset_rpc(self, _: rpc.FactoryReset) -> rpc.Message:
        self._after_session.append(self._factory_reset)
        return rpc.FactoryResetResponse()

    def _download(self, req: rpc.Download) -> rpc.Message:
        _check_scheme(req.URL)
        start = self.clock()
        self._after_session.append(lambda: self._downloaded(req, start))
        return rpc.DownloadResponse(Status=1)

    def _upload(self, req: rpc.Upload) -> rpc.Message:
        _check_scheme(req.URL)
        start = self.clock()
        self._after_session.append(lambda: self._transfer_done("Upload", req.CommandKey, req.URL, start))
        return rpc.UploadResponse(Status=1)

    def _schedule_inform(self, req: rpc.ScheduleInform) -> rpc.Message:
        """The follow-up session comes whenever its driver runs it; DelaySeconds is not waited here."""

        def scheduled() -> None:
            self._raise("3 SCHEDULED")
            key = self._m_event_key(req.CommandKey)
            if key is not None:
                self._raise("M ScheduleInform", key)

        self._after_session.append(scheduled)
        return rpc.ScheduleInformResponse()

    _handlers: dict[type, Callable[[SimulatedPhone, Any], rpc.Message]] = {
        rpc.GetRPCMethods: _get_rpc_methods,
        rpc.GetParameterNames: _get_parameter_names,
        rpc.GetParameterValues: _get_parameter_values,
        rpc.SetParameterValues: _set_parameter_values,
        rpc.GetParameterAttributes: _get_parameter_attributes,
        rpc.SetParameterAttributes: _set_parameter_attributes,
        rpc.AddObject: _add_object,
        rpc.DeleteObject: _delete_object,
        rpc.Reboot: _reboot,
        rpc.FactoryReset: _factory_reset_rpc,
        rpc.Download: _download,
        rpc.Upload: _upload,
        rpc.ScheduleInform: _schedule_inform,
    }

    # --- what happens after a session ---------------------------------------------------------

    def _rebooted(self, command_key: str | None = None) -> None:
        """Back from a reboot: a new BOOT, and value changes not yet reported are lost (TR-069)."""
        self.booted_at = self.clock()
        self.pending_events = [e for e in self.pending_events if e.EventCode != "4 VALUE CHANGE"]
        self._raise("1 BOOT")
        if command_key is not None:
            self._raise("M Reboot", command_key)

    def _factory_reset(self) -> None:
        """Factory defaults, keeping the firmware it runs; the phone bootstraps with the ACS again."""
        identity = dataclasses.replace(self.identity, software_version=self.software_version)
        self.model = build_phone(identity, now=self.clock())
        self._fresh_state()

    def _fresh_state(self) -> None:
        """Attributes, events and transfers as a phone out of the box has them: only BOOTSTRAP to tell."""
        self._notification: dict[str, int] = {}
        self._access_list: dict[str, list[str]] = {}
        self._reported = {}
        self.pending_events = []
        self.pending_transfers = []
        self.booted_at = self.clock()
        self._raise("0 BOOTSTRAP")
        self._raise("1 BOOT")

    def _downloaded(self, req: rpc.Download, start: datetime) -> None:
        code = self._transfer_fault(req.URL)
        if code == 0 and req.FileType == "1 Firmware Upgrade Image":
            load = _load_name(req.TargetFileName or req.URL)
            if not load:
                code = 9016
            else:
                self._install_firmware(load)
                self._rebooted()  # a new load runs after a reboot
        self._transfer_done("Download", req.CommandKey, req.URL, start, code)

    def _transfer_done(
        self, method: str, key: str, url: str, start: datetime, code: int | None = None
    ) -> None:
        """Queue the TransferComplete the next session sends, with its events."""
        code = self._transfer_fault(url) if code is None else code
        complete = rpc.TransferComplete(
            CommandKey=key,
            FaultStruct=rpc.FaultStruct(code, describe(code) if code else ""),
            StartTime=start,
            CompleteTime=self.clock(),
        )
        self.pending_transfers.append((method, complete))
        self._raise("7 TRANSFER COMPLETE")
        self._raise(f"M {method}", key)

    def _transfer_fault(self, url: str) -> int:
        return next((code for part, code in self.transfer_faults.items() if part in url), 0)

    def _install_firmware(self, load: str) -> None:
        """Dual-bank: the new load goes into the bank not running, which becomes the active one."""
        self.model.set(SOFTWARE_VERSION, load)
        active = str(self.model.parameter("Device.DeviceInfo.ActiveFirmwareImage").value)
        banks = self.model.instances(FIRMWARE_IMAGES)
        spare = next((i for i in banks if f"{FIRMWARE_IMAGES}{i}" != active), banks[0])
        for i in banks:
            self.model.set(f"{FIRMWARE_IMAGES}{i}.Status", "Active" if i == spare else "Available")
        self.model.set(f"{FIRMWARE_IMAGES}{spare}.Name", load)
        self.model.set(f"{FIRMWARE_IMAGES}{spare}.Version", firmware_version(load))
        self.model.set("Device.DeviceInfo.ActiveFirmwareImage", f"{FIRMWARE_IMAGES}{spare}")
        self.model.set("Device.DeviceInfo.BootFirmwareImage", f"{FIRMWARE_IMAGES}{spare}")

    # --- reading the tree ---------------------------------------------------------------------

    def _lookup(self, name: str) -> list[tuple[str, Parameter]]:
        try:
            return self.model.parameters(name)
        except KeyError:
            raise _CpeFault(9005, f"{name} is not a parameter or object of this phone") from None

    def _read(self, path: str, param: Parameter, *, reveal: bool = False) -> Any:
        if path == UPTIME:
            return max(0, int((self.clock() - self.booted_at).total_seconds()))
        if path == LOCAL_TIME:
            return self.clock()
        if param.hidden and not reveal:
            return ""  # TR-069: a write-only parameter reads back empty
        return param.value

    def _value_struct(self, path: str) -> rpc.ParameterValueStruct:
        param = self.model.parameter(path)
        return rpc.ParameterValueStruct(path, self._read(path, param), param.type)

    def _access(self, path: str) -> list[str]:
        return self._access_list.get(path, [])


def _default_notification(param: Parameter) -> int:
    return 2 if param.notify in ("forceEnabled", "forceDefaultEnabled") else 0


def _refuses(param: Parameter, notification: int) -> str | None:
    """Why the phone turns down a notification request, per the parameter's TR-181 ``activeNotify``."""
    if param.notify == "forceEnabled" and notification != 2:
        return "active notification cannot be turned off for this parameter"
    if param.notify == "canDeny" and notification == 2:
        return "this parameter changes too often for active notification"
    return None


def _coerce(param: Parameter, pvs: rpc.ParameterValueStruct) -> Any:
    """The value an SPV asks for, in the parameter's own type; ValueError if it does not fit."""
    text = values.encode(pvs.Value, pvs.Type or values.infer_type(pvs.Value))
    value: Any = text
    if param.type != "string":
        value, _ = values.decode(text, param.type)
        if isinstance(value, str):
            raise ValueError(f"{text[:40]!r} is not a valid {param.type}")
    if param.enum and text not in param.enum:
        raise ValueError(f"{text[:40]!r} is not one of {', '.join(param.enum)}")
    return value


def _check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in TRANSFER_SCHEMES:
        over = scheme or "a URL without a scheme"
        raise _CpeFault(9013, f"cannot transfer over {over}: this phone uses HTTP, HTTPS or TFTP")


def _load_name(url_or_name: str) -> str:
    """The firmware load a URL or file name carries: ``.../sip88xx.12-0-2MPP-3.loads`` -> its stem."""
    name = urlsplit(url_or_name).path.rpartition("/")[2] if "/" in url_or_name else url_or_name
    for suffix in LOAD_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class PhoneSession:
    """One CWMP session from the phone's side: bytes in, bytes out; the transport is the caller's.

    ``receive`` takes each HTTP response body (empty for 204) and returns the
    next POST body (``b""`` is the empty POST) or None when the session is
    over. ``close`` must follow, also after an error: what the ACS asked for
    (Reboot, Download...) happens then.
    """

    def __init__(self, phone: SimulatedPhone, inform: rpc.Inform) -> None:
        self.phone = phone
        self.inform = inform
        #: inform -> transfer (a TransferComplete in flight) -> acs (answering requests) -> done
        self.state = "inform"
        self.finished = False
        self.last_sent: cwmp.Envelope | None = None
        self.last_received: cwmp.Envelope | None = None
        self._transfers: list[tuple[str, rpc.TransferComplete]] = []
        self._in_flight: tuple[str, rpc.TransferComplete] | None = None
        self._closed = False

    def start(self) -> bytes:
        """The Inform, as the first POST of the session."""
        return self._send(self.phone.envelope(self.inform))

    def receive(self, body: bytes) -> bytes | None:
        if self.state == "done":
            raise SessionError("the session is over; open a new one with an Inform")
        try:
            env = cwmp.parse(body) if body.strip() else None
        except CwmpError as e:
            raise SessionError(f"unreadable message from the ACS: {e}", body=body) from None
        self.last_received = env
        if self.state == "inform":
            self._expect(env, rpc.InformResponse, "the Inform")
            self.phone._delivered(self.inform)
            self._transfers = [] if env and env.HoldRequests else list(self.phone.pending_transfers)
            return self._next_cpe_request()
        if self.state == "transfer" and self._in_flight:
            method, complete = self._in_flight
            if self._expect(env, rpc.TransferCompleteResponse, "TransferComplete"):
                self.phone._transfer_acknowledged(method, complete)
            if env and env.HoldRequests:
                self._transfers = []
            return self._next_cpe_request()
        if env is None:
            self.state = "done"
            self.finished = True
            self.last_sent = None
            return None
        if not isinstance(env.body, rpc.Request | rpc.UnknownMethod):
            what = type(env.body).__name__
            raise SessionError(f"the ACS sent {what} where a request or the end was due", body=body)
        crash_above = self.phone.crash_above
        if (
            crash_above is not None
            and isinstance(env.body, rpc.GetParameterValues)
            and len(env.body.ParameterNames) > crash_above
        ):
            self.phone.crashes += 1
            self.state = "done"
            raise ConnectionDropped(
                f"the phone's agent crashed on a GetParameterValues of {len(env.body.ParameterNames)} names "
                f"(it survives {crash_above}): connection dropped, no answer"
            )
        return self._send(self.phone.envelope(self.phone.answer(env.body), ID=env.ID))

    def close(self) -> None:
        """End the session (completed only if the ACS ended it); deferred actions run now."""
        if not self._closed:
            self._closed = True
            self.phone._session_closed(self.finished)

    def _expect(self, env: cwmp.Envelope | None, cls: type, what: str) -> bool:
        """True for the expected response; False for a fault to a TransferComplete (retried next time)."""
        if env is None:
            raise SessionError(f"the ACS ended the session without answering {what}")
        if isinstance(env.body, cls):
            return True
        if isinstance(env.body, rpc.Fault):
            if cls is rpc.TransferCompleteResponse:
                return False
            fault = env.body
            raise SessionError(
                f"the ACS answered {what} with fault {fault.FaultCode} ({describe(fault.FaultCode)}): "
                f"{fault.FaultString or fault.faultstring}"
            )
        raise SessionError(f"the ACS answered {what} with {type(env.body).__name__}, not {cls.__name__}")

    def _next_cpe_request(self) -> bytes:
        if self._transfers:
            self._in_flight = self._transfers.pop(0)
            self.state = "transfer"
            return self._send(self.phone.envelope(self._in_flight[1]))
        self._in_flight = None
        self.state = "acs"
        self.last_sent = None
        return b""

    def _send(self, env: cwmp.Envelope) -> bytes:
        self.last_sent = env
        data = cwmp.serialize(env)
        if self.phone.fault_in_faultstring and isinstance(env.body, rpc.Fault):
            data = _fault_inside_faultstring(data)
        return data


def _fault_inside_faultstring(data: bytes) -> bytes:
    """A CWMP fault as a C agent seen in the field writes it: the cwmp:Fault inside ``faultstring``."""
    root = etree.fromstring(data)
    soap_fault = root.find(f"{{{cwmp.codec.SOAP_ENV}}}Body/{{{cwmp.codec.SOAP_ENV}}}Fault")
    detail = soap_fault.find("detail") if soap_fault is not None else None
    faultstring = soap_fault.find("faultstring") if soap_fault is not None else None
    if soap_fault is None or detail is None or faultstring is None or not len(detail):
        return data
    inner = detail[0]
    soap_fault.remove(detail)
    faultstring.text = None
    faultstring.append(inner)
    return etree.tostring(root)
