"""One device cannot take another's identity for the profile server: the real ``acs serve``, two
simulated phones that report one MAC, ``curl`` against the profile server, the ``acs`` CLI on the
database and through the REST API. SQLite and PostgreSQL.

The profile server finds a phone by the MAC in the file name (``/$MA.cfg``). A device whose Inform
reports the MAC of another known device (a different serial number) used to take it too: the MAC
then named both, and a fetch by it got the newcomer's profile, or none (409). Now the MAC stays with
the device that had it, the conflict shows (an event, ``acs device show`` of both, the API's device
view, ``acs device mac-conflict list``) and the operator settles it (``mac-conflict resolve``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from acs.provisioning import flatprofile
from acs.testing import SimulatedPhone
from tests.e2e.conftest import CPE_PASSWORD, CPE_USERNAME, Acs
from tests.e2e.test_cli_over_api import Shell, _admin_token

MAC = "00562b043615"
#: the phone that has the MAC: imported with its own credentials, which its CWMP sessions and its
#: profile fetches (Profile_Rule [--uid desk --pwd desk-pw]) use
DESK = SimulatedPhone("CP-8841-3PCC", "FCH2233A1B2", MAC, username="desk", password="desk-pw")
#: another device, of another model, that reports the same MAC (a lie, or firmware that reports one)
ROGUE = SimulatedPhone("CP-7841-3PCC", "FCH6666EVIL", MAC, username=CPE_USERNAME, password=CPE_PASSWORD)


def curl(acs: Acs, path: str, *args: str) -> tuple[int, bytes]:
    """``curl`` against the profile server's HTTP port: (status, body)."""
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "15", "-w", "\n%{http_code}", *args,
         f"http://127.0.0.1:{acs.server.profile_port}{path}"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


def station(body: bytes) -> str | None:
    """Whose profile it is (None: no profile, a refusal's words)."""
    return flatprofile.parse(body).values().get("Display_Name_1_")


def fetch_as(acs: Acs, phone: SimulatedPhone, user: str, password: str) -> tuple[int, bytes]:
    """The phone's resync: its rule's credentials, its User-Agent, its MAC in the file name."""
    return curl(acs, f"/{MAC}.cfg", "--digest", "-u", f"{user}:{password}", "-A", phone.user_agent)


