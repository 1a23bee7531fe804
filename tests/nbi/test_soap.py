"""The SOAP flavour of the NBI, driven by a real SOAP client (zeep) over a live server's socket.

The real ``acs serve``, its store seeded with what two simulated Cisco phones reported in their
Informs; zeep reads the WSDL the NBI port serves at /soap and calls its operations as an OSS would,
with tokens made as ``acs token create`` makes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa
import zeep
from click.testing import CliRunner
from lxml import etree
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from acs.cli import main
from acs.cwmp import rpc
from acs.jobs import policies, queue
from acs.nbi import tokens
from acs.store import create_engine, inventory
from acs.store.schema import sessions
from acs.testing import SimulatedPhone
from tests.web.conftest import start_server

FIRMWARE = "https://fw.example.net/sip88xx.12-0-1MPP-1.loads"
HTTP_TIMEOUT = 15

DESK = SimulatedPhone("CP-8841-3PCC", serial="FCH2233A1B2", mac="00562b043615")
LOBBY = SimulatedPhone("CP-7841-3PCC", serial="FCH9999ZZZZ", mac="00562b0499aa")


@dataclass
class Soap:
    url: str
    engine: sa.Engine
    tokens: dict[str, str]

    @property
    def wsdl(self) -> str:
        return f"{self.url}?wsdl"

    def client(
        self, role: str | None = "operator", *, token: str | None = None, wsse: object = None
    ) -> zeep.Client:
        """A SOAP client sending the token of ``role`` (or ``token``; neither: none)."""
        session = requests.Session()
        token = token or (self.tokens[role] if role else None)
        if token is not None:
            session.headers["Authorization"] = f"Bearer {token}"
        transport = Transport(session=session, timeout=HTTP_TIMEOUT, operation_timeout=HTTP_TIMEOUT)
        return zeep.Client(self.wsdl, transport=transport, wsse=wsse)

    def post(self, body: str, authorization: str | None = None) -> requests.Response:
        """A hand-written SOAP request, for what a generated client would refuse to send."""
        envelope = (
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:acs="urn:acs:nbi:soap:1"><soap:Body>{body}</soap:Body></soap:Envelope>'
        )
        return requests.post(
            self.url,
            data=envelope.encode(),
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "Authorization": authorization or f"Bearer {self.tokens['operator']}",
            },
            timeout=HTTP_TIMEOUT,
        )


def _seed(engine: sa.Engine) -> None:
    """The store as two phones' first sessions leave it, the desk phone tagged ``lab``."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for phone in (DESK, LOBBY):
            inform = phone.inform(["0 BOOTSTRAP", "1 BOOT"])
            inventory.record_device(conn, phone.device_id, inform, version="1.2", remote_addr=None, now=now)
            inventory.record_report(conn, phone.device_id, inform, session_id=None, now=now)
        inventory.store_values(
            conn,
            DESK.device_id,
            [rpc.ParameterValueStruct("Device.Services.VoiceService.1.SIP.Client.1.AuthPassword", "pw", "")],
            now,
        )
        inventory.set_tags(conn, DESK.device_id, ["lab"])


@pytest.fixture
def soap(db_url: str) -> Iterator[Soap]:
    """``acs serve`` with its NBI, on a store seeded by two phones, and a token of each role."""
    engine = create_engine(db_url)
    _seed(engine)
    with engine.begin() as conn:
        issued = {
            role: tokens.create(conn, name, role)[0]
            for name, role in (("dashboard", "read"), ("oss", "operator"))
        }
        policies.set_enabled(conn, "discovery", False)  # the store holds what the seed put in it
    server = start_server(db_url, discovery=True)  # (start_server would switch it off by a subprocess)
    try:
        yield Soap(f"{server.nbi_url}/soap", engine, issued)
    finally:
        server.stop()
        engine.dispose()


def fault_of(call: object, *args: object, **kwargs: object) -> zeep.exceptions.Fault:
    with pytest.raises(zeep.exceptions.Fault) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


def code(fault: zeep.exceptions.Fault) -> str:
    return str(fault.code).rpartition(":")[2]


# --- the WSDL ---------------------------------------------------------------------------------


def test_the_wsdl_is_served_and_names_every_operation(soap: Soap) -> None:
    response = requests.get(soap.wsdl, timeout=HTTP_TIMEOUT)  # no token: the WSDL is public
    assert response.status_code == 200
    client = soap.client()
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    assert set(port.binding._operations) == {
        "ListDevices",
        "GetDevice",
        "CreateTask",
        "GetTask",
        "ListTasks",
        "CancelTask",
        "RetryTask",
    }
    assert port.binding_options["address"] == soap.url  # clients post where the WSDL says


# --- devices ----------------------------------------------------------------------------------


def test_list_devices_filters_and_pages(soap: Soap) -> None:
    service = soap.client("read").service
    everyone = service.ListDevices()
    assert [d.Id for d in everyone] == sorted([DESK.device_id, LOBBY.device_id])
    assert [d.Id for d in service.ListDevices(Tag="lab")] == [DESK.device_id]
    assert [d.Id for d in service.ListDevices(ProductClass="CP-7841-3PCC")] == [LOBBY.device_id]
    assert [d.Id for d in service.ListDevices(Device=["00:56:2B:04:99:AA"])] == [LOBBY.device_id]
    assert [d.Id for d in service.ListDevices(Limit=1, Offset=1)] == [everyone[1].Id]
    assert next(d for d in everyone if d.Id == DESK.device_id).Tags.string == ["lab"]
    assert not service.ListDevices(Tag="nowhere")  # zeep reads an empty array as None
    desk = next(d for d in everyone if d.Id == DESK.device_id)
    assert (desk.MACAddress, desk.ProductClass, desk.SoftwareVersion) == (
        "00562b043615",
        "CP-8841-3PCC",
        DESK.software_version,
    )
    assert desk.LastInform.tzinfo is not None


def test_get_device_by_mac_with_its_parameters_and_secrets_masked_or_a_fault_naming_it(soap: Soap) -> None:
    service = soap.client("read").service
    plain = service.GetDevice(Device="0056.2b04.3615")
    assert plain.Id == DESK.device_id and plain.Tags.string == ["lab"] and plain.Parameters is None
    device = service.GetDevice(Device=DESK.device_id, ParameterPath="Device.")
    params = {p.Path: p for p in device.Parameters.Parameter}
    assert params["Device.DeviceInfo.SoftwareVersion"].Value == DESK.software_version
    assert params["Device.Services.VoiceService.1.SIP.Client.1.AuthPassword"].Value == "********"
    assert all(p.startswith("Device.") for p in params)
    fault = fault_of(service.GetDevice, Device="FCH0000")
    assert code(fault) == "Client.NotFound"
    assert "no device 'FCH0000'" in fault.message and "MAC" in fault.message


def test_a_mac_two_devices_share_is_a_fault_listing_both(soap: Soap) -> None:
    twin = SimulatedPhone("CP-7841-3PCC", serial="FCH7777TWIN", mac=DESK.mac)  # the same MAC
    inform = twin.inform(["0 BOOTSTRAP", "1 BOOT"])
    with soap.engine.begin() as conn:
        now = datetime.now(UTC)
        inventory.record_device(conn, twin.device_id, inform, version="1.2", remote_addr=None, now=now)
        # the MAC stayed with DESK; a database from before 0012 shares it
        conn.execute(
            inventory.devices.update().where(inventory.devices.c.id == twin.device_id).values(mac=DESK.mac)
        )
    both = ", ".join(sorted([DESK.device_id, twin.device_id]))
    service = soap.client().service
    for call, kwargs in (
        (service.GetDevice, {"Device": "00:56:2B:04:36:15"}),
        (service.ListDevices, {"Device": [LOBBY.device_id, DESK.mac]}),
        (service.CreateTask, {"Device": DESK.mac, "Kind": "Reboot"}),
        (service.ListTasks, {"Device": DESK.mac}),
    ):
        fault = fault_of(call, **kwargs)
        assert code(fault) == "Client.AmbiguousDevice", fault.message
        assert f"names 2 devices: {both}; give the id of the one you mean" in fault.message
    assert service.GetDevice(Device=twin.device_id).Id == twin.device_id
    with soap.engine.connect() as conn:
        assert queue.list_tasks(conn) == []


# --- tasks ------------------------------------------------------------------------------------


def test_create_task_queues_it_in_the_store(soap: Soap) -> None:
    service = soap.client().service
    created = service.CreateTask(
        Device="00562b043615",
        Kind="SetParameterValues",
        Arguments={
            "ParameterValues": {
                "ParameterValueStruct": [
                    {
                        "Name": "Device.ManagementServer.PeriodicInformInterval",
                        "Value": "3600",
                        "Type": "xsd:unsignedInt",
                    }
                ]
            }
        },
        MaxAttempts=5,
    )
    assert (created.Status, created.DeviceId, created.MaxAttempts) == ("pending", DESK.device_id, 5)
    stored = queue.get(soap.engine, created.Id)
    assert stored is not None and stored.status == "pending" and stored.created_by == "api:oss"
    assert stored.args == {
        "ParameterList": [["Device.ManagementServer.PeriodicInformInterval", "3600", "xsd:unsignedInt"]],
        "ParameterKey": f"acs-{created.Id}",
    }
    assert [t.Id for t in service.ListTasks(Device=DESK.device_id, Status="pending")] == [created.Id]


def test_create_task_takes_every_common_rpc_typed_or_as_json(soap: Soap) -> None:
    service = soap.client().service
    expires = datetime.now(UTC) + timedelta(days=1)
    made = {
        "GetParameterValues": service.CreateTask(
            Device="FCH2233A1B2",
            Kind="GetParameterValues",
            Arguments={"ParameterNames": {"string": ["Device.DeviceInfo."]}},
        ),
        "SetParameterAttributes": service.CreateTask(
            Device="FCH2233A1B2",
            Kind="SetParameterAttributes",
            Arguments={
                "ParameterAttributes": {
                    "SetParameterAttributesStruct": [
                        {"Name": "Device.DeviceInfo.", "NotificationChange": True, "Notification": 2}
                    ]
                }
            },
        ),
        "Reboot": service.CreateTask(
            Device="FCH2233A1B2", Kind="Reboot", Arguments={"CommandKey": "maint"}, ExpiresAt=expires
        ),
        "Download": service.CreateTask(
            Device="FCH2233A1B2",
            Kind="Download",
            ArgumentsJSON=json.dumps({"URL": FIRMWARE, "FileType": "1 Firmware Upgrade Image"}),
        ),
    }
    stored = {kind: queue.get(soap.engine, t.Id) for kind, t in made.items()}
    assert stored["GetParameterValues"].args == {"ParameterNames": ["Device.DeviceInfo."]}
    assert stored["SetParameterAttributes"].args["ParameterList"] == [
        {
            "Name": "Device.DeviceInfo.",
            "NotificationChange": True,
            "Notification": 2,
            "AccessListChange": False,
            "AccessList": [],
        }
    ]
    assert stored["Reboot"].command_key == "maint"
    assert abs(stored["Reboot"].expires_at - expires) < timedelta(seconds=1)
    assert stored["Download"].args["URL"] == FIRMWARE
    assert stored["Download"].command_key == f"acs-{made['Download'].Id}"


def test_cancel_then_retry_and_a_refused_transition_says_why(soap: Soap) -> None:
    service = soap.client().service
    task = service.CreateTask(Device=LOBBY.device_id, Kind="FactoryReset")
    assert service.CancelTask(TaskId=task.Id).Status == "cancelled"
    assert queue.get(soap.engine, task.Id).status == "cancelled"
    fault = fault_of(service.CancelTask, TaskId=task.Id)
    assert code(fault) == "Client.InvalidArgument"
    assert fault.message == f"task {task.Id} is cancelled: only pending or sent tasks can be cancelled"
    assert service.RetryTask(TaskId=task.Id).Status == "pending"
    assert queue.get(soap.engine, task.Id).status == "pending"
    assert code(fault_of(service.GetTask, TaskId=99999)) == "Client.NotFound"


def test_a_finished_task_shows_its_result_typed_and_its_fault_in_words(soap: Soap) -> None:
    service = soap.client("read").service
    with soap.engine.begin() as conn:
        ok = queue.enqueue(conn, DESK.device_id, "GetParameterValues", {"ParameterNames": ["Device."]})
        bad = queue.enqueue(conn, LOBBY.device_id, "GetParameterValues", {"ParameterNames": ["Nope."]})
        for phone in (DESK, LOBBY):
            conn.execute(
                sa.insert(sessions).values(id=f"s-{phone.identity.serial}", device_id=phone.device_id)
            )
    for phone in (DESK, LOBBY):
        queue.claim_next(soap.engine, phone.device_id, f"s-{phone.identity.serial}")
    secret = "Device.Services.VoiceService.1.SIP.Client.1.AuthPassword"
    result = {
        "ParameterList": [
            ["Device.DeviceInfo.SerialNumber", "FCH2233A1B2", "xsd:string"],
            [secret, "pw", "xsd:string"],
        ]
    }
    queue.complete(soap.engine, ok, result)
    queue.fail(soap.engine, bad, 9005, None)
    done = service.GetTask(TaskId=ok)
    assert done.Status == "done"
    assert [(p.Name, p.Value) for p in done.ParameterValues.ParameterValueStruct] == [
        ("Device.DeviceInfo.SerialNumber", "FCH2233A1B2"),
        (secret, "********"),
    ]
    failed = service.GetTask(TaskId=bad)
    assert (failed.Status, failed.FaultCode, failed.FaultMeaning) == ("fault", 9005, "Invalid parameter name")


# --- bad input --------------------------------------------------------------------------------


#: CreateTask arguments that are wrong, and what the fault must say (one server for them all)
BAD_ARGUMENTS = [
    (
        {"Kind": "Reboot", "Arguments": {"ParameterNames": {"string": ["Device."]}}},
        "Reboot has no argument ParameterNames; it takes CommandKey",
    ),
    ({"Kind": "Reboot", "ArgumentsJSON": "{not json"}, "ArgumentsJSON is not JSON"),
    ({"Kind": "Reboot", "ArgumentsJSON": "[1]"}, "ArgumentsJSON must be a JSON object"),
    (
        {"Kind": "Reboot", "Arguments": {"CommandKey": "a"}, "ArgumentsJSON": "{}"},
        "give Arguments or ArgumentsJSON, not both",
    ),
    (
        {
            "Kind": "GetParameterValues",
            "Arguments": {"ParameterAttributes": {"SetParameterAttributesStruct": [{"Name": "Device."}]}},
        },
        "ParameterAttributes is for SetParameterAttributes, not GetParameterValues",
    ),
    (
        {"Kind": "Reboot", "Arguments": {"CommandKey": "k" * 40}},
        "CommandKey must be a string of at most 32",
    ),
    ({"Kind": "Reboot", "ExpiresAt": datetime(2030, 1, 1)}, "ExpiresAt needs a time zone"),
]


def test_bad_task_arguments_are_a_fault_that_says_what_is_allowed(soap: Soap) -> None:
    service = soap.client().service
    for kwargs, message in BAD_ARGUMENTS:
        fault = fault_of(service.CreateTask, Device=DESK.device_id, **kwargs)
        assert code(fault) == "Client.InvalidArgument", kwargs
        assert message in fault.message, kwargs
    assert queue.list_tasks(soap.engine) == []


#: hand-written bodies that do not fit the WSDL, and what the fault must say
NOT_THE_WSDL = [
    (
        "<acs:CreateTask><acs:Device>FCH2233A1B2</acs:Device><acs:Kind>Rebot</acs:Kind></acs:CreateTask>",
        "The value 'Rebot' is not an element of the set {'GetRPCMethods'",
    ),
    ("<acs:GetTask><acs:TaskId>seven</acs:TaskId></acs:GetTask>", "'seven' is not a valid value"),
    ("<acs:Reboot/>", "Element '{urn:acs:nbi:soap:1}Reboot': No matching global declaration"),
    ("<acs:GetTask><acs:TaskId>1</acs:TaskId>", "Opening and ending tag mismatch"),
]


def test_a_message_that_does_not_fit_the_wsdl_is_a_client_fault_naming_the_element(soap: Soap) -> None:
    for body, message in NOT_THE_WSDL:
        response = soap.post(body)
        assert response.status_code == 500, body  # SOAP 1.1 answers every fault with 500
        assert "<faultcode>soap11env:Client." in response.text, body
        assert message in response.text.replace("&lt;", "<").replace("&gt;", ">"), body
    assert queue.list_tasks(soap.engine) == []


# --- tokens -----------------------------------------------------------------------------------


