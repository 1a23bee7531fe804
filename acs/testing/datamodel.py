"""A Cisco MPP phone's TR-069 data model: the Device:2 root (TR-181) with a TR-104 v2 VoiceService.

The ACS learns a phone's tree by discovery, writes it with SetParameterValues,
adds and deletes table instances: to test that against something shaped like a
real phone, this module builds a tree of ~500 parameters per phone with the
names and types of TR-181 2.17 and TR-104 2.0.2, and values that follow
Cisco's defaults where the reference material gives them (a 20 s periodic
inform, one SIP extension per line key, proxy ports 5060, 5061, ...).

What is not known: no capture of a real MPP phone's tree was found (see
docs/cisco-mpp.md, "What is known and what is not"), so the root (Device:2 rather
than Device:1), the table layout (one ``SIP.Client``/``SIP.Network`` per line)
and the values are a plausible construction, not a copy.

The tree is a flat, ordered mapping from path to node, in the order a CPE lists
it. Table instances come from a template per table, so that an AddObject makes
the same children the phone was built with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MANUFACTURER = "Cisco Systems, Inc."
OUI = "00562B"
VOICE = "Device.Services.VoiceService.1."
#: the version of Device:2 whose names this tree uses
ROOT_DATA_MODEL_VERSION = "2.17"


@dataclass(frozen=True, slots=True)
class PhoneModel:
    """A Cisco MPP model: how many lines it has and how its firmware loads are named."""

    product_class: str
    lines: int
    load_prefix: str
    hardware_version: str
    description: str
    gigabit: bool = True

    @property
    def default_software_version(self) -> str:
        return f"{self.load_prefix}.12-0-1MPP-1"


#: lines = line keys, each one SIP extension (Cisco's ``Ext n`` tab)
MODELS: dict[str, PhoneModel] = {
    m.product_class: m
    for m in (
        PhoneModel("CP-7821-3PCC", 2, "sip78xx", "V03", "Cisco IP Phone 7821 Multiplatform"),
        PhoneModel("CP-7841-3PCC", 4, "sip78xx", "V04", "Cisco IP Phone 7841 Multiplatform"),
        PhoneModel("CP-8841-3PCC", 5, "sip88xx", "V06", "Cisco IP Phone 8841 Multiplatform"),
        PhoneModel("CP-8851-3PCC", 5, "sip88xx", "V06", "Cisco IP Phone 8851 Multiplatform"),
        PhoneModel("CP-8861-3PCC", 5, "sip88xx", "V06", "Cisco IP Phone 8861 Multiplatform"),
    )
}


# --- the tree ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Parameter:
    """A leaf: its value (a Python value of its type), xsi type and whether the ACS may write it.

    ``hidden`` parameters are write-only secrets: TR-069 has them read back as
    an empty string. ``notify`` is TR-181's ``activeNotify`` (``normal``,
    ``canDeny``, ``forceEnabled``, ``forceDefaultEnabled``): it decides which
    notification requests the phone refuses and which start active.
    """

    value: Any
    type: str = "string"
    writable: bool = False
    hidden: bool = False
    enum: tuple[str, ...] = ()
    notify: str = "normal"
    forced_inform: bool = False


@dataclass(slots=True)
class Object:
    """A single object, or an instance of a table (``writable``: the ACS may delete it)."""

    writable: bool = False


#: the children of a new instance number, relative to the instance (``Enable``, ``RTP.DSCPMark``,
#: ``Contact.`` for a nested table)
Template = Callable[[int], Mapping[str, "Parameter | Table"]]


@dataclass(slots=True)
class Table:
    """A multi-instance object; ``writable`` means the ACS may AddObject to it."""

    template: Template
    writable: bool = False
    max_entries: int | None = None
    #: instance numbers are not reused after a delete, as TR-069 asks of CPEs
    next_instance: int = 1


Node = Parameter | Object | Table
_ROOT = Object()


class DataModel:
    """A parameter tree: path -> node, in listing order; paths of objects end with a dot."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}

    def __contains__(self, path: object) -> bool:
        return path in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, path: str) -> Node | None:
        return self._nodes.get(path)

    def parameter(self, path: str) -> Parameter:
        """The parameter at ``path``; KeyError when there is none (an object is not a parameter)."""
        node = self._nodes.get(path)
        if not isinstance(node, Parameter):
            raise KeyError(path)
        return node

    def node(self, path: str) -> Node:
        """The node at ``path``; "" is the nameless root above ``Device.``. KeyError if there is none."""
        if path == "":
            return _ROOT
        return self._nodes[path]

    def parameters(self, path: str = "") -> list[tuple[str, Parameter]]:
        """Every parameter at or below ``path`` ("" is the whole tree); KeyError for an unknown path."""
        node = self.node(path)
        if isinstance(node, Parameter):
            return [(path, node)]
        return [(n, c) for n, c in self._nodes.items() if isinstance(c, Parameter) and n.startswith(path)]

    def names(self, path: str, next_level: bool) -> list[tuple[str, bool]]:
        """GetParameterNames: (name, writable) pairs.

        Raises KeyError for an unknown path and ValueError for a parameter
        asked with ``next_level`` (TR-069 has the CPE fault both).
        """
        node = self.node(path)
        if isinstance(node, Parameter):
            if next_level:
                raise ValueError(f"{path} is a parameter: NextLevel must be false for a full parameter name")
            return [(path, node.writable)]
        if next_level:
            return [(n, c.writable) for n, c in self._nodes.items() if _is_child(path, n)]
        return [(n, c.writable) for n, c in self._nodes.items() if n.startswith(path)]

    # --- building and changing the tree ------------------------------------------------------

    def add(self, path: str, node: Parameter | Table) -> None:
        """Add a node as the last child of its object; missing ancestors become single objects."""
        parent = _ancestors(path)[-1]
        at = max((i + 1 for i, n in enumerate(self._nodes) if n.startswith(parent)), default=len(self._nodes))
        self._insert([(path, node)], at=at)

    def set(self, path: str, value: Any) -> None:
        self.parameter(path).value = value

    def table(self, path: str) -> Table:
        node = self._nodes.get(path)
        if not isinstance(node, Table):
            raise KeyError(path)
        return node

    def instances(self, table_path: str) -> list[int]:
        self.table(table_path)
        return [int(n[len(table_path) : -1]) for n in self._nodes if _is_instance_of(table_path, n)]

    def add_instance(self, table_path: str) -> int:
        """A new instance with its template's children, listed after the table's last instance."""
        table = self.table(table_path)
        number = table.next_instance
        table.next_instance += 1
        prefix = f"{table_path}{number}."
        new: list[tuple[str, Node]] = [(prefix, Object(writable=table.writable))]
        new += [(prefix + rel, node) for rel, node in table.template(number).items()]
        end = max((i for i, n in enumerate(self._nodes) if n.startswith(table_path)), default=0)
        self._insert(new, at=end + 1)
        self._count(table_path)
        return number

    def delete_instance(self, path: str) -> None:
        """Remove an instance (``Table.3.``) and everything below it."""
        table_path = path[: path.rstrip(".").rfind(".") + 1]
        if not _is_instance_of(table_path, path) or path not in self._nodes:
            raise KeyError(path)
        self._nodes = {n: node for n, node in self._nodes.items() if not n.startswith(path)}
        self._count(table_path)

    def _insert(self, new: list[tuple[str, Node]], at: int) -> None:
        items = list(self._nodes.items())
        known = set(self._nodes)
        expanded: list[tuple[str, Node]] = []
        for path, node in new:
            for ancestor in _ancestors(path):
                if ancestor not in known:
                    known.add(ancestor)
                    expanded.append((ancestor, Object()))
            known.add(path)
            expanded.append((path, node))
        self._nodes = dict(items[:at] + expanded + items[at:])

    def _count(self, table_path: str) -> None:
        """Keep TR-181's ``<Table>NumberOfEntries`` (in the parent object) in step."""
        parent, _, name = table_path[:-1].rpartition(".")
        count = self._nodes.get(f"{parent}.{name}NumberOfEntries")
        if isinstance(count, Parameter):
            count.value = len(self.instances(table_path))


