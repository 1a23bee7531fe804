"""Who gets a phone's profile in clear, by default (``acs serve --profile-auth required``): the real
``acs serve`` on real sockets, and the clients an operator and a phone would use: ``curl`` (its Digest,
its client certificate), Debian's ``tftp`` (tftp-hpa) and ``openssl`` to decrypt. SQLite and PostgreSQL.

A profile holds the phone's SIP and admin passwords: it goes in clear to a requester that proved it is
the phone (its own credentials, a client certificate that names it), encrypted with its key to anyone,
and otherwise to no one, with a 403 that says why and a log line that says what to do.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from acs.cli import main
from acs.provisioning import flatprofile
from acs.web.boundedlog import LOG_BURST
from tests.e2e.conftest import AUTH, Operator
from tests.e2e.test_profile_server import openssl_decrypt, tftp_get
from tests.web.conftest import Server, start_server
from tests.web.pki import Pki

DESK, LOCKED, KEYED, STRANGER = "00562b043615", "00562b043617", "00562b043618", "00562b0436ee"
INVENTORY = (
    "mac,serial,model,username,password\n"
    f"{DESK},FCH2233A1B2,CP-8841-3PCC,,\n"
    f"{LOCKED},FCH2233A1B4,CP-7841-3PCC,phone4,pw4-s3cret\n"
    f"{KEYED},FCH2233A1B5,CP-8841-3PCC,,\n"
)
BASE = """<flat-profile>
  <Station_Name ua="rw">desk-$MA</Station_Name>
  <Admin_Password ua="na">admin-s3cret</Admin_Password>
  <Password_1_ ua="na">sip-s3cret</Password_1_>