def test_without_a_good_token_nothing_is_read_or_queued(soap: Soap) -> None:
    none = fault_of(soap.client(None).service.ListDevices)
    assert code(none) == "Client.Unauthorized"
    assert none.message.startswith("an API token is required: Authorization: Bearer <token>")
    unknown = fault_of(soap.client(token="guess").service.GetDevice, Device=DESK.device_id)
    assert code(unknown) == "Client.Unauthorized"
    assert unknown.message == "the token is unknown or revoked"
    reader = fault_of(soap.client("read").service.CreateTask, Device=DESK.device_id, Kind="Reboot")
    assert code(reader) == "Client.Forbidden"
    assert reader.message == "token 'dashboard' has role read; this needs operator"
    basic = soap.post("<acs:GetTask><acs:TaskId>1</acs:TaskId></acs:GetTask>", authorization="Basic b3A6b3A=")
    assert "the Authorization header must be 'Bearer &lt;API token&gt;'" in basic.text
    assert queue.list_tasks(soap.engine) == []


def test_a_ws_security_username_token_carries_the_api_token(soap: Soap) -> None:
    service = soap.client(None, wsse=UsernameToken("oss", soap.tokens["operator"])).service
    task = service.CreateTask(Device=DESK.device_id, Kind="Reboot")
    assert queue.get(soap.engine, task.Id).created_by == "api:oss"
    digest = soap.client(None, wsse=UsernameToken("oss", soap.tokens["operator"], use_digest=True)).service
    fault = fault_of(digest.GetTask, TaskId=task.Id)
    assert code(fault) == "Client.Unauthorized" and "PasswordText" in fault.message


# --- hostile bodies ------------------------------------------------------------------------------

_ENVELOPE = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:acs="urn:acs:nbi:soap:1">'
    "<soap:Body><acs:GetDevice><acs:Device>{}</acs:Device></acs:GetDevice></soap:Body></soap:Envelope>"
)
_LAUGHS = "".join(
    f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n else "lol"}">' for n in range(10)
)  # 10^9 "lol"s, 3 GB, from a few hundred bytes
#: (what, body): every one a Client fault, with nothing of an entity in the answer
HOSTILE = [
    ("billion laughs", f"<!DOCTYPE d [{_LAUGHS}]>" + _ENVELOPE.format("&lol9;")),
    ("an internal entity", '<!DOCTYPE d [<!ENTITY who "FCH2233A1B2">]>' + _ENVELOPE.format("&who;")),
    ("a file", '<!DOCTYPE d [<!ENTITY f SYSTEM "file:///etc/passwd">]>' + _ENVELOPE.format("&f;")),
    ("a URL", '<!DOCTYPE d [<!ENTITY u SYSTEM "http://127.0.0.1:9/x">]>' + _ENVELOPE.format("&u;")),
    ("an external DTD", '<!DOCTYPE d SYSTEM "file:///etc/passwd">' + _ENVELOPE.format("x")),
    (
        "a parameter entity",
        '<!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>' + _ENVELOPE.format("x"),
    ),
    (
        "UTF-16 with a DOCTYPE",
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d []>' + _ENVELOPE.format("x"),
    ),
    ("an undeclared entity", _ENVELOPE.format("&who;")),
    ("100,000 nested elements", _ENVELOPE.format("<a>" * 100_000)),
    ("not XML", "GetDevice FCH2233A1B2"),
    ("empty", ""),
]


def test_a_hostile_body_is_a_client_fault_at_once_and_expands_nothing(soap: Soap) -> None:
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "Authorization": f"Bearer {soap.tokens['operator']}",
    }
    for what, body in HOSTILE:
        data = body.encode("utf-16") if what.startswith("UTF-16") else body.encode()
        started = time.monotonic()
        response = requests.post(soap.url, data=data, headers=headers, timeout=HTTP_TIMEOUT)
        took = time.monotonic() - started
        assert response.status_code == 500 and response.headers["Content-Type"].startswith("text/xml"), what
        faultcode = etree.fromstring(response.content).findtext(".//faultcode")
        wanted = "Client.DoctypeNotAllowed" if "DOCTYPE" in body else "Client.XMLSyntaxError"
        assert faultcode == f"soap11env:{wanted}", (what, response.text)
        assert len(response.content) < 1000 and "lol" not in response.text and "root:" not in response.text, (
            what
        )
        assert "FCH2233A1B2" not in response.text, what  # the device the entity named was not looked up
        assert took < 2, (what, took)  # milliseconds; a billion laughs expanded would take minutes
    for method in ("GET", "PUT"):  # no envelope at all (GET ?wsdl is the WSDL)
        response = requests.request(method, soap.url, headers=headers, timeout=HTTP_TIMEOUT)
        assert response.status_code == 500, method
        assert "<faultcode>soap11env:Client.XMLSyntaxError</faultcode>" in response.text, method
    assert queue.list_tasks(soap.engine) == []


