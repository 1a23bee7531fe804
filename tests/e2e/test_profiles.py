"""Cisco flat profiles reach a TR-069-managed phone as one SetParameterValues of what differs.

The real ``acs serve`` and the ``acs profile`` commands on one database (SQLite and
PostgreSQL), and a simulated Cisco 8841 whose tree the ACS discovered in its first session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from acs.cwmp import rpc
from acs.provisioning import flatprofile
from acs.testing import SimulatedPhone
from tests.e2e.conftest import Acs, Operator, new_phone

VOICE = "Device.Services.VoiceService.1."
INTERVAL = "Device.ManagementServer.PeriodicInformInterval"

BASE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- every phone of the provider -->
<flat-profile>
  <Periodic_Inform_Interval ua="na">3600</Periodic_Inform_Interval>
  <Periodic_Inform_Enable ua="na">Yes</Periodic_Inform_Enable>
  <Primary_NTP_Server ua="na">ntp.example.net</Primary_NTP_Server>
  <SIP_T1 ua="na">.5</SIP_T1>
  <Profile_Rule ua="na">https://prov.example.net/$PSN/$MA.xml</Profile_Rule>
  <Station_Name ua="rw">desk-$MA</Station_Name>
</flat-profile>
"""
ALICE = """<flat-profile>
  <Line_Enable_1_ ua="na">Yes</Line_Enable_1_>
  <Proxy_1_ ua="na">sip.example.net:5070</Proxy_1_>
  <User_ID_1_ ua="na">1001</User_ID_1_>
  <Password_1_ ua="na">s3cr3t-sip</Password_1_>
  <Line_Enable_2_ ua="na">No</Line_Enable_2_>
</flat-profile>
"""
#: what BASE + ALICE change on a factory-new simulated 8841 (SIP_T1 .5 s and the enables are its defaults)
EXPECTED = {
    INTERVAL: ("3600", "unsignedInt"),
    "Device.Time.NTPServer1": ("ntp.example.net", "string"),
    f"{VOICE}SIP.Network.1.ProxyServer": ("sip.example.net", "string"),
    f"{VOICE}SIP.Network.1.ProxyServerPort": ("5070", "unsignedInt"),
    f"{VOICE}CallControl.Line.1.DirectoryNumber": ("1001", "string"),
    f"{VOICE}SIP.Client.1.AuthPassword": ("s3cr3t-sip", "string"),
    f"{VOICE}CallControl.Line.2.Enable": ("false", "boolean"),
}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_profile_reaches_the_phone_as_only_the_changed_values_and_the_store_then_matches(
    serve: Callable[..., Acs], tmp_path: Path
) -> None:
    acs = serve(discovery=True)
    phone = new_phone("CP-8841-3PCC", "FCH2240ABCD", "00562b0a0b0c")
    acs.session(phone)  # first contact: the ACS discovers the phone's tree
    cli = acs.cli

    cli("profile", "create", "base", write(tmp_path, "base.xml", BASE), "--description", "every phone")
    out = cli("profile", "assign", "base", "--default")
    assert "profile base applies to default" in out
    cli("profile", "create", "alice", write(tmp_path, "alice.xml", ALICE))
    out = cli("profile", "assign", "alice", "--device", phone.mac)

    tasks = [t for t in cli.tasks("--device", phone.mac) if t["kind"] == "SetParameterValues"]
    pending = [t for t in tasks if t["status"] == "pending"]
    cancelled = [t for t in tasks if t["status"] == "cancelled"]
    assert len(pending) == 1 and len(cancelled) == 1, tasks  # the second assignment superseded the first
    (task,) = pending
    assert f"(task {task['id']}, ParameterKey p-" in out
    diff = cli.json("profile", "diff", phone.mac, "--show-secrets")
    assert {c["path"]: (c["profile"], c["type"]) for c in diff["changes"]} == EXPECTED
    assert diff["managed"] is True
    assert set(diff["unmapped"]) == {"Profile_Rule", "Station_Name"}  # served in flat profiles only

    log = acs.session(phone)

    (request,) = log.requests
    assert isinstance(request, rpc.SetParameterValues)
    sent = {p.Name: p.Value for p in request.ParameterList}
    assert set(sent) == set(EXPECTED)
    assert request.ParameterKey == diff["parameter_key"]
    assert cli.task(task["id"])["status"] == "done"
    assert phone.value(INTERVAL) == 3600
    assert phone.value(f"{VOICE}SIP.Network.1.ProxyServerPort") == 5070
    assert phone.value(f"{VOICE}CallControl.Line.2.Enable") is False
    assert phone.value("Device.ManagementServer.ParameterKey") == diff["parameter_key"]

    stored = cli.tree(phone.mac)
    for path, (value, kind) in EXPECTED.items():
        if path.endswith("AuthPassword"):
            continue  # masked by `device show`; compared through the diff below
        assert (stored[path]["value"], stored[path]["type"]) == (value, kind), path
    assert cli("profile", "diff", phone.mac).startswith(f"{phone.device_id} matches its profile")
    assert cli("profile", "push", phone.mac).strip() == "1 TR-069-managed device(s) already have these values"

    # the phone's values under their XML names, and the effective profile as a file
    shown = cli("device", "show", phone.mac, "--xml")
    values = flatprofile.parse(shown.encode()).values()
    assert values["Periodic_Inform_Interval"] == "3600"
    assert values["Proxy_1_"] == "sip.example.net:5070"
    assert values["User_ID_1_"] == "1001"
    assert values["Line_Enable_2_"] == "No"
    assert values["Password_1_"] == "********"
    exported = tmp_path / "export.xml"
    cli("profile", "export", phone.mac, "-o", str(exported), "--device-wrapper")
    effective = flatprofile.parse(exported.read_bytes())
    assert effective.problems == []
    assert effective.values()["Station_Name"] == f"desk-{phone.mac}"  # macros expanded for the phone
    assert effective.values()["Profile_Rule"] == "https://prov.example.net/$PSN/$MA.xml"  # left for the phone
    assert effective.values()["Password_1_"] == "s3cr3t-sip"
    assert effective.get("Proxy_1_").ua == "na"
    assert acs.errors() == []


def test_an_edit_sends_only_what_changed_and_a_malformed_upload_changes_nothing(
    serve: Callable[..., Acs], tmp_path: Path
) -> None:
    acs = serve(discovery=True)
    phone = new_phone()
    acs.session(phone)
    cli = acs.cli
    cli("device", "tag", phone.mac, "office-a")
    cli("profile", "create", "office", write(tmp_path, "office.xml", BASE))
    cli("profile", "assign", "office", "--tag", "office-a")
    acs.session(phone)
    assert cli("profile", "diff", phone.mac).startswith(f"{phone.device_id} matches its profile")

    broken = BASE.replace('<SIP_T1 ua="na">.5</SIP_T1>', '<SIP_T1 ua="admin">.5</SIP_T1>').replace(
        "3600", "7200"
    )
    result = cli.run("profile", "edit", "office", write(tmp_path, "broken.xml", broken))
    assert result.exit_code == 1
    assert 'broken.xml:7: <SIP_T1> error: ua="admin" is not allowed' in result.stderr
    assert "profile 'office' refused; nothing changed" in result.stderr
    assert '<Periodic_Inform_Interval ua="na">3600<' in cli("profile", "show", "office")
    assert [t for t in cli.tasks("--device", phone.mac) if t["status"] == "pending"] == []

    out = cli("profile", "edit", "office", write(tmp_path, "office2.xml", BASE.replace(".5", "1")))
    assert "SetParameterValues of 5 value(s) queued" in out  # TimerT1 of each of the 8841's five lines
    log = acs.session(phone)
    (request,) = log.requests
    assert {p.Name for p in request.ParameterList} == {f"{VOICE}SIP.Network.{n}.TimerT1" for n in range(1, 6)}
    assert {p.Value for p in request.ParameterList} == {1000}
    assert acs.errors() == []