def _ancestors(path: str) -> list[str]:
    parts = path.rstrip(".").split(".")
    return [".".join(parts[:i]) + "." for i in range(1, len(parts))]


def _is_child(parent: str, path: str) -> bool:
    if not path.startswith(parent) or path == parent:
        return False
    rest = path[len(parent) :]
    dots = rest.count(".")
    return dots == 0 or (dots == 1 and rest.endswith("."))


def _is_instance_of(table_path: str, path: str) -> bool:
    rest = path[len(table_path) :]
    return path.startswith(table_path) and rest.endswith(".") and rest[:-1].isdigit()


# --- the Cisco phone --------------------------------------------------------------------------


def _rw(value: Any, kind: str = "string", **kw: Any) -> Parameter:
    return Parameter(value, kind, writable=True, **kw)


def _ro(value: Any, kind: str = "string", **kw: Any) -> Parameter:
    return Parameter(value, kind, writable=False, **kw)


def _b(value: bool, writable: bool = True) -> Parameter:
    return Parameter(value, "boolean", writable=writable)


def _u(value: int, writable: bool = True) -> Parameter:
    return Parameter(value, "unsignedInt", writable=writable)


def _i(value: int, writable: bool = True) -> Parameter:
    return Parameter(value, "int", writable=writable)


