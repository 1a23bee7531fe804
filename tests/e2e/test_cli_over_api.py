"""``acs device`` and ``acs task`` work on the database (``--db``) or through a live ``acs serve``'s
REST API (``--api URL --token T``), and print the same either way.

The same assertions run in both modes (``mode``: local, remote), and the read-only commands are
run both ways on the same data with their outputs compared byte for byte.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from acs.cli import main
from acs.connreq import Attempt
from acs.nbi import tokens
from acs.store import connection_requests, create_engine, inventory
from acs.store.schema import utcnow
from acs.testing import run_session
from acs.testing.connreq import ConnectionRequestListener
from tests.e2e.conftest import SESSION_TIMEOUT, Acs, new_phone, numbered_phone

CR = "Device.ManagementServer.ConnectionRequest"
DESK = new_phone()  # CP-8841-3PCC, 00562b043615
LOBBY = numbered_phone(7, "CP-7841-3PCC")


@dataclass
class Shell:
    """The operator's shell, on the database or through the API."""

    acs: Acs
    mode: str
    token: str

    def where(self) -> list[str]:
        if self.mode == "local":
            return ["--db", self.acs.cli.db_url]
        return ["--api", self.acs.server.nbi_url, "--token", self.token]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, *self.where()], catch_exceptions=False)

    def __call__(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (
            f"acs {' '.join(args)} ({self.mode}) exited {result.exit_code}:\n{result.output}"
        )
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def fails(self, *args: str, status: int = 1) -> str:
        """A command that must fail with ``status``: what it said on stderr."""
        result = self.run(*args)
        assert result.exit_code == status, f"acs {' '.join(args)} ({self.mode}): {result.output}"
        return result.stderr


def _admin_token(db_url: str) -> str:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            return tokens.create(conn, "operator-shell", "admin")[0]
    finally:
        engine.dispose()


@pytest.fixture(params=["local", "remote"])
def shell(request: pytest.FixtureRequest, acs: Acs) -> Shell:
    """Two phones that have informed, and the operator's shell in ``mode``."""
    for phone in (DESK, LOBBY):
        acs.session(phone)
    return Shell(acs, request.param, _admin_token(acs.cli.db_url))


def _answer_in_background(acs: Acs, phone: Any) -> threading.Thread:
    """The phone's next session, a second from now (while a command waits for its task)."""
    errors: list[BaseException] = []

    def session() -> None:
        try:
            threading.Event().wait(1)
            run_session(phone, acs.url, timeout=SESSION_TIMEOUT)
        except BaseException as e:  # pragma: no cover - reported by the assertion below
            errors.append(e)

    thread = threading.Thread(target=session, daemon=True)
    thread.start()
    thread.errors = errors  # type: ignore[attr-defined]
    return thread


# --- both modes, the same output for the same data ----------------------------------------------------------

#: read-only commands (and refusals that change nothing) whose output must not depend on the mode
SAME_BOTH_WAYS = [
    ("device", "list"),
    ("device", "list", "--json"),
    ("device", "list", "--tag", "lab"),
    ("device", "list", "--product-class", "CP-7841-3PCC", "--json"),
    ("device", "list", "--device", "00:56:2B:04:36:15", "--device", LOBBY.device_id),
    ("device", "list", "--seen-within", "1h", "--limit", "1"),
    ("device", "list", "--not-seen-for", "1h"),
    ("device", "show", "00562b043615"),
    ("device", "show", DESK.device_id, "--json"),
    ("device", "show", "0056.2b04.3615", "--params", "Device.DeviceInfo."),
    ("device", "show", DESK.device_id, "--params", ".", "--json"),
    ("device", "show", DESK.device_id, "--params", "Device.ManagementServer.PeriodicInformInterval"),
    ("device", "events", DESK.device_id),
    ("device", "events", LOBBY.device_id, "--json", "--limit", "1"),
    ("device", "connection-requests", DESK.mac),
    ("device", "connection-requests", DESK.device_id, "--json"),
    ("device", "connection-requests", "FCH0000000"),
    ("task", "list"),
    ("task", "list", "--json"),
    ("task", "list", "--device", "00562b043615", "--status", "done"),
    ("task", "list", "--kind", "Reboot", "--json"),
    ("device", "show", "FCH0000000"),
    ("device", "events", "FCH0000000"),
    ("device", "tag", "FCH0000000", "x"),
    ("task", "list", "--device", "FCH0000000"),
    ("task", "list", "--kind", "Rebot"),
    ("task", "show", "99999"),
    ("task", "add", "reboot", "--device", "FCH0000000"),
    ("task", "add", "reboot", "--device", DESK.device_id, "--device", "FCH0000000"),
    ("task", "add", "reboot", "--product-class", "CP-9999"),
    ("task", "add", "set-values", "Device.X=1", "--device", DESK.device_id, "--parameter-key", "k" * 40),
]


def _inventory(path: Path, count: int, clash_at: int | None = None) -> str:
    """An inventory CSV of ``count`` CP-8851s; the row ``clash_at`` has the desk phone's MAC."""
    lines = ["mac,serial,model,group"]
    for i in range(count):
        mac = DESK.mac if i == clash_at else f"00562bbb{i:04x}"
        lines.append(f"{mac},FCHINV{i:04d},CP-8851-3PCC,stock")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_every_read_prints_the_same_on_the_database_and_through_the_api(acs: Acs, tmp_path: Path) -> None:
    for phone in (DESK, LOBBY):
        acs.session(phone)
    local = Shell(acs, "local", "")
    remote = Shell(acs, "remote", _admin_token(acs.cli.db_url))
    local("device", "tag", DESK.device_id, "lab")
    # more than one batch (500 rows), a row the store refuses in the second: imported here once, the
    # same file gives the same report both ways (importing again updates)
    stock = _inventory(tmp_path / "stock.csv", 520, clash_at=510)
    assert local.run("device", "import", stock).stdout == "519 devices created, 0 updated, 1 rows refused\n"
    (tmp_path / "headless.csv").write_text("mac;serial\n00562b000001;X\n")
    engine = create_engine(acs.cli.db_url)
    with engine.begin() as conn:  # as acs.connreq records them
        connection_requests.record(
            conn,
            DESK.device_id,
            [
                Attempt("http", "unreachable", "connection refused", utcnow(), 0.002),
                Attempt("udp", "sent", "3 datagrams to 192.0.2.7:7547", utcnow(), 0.0),
            ],
        )
    engine.dispose()
    done = json.loads(
        local("task", "add", "get-values", "Device.DeviceInfo.", "--device", DESK.mac, "--json")
    )
    acs.session(DESK)
    (pending,) = json.loads(local("task", "add", "reboot", "--product-class", "CP-7841-3PCC", "--json"))[
        "tasks"
    ]
    cancelled = json.loads(local("task", "add", "factory-reset", "--device", LOBBY.device_id, "--json"))
    local("task", "cancel", str(cancelled["tasks"][0]))
    reads = [
        *SAME_BOTH_WAYS,
        ("task", "show", str(done["tasks"][0])),
        ("task", "show", str(done["tasks"][0]), "--json"),
        ("task", "show", str(pending)),
        ("task", "cancel", str(cancelled["tasks"][0])),  # refused: it is cancelled already
        ("device", "import", stock),
        ("device", "import", stock, "--json"),
        ("device", "import", str(tmp_path / "headless.csv")),
        ("device", "move", LOBBY.mac, "https://prov2.example.net:7567/", "--temporary"),
        ("device", "move", DESK.device_id, "ftp://prov2.example.net/"),
        ("device", "move", "FCH0000000", "https://prov2.example.net/"),
        ("device", "move", LOBBY.device_id),
        ("device", "show", LOBBY.device_id, "--json"),
        ("device", "kick", "FCH0000000"),
    ]
    for args in reads:
        here, there = local.run(*args), remote.run(*args)
        assert (there.exit_code, there.stdout, there.stderr) == (here.exit_code, here.stdout, here.stderr), (
            args
        )
    assert json.loads(local("task", "show", str(pending), "--json"))["status"] == "pending"
    refused = local.run("device", "import", stock)
    assert refused.stderr.endswith(
        f"stock.csv:512: MAC {DESK.mac} belongs to device {DESK.device_id} already\n"
    )
    shown = local.json("device", "show", LOBBY.device_id)
    assert (shown["profile_redirect"], shown["profile_redirect_status"]) == (
        "https://prov2.example.net:7567/",
        302,
    )


def test_a_mac_two_devices_share_names_neither_on_the_database_or_through_the_api(acs: Acs) -> None:
    twin = new_phone("CP-7841-3PCC", "FCH7777TWIN", DESK.mac)  # another model reporting the same MAC
    for phone in (DESK, twin):
        acs.session(phone)
    engine = create_engine(acs.cli.db_url)
    try:  # the MAC stayed with DESK (test_profile_identity.py); a database from before 0012 shares it
        with engine.begin() as conn:
            conn.execute(
                inventory.devices.update()
                .where(inventory.devices.c.id == twin.device_id)
                .values(mac=DESK.mac)
            )
    finally:
        engine.dispose()
    local = Shell(acs, "local", "")
    remote = Shell(acs, "remote", _admin_token(acs.cli.db_url))
    both = ", ".join(sorted([DESK.device_id, twin.device_id]))
    for args in [
        ("device", "show", "00:56:2B:04:36:15"),
        ("device", "events", DESK.mac),
        ("device", "tag", DESK.mac, "lab"),
        ("device", "credentials", DESK.mac, "--username", "u", "--password", "p"),
        ("device", "list", "--device", DESK.mac),
        ("task", "list", "--device", DESK.mac),
        ("task", "add", "reboot", "--device", DESK.mac),
        ("task", "add", "reboot", "--device", DESK.mac, "--device", twin.device_id),
    ]:
        here, there = local.run(*args), remote.run(*args)
        assert (there.exit_code, there.stdout, there.stderr) == (here.exit_code, here.stdout, here.stderr), (
            args
        )
        key = args[2] if args[0] == "device" and args[1] != "list" else DESK.mac
        assert here.exit_code == 1 and here.stderr == (
            f"Error: {key!r} names 2 devices: {both}; give the id of the one you mean\n"
        ), args
    assert local.json("task", "list") == [] and local.json("device", "show", DESK.device_id)["tags"] == []
    assert local.json("device", "show", twin.identity.serial)["id"] == twin.device_id


# --- each mode on its own: the same assertions ------------------------------------------------------------


def test_import_move_and_kick(shell: Shell, tmp_path: Path) -> None:
    inventory_csv = tmp_path / "inventory.csv"
    inventory_csv.write_text(
        "mac,serial,model,group,profile,username,password\n"
        "00:56:2B:AA:00:01,FCHIMP0001,CP-8851-3PCC,floor-3 lab,,imp1,pw1\n"
        "00562baa0002,FCHIMP0002,CP-8851-3PCC,floor-3,,,\n"
        f"{DESK.mac},FCHIMP0003,CP-8851-3PCC,,,,\n"
        "zz,FCHIMP0004,CP-8851-3PCC,,,,\n"
        "00562baa0005,FCHIMP0005,CP-8851-3PCC,,nosuch,,\n"
        "00562baa0001,FCHIMP0006,CP-8851-3PCC,,,,\n"
    )
    result = shell.run("device", "import", str(inventory_csv))
    assert result.exit_code == 1
    assert result.stdout == "2 devices created, 0 updated, 4 rows refused\n"
    name = str(inventory_csv)
    assert result.stderr.splitlines()[-4:] == [
        f"{name}:4: MAC {DESK.mac} belongs to device {DESK.device_id} already",
        f"{name}:5: mac 'zz' is not a MAC address (12 hex digits, any notation)",
        f"{name}:6: no profile 'nosuch' (see `acs profile list`)",
        f"{name}:7: MAC 00562baa0001 is also on line 2",
    ]
    again = json.loads(shell.run("device", "import", str(inventory_csv), "--json").stdout)
    assert (again["created"], again["updated"], len(again["refused"])) == (0, 2, 4)
    imported = shell.json("device", "list", "--tag", "floor-3")
    assert [(d["id"], d["mac"], d["tags"]) for d in imported] == [
        ("00562B-CP-8851-3PCC-FCHIMP0001", "00562baa0001", ["floor-3", "lab"]),
        ("00562B-CP-8851-3PCC-FCHIMP0002", "00562baa0002", ["floor-3"]),
    ]
    engine = create_engine(shell.acs.cli.db_url)
    try:
        with engine.connect() as conn:
            stored = inventory.get_device(conn, "00562baa0001")
    finally:
        engine.dispose()
    assert (stored["username"], stored["password"].reveal()) == ("imp1", "pw1")

    assert shell("device", "move", DESK.mac, "https://prov2.example.net:7567/") == (
        f"{DESK.device_id} is sent to https://prov2.example.net:7567/ (301)\n"
    )
    shown = shell.json("device", "show", DESK.device_id)
    assert (shown["profile_redirect"], shown["profile_redirect_status"]) == (
        "https://prov2.example.net:7567/",
        301,
    )
    assert "Invalid value for URL: 'ftp://x/' is not an http:// or https:// URL" in shell.fails(
        "device", "move", DESK.mac, "ftp://x/", status=2
    )
    assert (
        shell("device", "move", DESK.mac, "--clear") == f"{DESK.device_id} fetches its profile here again\n"
    )
    assert shell.json("device", "show", DESK.device_id)["profile_redirect"] is None

    listener = ConnectionRequestListener(numbered_phone(3), shell.acs.url, session_timeout=SESSION_TIMEOUT)
    listener.start()
    try:
        phone = listener.phone
        shell.acs.session(phone)  # the ACS learns where it listens
        phone.model.set(f"{CR}Username", "cr-user")
        phone.model.set(f"{CR}Password", "cr-pw")
        shell(
            "device",
            "credentials",
            phone.mac,
            "--connection-request",
            "--username",
            "cr-user",
            "--password",
            "cr-pw",
        )
        assert (
            shell("device", "kick", phone.mac)
            == f"connection request to {phone.device_id}: sent by HTTP: HTTP 200\n"
        )
        listener.wait_for_sessions(1)
        shell("device", "tag", phone.mac, "kickable")
        said = shell("task", "add", "get-rpc-methods", "--tag", "kickable", "--now")  # a job over a filter
        assert said.endswith(
            "; asking the device for a session now\n"
            f"connection request to {phone.device_id}: sent by HTTP: HTTP 200\n"
        ), said
        listener.wait_for_sessions(2)
    finally:
        listener.close()
    assert [e for e, _ in shell.acs.cli.events(phone.device_id)].count("6 CONNECTION REQUEST") == 2
    failed = shell.run("device", "kick", phone.mac, "--json")  # the listener is closed now
    assert failed.exit_code == 1
    (result,) = json.loads(failed.stdout)
    assert (result["device_id"], result["outcome"]) == (phone.device_id, "unreachable")


# --- each mode on its own: the same assertions ------------------------------------------------------------


def test_tags_and_credentials(shell: Shell) -> None:
    assert shell("device", "tag", DESK.mac, "lab", "floor-2") == f"{DESK.device_id}: tags floor-2, lab\n"
    assert shell("device", "untag", DESK.identity.serial, "floor-2") == f"{DESK.device_id}: tags lab\n"
    assert [d["id"] for d in shell.json("device", "list", "--tag", "lab")] == [DESK.device_id]
    said = shell("device", "credentials", DESK.mac, "--username", "desk", "--password", "pw")
    assert said == f"{DESK.device_id} authenticates as 'desk'\n"
    refused = shell.fails("device", "credentials", LOBBY.mac, "--username", "desk", "--password", "x")
    assert f"user name 'desk' is already used by device {DESK.device_id}" in refused
    said = shell(
        "device", "credentials", DESK.mac, "--username", "cr", "--password", "s", "--connection-request"
    )
    assert said == f"{DESK.device_id}: connection-request credentials set: user name 'cr'\n"
    engine = create_engine(shell.acs.cli.db_url)
    try:
        with engine.connect() as conn:
            stored = inventory.get_device(conn, DESK.device_id)
    finally:
        engine.dispose()
    assert (stored["username"], stored["password"].reveal()) == ("desk", "pw")
    assert (
        shell("device", "credentials", DESK.mac, "--clear")
        == f"{DESK.device_id} uses the shared CPE credentials again\n"
    )
    assert shell.fails("device", "credentials", DESK.mac, status=2)  # neither --username nor --clear


#: one ``acs task add`` per RPC, and the arguments the task must carry
EVERY_KIND = [
    (["get-rpc-methods"], "GetRPCMethods", {}),
    (
        ["get-names", "Device.DeviceInfo.", "--next-level"],
        "GetParameterNames",
        {"ParameterPath": "Device.DeviceInfo.", "NextLevel": True},
    ),
    (["get-values", "Device.DeviceInfo."], "GetParameterValues", {"ParameterNames": ["Device.DeviceInfo."]}),
    (
        [
            "set-values",
            "Device.ManagementServer.PeriodicInformInterval:unsignedInt=3600",
            "--parameter-key",
            "pk",
        ],
        "SetParameterValues",
        {
            "ParameterList": [["Device.ManagementServer.PeriodicInformInterval", "3600", "unsignedInt"]],
            "ParameterKey": "pk",
        },
    ),
    (
        ["get-attributes", "Device.DeviceInfo."],
        "GetParameterAttributes",
        {"ParameterNames": ["Device.DeviceInfo."]},
    ),
    (
        ["set-attributes", "Device.DeviceInfo.SoftwareVersion", "--notification", "2"],
        "SetParameterAttributes",
        {
            "ParameterList": [
                {
                    "Name": "Device.DeviceInfo.SoftwareVersion",
                    "NotificationChange": True,
                    "Notification": 2,
                    "AccessListChange": False,
                    "AccessList": [],
                }
            ]
        },
    ),
    (
        ["add-object", "Device.Services.VoiceService.1.CallControl.Line", "--parameter-key", "a"],
        "AddObject",
        {"ObjectName": "Device.Services.VoiceService.1.CallControl.Line.", "ParameterKey": "a"},
    ),
    (
        ["delete-object", "Device.Services.VoiceService.1.CallControl.Line.3.", "--parameter-key", "d"],
        "DeleteObject",
        {"ObjectName": "Device.Services.VoiceService.1.CallControl.Line.3.", "ParameterKey": "d"},
    ),
    (["reboot", "--command-key", "maint"], "Reboot", {"CommandKey": "maint"}),
    (["factory-reset"], "FactoryReset", {}),
    (
        ["download", "https://fw.example.net/sip88xx.loads", "--command-key", "fw"],
        "Download",
        {
            "URL": "https://fw.example.net/sip88xx.loads",
            "FileType": "1 Firmware Upgrade Image",
            "Username": "",
            "Password": "",
            "FileSize": 0,
            "TargetFileName": "",
            "DelaySeconds": 0,
            "SuccessURL": "",
            "FailureURL": "",
            "CommandKey": "fw",
        },
    ),
    (
        ["upload", "https://logs.example.net/", "--file-type", "log", "--command-key", "up"],
        "Upload",
        {
            "URL": "https://logs.example.net/",
            "FileType": "2 Vendor Log File",
            "Username": "",
            "Password": "",
            "DelaySeconds": 0,
            "CommandKey": "up",
        },
    ),
    (
        ["schedule-inform", "--delay", "10m", "--command-key", "si"],
        "ScheduleInform",
        {"DelaySeconds": 600, "CommandKey": "si"},
    ),
]


def test_task_add_queues_every_kind_and_show_cancel_retry_follow_it(shell: Shell) -> None:
    for args, kind, expected in EVERY_KIND:
        said = shell("task", "add", *args, "--device", DESK.mac, "--max-attempts", "2", "--expires", "1d")
        assert said.startswith(f"queued {kind} as task ") and f"for {DESK.device_id};" in said, said
        task_id = int(said.split()[4])
        shown = shell.json("task", "show", str(task_id))
        assert (shown["kind"], shown["args"], shown["status"]) == (kind, expected, "pending"), kind
        assert shown["max_attempts"] == 2 and shown["expires_at"] is not None
        assert shown["created_by"] == ("cli" if shell.mode == "local" else "api:operator-shell")
    bulk = shell.json("task", "add", "reboot", "--oui", "00562B")
    assert bulk["job"] is not None and len(bulk["tasks"]) == 2
    assert {t["device_id"] for t in shell.json("task", "list", "--job", bulk["job"])} == {
        DESK.device_id,
        LOBBY.device_id,
    }
    first, second = bulk["tasks"]
    assert shell("task", "cancel", str(first), str(second)) == (
        f"task {first} cancelled: now cancelled\ntask {second} cancelled: now cancelled\n"
    )
    refused = shell.fails("task", "cancel", str(first))
    assert refused == f"acs: task {first} is cancelled: only pending or sent tasks can be cancelled\n"
    assert shell("task", "retry", str(first)) == f"task {first} queued again: now pending\n"
    assert "no task 99999" in shell.fails("task", "retry", "99999")


def test_task_add_wait_follows_the_task_to_its_result(shell: Shell) -> None:
    phone = _answer_in_background(shell.acs, DESK)
    out = shell(
        "task", "add", "get-values", "Device.DeviceInfo.SerialNumber", "--device", DESK.mac, "--wait", "60"
    )
    phone.join(SESSION_TIMEOUT)
    assert not phone.errors  # type: ignore[attr-defined]
    lines = out.splitlines()
    assert lines[1] == "1 done"
    assert json.loads("\n".join(lines[2:])) == {
        "ParameterList": [["Device.DeviceInfo.SerialNumber", DESK.identity.serial, "string"]]
    }


def test_api_settings_from_the_environment_and_refusals_in_the_cli_s_words(acs: Acs) -> None:
    acs.session(DESK)
    token = _admin_token(acs.cli.db_url)
    env = {
        "ACS_API_URL": acs.server.nbi_url,
        "ACS_API_TOKEN": token,
        "ACS_DATABASE_URL": "sqlite:////nonexistent/x.db",
    }
    listed = CliRunner(env=env).invoke(main, ["device", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [d["id"] for d in json.loads(listed.stdout)] == [DESK.device_id]
    bad = CliRunner(env=env | {"ACS_API_TOKEN": "acs_wrong"}).invoke(main, ["device", "list"])
    assert bad.exit_code == 1 and "the API refused the token (the token is unknown or revoked)" in bad.stderr
    with create_engine(acs.cli.db_url).begin() as conn:
        reader = tokens.create(conn, "dashboard", "read")[0]
    forbidden = CliRunner(env=env | {"ACS_API_TOKEN": reader}).invoke(
        main, ["task", "add", "reboot", "--device", DESK.mac]
    )
    assert forbidden.exit_code == 1
    assert "token 'dashboard' has role read; POST /devices/{device}/tasks needs operator" in forbidden.stderr
    secrets = CliRunner(env=env | {"ACS_API_TOKEN": reader}).invoke(
        main, ["device", "show", DESK.mac, "--params", ".", "--show-secrets"]
    )
    assert secrets.exit_code == 1 and "show_secrets needs admin" in secrets.stderr
    no_token = CliRunner(env={"ACS_API_TOKEN": None}).invoke(
        main, ["device", "list", "--api", acs.server.nbi_url]
    )
    assert no_token.exit_code == 2 and "--api needs an API token" in no_token.stderr
    closed = CliRunner().invoke(main, ["task", "list", "--api", "http://127.0.0.1:9", "--token", token])
    assert closed.exit_code == 1 and "cannot reach the ACS API at http://127.0.0.1:9" in closed.stderr
    both = CliRunner().invoke(
        main, ["task", "list", "--api", acs.server.nbi_url, "--token", token, "--db", acs.cli.db_url]
    )
    assert both.exit_code == 2 and "give --db or --api, not both" in both.stderr
    xml = CliRunner(env=env).invoke(main, ["device", "show", DESK.mac, "--xml"])
    assert xml.exit_code == 2 and "--xml reads the database" in xml.stderr
