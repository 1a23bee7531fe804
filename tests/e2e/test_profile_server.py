"""The profile server of the real ``acs serve``: phones that resync by Profile_Rule over HTTP and TFTP.

Phones are pre-provisioned with ``acs device import`` and given profiles with ``acs
profile``, as an operator does; they fetch over a real socket with the User-Agent Cisco
firmware sends, through ``http.client`` (every status as it comes), ``urllib``'s Digest
client, Debian's ``tftp`` (tftp-hpa) and, for encrypted profiles, the real ``openssl``
command and ``http_ece`` (an RFC 8188 implementation that is not ours). SQLite and
PostgreSQL. Tests about which phone and which status run with ``--profile-auth none``
(profiles in clear to anyone, as a lab has it); who gets a profile in clear by default is
``test_profile_auth.py``'s.
"""

from __future__ import annotations

import gzip
import http.client
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import http_ece
import pytest
from click.testing import CliRunner

from acs.cli import main
from acs.provisioning import flatprofile
from tests.e2e.conftest import AUTH, Acs, Operator, new_phone
from tests.web.conftest import Server, start_server

MAC, OTHER, LOCKED = "00562b043615", "00562b043616", "00562b043617"
UA = f"Cisco-CP-8841-3PCC/12.0.1 ({MAC})"
INVENTORY = (
    "mac,serial,model,group,username,password\n"
    f"{MAC},FCH2233A1B2,CP-8841-3PCC,sales,,\n"
    f"{OTHER},FCH2233A1B3,CP-8841-3PCC,sales,,\n"
    f"{LOCKED},FCH2233A1B4,CP-7841-3PCC,,phone4,pw4-s3cret\n"
)
BASE = """<flat-profile>
  <Station_Name ua="rw">desk-$MA</Station_Name>
  <Primary_NTP_Server ua="na">ntp.example.net</Primary_NTP_Server>
  <Profile_Rule ua="na">http://acs.example.net:7567/$MA.cfg</Profile_Rule>
</flat-profile>
"""
SALES = """<flat-profile>
  <Proxy_1_ ua="na">sip.example.net:5070</Proxy_1_>
  <Dial_Plan_1_ ua="na">(&lt;9:&gt;xx.|*xx)</Dial_Plan_1_>
</flat-profile>
"""


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    user_agent: str | None = UA,
    body: bytes | None = None,
    **headers: str,
) -> Response:
    """One HTTP request to the profile server, nothing followed or retried: the status as a phone sees it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        if user_agent is not None:
            sent["User-Agent"] = user_agent
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        conn.close()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def start(db_url: str, cli: Operator, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``acs serve`` with the phones of INVENTORY imported and BASE (everyone) + SALES (tag) assigned."""
    started: list[Server] = []
    cli("device", "import", write(tmp_path, "inventory.csv", INVENTORY))
    cli("profile", "create", "base", write(tmp_path, "base.xml", BASE))
    cli("profile", "assign", "base", "--default")
    cli("profile", "create", "sales", write(tmp_path, "sales.xml", SALES))
    cli("profile", "assign", "sales", "--tag", "sales")

    def run(*args: str) -> Server:
        server = start_server(cli.db_url, *AUTH, *args)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def errors(server: Server) -> list[str]:
    return [line for line in server.log if "Traceback" in line or " ERROR " in line]


def test_each_status_puts_the_phone_in_the_right_branch(start, cli):
    server = start("--profile-auth", "none")
    port = server.profile_port
    assert port is not None
    assert any(
        " WARNING acs: profile authentication is OFF (--profile-auth none): anyone who reaches the profile "
        "port gets a known phone's profile in clear, with its SIP and admin passwords; for a lab only" in line
        for line in server.log
    )

    # 200: the profile, as the effective profile the operator sees
    ok = request(port, f"/{MAC}.cfg")
    assert ok.status == 200
    assert ok.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert int(ok.headers["Content-Length"]) == len(ok.body)
    fetched = flatprofile.parse(ok.body)
    effective = flatprofile.parse(cli("profile", "show", "--device", MAC, "--show-secrets").encode())
    assert fetched.problems == []
    assert fetched.values() == effective.values()
    assert fetched.values()["Station_Name"] == f"desk-{MAC}"  # macros expanded for the phone
    assert fetched.values()["Dial_Plan_1_"] == "(<9:>xx.|*xx)"
    # the same profile under the other names phones are given: /Cisco/$MAU.cfg, /$PSN.xml (by UA), /$SN.xml
    assert request(port, f"/Cisco/{MAC.upper()}.cfg").body == ok.body
    assert request(port, "/8841.xml").body == ok.body
    assert request(port, "/FCH2233A1B2.xml", user_agent=None).body == ok.body
    # POST (Profile_Rule [--post a]) and HEAD are answered as GET is
    assert request(port, f"/{MAC}.cfg", method="POST", body=b"GPP_A contents").body == ok.body
    head = request(port, f"/{MAC}.cfg", method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", str(len(ok.body)))
    # gzip when asked
    zipped = request(port, f"/{MAC}.cfg", Accept_Encoding="gzip")
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == ok.body

    # 404: file not found, for a phone the ACS does not know
    unknown = request(port, "/00562b999999.cfg", user_agent="Cisco-CP-8841-3PCC/12.0.1 (00562b999999)")
    assert unknown.status == 404
    assert b"no phone known by '00562b999999'" in unknown.body

    # 301/302: a phone moved to another server retries there at once
    cli("device", "move", OTHER, "https://prov2.example.net:8443/")
    moved = request(port, f"/Cisco/{OTHER}.cfg", user_agent=None)
    assert (moved.status, moved.headers["Location"]) == (
        301,
        f"https://prov2.example.net:8443/Cisco/{OTHER}.cfg",
    )
    cli("device", "move", OTHER, "http://prov2.example.net/x.xml", "--temporary")
    assert request(port, f"/{OTHER}.cfg").status == 302
    cli("device", "move", OTHER, "--clear")
    assert request(port, f"/{OTHER}.cfg").status == 200
    refused = cli.run("device", "move", OTHER, "tftp://prov2/")
    assert refused.exit_code == 2 and "not an http:// or https:// URL" in refused.output

    # 401: a phone with credentials of its own answers a Digest challenge (a real Digest client)
    challenge = request(port, f"/{LOCKED}.cfg")
    assert challenge.status == 401
    assert challenge.headers["WWW-Authenticate"].startswith('Digest realm="acs", qop="auth"')
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, f"http://127.0.0.1:{port}/", "phone4", "pw4-s3cret")
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))
    answered = opener.open(urllib.request.Request(f"http://127.0.0.1:{port}/{LOCKED}.cfg"), timeout=15)
    assert answered.status == 200
    assert flatprofile.parse(answered.read()).values()["Station_Name"] == f"desk-{LOCKED}"
    passwords.add_password(None, f"http://127.0.0.1:{port}/", "phone4", "wrong")
    wrong = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))
    with pytest.raises(urllib.error.HTTPError) as refused_auth:
        wrong.open(f"http://127.0.0.1:{port}/{LOCKED}.cfg", timeout=15)
    assert refused_auth.value.code == 401
    assert any("authentication failed for user 'phone4'" in line for line in server.log)
    assert not any("pw4-s3cret" in line for line in server.log)  # secrets never logged
    assert errors(server) == []


def test_the_user_agent_updates_the_device_record(start, cli):
    server = start("--profile-auth", "none")
    before = cli.device(MAC)
    assert (before["software_version"], before["ip"], before["last_profile_fetch"]) == (None, None, None)

    assert (
        request(
            server.profile_port, "/8841.xml", user_agent="Cisco-CP-8841-3PCC/12.0.1 (00562b043615)"
        ).status
        == 200
    )

    after = cli.device(MAC)
    assert (after["product_class"], after["software_version"], after["ip"]) == (
        "CP-8841-3PCC",
        "12.0.1",
        "127.0.0.1",
    )
    assert after["manufacturer"] == "Cisco"
    assert after["last_profile_fetch"] is not None
    assert "last profile fetch" in cli("device", "show", MAC)


def test_unknown_phones_get_the_default_profile_by_setting(start, cli, tmp_path):
    server = start("--profile-unknown", "default", "--profile-auth", "none")
    stranger = "00562b0000ff"
    got = request(server.profile_port, "/8841.xml", user_agent=f"Cisco-CP-8841-3PCC/12.0.1 ({stranger})")
    assert got.status == 200
    values = flatprofile.parse(got.body).values()
    assert values["Station_Name"] == f"desk-{stranger}"  # the default layer, with the phone's own macros
    assert "Proxy_1_" not in values  # no tag layer: the ACS knows no tags of a phone it does not know
    assert cli.json("device", "list") and stranger not in {d["mac"] for d in cli.json("device", "list")}
    # nothing assigned to every phone: nothing to serve, file not found
    cli("profile", "unassign", "base", "--default")
    assert (
        request(server.profile_port, "/8841.xml", user_agent=f"Cisco-CP-8841-3PCC/12.0.1 ({stranger})").status
        == 404
    )


def tftp_client() -> str:
    path = shutil.which("tftp")
    version = (
        subprocess.run([path or "tftp", "-V"], capture_output=True, text=True, check=False) if path else None
    )
    if version is None or "tftp-hpa" not in version.stdout + version.stderr:
        pytest.fail(
            "the TFTP tests need a real client, Debian's tftp-hpa: `apt-get install tftp-hpa` "
            "(tox installs it by itself: .ci/tftp-client)",
            pytrace=False,
        )
    return path  # type: ignore[return-value]


def tftp_get(port: int, name: str, target: Path, mode: str = "octet") -> str:
    """``tftp 127.0.0.1 PORT -m MODE -c get NAME TARGET``; what it printed (tftp-hpa exits 0 on errors)."""
    done = subprocess.run(
        [tftp_client(), "127.0.0.1", str(port), "-m", mode, "-c", "get", name, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def test_a_real_tftp_client_fetches_a_profile(start, tmp_path):
    server = start("--tftp-port", "0", "--profile-auth", "none")
    assert server.tftp_port is not None
    over_http = request(server.profile_port, f"/{MAC}.cfg", user_agent=None).body

    for mode in ("octet", "netascii"):
        target = tmp_path / f"{mode}.cfg"
        assert tftp_get(server.tftp_port, f"{MAC}.cfg", target, mode) == ""
        assert target.read_bytes() == over_http, mode

    assert "Error code 1: no phone known by '00562b999999'" in tftp_get(
        server.tftp_port, "00562b999999.cfg", tmp_path / "x"
    )
    assert "Error code 2" in tftp_get(server.tftp_port, f"{LOCKED}.cfg", tmp_path / "y")  # has credentials
    put = subprocess.run(
        [
            tftp_client(),
            "127.0.0.1",
            str(server.tftp_port),
            "-c",
            "put",
            str(tmp_path / "octet.cfg"),
            "evil.cfg",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Error code 2: read only" in put.stdout + put.stderr
    assert errors(server) == []


def openssl_decrypt(
    data: bytes, passphrase: str, digest: str, tmp_path: Path
) -> subprocess.CompletedProcess[bytes]:
    source = tmp_path / "profile.enc"
    source.write_bytes(data)
    return subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-md", digest, "-k", passphrase, "-in", str(source)],
        capture_output=True,
        timeout=30,
        check=False,
    )


def set_key(cli: Operator, kind: str, secret: str) -> None:
    result = CliRunner().invoke(
        main,
        ["profile", "key", "set", "--device", MAC, kind, "--db", cli.db_url],
        input=f"{secret}\n{secret}\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output


def digest_get(port: int, path: str, username: str, password: str) -> bytes:
    """GET with a real Digest client (``urllib``'s): it answers the 401 challenge."""
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, f"http://127.0.0.1:{port}/", username, password)
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(passwords))
    with opener.open(urllib.request.Request(f"http://127.0.0.1:{port}{path}"), timeout=15) as answer:
        assert answer.status == 200
        return answer.read()


def test_encrypted_profiles_decrypt_with_openssl_and_an_rfc8188_decoder(start, cli, tmp_path):
    """With --profile-auth required (the default): a keyed profile goes encrypted to whoever asks."""
    server = start("--tftp-port", "0")
    port = server.profile_port
    assert request(port, f"/{MAC}.cfg").status == 403  # no key yet: in clear to the phone's credentials only
    cli("device", "credentials", MAC, "--username", "desk-1", "--password", "desk-1-pw")
    plain = digest_get(port, f"/{MAC}.cfg", "desk-1", "desk-1-pw")
    assert flatprofile.parse(plain).values()["Station_Name"] == f"desk-{MAC}"
    cli("device", "credentials", MAC, "--clear")  # TFTP serves no phone with credentials

    set_key(cli, "--cbc", "SecretPhrase1234")  # the phone's Profile_Rule: [--key SecretPhrase1234] http://...
    cbc = request(port, f"/{MAC}.cfg", Accept_Encoding="gzip")
    assert cbc.status == 200
    assert cbc.headers["Content-Type"] == "application/octet-stream"
    assert cbc.headers["Content-Encoding"] is None
    assert cbc.body.startswith(b"Salted__")
    decrypted = openssl_decrypt(cbc.body, "SecretPhrase1234", "sha256", tmp_path)  # firmware 12.0.1: SHA-256
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == plain
    wrong = openssl_decrypt(cbc.body, "NotThePhrase", "sha256", tmp_path)
    assert wrong.returncode != 0 and b"bad decrypt" in wrong.stderr
    # older firmware derives the key with MD5: a rule per model
    cli("profile", "key", "digest", "md5", "--model", "CP-8841-3PCC")
    md5 = request(port, f"/{MAC}.cfg")
    assert openssl_decrypt(md5.body, "SecretPhrase1234", "md5", tmp_path).stdout == plain
    assert openssl_decrypt(md5.body, "SecretPhrase1234", "sha256", tmp_path).returncode != 0
    # the same over TFTP
    target = tmp_path / "tftp.enc"
    assert tftp_get(server.tftp_port, f"{MAC}.cfg", target) == ""
    assert openssl_decrypt(target.read_bytes(), "SecretPhrase1234", "md5", tmp_path).stdout == plain

    cli("profile", "key", "clear", "--device", MAC)
    set_key(cli, "--gcm", "IKM-of-this-phone")  # IKM_HTTP_Encrypt_Content, no --key in the rule
    gcm = request(port, f"/{MAC}.cfg")
    assert gcm.status == 200
    assert gcm.headers["Content-Encoding"] == "aes128gcm"
    assert http_ece.decrypt(gcm.body, key=b"IKM-of-this-phone", version="aes128gcm") == plain
    with pytest.raises(http_ece.ECEException):
        http_ece.decrypt(gcm.body, key=b"another IKM", version="aes128gcm")
    refused = tftp_get(server.tftp_port, f"{MAC}.cfg", tmp_path / "z")
    assert refused.startswith("Error code 2: ") and "aes128gcm needs HTTP" in refused
    assert errors(server) == []


def test_a_phone_managed_over_tr069_fetches_the_values_tr069_set(serve: Callable[..., Acs], tmp_path: Path):
    """One source of truth: what SetParameterValues put on the phone is what its $MA.cfg says."""
    acs = serve(discovery=True)
    phone = new_phone("CP-8841-3PCC", "FCH2240ABCD", "00562b0a0b0c")
    acs.session(phone)  # first contact: the ACS discovers the phone's tree
    cli = acs.cli
    cli("profile", "create", "base", write(tmp_path, "base.xml", BASE))
    cli("profile", "assign", "base", "--default")
    cli(
        "profile",
        "create",
        "alice",
        write(tmp_path, "alice.xml", SALES.replace("<Dial", "<User_ID_1_>1001</User_ID_1_><Dial")),
    )
    cli("profile", "assign", "alice", "--device", phone.mac)
    acs.session(phone)  # the SetParameterValues
    assert cli("profile", "diff", phone.mac).startswith(f"{phone.device_id} matches its profile")

    # its profile goes in clear to its own credentials (--profile-auth required, the default)
    assert request(acs.server.profile_port, f"/{phone.mac}.cfg", user_agent=phone.user_agent).status == 403
    cli("device", "credentials", phone.mac, "--username", "alice-phone", "--password", "alice-pw")
    got = digest_get(acs.server.profile_port, f"/{phone.mac}.cfg", "alice-phone", "alice-pw")

    fetched = flatprofile.parse(got).values()
    effective = flatprofile.parse(cli("profile", "show", "--device", phone.mac, "--show-secrets").encode())
    assert fetched == effective.values()
    on_phone = flatprofile.parse(
        cli("device", "show", phone.mac, "--xml", "--show-secrets").encode()
    ).values()
    set_over_tr069 = {"Primary_NTP_Server", "Proxy_1_", "User_ID_1_"}
    assert set_over_tr069 <= fetched.keys() & on_phone.keys()
    for name in fetched.keys() & on_phone.keys():
        assert fetched[name] == on_phone[name], name
    assert cli.device(phone.mac)["software_version"] != "12.0.1"  # the Inform's SoftwareVersion stays
    assert acs.errors() == []


def test_over_https_with_workers_a_phone_with_credentials_may_use_basic(start, tmp_path):
    """--tls-cert adds the profile server's HTTPS port; in TLS, Basic is accepted (phones' --uid/--pwd)."""
    import base64
    import ssl

    from tests.web.test_durability import _self_signed

    server = start("--tls-cert", str(_self_signed(tmp_path)), "--workers", "2")
    assert server.profile_tls_port is not None
    context = ssl.create_default_context(cafile=str(tmp_path / "acs.pem"))
    context.check_hostname = False
    conn = http.client.HTTPSConnection("127.0.0.1", server.profile_tls_port, timeout=15, context=context)
    try:
        conn.request("GET", f"/{LOCKED}.cfg")
        challenge = conn.getresponse()
        challenge.read()
        assert challenge.status == 401
        assert any(c.startswith("Basic") for c in challenge.headers.get_all("WWW-Authenticate"))
        basic = "Basic " + base64.b64encode(b"phone4:pw4-s3cret").decode()
        conn.request("GET", f"/{LOCKED}.cfg", headers={"Authorization": basic})
        answer = conn.getresponse()
        assert answer.status == 200
        assert flatprofile.parse(answer.read()).values()["Station_Name"] == f"desk-{LOCKED}"
    finally:
        conn.close()
    assert errors(server) == []


def test_an_imported_phone_is_the_same_device_when_it_first_informs(
    serve: Callable[..., Acs], tmp_path: Path
):
    """The import gives each device the id its Inform will give: its resyncs and its CWMP
    sessions land on one record, with the tags and credentials of the inventory."""
    acs = serve()
    phone = new_phone("CP-7841-3PCC", "FCH2301AAAA", "00562b0c0d0e")
    inventory = f"mac,serial,model,group\n{phone.mac},FCH2301AAAA,CP-7841-3PCC,warehouse-7\n"
    acs.cli("device", "import", write(tmp_path, "inventory.csv", inventory))
    assert (
        request(acs.server.profile_port, "/7841.xml", user_agent=phone.user_agent).status == 404
    )  # no profile yet

    acs.session(phone)

    (device,) = acs.cli.json("device", "list")
    assert device["id"] == phone.device_id
    shown = acs.cli.device(phone.mac)
    assert shown["tags"] == ["warehouse-7"]
    assert shown["last_inform"] is not None and shown["last_profile_fetch"] is not None