TRANSPORTS = ("UDP", "TCP", "TLS", "SCTP")
#: (TR-104 codec name, bit rate) as an MPP phone offers them, preferred first
CODECS = (
    ("G.711MuLaw", 64000),
    ("G.711ALaw", 64000),
    ("G.729a", 8000),
    ("G.722", 64000),
    ("G.722.2", 23850),
    ("iLBC", 15200),
)


@dataclass(frozen=True, slots=True)
class PhoneIdentity:
    """What one phone is: the facts its data model is built from."""

    model: PhoneModel
    serial: str
    mac: str  # twelve hex digits, lower case: Cisco's $MA
    software_version: str
    ip: str
    acs_url: str = ""
    username: str = ""
    password: str = ""
    #: where the phone takes connection requests, when something really listens there
    #: (``acs.testing.connreq``); "" for none; None: the made-up address of ``ip``
    http_listener: str | None = None
    udp_listener: str | None = None

    @property
    def mac_colons(self) -> str:
        return ":".join(self.mac[i : i + 2] for i in range(0, 12, 2))

    @property
    def connection_request_url(self) -> str:
        return f"http://{self.ip}:7547/{self.mac}" if self.http_listener is None else self.http_listener

    @property
    def udp_connection_request_address(self) -> str:
        return f"{self.ip}:7547" if self.udp_listener is None else self.udp_listener


def ip_for_mac(mac: str) -> str:
    """A distinct private address per phone, from the MAC's last three octets."""
    tail = bytes.fromhex(mac[-6:])
    return f"10.{tail[0]}.{tail[1]}.{max(tail[2], 2)}"


def build_phone(identity: PhoneIdentity, *, now: datetime | None = None) -> DataModel:
    """The data model of one phone as it leaves the factory (or a factory reset)."""
    now = now or datetime.now(UTC)
    m = DataModel()
    m.add("Device.RootDataModelVersion", _ro(ROOT_DATA_MODEL_VERSION, forced_inform=True))
    m.add("Device.InterfaceStackNumberOfEntries", _u(0, writable=False))
    _device_info(m, identity, now)
    _management_server(m, identity)
    _time(m)
    _network(m, identity)
    m.add("Device.Services.VoiceServiceNumberOfEntries", _u(0, writable=False))
    m.add("Device.Services.VoiceService.", Table(lambda i: _voice_service(identity.model)))
    m.add_instance("Device.Services.VoiceService.")
    _voice_tables(m, identity.model)
    return m