def test_a_pre_imported_phone_gets_its_profile_when_discovered_and_again_after_a_factory_reset(
    serve: Callable[..., Acs], tmp_path: Path
) -> None:
    acs = serve(discovery=True)
    cli = acs.cli
    phone = new_phone("CP-8841-3PCC", "FCH2240ABCD", "00562b0a0b0c")
    same = new_phone("CP-7841-3PCC", "FCH2240EEEE", "00562b0a0eee")  # its model's profile is its defaults
    # before either phone ever connects: a profile per model, and the 8841's own line, which the
    # inventory names
    cli("profile", "create", "desk", write(tmp_path, "base.xml", BASE))
    cli("profile", "assign", "desk", "--model", "CP-8841-3PCC")
    cli("profile", "create", "alice", write(tmp_path, "alice.xml", ALICE))
    cli(
        "profile",
        "create",
        "lobby",
        write(tmp_path, "lobby.xml", '<flat-profile><SIP_T1 ua="na">.5</SIP_T1></flat-profile>'),
    )
    inventory = write(
        tmp_path,
        "inventory.csv",
        "mac,serial,model,profile\n00:56:2B:0A:0B:0C,FCH2240ABCD,CP-8841-3PCC,alice\n"
        "00562b0a0eee,FCH2240EEEE,CP-7841-3PCC,\n",
    )
    out = cli("device", "import", inventory)
    assert out.strip() == "2 devices created, 0 updated, 0 rows refused"  # no tree yet: nothing queued
    assert cli("profile", "show", "--device", phone.mac).startswith(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!-- {phone.device_id}: layers desk (model CP-8841-3PCC), '
        "alice (device"
    )
    cli("profile", "assign", "lobby", "--model", "CP-7841-3PCC")
    assert cli.tasks() == []

    log = acs.session(phone)  # 0 BOOTSTRAP: discovery, then the profile, in the same session

    assert [e.EventCode for e in log.inform.Event] == ["0 BOOTSTRAP", "1 BOOT"]
    kinds = [type(r).__name__ for r in log.requests]
    assert kinds[0] == "GetParameterNames" and kinds[-1] == "SetParameterValues"
    assert set(kinds[1:-1]) == {"GetParameterValues"}
    request = log.requests[-1]
    assert {p.Name: p.Value for p in request.ParameterList}.keys() == EXPECTED.keys()
    settings = [t for t in cli.tasks("--device", phone.mac) if t["kind"] == "SetParameterValues"]
    assert [(t["status"], t["created_by"]) for t in settings] == [("done", "profile")]
    assert request.ParameterKey == cli.json("profile", "diff", phone.mac)["parameter_key"]
    assert_matches_profile(cli, phone)

    log = acs.session(phone, events=["2 PERIODIC"])  # nothing differs: nothing to send
    assert log.requests == []

    acs.session(same)  # discovered; its profile changes nothing, so nothing is queued
    assert {t["kind"] for t in cli.tasks("--device", same.mac)} == {"GetParameterNames", "GetParameterValues"}
    assert cli("profile", "diff", same.mac).startswith(f"{same.device_id} matches its profile")

    # a factory reset: the phone bootstraps with its defaults, is rediscovered and provisioned again
    cli.queue("factory-reset", "--device", phone.mac)
    acs.session(phone)
    assert phone.value(INTERVAL) != 3600
    log = acs.session(phone)

    assert [e.EventCode for e in log.inform.Event] == ["0 BOOTSTRAP", "1 BOOT"]
    request = log.requests[-1]
    assert isinstance(request, rpc.SetParameterValues)
    assert {p.Name for p in request.ParameterList} == EXPECTED.keys()
    settings = [t for t in cli.tasks("--device", phone.mac) if t["kind"] == "SetParameterValues"]
    assert [(t["status"], t["created_by"]) for t in settings] == [("done", "profile")] * 2
    assert_matches_profile(cli, phone)
    assert acs.errors() == []


def assert_matches_profile(cli: Operator, phone: SimulatedPhone) -> None:
    """The phone holds its profile's values, and so does the ACS's copy of its tree."""
    assert cli("profile", "diff", phone.mac).startswith(f"{phone.device_id} matches its profile")
    stored = cli.tree(phone.mac)
    for path, (value, kind) in EXPECTED.items():
        if path.endswith("AuthPassword"):
            assert stored[path]["value"] == "********"  # masked by `device show`; the diff compared it
            continue
        assert (stored[path]["value"], stored[path]["type"]) == (value, kind), path
    assert phone.value(INTERVAL) == 3600
    assert phone.value(f"{VOICE}SIP.Network.1.ProxyServer") == "sip.example.net"
    assert phone.value(f"{VOICE}CallControl.Line.2.Enable") is False
    assert phone.value("Device.ManagementServer.ParameterKey").startswith("p-")
