"""The README's first command, ``acs serve`` with no options, serves phones: on its first start it makes
the shared CPE credentials, keeps them in the database and prints them; the simulated phone, given
them, opens sessions; later starts and every worker use the same ones; ``acs cpe-credentials`` shows
and replaces them. Authentication stays on throughout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from acs.cli import main
from acs.store import create_engine
from acs.store.settings import shared_credentials
from tests.web.conftest import ACS, Server, start_server

PHONE = [sys.executable, "-m", "acs.testing.client"]
_PRINTED = re.compile(r"acs:\s+user name\s+(\S+)\nacs:\s+password\s+(\S+)\n")


def _env() -> dict[str, str]:
    """The operator's environment, without shared credentials or an API of their own."""
    names = ("ACS_CPE_USERNAME", "ACS_CPE_PASSWORD", "ACS_API_URL", "ACS_API_TOKEN")
    return {k: v for k, v in os.environ.items() if k not in names}


@pytest.fixture(autouse=True)
def _no_credentials_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACS_CPE_USERNAME", "ACS_CPE_PASSWORD", "ACS_API_URL"):
        monkeypatch.delenv(name, raising=False)


def _serve(db_url: str, *args: str) -> Server:
    return start_server(db_url, *args)


def _printed(server: Server) -> tuple[str, str]:
    m = _PRINTED.search("".join(server.log))
    assert m, "".join(server.log)
    return m.group(1), m.group(2)


def _phone(server: Server, username: str, password: str, serial: str = "FCH2233A1B2") -> tuple[int, str]:
    """The README's simulated phone, as a command: its exit status and what it printed."""
    done = subprocess.run(
        [*PHONE, server.url, "--username", username, "--password", password, "--serial", serial],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    return done.returncode, done.stdout + done.stderr


def _acs(db_url: str, *args: str) -> str:
    done = subprocess.run(
        [ACS, *args, "--db", db_url], capture_output=True, text=True, timeout=60, env=_env(), check=True
    )
    return done.stdout


def test_first_start_makes_prints_and_keeps_shared_credentials_the_phone_uses(db_url: str) -> None:
    server = _serve(db_url)
    try:
        username, password = _printed(server)
        log = "".join(server.log)
        assert "acs cpe-credentials show` prints them again" in log
        assert re.fullmatch(r"acs-[0-9a-f]{6}", username) and len(password) == 24
        status, said = _phone(server, username, password)
        assert status == 0, said
        assert "0 BOOTSTRAP" in said
        status, said = _phone(server, username, password + "x", serial="FCH2233A1B3")
        assert status == 1 and "401" in said  # authentication is on
    finally:
        server.stop()

    again = _serve(db_url)
    try:
        log = "".join(again.log)
        assert f"shared CPE credentials in use: user name {username!r} (from the database;" in log
        assert password not in log and not _PRINTED.search(log)
        assert _phone(again, username, password)[0] == 0
    finally:
        again.stop()

    assert _acs(db_url, "cpe-credentials", "show") == f"user name  {username}\npassword   {password}\n"


def test_workers_serve_with_the_stored_credentials(db_url: str) -> None:
    server = _serve(db_url, "--workers", "2")
    try:
        username, password = _printed(server)
        children = _children(server.process.pid)
        assert len(children) == 1
        environ = dict(
            item.split("=", 1)
            for item in Path(f"/proc/{children[0]}/environ").read_text().split("\0")
            if "=" in item
        )
        assert (environ["ACS_CPE_USERNAME"], environ["ACS_CPE_PASSWORD"]) == (username, password)
        for i in range(4):  # whichever process takes each connection
            assert _phone(server, username, password, serial=f"FCH22330{i:03d}")[0] == 0
    finally:
        server.stop()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def test_credentials_given_to_serve_win_over_the_stored_ones(db_url: str) -> None:
    _acs(db_url, "cpe-credentials", "set", "--username", "stored", "--password", "stored-pw")
    server = _serve(db_url, "--cpe-username", "given", "--cpe-password", "given-pw")
    try:
        log = "".join(server.log)
        assert "shared CPE credentials in use: user name 'given' (from --cpe-username)" in log
        assert "stored-pw" not in log and "given-pw" not in log
        assert _phone(server, "given", "given-pw")[0] == 0
        assert _phone(server, "stored", "stored-pw", serial="FCH2233A1B3")[0] == 1
    finally:
        server.stop()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = shared_credentials(conn)
    finally:
        engine.dispose()
    assert stored is not None and (stored.username, stored.password) == ("stored", "stored-pw")


def test_set_generate_and_disable_take_effect_at_the_next_start(db_url: str) -> None:
    def cli(*args: str) -> str:
        result = CliRunner().invoke(main, ["cpe-credentials", *args, "--db", db_url])
        assert result.exit_code == 0, result.output
        return result.stdout

    refused = CliRunner().invoke(main, ["cpe-credentials", "show", "--db", db_url])
    assert refused.exit_code == 1 and "no shared CPE credentials stored yet" in refused.stderr
    said = cli("set", "--username", "office", "--password", "pw-1")
    assert said.startswith(
        "shared CPE credentials set: user name 'office'; acs serve uses them from its next"
    )
    assert cli("show", "--json") == '{\n  "username": "office",\n  "password": "pw-1"\n}\n'
    made = cli("generate")
    m = re.fullmatch(r"new shared CPE credentials:\nuser name  office\npassword   (\S{24})\n", made)
    assert m, made
    assert cli("show") == f"user name  office\npassword   {m.group(1)}\n"
    bad = CliRunner().invoke(
        main, ["cpe-credentials", "set", "--username", "a:b", "--password", "x", "--db", db_url]
    )
    assert bad.exit_code == 1 and "':' and '\"' cannot be sent" in bad.stderr

    server = _serve(db_url)
    try:
        assert _phone(server, "office", m.group(1))[0] == 0
    finally:
        server.stop()

    assert cli("disable").startswith("shared CPE credentials off")
    assert (
        cli("show")
        == "shared CPE credentials are off: only devices with their own credentials open sessions\n"
    )
    server = _serve(db_url)
    try:
        log = "".join(server.log)
        assert "shared CPE credentials are off (`acs cpe-credentials disable`)" in log
        assert not _PRINTED.search(log)
        assert _phone(server, "office", m.group(1), serial="FCH2233A1B3")[0] == 1
    finally:
        server.stop()