def _device_info(m: DataModel, ident: PhoneIdentity, now: datetime) -> None:
    p = "Device.DeviceInfo."
    model = ident.model
    for name, node in {
        "DeviceCategory": _ro("VoIPPhone"),
        "Manufacturer": _ro(MANUFACTURER),
        "ManufacturerOUI": _ro(OUI),
        "ModelName": _ro(model.product_class),
        "ModelNumber": _ro(model.product_class.split("-")[1]),
        "Description": _ro(model.description),
        "ProductClass": _ro(model.product_class),
        "SerialNumber": _ro(ident.serial),
        "HardwareVersion": _ro(model.hardware_version, forced_inform=True),
        "SoftwareVersion": _ro(ident.software_version, forced_inform=True, notify="forceEnabled"),
        "ActiveFirmwareImage": _ro("Device.DeviceInfo.FirmwareImage.1"),
        "BootFirmwareImage": _rw("Device.DeviceInfo.FirmwareImage.1"),
        "AdditionalHardwareVersion": _ro(""),
        "AdditionalSoftwareVersion": _ro(""),
        "ProvisioningCode": _rw("", forced_inform=True, notify="forceEnabled"),
        "UpTime": Parameter(0, "unsignedInt", notify="canDeny"),
        "FirstUseDate": _ro(now, "dateTime"),
        "HostName": _rw(f"SEP{ident.mac.upper()}"),
        "FirmwareImageNumberOfEntries": _u(0, writable=False),
        "VendorConfigFileNumberOfEntries": _u(0, writable=False),
        "VendorLogFileNumberOfEntries": _u(0, writable=False),
        "SupportedDataModelNumberOfEntries": _u(0, writable=False),
        "MemoryStatus.Total": _u(1048576, writable=False),
        "MemoryStatus.Free": Parameter(412160, "unsignedInt", notify="canDeny"),
        "ProcessStatus.CPUUsage": Parameter(4, "unsignedInt", notify="canDeny"),
        "ProcessStatus.ProcessNumberOfEntries": _u(0, writable=False),
    }.items():
        m.add(p + name, node)
    older = f"{model.load_prefix}.11-3-7MPP0001-272"
    images = {1: ident.software_version, 2: older}
    m.add(p + "FirmwareImage.", Table(lambda i: _firmware_image(images.get(i, ""), active=i == 1)))
    m.add_instance(p + "FirmwareImage.")
    m.add_instance(p + "FirmwareImage.")
    m.add(
        p + "VendorConfigFile.",
        Table(
            lambda i: {
                "Alias": _ro(f"cpe-{i}"),
                "Name": _ro(f"{ident.mac}.xml"),
                "Version": _ro(""),
                "Date": _ro(now, "dateTime"),
                "Description": _ro("flat profile (XML)"),
                "UseForBackupRestore": _b(True, writable=False),
            }
        ),
    )
    m.add_instance(p + "VendorConfigFile.")
    m.add(
        p + "VendorLogFile.",
        Table(
            lambda i: {
                "Alias": _ro(f"cpe-{i}"),
                "Name": _ro("messages"),
                "MaximumSize": _u(1048576, writable=False),
                "Persistent": _b(False, writable=False),
            }
        ),
    )
    m.add_instance(p + "VendorLogFile.")
    urns = {
        1: ("urn:broadband-forum-org:tr-181-2-17-0", "Device:2.17"),
        2: ("urn:broadband-forum-org:tr-104-2-0-2", "VoiceService:2.0"),
    }
    m.add(
        p + "SupportedDataModel.",
        Table(
            lambda i: {
                "Alias": _ro(f"cpe-{i}"),
                "URL": _ro(f"https://cwmp-data-models.broadband-forum.org/#{urns[i][1]}"),
                "URN": _ro(urns[i][0]),
                "Features": _ro("Baseline" if i == 1 else "SIPClient"),
            }
        ),
    )
    m.add_instance(p + "SupportedDataModel.")
    m.add_instance(p + "SupportedDataModel.")


def _firmware_image(name: str, *, active: bool) -> dict[str, Parameter]:
    return {
        "Alias": _ro(""),
        "Name": _ro(name),
        "Version": _ro(firmware_version(name)),
        "Available": _b(True),
        "Status": _ro("Active" if active else "Available"),
        "BootFailureLog": _ro(""),
    }


def firmware_version(load: str) -> str:
    """``sip88xx.12-0-1MPP-1`` -> ``12.0.1MPP-1``: the version part of a Cisco load name."""
    version = load.partition(".")[2] or load
    return version.replace("-", ".", 2)


def _management_server(m: DataModel, ident: PhoneIdentity) -> None:
    p = "Device.ManagementServer."
    for name, node in {
        "EnableCWMP": _b(True),
        "URL": _rw(ident.acs_url),
        "Username": _rw(ident.username),
        "Password": _rw(ident.password, hidden=True),
        "ScheduleReboot": _rw(datetime(1, 1, 1, tzinfo=UTC), "dateTime"),
        "DelayReboot": _i(-1),
        "PeriodicInformEnable": _b(True),
        "PeriodicInformInterval": _u(20),  # Cisco's default; an ACS should raise it
        "PeriodicInformTime": _rw(datetime(1, 1, 1, tzinfo=UTC), "dateTime"),
        "ParameterKey": _ro("", forced_inform=True, notify="canDeny"),
        "ConnectionRequestURL": _ro(
            ident.connection_request_url, forced_inform=True, notify="forceDefaultEnabled"
        ),
        "ConnectionRequestUsername": _rw(ident.mac),
        "ConnectionRequestPassword": _rw("", hidden=True),
        "UpgradesManaged": _b(False),
        "DefaultActiveNotificationThrottle": _u(0),
        "CWMPRetryMinimumWaitInterval": _u(5),
        "CWMPRetryIntervalMultiplier": _u(2000),
        "HTTPConnectionRequestEnable": _b(bool(ident.connection_request_url)),
        # reported in every Inform by a phone that listens for UDP, as it would under active notification
        "UDPConnectionRequestAddress": _ro(
            ident.udp_connection_request_address, forced_inform=bool(ident.udp_listener)
        ),
        "STUNEnable": _b(False),
        "STUNServerAddress": _rw(""),
        "STUNServerPort": _u(3478),
        "NATDetected": _b(False, writable=False),
        "AliasBasedAddressing": _ro(False, "boolean", forced_inform=True),
        "InstanceMode": _rw("InstanceNumber", enum=("InstanceNumber", "InstanceAlias")),
        "AutoCreateInstances": _b(False),
        "SupportedConnReqMethods": _ro("HTTP,STUN"),
        "HTTPCompressionSupported": _ro(""),
        "HTTPCompression": _rw("Disabled", enum=("Disabled",)),
        "InstanceWildcardsSupported": _b(False, writable=False),
        "InformParameterNumberOfEntries": _u(0, writable=False),
        "HeartbeatPolicy.Enable": _b(False),
        "HeartbeatPolicy.ReportingInterval": _u(60),
        "HeartbeatPolicy.InitiationTime": _rw(datetime(1, 1, 1, tzinfo=UTC), "dateTime"),
    }.items():
        m.add(p + name, node)
    # the table the ACS may grow: extra parameters it wants in every Inform
    m.add(
        p + "InformParameter.",
        Table(
            lambda i: {
                "Enable": _b(False),
                "Alias": _ro(f"cpe-{i}"),
                "ParameterName": _rw(""),
                "EventList": _rw(""),
            },
            writable=True,
            max_entries=16,
        ),
    )


