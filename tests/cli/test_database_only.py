"""With a server's API named (``ACS_API_URL`` or ``--api``), a command that works on the database only
says so and exits 2, instead of quietly working on (and creating) ``./acs.db``; a database named as
well (``--db``, ``ACS_DATABASE_URL``) is used. Every command of ``acs`` is one or the other, but for
``acs serve``, which serves a database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from acs.cli import main

API = "http://127.0.0.1:9"

#: each command that works on the database only, with arguments it would accept
DATABASE_ONLY = {
    "policy list": [],
    "policy add": ["p", "--on", "NEW", "--periodic-inform", "60"],
    "policy enable": ["discovery"],
    "policy disable": ["discovery"],
    "policy remove": ["discovery"],
    "policy discovery-batch": ["discovery", "16"],
    "profile create": ["base", "base.xml"],
    "profile edit": ["base", "base.xml"],
    "profile list": [],
    "profile show": ["base"],
    "profile assign": ["base", "--default"],
    "profile unassign": ["base", "--default"],
    "profile delete": ["base"],
    "profile diff": ["00562b043615"],
    "profile push": ["00562b043615"],
    "profile export": ["00562b043615"],
    "profile key set": ["--tag", "lab", "--cbc"],
    "profile key clear": ["--tag", "lab"],
    "profile key list": [],
    "profile key digest": ["md5"],
    "token create": ["--role", "read", "--name", "x"],
    "token list": [],
    "token revoke": ["x"],
    "cpe-credentials show": [],
    "cpe-credentials set": ["--username", "u", "--password", "p"],
    "cpe-credentials generate": [],
    "cpe-credentials disable": [],
    "db upgrade": [],
    "db rotate-key": [],
}


def _commands(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operator's directory with no database in it, and no database named in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("ACS_DATABASE_URL", "ACS_API_URL", "ACS_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "base.xml").write_text("<flat-profile><Station_Name>x</Station_Name></flat-profile>\n")
    return tmp_path


def test_every_command_works_through_the_api_or_refuses_to_when_one_is_named() -> None:
    through_api, database_only = set(), set()
    for name, command in _commands():
        api = [p for p in command.params if p.name == "api"]
        if api and not api[0].hidden:
            through_api.add(name)
        elif api:
            database_only.add(name)
    assert database_only == set(DATABASE_ONLY)
    everything = {name for name, _ in _commands()}
    assert everything - through_api - database_only == {"serve"}
    assert {"device import", "device kick", "device move"} <= through_api


@pytest.mark.parametrize("name", sorted(DATABASE_ONLY))
def test_with_acs_api_url_set_a_database_command_refuses_and_creates_no_database(
    shell: Path, name: str
) -> None:
    args = [*name.split(), *DATABASE_ONLY[name]]
    result = CliRunner(env={"ACS_API_URL": API}).invoke(main, args)
    assert result.exit_code == 2, result.output
    assert (
        f"Error: acs {name} works on the database only, not through the API, and ACS_API_URL is set: give "
        "--db URL (or ACS_DATABASE_URL) to work on a database, or unset ACS_API_URL" in result.stderr
    )
    given = CliRunner().invoke(main, [*args, "--api", API])
    assert given.exit_code == 2, given.output
    assert f"Error: acs {name} works on the database only, not through the API: give --db URL" in given.stderr
    assert list(shell.iterdir()) == [shell / "base.xml"]  # no ./acs.db


def test_a_database_named_as_well_is_used(shell: Path, db_url: str) -> None:
    env = {"ACS_API_URL": API}
    listed = CliRunner(env=env).invoke(main, ["policy", "list", "--json", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    assert [p["name"] for p in json.loads(listed.stdout)] == ["discovery"]
    from_env = CliRunner(env=env | {"ACS_DATABASE_URL": db_url}).invoke(main, ["token", "list", "--json"])
    assert from_env.exit_code == 0 and json.loads(from_env.stdout) == []
    # the device and task commands too: --db on the command line wins over ACS_API_URL
    devices = CliRunner(env=env | {"ACS_API_TOKEN": "t"}).invoke(main, ["device", "list", "--db", db_url])
    assert devices.exit_code == 0 and devices.stdout == "ID  MAC  MODEL  SOFTWARE  IP  LAST INFORM\n"
    both = CliRunner().invoke(main, ["device", "list", "--db", db_url, "--api", API, "--token", "t"])
    assert both.exit_code == 2 and "give --db or --api, not both" in both.stderr
