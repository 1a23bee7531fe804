"""Commands on a database that is not there: they say so and create nothing.

Run in the wrong directory, or with a mistyped ``--db``, ``acs device list`` used to create an
empty ``./acs.db`` and print an empty table, as if the ACS knew no phone. Only ``acs serve``
and ``acs db upgrade`` create a database; every other command, reading or writing, refuses
and says how to make one. The real ``acs`` command runs, in a directory of its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from acs.store import create_engine
from tests.web.conftest import ACS

MAC = "00562b043615"
#: what each says (after click's "Error: "; ``task cancel`` and ``retry`` answer per task, after "acs: ")
NO_DATABASE = "no database at ./acs.db: start the server (`acs serve`) or create it with `acs db upgrade`\n"

READS = [
    ["device", "list"],
    ["device", "show", MAC],
    ["device", "events", MAC],
    ["device", "connection-requests", MAC],
    ["task", "list"],
    ["task", "show", "1"],
    ["policy", "list"],
    ["profile", "list"],
    ["profile", "show", "base"],
    ["profile", "key", "list"],
    ["token", "list"],
]
WRITES = [
    ["task", "add", "reboot", "--device", MAC],
    ["task", "cancel", "1"],
    ["policy", "disable", "discovery"],
    ["token", "create", "--role", "read", "--name", "oss"],
    ["token", "revoke", "oss"],
    ["device", "tag", MAC, "lab"],
    ["device", "kick", MAC],
    ["profile", "assign", "base", "--default"],
]


def acs(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``acs ARGS`` at a shell in ``cwd``, with no ``ACS_*`` variable (no database URL, no API)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACS_")}
    return subprocess.run([ACS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.mark.parametrize("args", READS + WRITES, ids=" ".join)
def test_a_command_on_no_database_says_so_and_creates_nothing(workdir, args):
    done = acs(workdir, *args)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr in (f"Error: {NO_DATABASE}", f"acs: {NO_DATABASE}")
    assert list(workdir.iterdir()) == []


def test_commands_that_read_files_refuse_alike(tmp_path, workdir):
    inventory = tmp_path / "phones.csv"
    inventory.write_text(f"mac,serial,model\n{MAC},FCH2101A0B1,CP-8841-3PCC\n")
    profile = tmp_path / "base.xml"
    profile.write_text("<flat-profile><Station_Name>lobby</Station_Name></flat-profile>\n")

    for args in (["device", "import", str(inventory)], ["profile", "create", "base", str(profile)]):
        done = acs(workdir, *args)
        assert (done.returncode, done.stderr) == (1, f"Error: {NO_DATABASE}"), args
    assert list(workdir.iterdir()) == []


def test_a_database_named_by_db_is_named_in_the_answer(tmp_path, workdir):
    url = f"sqlite:///{tmp_path / 'elsewhere' / 'acs.db'}"

    done = acs(workdir, "device", "list", "--db", url)

    assert done.returncode == 1
    assert done.stderr == (
        f"Error: no database at {tmp_path / 'elsewhere' / 'acs.db'}: "
        f"start the server (`acs serve --db {url}`) or create it with `acs db upgrade --db {url}`\n"
    )
    assert not (tmp_path / "elsewhere").exists() and list(workdir.iterdir()) == []


def test_acs_db_upgrade_creates_it_and_the_commands_then_work(workdir):
    assert acs(workdir, "db", "upgrade").returncode == 0

    listed = acs(workdir, "device", "list")
    made = acs(workdir, "token", "create", "--role", "read", "--name", "oss")

    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout.startswith("ID ")
    assert made.returncode == 0, made.stderr
    assert (workdir / "acs.db").is_file()


def _tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_reported_not_migrated(postgres, workdir):
    name = postgres.create()
    url = postgres.url(name)
    try:
        for args in (["device", "list"], ["token", "create", "--role", "read", "--name", "oss"]):
            done = acs(workdir, *args, "--db", url)
            assert done.returncode == 1, args
            assert done.stderr.startswith(f"Error: database {url} is empty, this acs needs revision ")
            assert done.stderr.endswith(f": run `acs db upgrade --db {url}`\n")
        assert _tables(url) == []
    finally:
        postgres.drop(name)


def test_an_empty_sqlite_file_is_reported_not_migrated(workdir):
    (workdir / "acs.db").touch()

    done = acs(workdir, "device", "list")

    assert done.returncode == 1
    assert done.stderr.startswith("Error: database sqlite:///./acs.db is empty, this acs needs revision ")
    assert _tables(f"sqlite:///{workdir / 'acs.db'}") == []
