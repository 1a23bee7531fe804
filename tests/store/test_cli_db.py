"""``acs db upgrade``: what an operator types, and what they read back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from acs.cli import main
from acs.store import create_engine, head_revision, metadata


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_then_has_nothing_to_do(empty_db_url):
    runner = CliRunner()

    first = runner.invoke(main, ["db", "upgrade", "--db", empty_db_url])
    second = runner.invoke(main, ["db", "upgrade"], env={"ACS_DATABASE_URL": empty_db_url})

    assert first.exit_code == 0, first.output
    assert first.output.endswith(f"upgraded from an empty database to revision {head_revision()} (head)\n")
    assert set(metadata.tables) <= _tables(empty_db_url)
    assert second.exit_code == 0, second.output
    assert second.output.endswith(f"is at revision {head_revision()} (head), nothing to do\n")


def test_upgrade_defaults_to_acs_db_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACS_DATABASE_URL", raising=False)

    result = CliRunner().invoke(main, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("database sqlite:///./acs.db upgraded from an empty database")
    assert (tmp_path / "acs.db").exists()


def test_an_unreachable_database_is_a_clear_error_without_the_password():
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", "postgresql://acs:s3cret@127.0.0.1:1/acs"])

    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot connect to postgresql+psycopg://acs:***@127.0.0.1:1/acs: ")
    assert result.output.rstrip().endswith("; check --db / ACS_DATABASE_URL")
    assert "s3cret" not in result.output


def test_a_bad_url_is_a_clear_error(tmp_path):
    runner = CliRunner()

    garbled = runner.invoke(main, ["db", "upgrade", "--db", "acs.db"])
    no_dir = runner.invoke(main, ["db", "upgrade", "--db", f"sqlite:///{tmp_path}/missing/acs.db"])

    assert garbled.exit_code == 1
    assert "Error: invalid database URL 'acs.db'" in garbled.output
    assert "expected sqlite:///PATH or postgresql://USER@HOST/DATABASE" in garbled.output
    assert no_dir.exit_code == 1
    assert "cannot connect to sqlite:///" in no_dir.output
    assert "unable to open database file" in no_dir.output


def test_the_installed_acs_command_upgrades_a_new_sqlite_file(tmp_path):
    """Through the console script, from another directory: migrations are found in the package."""
    acs = Path(sys.executable).with_name("acs")
    path = tmp_path / "fleet.db"
    env = {k: v for k, v in os.environ.items() if k != "ACS_DATABASE_URL"}

    done = subprocess.run(
        [str(acs), "db", "upgrade", "--db", f"sqlite:///{path}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"database sqlite:///{path} upgraded from an empty database to revision {head_revision()} (head)\n"
    )
    assert set(metadata.tables) <= _tables(f"sqlite:///{path}")