</flat-profile>
"""
PASSPHRASE = "SecretPhrase1234"
#: what the phone's rule says of itself: Cisco's default HTTP_User_Agent_Name
UA = "Cisco-CP-8841-3PCC/12.0.1 ({mac})"


@dataclass
class Served:
    server: Server
    cli: Operator
    pki: Pki
    tmp: Path

    def curl(self, path: str, *args: str, https: bool = False, mac: str = DESK) -> tuple[int, bytes]:
        """``curl`` as an operator (or a phone's HTTP stack) would: (status, body)."""
        if https:
            url = f"https://127.0.0.1:{self.server.profile_tls_port}{path}"
            args = ("--cacert", str(self.pki.ca_path), *args)
        else:
            url = f"http://127.0.0.1:{self.server.profile_port}{path}"
        out = self.tmp / "body"
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "15", "-A", UA.format(mac=mac), "-o", str(out),
             "-w", "%{http_code}", *args, url],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return int(done.stdout), out.read_bytes()

    def logged(self, text: str) -> list[str]:
        return [line for line in self.server.log if text in line]

    def wait_logged(self, text: str) -> list[str]:
        """The log lines with ``text``, waiting for the first (the log is read by a thread)."""
        deadline = time.monotonic() + 10
        while not (found := self.logged(text)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert found, f"no log line with {text!r}:\n{''.join(self.server.log)}"
        return found


@pytest.fixture
def served(db_url: str, cli: Operator, tmp_path: Path) -> Iterator[Served]:
    """The default ``acs serve`` (no --profile-auth), HTTPS with client certificates, TFTP, and the
    default profile for phones it does not know."""
    (tmp_path / "inventory.csv").write_text(INVENTORY)
    (tmp_path / "base.xml").write_text(BASE)
    cli("device", "import", str(tmp_path / "inventory.csv"))
    cli("profile", "create", "base", str(tmp_path / "base.xml"))
    cli("profile", "assign", "base", "--default")
    result = CliRunner().invoke(
        main,
        ["profile", "key", "set", "--device", KEYED, "--cbc", "--db", cli.db_url],
        input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    pki = Pki(tmp_path)
    server = start_server(
        cli.db_url,
        *AUTH,
        "--tls-cert", str(pki.server()),
        "--tls-client-ca", str(pki.ca_path),
        "--tftp-port", "0",
        "--profile-unknown", "default",
    )  # fmt: skip
    yield Served(server, cli, pki, tmp_path)
    server.stop()


def values(body: bytes) -> dict[str, str]:
    parsed = flatprofile.parse(body)
    assert parsed.problems == []
    return parsed.values()


def test_a_plain_profile_goes_to_no_one_who_proved_nothing(served: Served) -> None:
    assert not served.logged("profile authentication is OFF")
    status, body = served.curl(f"/{DESK}.cfg")
    assert status == 403
    assert body.startswith(
        b"device 00562B-CP-8841-3PCC-FCH2233A1B2's profile holds its passwords: it goes in clear only to a "
        b"phone that authenticates, else encrypted"
    )
    assert b"s3cret" not in body
    # over HTTPS without a certificate, by the serial number, by the model's name: the same
    assert served.curl(f"/{DESK}.cfg", https=True)[0] == 403
    assert served.curl("/FCH2233A1B2.xml")[0] == 403
    assert served.curl("/8841.xml")[0] == 403
    # TFTP cannot authenticate: an access violation that says why
    answer = tftp_get(served.server.tftp_port, f"{DESK}.cfg", served.tmp / "desk.cfg")
    assert answer.startswith("Error code 2: device 00562B-CP-8841-3PCC-FCH2233A1B2's profile holds")
    assert not (served.tmp / "desk.cfg").exists() or b"s3cret" not in (served.tmp / "desk.cfg").read_bytes()
    # nothing the requester told is kept
    shown = served.cli.device(DESK)
    assert (shown["ip"], shown["product_class"], shown["last_profile_fetch"]) == (None, "CP-8841-3PCC", None)
    # the operator is told what to do, at WARNING
    (line, *_) = served.wait_logged(f"profile /{DESK}.cfg from 127.0.0.1 refused")
    assert " WARNING acs.web.profiles: " in line
    assert (
        "give the phone credentials of its own (acs device credentials; --uid/--pwd in its Profile_Rule)"
        in line
    )
    assert "or a key (acs profile key set; [--key ...] in its rule)" in line
    (line, *_) = served.wait_logged(f"TFTP: profile {DESK}.cfg from 127.0.0.1 refused")
    assert " WARNING acs.web.tftp: " in line


def test_the_phone_s_credentials_get_it_in_clear(served: Served) -> None:
    """Profile_Rule ``[--uid phone4 --pwd pw4-s3cret]http://acs:7567/$MA.cfg``: curl's Digest."""
    assert served.curl(f"/{LOCKED}.cfg", mac=LOCKED)[0] == 401
    status, body = served.curl(f"/{LOCKED}.cfg", "--digest", "-u", "phone4:pw4-s3cret", mac=LOCKED)
    assert status == 200
    assert values(body)["Password_1_"] == "sip-s3cret"
    shown = served.cli.device(LOCKED)
    assert (shown["ip"], shown["software_version"]) == ("127.0.0.1", "12.0.1")  # what it told is kept
    status, _ = served.curl(f"/{LOCKED}.cfg", "--digest", "-u", "phone4:wrong", mac=LOCKED)
    assert status == 401
    assert served.wait_logged("profile fetch: authentication failed for user 'phone4' from 127.0.0.1")
    # another phone's credentials do not open this one's profile
    assert served.curl(f"/{DESK}.cfg", "--digest", "-u", "phone4:pw4-s3cret")[0] == 403


def test_a_keyed_profile_goes_encrypted_to_anyone(served: Served) -> None:
    """Profile_Rule ``[--key SecretPhrase1234]http://acs:7567/$MA.cfg``, over HTTP and TFTP."""
    status, body = served.curl(f"/{KEYED}.cfg", mac=KEYED)
    assert status == 200 and body.startswith(b"Salted__") and b"s3cret" not in body
    decrypted = openssl_decrypt(body, PASSPHRASE, "sha256", served.tmp)  # 12.0.1: SHA-256
    assert decrypted.returncode == 0, decrypted.stderr
    assert values(decrypted.stdout)["Station_Name"] == f"desk-{KEYED}"
    target = served.tmp / "keyed.enc"
    assert tftp_get(served.server.tftp_port, f"{KEYED}.cfg", target) == ""
    over_tftp = openssl_decrypt(target.read_bytes(), PASSPHRASE, "sha256", served.tmp)
    assert over_tftp.stdout == decrypted.stdout
    shown = served.cli.device(KEYED)
    assert shown["last_profile_fetch"] is not None  # it was fetched ...
    assert (shown["ip"], shown["software_version"]) == (None, None)  # ... by someone who proved nothing


def test_a_client_certificate_that_names_the_phone_gets_it_in_clear(served: Served) -> None:
    """HTTPS with the phone's certificate (Cisco MPP's subject: OU=model, L=serial, S=MAC), by curl."""
    mine = served.pki.openssl_client("desk.pem", f"/OU=CP-8841-3PCC/L=FCH2233A1B2/ST={DESK}")
    status, body = served.curl(f"/{DESK}.cfg", "--cert", str(mine), https=True)
    assert status == 200 and values(body)["Admin_Password"] == "admin-s3cret"
    theirs = served.pki.openssl_client("other.pem", f"/OU=CP-8841-3PCC/L=FCH2233A1B5/ST={KEYED}")
    assert served.curl(f"/{DESK}.cfg", "--cert", str(theirs), https=True) == (
        403,
        b"the client certificate names another device\n",
    )
    # an unknown phone gets the default profile only for a certificate that names its MAC
    assert served.curl(f"/{STRANGER}.cfg", mac=STRANGER)[0] == 403
    assert served.curl(f"/{STRANGER}.cfg", "--cert", str(theirs), https=True, mac=STRANGER)[0] == 403
    mic = served.pki.openssl_client("mic.pem", f"/CN=CP-8841-3PCC-SEP{STRANGER.upper()}")
    status, body = served.curl(f"/{STRANGER}.cfg", "--cert", str(mic), https=True, mac=STRANGER)
    assert status == 200 and values(body)["Station_Name"] == f"desk-{STRANGER}"


def test_refusals_are_logged_at_a_bounded_rate(served: Served) -> None:
    for _ in range(3 * LOG_BURST):
        assert served.curl(f"/{DESK}.cfg")[0] == 403
    served.server.stop()  # the lines held back are counted when the server stops
    (counted,) = served.wait_logged("more like it")
    assert len(served.logged(f"profile /{DESK}.cfg from 127.0.0.1 refused")) == LOG_BURST + 1
    assert f"(and {2 * LOG_BURST} more like it in the last 10 s)" in counted


def test_profile_auth_none_serves_anyone_and_says_so_at_start(
    db_url: str, cli: Operator, tmp_path: Path
) -> None:
    (tmp_path / "inventory.csv").write_text(INVENTORY)
    (tmp_path / "base.xml").write_text(BASE)
    cli("device", "import", str(tmp_path / "inventory.csv"))
    cli("profile", "create", "base", str(tmp_path / "base.xml"))
    cli("profile", "assign", "base", "--default")
    server = start_server(db_url, *AUTH, "--profile-auth", "none", "--tftp-port", "0")
    try:
        (warning,) = [line for line in server.log if "profile authentication is OFF" in line]
        assert (
            " WARNING acs: profile authentication is OFF (--profile-auth none): anyone who reaches the "
            in (warning)
        )
        assert "port or TFTP gets a known phone's profile in clear" in warning
        lab = Served(server, cli, Pki(tmp_path), tmp_path)
        status, body = lab.curl(f"/{DESK}.cfg")
        assert status == 200 and values(body)["Password_1_"] == "sip-s3cret"
        assert tftp_get(server.tftp_port, f"{DESK}.cfg", tmp_path / "lab.cfg") == ""
        assert (tmp_path / "lab.cfg").read_bytes() == body
        assert lab.curl(f"/{LOCKED}.cfg", mac=LOCKED)[0] == 401  # its own credentials still asked for
    finally:
        server.stop()