def _time(m: DataModel) -> None:
    p = "Device.Time."
    for name, node in {
        "Enable": _b(True),
        "Status": _ro("Synchronized"),
        "NTPServer1": _rw("0.ciscome.pool.ntp.org"),
        "NTPServer2": _rw("1.ciscome.pool.ntp.org"),
        "CurrentLocalTime": Parameter(datetime(1, 1, 1, tzinfo=UTC), "dateTime", notify="canDeny"),
        "LocalTimeZone": _rw("PST8PDT,M3.2.0/2,M11.1.0/2"),  # MPP's default GMT-08:00 with DST
    }.items():
        m.add(p + name, node)


def _network(m: DataModel, ident: PhoneIdentity) -> None:
    """The switch port and the PC port, one IP interface on DHCP, its default route and DNS."""
    gateway = ident.ip.rpartition(".")[0] + ".1"
    rate = 1000 if ident.model.gigabit else 100
    m.add("Device.Ethernet.WoLSupported", _b(False, writable=False))
    m.add("Device.Ethernet.FlowControlSupported", _b(False, writable=False))
    m.add("Device.Ethernet.InterfaceNumberOfEntries", _u(0, writable=False))
    m.add(
        "Device.Ethernet.Interface.",
        Table(
            lambda i: {
                "Enable": _b(True),
                "Status": _ro("Up" if i == 1 else "Down"),
                "Alias": _ro(f"cpe-{i}"),
                "Name": _ro("SW port" if i == 1 else "PC port"),
                "LastChange": Parameter(0, "unsignedInt"),
                "LowerLayers": _rw(""),
                "Upstream": _b(i == 1, writable=False),
                # forced into the Inform: the ACS keys phones on their MAC, as operators do
                "MACAddress": _ro(ident.mac_colons, forced_inform=i == 1),
                "MaxBitRate": _i(-1),
                "CurrentBitRate": Parameter(rate if i == 1 else 0, "unsignedInt"),
                "DuplexMode": _rw("Auto", enum=("Half", "Full", "Auto")),
            }
        ),
    )
    m.add_instance("Device.Ethernet.Interface.")
    m.add_instance("Device.Ethernet.Interface.")
    for name, node in {
        "IPv4Capable": _b(True, writable=False),
        "IPv4Enable": _b(True),
        "IPv4Status": _ro("Enabled"),
        "IPv6Capable": _b(True, writable=False),
        "IPv6Enable": _b(False),
        "IPv6Status": _ro("Disabled"),
        "InterfaceNumberOfEntries": _u(0, writable=False),
    }.items():
        m.add("Device.IP." + name, node)
    m.add(
        "Device.IP.Interface.",
        Table(
            lambda i: {
                "Enable": _b(True),
                "IPv4Enable": _b(True),
                "IPv6Enable": _b(False),
                "Status": _ro("Up"),
                "Alias": _ro(f"cpe-{i}"),
                "Name": _ro("eth0"),
                "LastChange": Parameter(0, "unsignedInt"),
                "LowerLayers": _rw("Device.Ethernet.Interface.1"),
                "Reset": _b(False),
                "MaxMTUSize": _u(1500),
                "Type": _ro("Normal"),
                "Loopback": _b(False),
                "IPv4AddressNumberOfEntries": _u(0, writable=False),
                "IPv6AddressNumberOfEntries": _u(0, writable=False),
                "AutoIPEnable": _b(False),
                "IPv4Address.": Table(
                    lambda j: {
                        "Enable": _b(True),
                        "Status": _ro("Enabled"),
                        "Alias": _ro(f"cpe-{j}"),
                        "IPAddress": _rw(ident.ip),
                        "SubnetMask": _rw("255.255.255.0"),
                        "AddressingType": _ro("DHCP"),
                    }
                ),
            }
        ),
    )
    m.add_instance("Device.IP.Interface.")
    m.add_instance("Device.IP.Interface.1.IPv4Address.")
    m.add("Device.Routing.RouterNumberOfEntries", _u(0, writable=False))
    m.add(
        "Device.Routing.Router.",
        Table(
            lambda i: {
                "Enable": _b(True),
                "Status": _ro("Enabled"),
                "Alias": _ro(f"cpe-{i}"),
                "IPv4ForwardingNumberOfEntries": _u(0, writable=False),
                "IPv4Forwarding.": Table(
                    lambda j: {
                        "Enable": _b(True),
                        "Status": _ro("Enabled"),
                        "Alias": _ro(f"cpe-{j}"),
                        "StaticRoute": _b(False, writable=False),
                        "DestIPAddress": _rw(""),
                        "DestSubnetMask": _rw(""),
                        "GatewayIPAddress": _rw(gateway),
                        "Interface": _rw("Device.IP.Interface.1"),
                        "Origin": _ro("DHCPv4"),
                        "ForwardingMetric": _i(-1),
                    }
                ),
            }
        ),
    )
    m.add_instance("Device.Routing.Router.")
    m.add_instance("Device.Routing.Router.1.IPv4Forwarding.")
    m.add("Device.DNS.SupportedRecordTypes", _ro("A,AAAA,SRV"))
    m.add("Device.DNS.Client.Enable", _b(True))
    m.add("Device.DNS.Client.Status", _ro("Enabled"))
    m.add("Device.DNS.Client.ServerNumberOfEntries", _u(0, writable=False))
    # Cisco has Primary_DNS and Secondary_DNS: two entries, and no room for a third
    m.add(
        "Device.DNS.Client.Server.",
        Table(
            lambda i: {
                "Enable": _b(True),
                "Status": _ro("Enabled"),
                "Alias": _ro(f"cpe-{i}"),
                "DNSServer": _rw(gateway if i == 1 else "8.8.8.8"),
                "Interface": _rw("Device.IP.Interface.1"),
                "Type": _ro("DHCPv4"),
            },
            writable=True,
            max_entries=2,
        ),
    )
    m.add_instance("Device.DNS.Client.Server.")
    m.add_instance("Device.DNS.Client.Server.")
    m.add("Device.DHCPv4.ClientNumberOfEntries", _u(0, writable=False))
    m.add(
        "Device.DHCPv4.Client.",
        Table(
            lambda i: {
                "Enable": _b(True),
                "Alias": _ro(f"cpe-{i}"),
                "Interface": _rw("Device.IP.Interface.1"),
                "Status": _ro("Enabled"),
                "DHCPStatus": _ro("Bound"),
                "Renew": _b(False),
                "IPAddress": _ro(ident.ip),
                "SubnetMask": _ro("255.255.255.0"),
                "IPRouters": _ro(gateway),
                "DNSServers": _ro(f"{gateway},8.8.8.8"),
                "LeaseTimeRemaining": Parameter(86400, "int"),
                "DHCPServer": _ro(gateway),
            }
        ),
    )
    m.add_instance("Device.DHCPv4.Client.")


