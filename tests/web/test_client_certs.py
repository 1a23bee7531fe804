"""TLS client certificates (``--tls-client-ca``) on the real ``acs serve``: a certificate that names
the device authenticates it, on the CWMP port and on the profile server; one naming another device
gets nothing. With real ``curl --cert``, Python's ``ssl`` and the simulated phone."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from acs import cwmp
from acs.cwmp import rpc
from acs.testing import SimulatedPhone, run_session
from acs.testing.client import tls_context
from tests.cwmp_messages import inform
from tests.web.conftest import ACS, CPE_PASSWORD, CPE_USERNAME, Server, start_server
from tests.web.pki import Pki, name
from tests.web.test_serve import BOOT_PARAMS, DEVICE

AUTH = ("--cpe-username", CPE_USERNAME, "--cpe-password", CPE_PASSWORD)
MAC = "00562b043615"  # BOOT_PARAMS' Device.LAN.MACAddress
SERIAL = "FCH2233A1B2"


@dataclass
class Tls:
    server: Server
    pki: Pki

    def post(
        self, body: bytes, cert: Path | None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        """One POST on a new connection to the CWMP HTTPS port: (status, body, Set-Cookie)."""
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.server.tls_port, timeout=15, context=self.context(cert)
        )
        try:
            conn.request("POST", "/", body, headers or {})
            r = conn.getresponse()
            return r.status, r.read(), r.getheader("Set-Cookie", "")
        finally:
            conn.close()

    def context(self, cert: Path | None) -> ssl.SSLContext:
        return tls_context(str(self.pki.ca_path), str(cert) if cert else None)

    def logged(self, text: str) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if found := [line for line in self.server.log if text in line]:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r}:\n{''.join(self.server.log)}")


@pytest.fixture
def tls(db_url: str, tmp_path: Path) -> Iterator[Tls]:
    pki = Pki(tmp_path)
    server = start_server(db_url, *AUTH, "--tls-cert", str(pki.server()), "--tls-client-ca", str(pki.ca_path))
    yield Tls(server, pki)
    server.stop()


def test_curl_with_a_certificate_naming_the_phone_runs_a_session_without_http_auth(
    tls: Tls, tmp_path: Path
) -> None:
    """Cisco MPP's certificate subject (OU=model, L=serial, S=MAC), made by the real openssl."""
    cert = tls.pki.openssl_client("mpp.pem", f"/OU=CP-7841-3PCC/L=88012BA01234/ST={MAC}")
    body = tmp_path / "inform.xml"
    body.write_bytes(inform("1 BOOT", params=BOOT_PARAMS))
    url = f"https://127.0.0.1:{tls.server.tls_port}/"
    jar = tmp_path / "cookies"

    def curl(data: str) -> tuple[str, bytes]:
        out = tmp_path / "out"
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "15", "--cacert", str(tls.pki.ca_path), "--cert", str(cert),
             "--data-binary", data, "-b", str(jar), "-c", str(jar), "-o", str(out), "-w", "%{http_code}",
             url],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout, out.read_bytes()

    status, answer = curl(f"@{body}")
    assert status == "200"
    assert isinstance(cwmp.parse(answer).body, rpc.InformResponse)
    assert curl("") == ("204", b"")
    assert "client certificates asked for, checked against" in "".join(tls.server.log)
    shown = subprocess.run(
        [ACS, "device", "show", DEVICE, "--db", tls.server.db_url], capture_output=True, text=True
    )
    assert shown.returncode == 0 and MAC in shown.stdout


@pytest.mark.parametrize(
    "subject",
    [
        {"CN": "SEP00562B043615"},
        {"CN": "CP-7841-3PCC-SEP00562B043615", "O": "Cisco Systems Inc."},
        {"CN": "00:56:2b:04:36:15"},
        {"CN": "0056.2b04.3615"},
        {"CN": "CP-7841", "serialNumber": f"PID:CP-7841-3PCC SN:{SERIAL}"},
        {"CN": DEVICE},
    ],
    ids=["SEP", "model-SEP", "colons", "dots", "Cisco-MIC-serialNumber", "device-id"],
)
def test_the_simulated_phone_with_a_certificate_naming_it_needs_no_password(
    tls: Tls, subject: dict[str, str]
) -> None:
    cert = tls.pki.client("phone.pem", **subject)
    phone = SimulatedPhone("CP-7841-3PCC", SERIAL, MAC)  # no ManagementServer.Username/Password
    url = f"https://127.0.0.1:{tls.server.tls_port}/"
    log = run_session(phone, url, timeout=15, ssl_context=tls.context(cert))
    assert log.statuses == [200, 204]
    assert "Authorization" not in log.exchanges[0].request_headers


def test_a_mac_in_the_subject_alternative_name_names_the_phone(tls: Tls) -> None:
    cert = tls.pki.issue("san.pem", name(CN="phone"), san=[x509.DNSName(f"{MAC}.phones.example.net")])
    status, _, cookie = tls.post(inform("1 BOOT", params=BOOT_PARAMS), cert)
    assert status == 200 and cookie.startswith("session=")


def test_a_certificate_naming_another_device_gets_no_session(tls: Tls) -> None:
    cert = tls.pki.client("other.pem", CN="SEP00562B0436FF")
    status, body, cookie = tls.post(inform("1 BOOT", params=BOOT_PARAMS), cert)
    assert (status, body, cookie) == (403, b"the client certificate names another device\n", "")
    line = tls.logged("presented a client certificate for another device")
    assert DEVICE in line and "CN=SEP00562B0436FF" in line
    # nor do credentials help it: the certificate speaks for the client
    status, _, _ = tls.post(inform("1 BOOT", params=BOOT_PARAMS), cert, {"Authorization": "Digest x"})
    assert status == 403