def test_a_body_over_the_cap_is_a_client_fault_whether_its_length_is_given_or_not(soap: Soap) -> None:
    big = _ENVELOPE.format("x" * (3 << 19)).encode()  # 1.5 MiB: over the NBI's cap, under spyne's own
    headers = {"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Bearer {soap.tokens['read']}"}
    sized = requests.post(soap.url, data=big, headers=headers, timeout=HTTP_TIMEOUT)
    chunked = requests.post(
        soap.url, data=iter([big[:1000], big[1000:]]), headers=headers, timeout=HTTP_TIMEOUT
    )
    for response in (sized, chunked):
        assert response.status_code == 500
        assert "<faultcode>soap11env:Client.RequestTooLong</faultcode>" in response.text
        assert "over the 1048576-byte limit" in response.text
    device = soap.client("read").service.GetDevice(Device=DESK.device_id)
    assert device.Id == DESK.device_id  # and the service goes on


def test_arguments_json_nested_too_deep_is_an_invalid_argument(soap: Soap) -> None:
    service = soap.client().service
    for text, message in [
        ("[" * 100_000, "nested more than 32 levels deep"),
        ('{"CommandKey": "a", "CommandKey": "b"}', "the key 'CommandKey' is given twice"),
        ('{"DelaySeconds": 1e999999}', "out of range"),
    ]:
        fault = fault_of(service.CreateTask, Device=DESK.device_id, Kind="Reboot", ArgumentsJSON=text)
        assert code(fault) == "Client.InvalidArgument" and message in fault.message, (
            text[:40],
            fault.message,
        )
    assert queue.list_tasks(soap.engine) == []


# --- one job-id rule for every door (acs.usecases.tasks) ---------------------------------------


def test_cli_rest_and_soap_agree_on_which_tasks_are_a_job(soap: Soap, db_url: str) -> None:
    """One device named on its own is a plain task by every door; a selection is one job, even
    when it matches one device (POST /tasks promises a job to follow at /jobs/{job})."""
    rest = soap.url.removesuffix("/soap")
    headers = {"Authorization": f"Bearer {soap.tokens['operator']}"}

    def cli(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(main, ["task", "add", "reboot", *args, "--json", "--db", db_url])
        assert result.exit_code == 0, result.output
        answer: dict[str, object] = json.loads(result.stdout)
        return answer

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        response = requests.post(f"{rest}{path}", json=body, headers=headers, timeout=HTTP_TIMEOUT)
        assert response.status_code == 202, response.text
        answer: dict[str, object] = response.json()
        return answer

    by_soap = soap.client().service.CreateTask(Device=DESK.identity.serial, Kind="Reboot")
    by_rest = post(f"/devices/{DESK.identity.serial}/tasks", {"kind": "Reboot"})
    by_cli = cli("--device", DESK.identity.serial)
    singles = [by_soap.Id, by_rest["id"], *by_cli["tasks"]]  # type: ignore[misc]
    assert len(singles) == 3
    assert [queue.get(soap.engine, i).job_id for i in singles] == [None, None, None]
    assert by_soap.JobId is None and by_rest["job_id"] is None and by_cli["job"] is None

    selection = {"product_class": "CP-8841-3PCC"}
    jobs = [post("/tasks", {"kind": "Reboot", "devices": selection}), cli("--product-class", "CP-8841-3PCC")]
    for job in jobs:
        (task_id,) = job["tasks"]  # type: ignore[misc]
        assert job["job"] is not None and queue.get(soap.engine, task_id).job_id == job["job"]
    one_key = post("/tasks", {"kind": "Reboot", "devices": {"key": [DESK.identity.serial]}})
    assert one_key["job"] is not None