def _voice_service(model: PhoneModel) -> dict[str, Parameter | Table]:
    n = model.lines
    return {
        "Alias": _rw("cpe-voice-1"),
        "VoIPProfileNumberOfEntries": _u(0, writable=False),
        "CodecProfileNumberOfEntries": _u(0, writable=False),
        "CallLogNumberOfEntries": _u(0, writable=False),
        "TerminalNumberOfEntries": _u(0, writable=False),
        "Capabilities.MaxLineCount": _i(n, writable=False),
        "Capabilities.MaxExtensionCount": _i(n, writable=False),
        "Capabilities.MaxCallLogCount": _i(0, writable=False),
        "Capabilities.MaxSessionsPerLine": _i(2, writable=False),
        "Capabilities.MaxSessionCount": _i(2 * n, writable=False),
        "Capabilities.NetworkConnectionModes": _ro("SIP"),
        "Capabilities.RingFileFormats": _ro("WAV"),
        "Capabilities.CodecNumberOfEntries": _u(0, writable=False),
        "Capabilities.Codec.": Table(
            lambda i: {
                "Codec": _ro(CODECS[i - 1][0]),
                "BitRate": _u(CODECS[i - 1][1], writable=False),
                "PacketizationPeriod": _ro("10,20,30,40"),
                "SilenceSuppression": _b(True, writable=False),
            }
        ),
        "Capabilities.SIP.Client.Extensions": _ro("100rel,replaces,timer,join"),
        "Capabilities.SIP.Client.URISchemes": _ro("sip,sips,tel"),
        "Capabilities.SIP.Client.EventTypes": _ro("dialog,message-summary,presence,refer,ua-profile"),
        "SIP.NetworkNumberOfEntries": _u(0, writable=False),
        "SIP.ClientNumberOfEntries": _u(0, writable=False),
        "SIP.ProxyNumberOfEntries": _u(0, writable=False),
        "SIP.RegistrarNumberOfEntries": _u(0, writable=False),
        "CallControl.MaxNumberOfLines": _u(n),
        "CallControl.MaxNumberOfExtensions": _u(n),
        "CallControl.LineNumberOfEntries": _u(0, writable=False),
        "CallControl.ExtensionNumberOfEntries": _u(0, writable=False),
        "CallControl.NumberingPlanNumberOfEntries": _u(0, writable=False),
        "CallControl.CallingFeatures.SetNumberOfEntries": _u(0, writable=False),
    }