def test_a_certificate_cannot_claim_a_device_by_the_mac_its_inform_reports(tls: Tls) -> None:
    """The MAC on record counts, not the one the Inform claims: a phone's certificate opens no
    session for another phone whose MAC the ACS knows."""
    phone = SimulatedPhone("CP-7841-3PCC", SERIAL, MAC, username=CPE_USERNAME, password=CPE_PASSWORD)
    assert run_session(phone, f"https://127.0.0.1:{tls.server.tls_port}/", timeout=15,
                       ssl_context=tls.context(None)).statuses == [401, 200, 204]  # fmt: skip
    intruder = tls.pki.client("intruder.pem", CN="SEP00562B0436FF")
    claimed = BOOT_PARAMS | {"Device.LAN.MACAddress": "00:56:2b:04:36:ff"}
    status, _, _ = tls.post(inform("1 BOOT", params=claimed), intruder)
    assert status == 403


def test_devices_without_a_mac_are_named_by_serial_or_device_id(tls: Tls) -> None:
    by_id = tls.pki.client("cpe1.pem", CN="00562B-CP-7841-3PCC-CPE0001")
    by_serial = tls.pki.client("cpe2.pem", CN="CPE0002")
    assert tls.post(inform("1 BOOT", serial="CPE0001"), by_id)[0] == 200
    assert tls.post(inform("1 BOOT", serial="CPE0002"), by_serial)[0] == 200
    assert tls.post(inform("1 BOOT", serial="CPE0003"), by_serial)[0] == 403


def test_a_mac_certificate_for_a_device_whose_mac_is_unknown_falls_back_to_http_auth(tls: Tls) -> None:
    """Nothing to compare the MAC with (a new device whose Inform carries none): the certificate
    proves nothing either way, and the device authenticates as it would without one."""
    cert = tls.pki.client("phone.pem", CN=f"SEP{MAC.upper()}")
    status, _, _ = tls.post(inform("1 BOOT"), cert)
    assert status == 401


def test_clients_without_a_certificate_still_use_digest_and_foreign_certificates_are_refused(
    tls: Tls, tmp_path: Path
) -> None:
    phone = SimulatedPhone("CP-7841-3PCC", SERIAL, MAC, username=CPE_USERNAME, password=CPE_PASSWORD)
    url = f"https://127.0.0.1:{tls.server.tls_port}/"
    assert run_session(phone, url, timeout=15, ssl_context=tls.context(None)).statuses == [401, 200, 204]
    stranger = Pki(tmp_path, "stranger").client("foreign.pem", CN=f"SEP{MAC}")
    with pytest.raises(ssl.SSLError):
        tls.post(inform("1 BOOT", params=BOOT_PARAMS), stranger)


# --- the profile server ------------------------------------------------------------------------

LOCKED = "00562b043617"
PROFILE = '<flat-profile><Station_Name ua="rw">desk-$MA</Station_Name></flat-profile>\n'


@pytest.fixture
def profiles(db_url: str, tmp_path: Path) -> Iterator[Tls]:
    """A phone with credentials of its own (its profile needs them) and a default profile."""
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        f"mac,serial,model,username,password\n{LOCKED},FCH2233A1B4,CP-7841-3PCC,phone4,pw4-s3cret\n"
    )
    profile = tmp_path / "base.xml"
    profile.write_text(PROFILE)
    for command in (
        ["device", "import", str(inventory)],
        ["profile", "create", "base", str(profile)],
        ["profile", "assign", "base", "--default"],
    ):
        subprocess.run([ACS, *command, "--db", db_url], check=True, capture_output=True)
    pki = Pki(tmp_path)
    server = start_server(db_url, *AUTH, "--tls-cert", str(pki.server()), "--tls-client-ca", str(pki.ca_path))
    yield Tls(server, pki)
    server.stop()


def fetch(tls: Tls, cert: Path | None) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(
        "127.0.0.1", tls.server.profile_tls_port, timeout=15, context=tls.context(cert)
    )
    try:
        conn.request("GET", f"/{LOCKED}.cfg")
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_the_profile_server_gives_a_phone_its_profile_for_a_certificate_naming_it(
    profiles: Tls, tmp_path: Path
) -> None:
    assert fetch(profiles, None)[0] == 401  # its credentials, or ...
    status, body = fetch(profiles, profiles.pki.client("locked.pem", CN=f"SEP{LOCKED.upper()}"))
    assert (status, b"desk-00562b043617" in body) == (200, True)  # ... a certificate naming it
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "15", "--cacert", str(profiles.pki.ca_path),
         "--cert", str(tmp_path / "locked.pem"), "-w", "\n%{http_code}",
         f"https://127.0.0.1:{profiles.server.profile_tls_port}/{LOCKED}.cfg"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.stdout.endswith("\n200") and "desk-00562b043617" in done.stdout
    status, body = fetch(profiles, profiles.pki.client("other.pem", CN="SEP00562B0436FF"))
    assert (status, body) == (403, b"the client certificate names another device\n")
    assert "with a client certificate for another device (CN=SEP00562B0436FF)" in profiles.logged(
        "profile fetch for"
    )