def setup(acs: Acs, tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(
        f"mac,serial,model,username,password\n{MAC},FCH2233A1B2,CP-8841-3PCC,desk,desk-pw\n"
    )
    acs.cli("device", "import", str(tmp_path / "inventory.csv"))
    for name in ("desk", "rogue"):
        (tmp_path / f"{name}.xml").write_text(
            f'<flat-profile><Display_Name_1_ ua="na">{name}</Display_Name_1_>'
            f'<Password_1_ ua="na">{name}-sip-s3cret</Password_1_></flat-profile>\n'
        )
        acs.cli("profile", "create", name, str(tmp_path / f"{name}.xml"))
    acs.cli("profile", "assign", "desk", "--device", DESK.device_id)


def test_a_device_reporting_another_s_mac_does_not_become_its_phone(acs: Acs, tmp_path: Path) -> None:
    setup(acs, tmp_path)
    acs.session(DESK)
    status, body = fetch_as(acs, DESK, "desk", "desk-pw")
    assert (status, station(body)) == (200, "desk")

    acs.session(ROGUE)  # its Inform reports DESK's MAC (Device.Ethernet.Interface.1.MACAddress)
    acs.cli("profile", "assign", "rogue", "--device", ROGUE.device_id)
    acs.cli("device", "credentials", ROGUE.device_id, "--username", "rogue", "--password", "rogue-pw")

    # the MAC still names DESK: the rogue, with its own credentials and its own model's User-Agent,
    # gets nothing by it (it used to be served as that MAC's phone) ...
    status, body = fetch_as(acs, ROGUE, "rogue", "rogue-pw")
    assert (status, station(body)) == (401, None) and b"s3cret" not in body
    # ... and DESK's resync gets DESK's profile, by its User-Agent or without one (it used to get 409)
    status, body = fetch_as(acs, DESK, "desk", "desk-pw")
    assert (status, station(body)) == (200, "desk")
    status, body = curl(acs, f"/{MAC}.cfg", "--digest", "-u", "desk:desk-pw")
    assert (status, station(body)) == (200, "desk")
    assert acs.cli.device(MAC)["id"] == DESK.device_id  # the operator's MAC names one device too

    # the conflict shows: in both devices' views (text and JSON), their events, the list
    desk, rogue = acs.cli.device(DESK.device_id), acs.cli.device(ROGUE.device_id)
    assert (desk["mac"], rogue["mac"]) == (MAC, None)
    (conflict,) = rogue["mac_conflicts"]
    assert desk["mac_conflicts"] == [conflict]
    assert (conflict["mac"], conflict["claimant_id"], conflict["holder_id"], conflict["source"]) == (
        MAC,
        ROGUE.device_id,
        DESK.device_id,
        "inform",
    )
    assert conflict["reports"] == 1 and conflict["resolved_at"] is None
    (line,) = [
        x for x in acs.cli("device", "show", ROGUE.device_id).splitlines() if x.startswith("mac conflicts")
    ]
    assert line.split(None, 2)[2].startswith(
        f"{MAC} is {DESK.device_id}'s: refused to this device (inform, 1 report since "
    )
    (line,) = [
        x for x in acs.cli("device", "show", DESK.device_id).splitlines() if x.startswith("mac conflicts")
    ]
    assert line.split(None, 2)[2].startswith(
        f"{MAC} stays here: {ROGUE.device_id} reported it too (inform, 1 report"
    )
    assert ("ACS MAC CONFLICT", f"{MAC} held by {DESK.device_id}") in acs.cli.events(ROGUE.device_id)
    assert ("ACS MAC CONFLICT", f"{MAC} claimed by {ROGUE.device_id}") in acs.cli.events(DESK.device_id)
    assert any(
        f"WARNING acs.store.inventory: MAC conflict: device {ROGUE.device_id} reported MAC {MAC} (inform), "
        f"which device {DESK.device_id} has" in line
        for line in acs.server.log
    )
    # the rogue's next Informs (with the credentials it now has: the shared ones no longer speak
    # for it) are counted, and change nothing
    acs.session(SimulatedPhone("CP-7841-3PCC", "FCH6666EVIL", MAC, username="rogue", password="rogue-pw"))
    assert acs.cli.json("device", "mac-conflict", "list")[0]["reports"] == 2
    assert [e for e in acs.cli.events(DESK.device_id) if e[0].startswith("ACS")] == [
        ("ACS MAC CONFLICT", f"{MAC} claimed by {ROGUE.device_id}")
    ]
    assert acs.errors() == []


def test_the_operator_sees_and_resolves_it_on_the_database_or_through_the_api(
    acs: Acs, tmp_path: Path
) -> None:
    setup(acs, tmp_path)
    acs.session(DESK)
    acs.session(ROGUE)
    acs.cli("profile", "assign", "rogue", "--device", ROGUE.device_id)
    acs.cli("device", "credentials", ROGUE.device_id, "--username", "rogue", "--password", "rogue-pw")
    token = _admin_token(acs.cli.db_url)
    local, remote = Shell(acs, "local", ""), Shell(acs, "remote", token)

    # the same words both ways
    for args in (
        ("device", "mac-conflict", "list"),
        ("device", "mac-conflict", "list", "--json"),
        ("device", "show", ROGUE.device_id),
        ("device", "show", DESK.device_id, "--json"),
    ):
        here, there = local.run(*args), remote.run(*args)
        assert (there.exit_code, there.stdout, there.stderr) == (here.exit_code, here.stdout, here.stderr), (
            args
        )
    listed = local("device", "mac-conflict", "list")
    assert " ".join(listed.splitlines()[0].split()) == (
        "MAC HAS IT REPORTED BY SOURCE REPORTS FIRST SEEN LAST SEEN RESOLVED"
    )
    assert listed.splitlines()[1].split()[:5] == [MAC, DESK.device_id, ROGUE.device_id, "inform", "1"]
    # the REST API's device view
    view = _get(acs, f"/devices/{ROGUE.device_id}", token)
    assert [(c["mac"], c["holder_id"]) for c in view["mac_conflicts"]] == [(MAC, DESK.device_id)]
    assert _get(acs, "/mac-conflicts", token) == local.json("device", "mac-conflict", "list")
    # refusals, in the same words
    for args, said in (
        (("device", "mac-conflict", "resolve", "00:56:2b:00:00:99", "--keep", DESK.device_id),
         "Error: no open conflict over MAC 00562b000099 (see `acs device mac-conflict list`)\n"),
        (("device", "mac-conflict", "resolve", MAC, "--keep", "FCH0000NONE"),
         "Error: no device 'FCH0000NONE': give a device id, a MAC or a serial number "
         "(see `acs device list`)\n"),
    ):  # fmt: skip
        here, there = local.run(*args), remote.run(*args)
        assert (here.exit_code, here.stderr) == (there.exit_code, there.stderr) == (1, said), args
    bad = remote.run("device", "mac-conflict", "resolve", "not-a-mac", "--keep", DESK.device_id)
    assert bad.exit_code == 2 and "'not-a-mac' is not a MAC address" in bad.stderr

    # the rogue was in fact DESK's replacement: the operator gives it the MAC, through the API
    said = remote("device", "mac-conflict", "resolve", "00:56:2B:04:36:15", "--keep", ROGUE.identity.serial)
    assert said == f"{MAC} is {ROGUE.device_id}'s; {DESK.device_id} has it no more\n"
    assert (local.json("device", "show", MAC)["id"], local.json("device", "show", DESK.device_id)["mac"]) == (
        ROGUE.device_id,
        None,
    )
    status, body = fetch_as(acs, ROGUE, "rogue", "rogue-pw")
    assert (status, station(body)) == (200, "rogue")
    assert fetch_as(acs, DESK, "desk", "desk-pw")[0] == 401  # the MAC is not DESK's any more
    for device in (DESK, ROGUE):
        assert ("ACS MAC RESOLVED", f"{MAC} kept by {ROGUE.device_id}") in acs.cli.events(device.device_id)
    assert local.json("device", "mac-conflict", "list") == []
    (settled,) = local.json("device", "mac-conflict", "list", "--all")
    assert (settled["claimant_id"], settled["holder_id"], settled["source"]) == (
        DESK.device_id,
        ROGUE.device_id,
        "operator",
    )
    # DESK still reports the MAC: refused without another alarm; the decision stands
    acs.session(DESK)
    assert local.json("device", "mac-conflict", "list") == []
    assert local.json("device", "show", DESK.device_id)["mac"] is None
    assert local.json("device", "mac-conflict", "list", "--all")[0]["reports"] == 1
    assert acs.errors() == []


def _get(acs: Acs, path: str, token: str) -> Any:
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--max-time", "15", "-H", f"Authorization: Bearer {token}",
         acs.server.nbi_url + path],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)
