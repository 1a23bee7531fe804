"""End to end: the real ``acs serve`` on a real socket, the ``acs`` CLI and simulated Cisco phones.

Every test gets its own database (``db_url``: SQLite and PostgreSQL) and its own server
process on a port the OS chooses. Phones authenticate with the server's shared CPE
credentials (HTTP Digest), as a deployed phone would. The operator's commands run
through the ``acs`` click entry point in this process (``Operator``): the same code as
the shell command, without paying for a Python start-up per command; the tests that
are about the command as a process (``--wait``) run it as one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner, Result

from acs.cli import main
from acs.testing import SessionLog, SimulatedPhone, run_session
from tests.web.conftest import CPE_PASSWORD, CPE_USERNAME, Server, start_server

AUTH = ("--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD)
#: seconds a simulated phone waits for any one HTTP answer
SESSION_TIMEOUT = 15.0
FINAL = ("done", "fault", "expired", "cancelled")


def new_phone(*args: Any, **kwargs: Any) -> SimulatedPhone:
    """A phone that knows the ACS's shared credentials (its ManagementServer.Username/Password)."""
    return SimulatedPhone(*args, username=CPE_USERNAME, password=CPE_PASSWORD, **kwargs)


def numbered_phone(index: int, model: str = "CP-8841-3PCC") -> SimulatedPhone:
    return SimulatedPhone.numbered(index, model, username=CPE_USERNAME, password=CPE_PASSWORD)


@dataclass
class Operator:
    """The operator at a shell: ``acs ... --db URL``, as typed, with what it printed and its exit code."""

    db_url: str

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--db", self.db_url], catch_exceptions=False)

    def __call__(self, *args: str) -> str:
        """Run a command that must succeed; its standard output."""
        result = self.run(*args)
        assert result.exit_code == 0, f"acs {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    # --- what operators look at, in the words of the CLI ----------------------------------------

    def queue(self, *args: str) -> int:
        """``acs task add ... --json`` for one device: the id of the task it queued."""
        (task_id,) = self.json("task", "add", *args)["tasks"]
        return task_id

    def task(self, task_id: int) -> dict[str, Any]:
        """``acs task show ID`` as JSON, after checking the text form says the same."""
        shown = self.json("task", "show", str(task_id))
        text = self("task", "show", str(task_id))
        assert _field(text, "task") == str(task_id)
        assert _field(text, "kind") == shown["kind"]
        assert _field(text, "status") == shown["status"], text
        if shown["fault_code"] is not None:
            assert _field(text, "fault") == f"{shown['fault_code']} {shown['fault_meaning']}", text
        if shown["result"] is not None:
            assert json.loads(text.split("\nresult:\n", 1)[1]) == shown["result"], text
        return shown

    def device(self, key: str, params: str | None = None) -> dict[str, Any]:
        """``acs device show KEY [--params PATH] --json``."""
        return self.json("device", "show", key, *(("--params", params) if params is not None else ()))

    def tree(self, key: str, prefix: str = ".") -> dict[str, dict[str, Any]]:
        """The stored parameters under ``prefix``, by path."""
        return {p["path"]: p for p in self.device(key, prefix)["parameters"]}

    def tasks(self, *args: str) -> list[dict[str, Any]]:
        return self.json("task", "list", "--limit", "100000", *args)

    def events(self, key: str) -> list[tuple[str, str]]:
        """``acs device events KEY --json``, oldest first, as (EventCode, CommandKey)."""
        rows = self.json("device", "events", key, "--limit", "1000")
        return [(r["code"], r["command_key"] or "") for r in reversed(rows)]


def _field(text: str, label: str) -> str:
    m = re.search(rf"^{re.escape(label)}\s{{2,}}(.*)$", text, re.MULTILINE)
    assert m, f"no {label!r} line in:\n{text}"
    return m.group(1).strip()


@dataclass
class Acs:
    """One ``acs serve`` and the operator's CLI on the same database."""

    server: Server
    cli: Operator

    @property
    def url(self) -> str:
        return self.server.url

    def session(self, phone: SimulatedPhone, events: list[str] | None = None) -> SessionLog:
        """One CWMP session of ``phone``; it must end as CWMP sessions end, with HTTP 204."""
        log = run_session(phone, self.url, events=events, timeout=SESSION_TIMEOUT)
        assert log.statuses[-1] == 204, log.transcript()
        return log

    def errors(self) -> list[str]:
        """Lines of the server's log that report an error."""
        return [line for line in self.server.log if "Traceback" in line or " ERROR " in line]


@pytest.fixture
def cli(db_url: str) -> Operator:
    return Operator(db_url)


@pytest.fixture
def serve(db_url: str, cli: Operator) -> Iterator[Callable[..., Acs]]:
    """Start ``acs serve`` on this test's database: ``serve(discovery=False, workers=1)``.

    With ``discovery=False`` the operator disables the built-in discovery policy first, so
    a phone's first session carries only what the test queues.
    """
    started: list[Server] = []

    def start(*, discovery: bool = False, workers: int = 1) -> Acs:
        if not discovery:
            cli("policy", "disable", "discovery")
        server = start_server(cli.db_url, *AUTH, "--workers", str(workers), discovery=True)
        started.append(server)
        return Acs(server, cli)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def acs(serve: Callable[..., Acs]) -> Acs:
    """A server with discovery off."""
    return serve()
