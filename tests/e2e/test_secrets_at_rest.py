"""Sealed secrets still do their work: Digest, connection requests, encrypted profiles, a key rotation.

The real ``acs serve`` with no credentials on its command line (the shared pair is the one stored,
sealed), a phone with its own credentials (imported, sealed), a phone listening for connection
requests whose password the ACS keeps sealed, a profile encrypted with a sealed passphrase,
fetched and decrypted with the real ``openssl``; then ``acs db rotate-key`` while the server runs.
On SQLite and PostgreSQL; the database's bytes (or ``pg_dump``) hold none of the secrets.
"""

from __future__ import annotations

import http.client
import subprocess
from pathlib import Path

from acs.testing import SimulatedPhone, run_session
from acs.testing.connreq import CONNECTION_REQUEST, ConnectionRequestListener
from tests.e2e.conftest import SESSION_TIMEOUT, Operator
from tests.store.test_secrets import acs, at_rest, ok
from tests.web.conftest import start_server

SHARED_USER, SHARED_PW = "shared", "Shared-pw-4711"
OWN_USER, OWN_PW = "desk-1", "Device-pw-0815"
CR_USER, CR_PW = "cr-user", "Connreq-pw-1234"
PASSPHRASE = "Profile-key-9876"
CR = "Device.ManagementServer.ConnectionRequest"
OWN = SimulatedPhone(mac="00562b000001", serial="FCH0001", username=OWN_USER, password=OWN_PW)
PROFILE = """<flat-profile>
  <Station_Name ua="rw">desk-$MA</Station_Name>
</flat-profile>
"""


def fetch_profile(port: int, mac: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", f"/{mac}.cfg", headers={"User-Agent": f"Cisco-CP-8841-3PCC/12.0.1 ({mac})"})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body
        return body
    finally:
        conn.close()


def openssl_decrypt(data: bytes, passphrase: str, tmp_path: Path) -> bytes:
    source = tmp_path / "profile.enc"
    source.write_bytes(data)
    done = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha256", "-k", passphrase, "-in", str(source)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def session(phone: SimulatedPhone, url: str) -> None:
    log = run_session(phone, url, timeout=SESSION_TIMEOUT)
    assert log.statuses[-1] == 204, log.transcript()


def test_sealed_secrets_authenticate_kick_and_encrypt_and_survive_a_rotation(
    db_url: str, cli: Operator, tmp_path: Path
) -> None:
    ok(
        acs(
            "cpe-credentials",
            "set",
            "--username",
            SHARED_USER,
            "--password-stdin",
            "--db",
            db_url,
            input=f"{SHARED_PW}\n",
        )
    )
    (tmp_path / "inventory.csv").write_text(
        f"mac,serial,model,username,password\n{OWN.mac},FCH0001,CP-8841-3PCC,{OWN_USER},{OWN_PW}\n"
    )
    cli("device", "import", str(tmp_path / "inventory.csv"))
    (tmp_path / "base.xml").write_text(PROFILE)
    cli("profile", "create", "base", str(tmp_path / "base.xml"))
    cli("profile", "assign", "base", "--default")
    server = start_server(
        db_url, "--profile-auth", "none"
    )  # the stored pair; plain profiles for the shared-credential phone
    listener = ConnectionRequestListener(
        SimulatedPhone.numbered(2, username=SHARED_USER, password=SHARED_PW),
        server.url,
        session_timeout=SESSION_TIMEOUT,
    ).start()
    try:
        phone = listener.phone
        session(phone, server.url)  # HTTP Digest with the shared password, kept sealed
        session(OWN, server.url)  # HTTP Digest with the device's own, kept sealed
        plain = fetch_profile(server.profile_port or 0, phone.mac)
        phone.model.set(f"{CR}Username", CR_USER)
        phone.model.set(f"{CR}Password", CR_PW)
        ok(
            acs(
                "device", "credentials", phone.mac, "--connection-request", "--username", CR_USER,
                "--password-stdin", "--db", db_url, input=f"{CR_PW}\n",
            )
        )  # fmt: skip
        typed = f"{PASSPHRASE}\n{PASSPHRASE}\n"  # at the prompts
        said = cli_input(cli, typed, "profile", "key", "set", "--device", phone.mac, "--cbc")
        assert said.endswith(f"AES-256-CBC key set for device {phone.device_id}\n")

        def works() -> None:
            """Each sealed secret, used by the server (and by the CLI for the kick)."""
            session(phone, server.url)
            session(OWN, server.url)
            kicked = acs("device", "kick", phone.mac, "--db", db_url)
            assert ok(kicked) == f"connection request to {phone.device_id}: sent by HTTP: HTTP 200\n"
            assert listener.wait_for_sessions(1)[-1].inform.event_codes == [CONNECTION_REQUEST]
            encrypted = fetch_profile(server.profile_port or 0, phone.mac)
            assert encrypted.startswith(b"Salted__")
            assert openssl_decrypt(encrypted, PASSPHRASE, tmp_path) == plain

        works()
        dumped = at_rest(db_url)
        assert [s for s in (SHARED_PW, OWN_PW, CR_PW, PASSPHRASE) if s.encode() in dumped] == []
        assert phone.mac.encode() in dumped  # the right database

        ok(acs("db", "rotate-key", "--db", db_url))  # while the server runs: it reloads the key file

        listener.sessions.clear()
        works()
        assert not [line for line in server.log if "Traceback" in line or " ERROR " in line]
        assert "acs: shared CPE credentials in use: user name 'shared' (from the database" in "".join(
            server.log
        )
    finally:
        listener.close()
        server.stop()


def cli_input(cli: Operator, text: str, *args: str) -> str:
    """``acs ARGS`` with ``text`` typed at its prompts."""
    from click.testing import CliRunner

    from acs.cli import main

    result = CliRunner().invoke(main, [*args, "--db", cli.db_url], input=text, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout
