"""Secrets at rest: file modes, the server key, the migration that seals clear values, key rotation.

Through the real ``acs`` command (and ``acs serve``) as processes, on SQLite and PostgreSQL. The
process's umask is set to the common 022 first: what is checked is that acs makes its files
private whatever umask it was started with.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from acs.store import create_engine, head_revision, inventory, secrets, upgrade
from acs.store.engine import current_revision
from tests.web.conftest import ACS, start_server

SHARED_PW = "Shared-pw-4711"
DEVICE_PW = "Device-pw-0815"
CR_PW = "Connreq-pw-1234"
PASSPHRASE = "Profile-key-9876"
IKM = "Profile-ikm-5555"
CLEAR = (SHARED_PW, DEVICE_PW, CR_PW, PASSPHRASE, IKM)
DEVICE = "00562B-CP-8841-3PCC-FCH0001"
INVENTORY = f"mac,serial,model,username,password\n00562b000001,FCH0001,CP-8841-3PCC,desk-1,{DEVICE_PW}\n"


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The umask most shells have; acs must not depend on it."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def acs(
    *args: str, input: str | None = None, cwd: Path | None = None, **env: str | None
) -> subprocess.CompletedProcess[str]:
    """``acs ARGS`` as a process; ``env`` values added to (None: taken from) this process's environment."""
    environment = {k: v for k, v in (os.environ | env).items() if v is not None}
    return subprocess.run(
        [ACS, *args], input=input, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{result.args} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sqlite_bytes(db_url: str) -> bytes:
    """The SQLite database as it is on disk: the file, its WAL and its shared memory."""
    path = Path(sa.make_url(db_url).database or "")
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def pg_dump(db_url: str) -> bytes:
    """The rows of a PostgreSQL database as ``pg_dump`` writes them."""
    url = sa.make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(["pg_dump", "--data-only", "-d", url], capture_output=True, timeout=60, check=True)
    return done.stdout


def at_rest(db_url: str) -> bytes:
    return sqlite_bytes(db_url) if db_url.startswith("sqlite") else pg_dump(db_url)


def store_secrets(db_url: str, tmp_path: Path) -> None:
    """Secrets of every kind, through the commands an operator uses."""
    ok(
        acs(
            "cpe-credentials",
            "set",
            "--username",
            "shared",
            "--password-stdin",
            "--db",
            db_url,
            input=f"{SHARED_PW}\n",
        )
    )
    (tmp_path / "inventory.csv").write_text(INVENTORY)
    ok(acs("device", "import", str(tmp_path / "inventory.csv"), "--db", db_url))
    ok(
        acs(
            "device", "credentials", DEVICE, "--connection-request", "--username", "cr", "--password-stdin",
            "--db", db_url, input=f"{CR_PW}\n",
        )
    )  # fmt: skip
    secrets_in = f"{PASSPHRASE}\n{PASSPHRASE}\n{IKM}\n{IKM}\n"
    ok(acs("profile", "key", "set", "--device", DEVICE, "--cbc", "--gcm", "--db", db_url, input=secrets_in))


def stored(db_url: str) -> dict[str, str | None]:
    """Each secret, opened with the key in use."""
    from acs.provisioning import store
    from acs.store import connection_requests, settings

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            device = inventory.get_device(conn, DEVICE)
            assert device is not None
            shared = settings.shared_credentials(conn)
            key = store.profile_key(conn, DEVICE)
            target = connection_requests.target(conn, DEVICE)
    finally:
        engine.dispose()
    assert shared is not None and key is not None and target is not None
    return {
        "shared": shared.password,
        "device": secrets.reveal(device["password"]),
        "connection request": target.password,
        "passphrase": key.passphrase,
        "ikm": key.ikm,
    }


EXPECTED = {
    "shared": SHARED_PW,
    "device": DEVICE_PW,
    "connection request": CR_PW,
    "passphrase": PASSPHRASE,
    "ikm": IKM,
}


def raw_secrets(db_url: str) -> list[str]:
    """The sealed columns as the database has them."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [
                value
                for column in secrets.sealed_columns()
                for value in conn.execute(sa.text(f"SELECT {column.name} FROM {column.table.name}")).scalars()
                if value is not None
            ]
    finally:
        engine.dispose()


# --- file modes -------------------------------------------------------------------------------


def test_acs_serve_makes_the_database_its_wal_and_the_key_private(tmp_path, umask_022, monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV)  # the default: beside the database
    db = tmp_path / "acs.db"
    server = start_server(f"sqlite:///{db}", discovery=True)
    try:
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), tmp_path / "acs.key"]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert f"acs: new secrets key in {tmp_path / 'acs.key'}: it seals" in "".join(server.log)
    finally:
        server.stop()


def test_acs_db_upgrade_makes_the_database_and_the_key_private(tmp_path, umask_022, monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV)
    db = tmp_path / "new.db"

    ok(acs("db", "upgrade", "--db", f"sqlite:///{db}"))

    assert (mode(db), mode(tmp_path / "new.key")) == (0o600, 0o600)


def test_acs_serve_warns_when_the_database_is_open_to_other_users(tmp_path, umask_022):
    db = tmp_path / "acs.db"
    ok(acs("db", "upgrade", "--db", f"sqlite:///{db}"))
    db.chmod(0o644)  # as an acs before this one made it, or a copy

    server = start_server(f"sqlite:///{db}", discovery=True)
    server.stop()

    warning = f"WARNING acs: {db} is open to other local users (mode 0644): `chmod 600 {db}` (acs makes its"
    assert warning in "".join(server.log)


# --- the key ----------------------------------------------------------------------------------


def test_a_key_file_open_to_other_users_is_refused(db_url, secrets_key):
    secrets_key.chmod(0o640)

    served = acs("serve", "--db", db_url, "--port", "0", "--profile-port", "0", "--nbi-port", "0")
    shown = acs("cpe-credentials", "show", "--db", db_url)

    for result in (served, shown):
        assert result.returncode == 1
        assert (
            f"Error: the secrets key file {secrets_key} is open to other users (mode 0640): "
            f"`chmod 600 {secrets_key}`, and check who read it" in result.stderr
        )


def test_postgresql_needs_the_key_file_named(postgres):
    name = postgres.create()
    try:
        upgrade(postgres.url(name))
        result = acs("serve", "--db", postgres.url(name), "--port", "0", ACS_SECRETS_KEY_FILE=None)
    finally:
        postgres.drop(name)

    assert result.returncode == 1
    assert (
        "Error: a PostgreSQL database needs its secrets key file named: --secrets-key-file PATH"
        in result.stderr
    )


def test_a_database_moved_without_its_key_or_given_another_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV)
    first, moved = tmp_path / "first", tmp_path / "moved"
    first.mkdir()
    moved.mkdir()
    ok(acs("db", "upgrade", "--db", f"sqlite:///{first / 'acs.db'}"))
    ok(
        acs(
            "cpe-credentials",
            "set",
            "--username",
            "u",
            "--password-stdin",
            "--db",
            f"sqlite:///{first / 'acs.db'}",
            input="pw\n",
        )
    )
    shutil.copy(first / "acs.db", moved / "acs.db")
    other = tmp_path / "other.key"
    secrets.Keyring.create(other)

    missing = acs("serve", "--db", f"sqlite:///{moved / 'acs.db'}", "--port", "0")
    wrong = acs(
        "cpe-credentials", "show", "--db", f"sqlite:///{moved / 'acs.db'}", "--secrets-key-file", str(other)
    )

    assert missing.returncode == 1
    assert (
        f"Error: no secrets key file at {moved / 'acs.key'}, and the database's secrets were sealed with one"
        in missing.stderr
    )
    assert not (moved / "acs.key").exists()  # no key made that would not open them
    assert wrong.returncode == 1
    assert f"does not open with the key in {other}: they were sealed with another key" in wrong.stderr
    assert ok(acs("cpe-credentials", "show", "--db", f"sqlite:///{first / 'acs.db'}")).endswith(
        "password   pw\n"
    )


# --- sealed at rest ---------------------------------------------------------------------------


def test_secrets_stored_through_the_commands_are_sealed_at_rest(db_url, tmp_path):
    store_secrets(db_url, tmp_path)
    token = ok(acs("token", "create", "--role", "read", "--name", "oss", "--db", db_url)).split()[-1]
    assert token.startswith("acs_")

    dumped = at_rest(db_url)

    assert [s for s in (*CLEAR, token) if s.encode() in dumped] == []
    assert b"desk-1" in dumped  # the user name is not a secret: the dump is of the right database
    assert len(raw_secrets(db_url)) == 6  # 5 and the key's check
    assert all(v.startswith("gAAAAA") for v in raw_secrets(db_url))
    assert stored(db_url) == EXPECTED
    assert ok(acs("cpe-credentials", "show", "--json", "--db", db_url)).count(SHARED_PW) == 1


def _clear_database(url: str) -> None:
    """A database as an acs before sealing left it: at revision 0010, with secrets in clear."""
    upgrade(url, "0010")
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO devices (id, oui, serial_number, created_at, username, password, "
                    "connection_request_username, connection_request_password) "
                    "VALUES (:id, '00562B', 'FCH0001', :now, 'desk-1', :pw, 'cr', :cr)"
                ).bindparams(sa.bindparam("now", type_=sa.DateTime(timezone=True))),
                {
                    "id": DEVICE,
                    "now": now if engine.dialect.name == "postgresql" else now.replace(tzinfo=None),
                    "pw": DEVICE_PW,
                    "cr": CR_PW,
                },
            )
            conn.execute(
                sa.text(
                    "INSERT INTO profile_keys (scope, match, passphrase, ikm, updated_at) "
                    "VALUES ('device', :id, :p, :i, CURRENT_TIMESTAMP)"
                ),
                {"id": DEVICE, "p": PASSPHRASE, "i": IKM},
            )
            conn.execute(
                sa.text("INSERT INTO settings (name, value, updated_at) VALUES (:n, :v, CURRENT_TIMESTAMP)"),
                [{"n": "cpe_username", "v": "shared"}, {"n": "cpe_password", "v": SHARED_PW}],
            )
    finally:
        engine.dispose()


def test_upgrade_seals_the_secrets_an_older_acs_kept_in_clear(empty_db_url):
    _clear_database(empty_db_url)
    assert all(s.encode() in at_rest(empty_db_url) for s in CLEAR)  # what there is to seal

    said = ok(acs("db", "upgrade", "--db", empty_db_url))

    assert said.endswith(f"upgraded from revision 0010 to revision {head_revision()} (head)\n")
    dumped = at_rest(empty_db_url)
    assert [s for s in CLEAR if s.encode() in dumped] == []  # SQLite: not left in free pages either
    assert len(raw_secrets(empty_db_url)) == 6
    assert stored(empty_db_url) == EXPECTED


def test_upgrade_without_a_key_refuses_to_leave_secrets_in_clear(postgres):
    name = postgres.create()
    try:
        url = postgres.url(name)
        _clear_database(url)

        refused = acs("db", "upgrade", "--db", url, ACS_SECRETS_KEY_FILE=None)

        assert refused.returncode == 1
        assert (
            "Error: the database holds 5 secrets to seal, and no secrets key was given: run `acs db upgrade` "
            "with --secrets-key-file PATH or ACS_SECRETS_KEY_FILE" in refused.stderr
        )
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert current_revision(conn) == "0010"  # nothing changed
        finally:
            engine.dispose()
    finally:
        postgres.drop(name)


# --- rotation ---------------------------------------------------------------------------------


def keys_in(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_rotate_key_seals_everything_with_a_new_key_and_drops_the_old_one(db_url, tmp_path, secrets_key):
    store_secrets(db_url, tmp_path)
    (old,) = keys_in(secrets_key)
    before = raw_secrets(db_url)

    said = ok(acs("db", "rotate-key", "--db", db_url))

    assert said == f"6 secrets sealed again with a new key, now in {secrets_key}\n"
    (new,) = keys_in(secrets_key)
    assert new != old and mode(secrets_key) == 0o600
    with secrets.using(secrets.Keyring.load(secrets_key)):
        assert stored(db_url) == EXPECTED
    with secrets.using(secrets.Keyring([old.encode()])), pytest.raises(secrets.SecretsError):
        stored(db_url)
    dumped = at_rest(db_url)
    if db_url.startswith("sqlite"):  # vacuumed: what the old key opened is not left in free pages
        assert [t for t in before if t.encode() in dumped] == []
    assert ok(acs("cpe-credentials", "show", "--db", db_url)).endswith(f"password   {SHARED_PW}\n")


def test_a_rotation_killed_at_any_point_loses_nothing(db_url, tmp_path, secrets_key):
    store_secrets(db_url, tmp_path)
    first = keys_in(secrets_key)

    for point, keys in (("before-commit", 2), ("after-commit", 3)):
        killed = acs("db", "rotate-key", "--db", db_url, ACS_TEST_KILL_DURING_ROTATION=point)

        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert len(keys_in(secrets_key)) == keys  # the new key in front of the old ones
        assert ok(acs("cpe-credentials", "show", "--db", db_url)).endswith(f"password   {SHARED_PW}\n")
        with secrets.using(secrets.Keyring.load(secrets_key)):
            assert stored(db_url) == EXPECTED
    # after the commit, everything is sealed with the newest key already
    newest = keys_in(secrets_key)[0]
    with secrets.using(secrets.Keyring([newest.encode()])):
        assert stored(db_url) == EXPECTED

    ok(acs("db", "rotate-key", "--db", db_url))  # run again: done

    (last,) = keys_in(secrets_key)
    assert last not in (*first, newest)
    with secrets.using(secrets.Keyring([last.encode()])):
        assert stored(db_url) == EXPECTED


# --- passwords on command lines ---------------------------------------------------------------


def test_a_cpe_password_on_the_command_line_is_said_to_be_visible(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'acs.db'}"
    ok(acs("db", "upgrade", "--db", db))
    shown = " ".join(ok(acs("serve", "--help")).split())
    assert (
        "--cpe-password TEXT Password for --cpe-username. On the command line every local user sees it (ps, "
        "/proc/PID/cmdline): give it in ACS_CPE_PASSWORD instead, or keep the shared credentials in the "
        "database" in shown
    )

    on_argv = start_server(db, "--cpe-username", "u", "--cpe-password", "pw", discovery=True)
    on_argv.stop()
    monkeypatch.setenv("ACS_CPE_USERNAME", "u")
    monkeypatch.setenv("ACS_CPE_PASSWORD", "pw")
    in_env = start_server(db, discovery=True)
    in_env.stop()

    warning = (
        "WARNING acs: --cpe-password was given on the command line, where every local user sees it (ps): "
        "give it in ACS_CPE_PASSWORD"
    )
    assert warning in "".join(on_argv.log)
    assert "command line" not in "".join(in_env.log)
