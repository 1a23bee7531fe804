"""What the ``acs`` command imports before it answers: only what the command uses.

``acs --help`` imported every command module, Twisted, spyne, Alembic and jsonschema, and took
a second before printing anything. The command runs here in a process of its own, as the
``acs`` console script runs it, and says which modules it had loaded when it exited; what is
asserted is which modules were not loaded, not how long it took.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from acs.cli import COMMANDS, LazyGroup

#: what no command but ``serve`` needs: the server, its NBI (jsonschema checks its requests), migrations
SERVER_SIDE = (
    "twisted",
    "spyne",
    "alembic",
    "jsonschema",
    "acs.web",
    "acs.nbi.resource",
    "acs.nbi.soap",
    "acs.connreq.requester",
)
#: the ``acs`` console script (``from acs.cli import main; sys.exit(main())``), writing at exit
#: the names of the modules it had loaded
_ACS = """
import atexit, json, os, sys
atexit.register(lambda: json.dump(sorted(sys.modules), open(os.environ["IMPORTED_TO"], "w")))
sys.argv[0] = "acs"
from acs.cli import main
sys.exit(main())
"""


def imported(tmp_path: Path, *args: str) -> set[str]:
    """The modules ``acs ARGS`` imported; the command must succeed."""
    out = tmp_path / "imported.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACS_")} | {"IMPORTED_TO": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", _ACS, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(out.read_text()))


def loaded(modules: set[str], *packages: str) -> list[str]:
    """The modules of ``modules`` that are ``packages`` or inside them."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def command(name: str) -> click.Command:
    module, _, attribute = COMMANDS[name].where.partition(":")
    return getattr(importlib.import_module(module), attribute)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["-h"]])
def test_help_and_version_import_no_command(args, tmp_path):
    modules = imported(tmp_path, *args)

    assert "acs.cli" in modules
    assert loaded(modules, *(w.where.partition(":")[0] for w in COMMANDS.values())) == []
    assert loaded(modules, "sqlalchemy", "lxml", *SERVER_SIDE) == []


def test_device_list_on_an_up_to_date_database_imports_nothing_of_the_server(db_url, tmp_path):
    modules = imported(tmp_path, "device", "list", "--db", db_url)

    assert "acs.cli.device" in modules and "sqlalchemy" in modules
    assert loaded(modules, *SERVER_SIDE) == []


@pytest.mark.parametrize("noun", ["task", "policy", "profile", "token"])
def test_the_other_lists_import_nothing_of_the_server(noun, db_url, tmp_path):
    modules = imported(tmp_path, noun, "list", "--db", db_url)

    assert f"acs.cli.{noun}" in modules
    assert loaded(modules, *SERVER_SIDE) == []


def test_the_help_reads_as_if_every_command_were_loaded():
    """``COMMANDS`` holds each command's summary: the help written from it is click's own."""
    eager = click.Group("acs", commands={name: command(name) for name in COMMANDS})
    for width in (80, 50):
        lazy = LazyGroup("acs", lazy=COMMANDS)  # nothing loaded: the help is written from the summaries
        shown = CliRunner().invoke(lazy, ["--help"], terminal_width=width)
        assert shown.exit_code == 0 and not lazy.commands
        assert shown.output == CliRunner().invoke(eager, ["--help"], terminal_width=width).output
    for name, lazy_command in COMMANDS.items():
        assert lazy_command.summary == command(name).get_short_help_str(limit=10**6), name


def test_a_command_loads_when_it_runs():
    lazy = LazyGroup("acs", lazy=COMMANDS)

    result = CliRunner().invoke(lazy, ["db", "--help"])

    assert result.exit_code == 0 and "upgrade" in result.output
    assert list(lazy.commands) == ["db"]


def test_only_the_soap_resource_imports_spyne():
    probe = "import sys, acs.web.server, acs.nbi.resource, acs.cli.serve; print('spyne' in sys.modules)"
    soap = "import sys, acs.nbi.soap; print('spyne' in sys.modules)"

    for code, expected in ((probe, "False"), (soap, "True")):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr[-2000:]