def _sip_client(i: int) -> dict[str, Parameter | Table]:
    return {
        "Enable": _b(True),
        "Status": _ro("Disabled"),
        "Alias": _rw(f"cpe-ext-{i}"),
        "Origin": _ro("Static"),
        "RegisterMode": _rw("RFC3261", enum=("RFC3261", "STATIC", "RFC6140", "TISPAN")),
        "AuthUserName": _rw(""),
        "AuthPassword": _rw("", hidden=True),
        "Network": _rw(f"{VOICE}SIP.Network.{i}"),
        "MaxSessions": _u(2),
        "RegisterURI": _rw(""),
        "E164Format": _b(False),
        "ContactNumberOfEntries": _u(0, writable=False),
    }


def _sip_network(i: int) -> dict[str, Parameter | Table]:
    """One per extension: MPP keeps proxy, registrar and timers per ``Ext n``."""
    codecs = ",".join(f"{VOICE}CodecProfile.{k}" for k in range(1, len(CODECS) + 1))
    return {
        "Enable": _b(True),
        "Status": _ro("Disabled"),
        "Alias": _rw(f"cpe-net-{i}"),
        "ProxyServer": _rw(""),
        "ProxyServerPort": _u(5060),
        "ProxyServerTransport": _rw("UDP", enum=TRANSPORTS),
        "RegistrarServer": _rw(""),
        "RegistrarServerPort": _u(5060),
        "RegistrarServerTransport": _rw("UDP", enum=TRANSPORTS),
        "ServerDomain": _rw(""),
        "UserAgentDomain": _rw(""),
        "UserAgentPort": _u(5059 + i),  # SIP_Port_n_: 5060, 5061, ...
        "UserAgentTransport": _rw("UDP", enum=TRANSPORTS),
        "OutboundProxy": _rw(""),
        "OutboundProxyPort": _u(5060),
        "Realm": _rw(""),
        "TimerT1": _u(500),
        "TimerT2": _u(4000),
        "InviteExpires": _u(240),
        "ReInviteExpires": _u(30),
        "RegisterExpires": _u(3600),
        "RegisterRetryInterval": _u(30),
        "DSCPMark": _u(26),
        "VoIPProfile": _rw(f"{VOICE}VoIPProfile.1"),
        "CodecList": _rw(codecs),
    }


def _line(i: int) -> dict[str, Parameter | Table]:
    return {
        "Enable": _b(True),
        "Status": _ro("Disabled"),
        "Alias": _rw(f"cpe-line-{i}"),
        "CallStatus": _ro("Idle"),
        "Origin": _ro("Static"),
        "DirectoryNumber": _rw(""),
        "Provider": _rw(f"{VOICE}SIP.Client.{i}"),
        "CallingFeatures": _rw(f"{VOICE}CallControl.CallingFeatures.Set.{i}"),
    }


def _calling_features(i: int) -> dict[str, Parameter | Table]:
    return {
        "Alias": _rw(f"cpe-cf-{i}"),
        "CallerIDEnable": _b(True),
        "CallerIDNameEnable": _b(True),
        "CallWaitingEnable": _b(True),
        "CallForwardUnconditionalEnable": _b(False),
        "CallForwardUnconditionalNumber": _rw(""),
        "CallForwardOnBusyEnable": _b(False),
        "CallForwardOnBusyNumber": _rw(""),
        "CallForwardOnNoAnswerEnable": _b(False),
        "CallForwardOnNoAnswerNumber": _rw(""),
        "CallForwardOnNoAnswerRingTimeout": _u(20),
        "CallTransferEnable": _b(True),
        "MWIEnable": _b(True),
        "LineMessagesWaiting": _u(0, writable=False),
        "AnonymousCallRejectionEnable": _b(False),
        "DoNotDisturbEnable": _b(False),
    }


def _voip_profile(i: int) -> dict[str, Parameter | Table]:
    return {
        "Enable": _b(True),
        "Name": _rw("Default"),
        "Alias": _rw(f"cpe-profile-{i}"),
        "DTMFMethod": _rw("RFC4733"),
        "DTMFMethodG711": _rw("RFC4733", enum=("InBand", "RFC4733", "SIPInfo", "")),
        "RTP.LocalPortMin": _u(16384),
        "RTP.LocalPortMax": _u(16482),
        "RTP.DSCPMark": _u(46),
        "RTP.VLANIDMark": _i(-1),
        "RTP.EthernetPriorityMark": _i(-1),
        "RTP.TelephoneEventPayloadType": _u(101),
        "RTP.JitterBufferType": _rw("Dynamic", enum=("Static", "Dynamic")),
        "RTP.RTCP.Enable": _b(True),
        "RTP.RTCP.TxRepeatInterval": _u(5000),
        "RTP.SRTP.Enable": _b(False),
        "RTP.SRTP.KeyingMethods": _rw("SDP"),
    }


def _numbering_plan(i: int) -> dict[str, Parameter | Table]:
    return {
        "Alias": _rw(f"cpe-plan-{i}"),
        "MinimumNumberOfDigits": _u(1),
        "MaximumNumberOfDigits": _u(32),
        "InterDigitTimerStd": _u(10000),  # Interdigit_Long_Timer 10 s
        "InterDigitTimerOpen": _u(3000),  # Interdigit_Short_Timer 3 s
        "TerminationDigit": _rw("#"),
    }


def _voice_tables(m: DataModel, model: PhoneModel) -> None:
    """The voice tables, one SIP client, network, line and feature set per line key."""
    for _ in CODECS:
        m.add_instance(f"{VOICE}Capabilities.Codec.")
    lines = model.lines
    tables: list[tuple[str, Template, bool, int | None, int]] = [
        ("SIP.Client.", _sip_client, True, lines, lines),
        ("SIP.Network.", _sip_network, True, lines, lines),
        ("CallControl.Line.", _line, True, lines, lines),
        ("CallControl.NumberingPlan.", _numbering_plan, False, None, 1),
        ("CallControl.CallingFeatures.Set.", _calling_features, True, lines, lines),
        ("VoIPProfile.", _voip_profile, True, 4, 1),
        ("CodecProfile.", _codec_profile, False, None, len(CODECS)),
        ("Terminal.", _terminal, False, None, 1),
    ]
    for path, template, writable, max_entries, count in tables:
        m.add(VOICE + path, Table(template, writable=writable, max_entries=max_entries))
        for _ in range(count):
            m.add_instance(VOICE + path)


def _codec_profile(i: int) -> dict[str, Parameter | Table]:
    codec = CODECS[i - 1][0] if i <= len(CODECS) else ""
    return {
        "Enable": _b(codec != "iLBC"),
        "Alias": _rw(f"cpe-codec-{i}"),
        "Codec": _ro(codec),
        "PacketizationPeriod": _rw("20"),
        "SilenceSuppression": _b(False),
    }


def _terminal(i: int) -> dict[str, Parameter | Table]:
    return {
        "Enable": _b(True),
        "Status": _ro("Up"),
        "Alias": _rw(f"cpe-terminal-{i}"),
        "ToneEventProfile": _rw(""),
        "AudioNumberOfEntries": _u(0, writable=False),
    }
