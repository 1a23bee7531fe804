"""The profile server's decisions, without a socket: which phone, which status (Cisco's table 2), which bytes.

The rendering is injected here (the profile itself is the provisioning store's); what
is checked is what the server does around it, on SQLite and PostgreSQL. Most tests are
about which phone and which status, with ``--profile-auth none`` (``auth="none"``); the
last ones are about ``required``, the default: who gets a profile in clear.
"""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from acs.provisioning import crypto
from acs.provisioning.store import ProfileKey
from acs.store import devices, inventory
from acs.web.auth import Authenticator, digest_response, parse_authorization
from acs.web.profilebackend import Fetch, ProfileBackend, Rendered, accepts_gzip, redirect_location

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
MAC = "00562b043615"
DEVICE = "00562B-CP-8841-3PCC-FCH2233A1B2"
UA = f"Cisco-CP-8841-3PCC/12.0.1 ({MAC})"


def render(conn, device, known):
    """A stand-in profile naming whom it was made for; unknown phones get one only if they told a MAC."""
    if not known and not device["mac"]:
        return None
    who = device["id"] if known else f"unknown {device['mac']} {device['product_class']}"
    key = (
        ProfileKey("device", "x", passphrase="s3cret") if known and device["serial_number"] == "ENC" else None
    )
    return Rendered(f"<flat-profile><Station_Name>{who}</Station_Name></flat-profile>".encode(), key)


@pytest.fixture
def add_device(engine):
    def add(device_id=DEVICE, serial="FCH2233A1B2", mac=MAC, **values):
        with engine.begin() as conn:
            conn.execute(
                devices.insert().values(
                    **{"id": device_id, "oui": "00562B", "serial_number": serial, "mac": mac} | values
                )
            )

    return add


def backend(engine, **kwargs) -> ProfileBackend:
    """``auth="none"`` unless given: as ``acs serve --profile-auth none``."""
    return ProfileBackend(engine, render, clock=lambda: NOW, **({"auth": "none"} | kwargs))


def device(engine, key=DEVICE):
    with engine.connect() as conn:
        return inventory.get_device(conn, key)


@pytest.mark.parametrize(
    ("path", "agent"),
    [
        (f"/{MAC}.cfg", None),  # $MA.cfg
        (f"/Cisco/{MAC.upper()}.cfg", None),  # /Cisco/$MAU.cfg
        ("/8841.xml", UA),  # /$PSN.xml: the User-Agent's MAC says which phone
        ("/FCH2233A1B2.xml", None),  # /$SN.xml
    ],
)
def test_a_known_phone_gets_its_profile(engine, add_device, path, agent):
    add_device()
    reply = backend(engine).fetch(Fetch(path, user_agent=agent, remote_addr="192.0.2.7"))
    assert reply.status == 200, reply.reason
    assert reply.body == f"<flat-profile><Station_Name>{DEVICE}</Station_Name></flat-profile>".encode()
    assert reply.header("content-type") == "text/xml; charset=utf-8"
    assert reply.header("cache-control") == "no-store"


def test_the_user_agent_updates_the_device_record(engine, add_device):
    """A pre-provisioned phone, never seen over TR-069: its fetch tells model, firmware and address."""
    add_device(mac=None)  # imported by serial only
    reply = backend(engine).fetch(Fetch("/FCH2233A1B2.xml", user_agent=UA, remote_addr="192.0.2.7"))
    assert reply.status == 200
    seen = device(engine)
    assert (seen["mac"], seen["product_class"], seen["software_version"]) == (MAC, "CP-8841-3PCC", "12.0.1")
    assert (seen["manufacturer"], seen["ip"], seen["last_profile_fetch"]) == ("Cisco", "192.0.2.7", NOW)


def test_the_user_agent_does_not_overwrite_what_an_inform_reported(engine, add_device):
    add_device(
        product_class="CP-8841-3PCC",
        software_version="sip88xx.12-0-1MPP-1",
        last_inform=datetime(2026, 11, 1, tzinfo=UTC),
    )
    backend(engine).fetch(Fetch(f"/{MAC}.cfg", user_agent="Cisco-CP-8851-3PCC/11.0.1 (00562b043615)"))
    seen = device(engine)
    assert (seen["product_class"], seen["software_version"]) == ("CP-8841-3PCC", "sip88xx.12-0-1MPP-1")
    assert seen["last_profile_fetch"] == NOW


def test_an_unknown_phone_gets_404_file_not_found(engine, add_device):
    add_device()
    reply = backend(engine).fetch(Fetch("/00562b999999.cfg", user_agent=UA))  # the name's MAC counts
    assert reply.status == 404
    assert "no phone known by '00562b999999'" in reply.reason
    assert backend(engine).fetch(Fetch("/8841.xml", user_agent="curl/8")).status == 404
    assert backend(engine).fetch(Fetch("/")).status == 404


def test_unknown_phones_get_the_default_profile_by_setting(engine):
    reply = backend(engine, unknown="default").fetch(Fetch("/8841.xml", user_agent=UA))
    assert reply.status == 200
    assert (
        reply.body
        == b"<flat-profile><Station_Name>unknown 00562b043615 CP-8841-3PCC</Station_Name></flat-profile>"
    )
    with engine.connect() as conn:  # nothing recorded for a phone the ACS does not know
        assert conn.execute(sa.select(sa.func.count()).select_from(devices)).scalar() == 0
    # the renderer has no default for a phone that says nothing of itself: still file not found
    assert backend(engine, unknown="default").fetch(Fetch("/8841.xml")).status == 404


@pytest.mark.parametrize(
    ("status", "target", "location"),
    [
        (301, "https://prov2.example.net:8443/", f"https://prov2.example.net:8443/Cisco/{MAC}.cfg"),
        (302, "http://prov2.example.net/phones/x.xml", "http://prov2.example.net/phones/x.xml"),
    ],
)
def test_a_moved_phone_is_redirected(engine, add_device, status, target, location):
    add_device()
    with engine.begin() as conn:
        inventory.set_profile_redirect(conn, DEVICE, target, status)
    reply = backend(engine).fetch(Fetch(f"/Cisco/{MAC}.cfg", user_agent=UA))
    assert (reply.status, reply.header("location")) == (status, location)
    assert backend(engine).fetch(Fetch(f"{MAC}.cfg", scheme="tftp")).status == 403  # TFTP cannot redirect


@pytest.mark.parametrize("url", ["tftp://prov2/", "prov2.example.net", "http://"])
def test_a_redirect_a_phone_cannot_follow_is_refused(engine, add_device, url):
    add_device()
    with engine.begin() as conn, pytest.raises(ValueError, match="not an http:// or https:// URL"):
        inventory.set_profile_redirect(conn, DEVICE, url)


def _answer(challenge: str, username: str, password: str, uri: str) -> bytes:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    response = digest_response(
        username,
        password,
        "GET",
        uri,
        realm=params["realm"],
        nonce=params["nonce"],
        nc="00000001",
        cnonce="c0ffee",
    )
    return (
        f'Digest username="{username}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
        f'qop=auth, nc=00000001, cnonce="c0ffee", response="{response}", algorithm=MD5'
    ).encode()


def test_a_phone_with_credentials_answers_a_digest_challenge(engine, add_device):
    add_device(username="phone1", password="pw1")
    server = backend(engine, authenticator=Authenticator())
    path = f"/{MAC}.cfg"

    first = server.fetch(Fetch(path, user_agent=UA))
    assert first.status == 401  # the phone retries at once with its credentials
    challenge = first.header("www-authenticate")
    assert challenge is not None and challenge.startswith("Digest ")
    assert device(engine)["last_profile_fetch"] is None  # nothing recorded before it authenticates

    creds = parse_authorization(_answer(challenge, "phone1", "pw1", path))
    assert server.fetch(Fetch(path, user_agent=UA, credentials=creds)).status == 200
    assert device(engine)["last_profile_fetch"] == NOW

    wrong = parse_authorization(_answer(challenge, "phone1", "nope", path))
    assert server.fetch(Fetch(path, credentials=wrong)).status == 401
    other = parse_authorization(_answer(challenge, "phone2", "pw1", path))
    assert server.fetch(Fetch(path, credentials=other)).status == 401  # another phone's user name
    assert server.fetch(Fetch(f"{MAC}.cfg", scheme="tftp")).status == 403  # TFTP cannot authenticate
    assert backend(engine).fetch(Fetch(path)).status == 200  # --no-auth: no authenticator


def test_basic_on_plain_http_is_logged_as_refused_not_as_a_wrong_password(engine, add_device):
    """The line the shell logs (at a bounded rate, on the reactor: ``Reply.warning``)."""
    import base64

    add_device(username="phone1", password="pw1")
    basic = parse_authorization(b"Basic " + base64.b64encode(b"phone1:pw1"))
    server = backend(engine, authenticator=Authenticator())
    reply = server.fetch(Fetch(f"/{MAC}.cfg", credentials=basic))
    assert reply.status == 401
    assert [c.split()[0] for _, c in reply.headers] == ["Digest"]
    assert reply.cause == "basic refused"
    assert reply.warning == (
        f"profile fetch for {DEVICE} from None: HTTP Basic refused on plain HTTP (it would send the password "
        "in clear); enable --allow-basic, use the HTTPS port, or configure the CPE for Digest"
    )
    assert server.fetch(Fetch(f"/{MAC}.cfg", scheme="https", credentials=basic)).status == 200


def test_gzip_when_the_client_asks(engine, add_device):
    add_device()
    reply = backend(engine).fetch(Fetch(f"/{MAC}.cfg", accept_encoding="deflate, gzip;q=0.8"))
    assert reply.header("content-encoding") == "gzip"
    assert reply.header("vary") == "accept-encoding"
    assert gzip.decompress(reply.body).startswith(b"<flat-profile>")
    plain = backend(engine).fetch(Fetch(f"/{MAC}.cfg"))
    assert plain.header("content-encoding") is None and plain.body.startswith(b"<flat-profile>")


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        (None, False),
        ("br, *;q=0.1", True),
        ("gzip;q=zero", False),
    ],
)
def test_accept_encoding(header, gzipped):
    assert accepts_gzip(header) is gzipped


def test_an_encrypted_profile_is_sent_as_the_key_says(engine, add_device):
    add_device(serial="ENC")
    reply = backend(engine).fetch(Fetch(f"/{MAC}.cfg", accept_encoding="gzip"))
    assert reply.status == 200
    assert crypto.openssl_decrypt(reply.body, "s3cret").startswith(b"<flat-profile>")  # not gzipped
    assert reply.header("content-type") == "application/octet-stream"
    assert reply.header("content-encoding") is None


def test_redirect_location():
    assert redirect_location("http://new:7567/", "/Cisco/x.cfg") == "http://new:7567/Cisco/x.cfg"
    assert redirect_location("http://new/p/x.xml", "/Cisco/x.cfg") == "http://new/p/x.xml"


def test_a_mac_two_devices_share_is_told_apart_by_the_user_agent_s_model_or_served_to_neither(
    engine, add_device
):
    add_device(product_class="CP-8841-3PCC")
    twin = "00562B-CP-7841-3PCC-FCH7777TWIN"
    add_device(twin, serial="FCH7777TWIN", product_class="CP-7841-3PCC")  # its firmware reports the same MAC
    server = backend(engine)
    told = server.fetch(Fetch(f"/{MAC}.cfg", user_agent=f"Cisco-CP-7841-3PCC/12.0.1 ({MAC})"))
    assert told.status == 200 and twin.encode() in told.body
    told = server.fetch(Fetch("/8841.xml", user_agent=UA))
    assert told.status == 200 and DEVICE.encode() in told.body
    for agent in (None, f"Cisco-CP-6821-3PCC/12.0.1 ({MAC})"):
        refused = server.fetch(Fetch(f"/{MAC}.cfg", user_agent=agent))
        assert refused.status == 409 and refused.body == b""
        assert refused.reason == (
            f"{MAC} names devices {twin}, {DEVICE}, and the User-Agent does not say which: serving none"
        )
    assert device(engine, twin)["last_profile_fetch"] == NOW  # only the fetches that named one
    assert device(engine)["last_profile_fetch"] == NOW


# --- --profile-auth required (the default): who gets a profile in clear ------------------------------


def required(engine, **kwargs) -> ProfileBackend:
    """As ``acs serve`` builds it by default."""
    return ProfileBackend(engine, render, clock=lambda: NOW, authenticator=Authenticator(), **kwargs)


def test_required_is_the_default_and_a_plain_profile_goes_to_no_one_who_proved_nothing(engine, add_device):
    add_device(mac=None)  # imported by serial: what the User-Agent says would fill the record
    for server in (ProfileBackend(engine, render, clock=lambda: NOW), required(engine)):
        for fetch in (
            Fetch("/FCH2233A1B2.xml", user_agent=UA, remote_addr="192.0.2.7"),
            Fetch("/FCH2233A1B2.xml", scheme="https", remote_addr="192.0.2.7"),
            Fetch("FCH2233A1B2.xml", scheme="tftp", method="RRQ", remote_addr="192.0.2.7"),
        ):
            reply = server.fetch(fetch)
            assert (reply.status, reply.body, reply.cause) == (403, b"", "not proven"), fetch
            assert reply.reason.startswith(f"device {DEVICE}'s profile holds its passwords: it goes in clear")
            assert reply.warning.startswith(f"profile {fetch.path} from 192.0.2.7 refused: device {DEVICE}")
            assert "acs device credentials" in reply.warning and "acs profile key set" in reply.warning
    seen = device(engine)
    assert (seen["mac"], seen["ip"], seen["last_profile_fetch"]) == (None, None, None)  # nothing recorded
    assert backend(engine).fetch(Fetch("/FCH2233A1B2.xml", user_agent=UA)).status == 200  # none: as before


def test_required_sends_a_keyed_profile_encrypted_and_keeps_nothing_the_requester_told(engine, add_device):
    add_device(serial="ENC", mac=None)
    server = required(engine)
    for fetch in (
        Fetch("/ENC.xml", user_agent=UA, remote_addr="192.0.2.7"),
        Fetch("ENC.xml", scheme="tftp", method="RRQ", remote_addr="192.0.2.7"),
    ):
        reply = server.fetch(fetch)
        assert reply.status == 200, reply.reason
        assert crypto.openssl_decrypt(reply.body, "s3cret") == (
            f"<flat-profile><Station_Name>{DEVICE}</Station_Name></flat-profile>".encode()
        )
    seen = device(engine)
    assert seen["last_profile_fetch"] == NOW  # a fetch happened; who asked proved nothing
    assert (seen["mac"], seen["product_class"], seen["ip"]) == (None, None, None)


def test_required_refuses_an_aes128gcm_only_key_over_tftp_and_sends_it_over_http(engine, add_device):
    add_device()

    def gcm(conn, device, known):
        xml = b"<flat-profile><Station_Name>x</Station_Name></flat-profile>"
        return Rendered(xml, ProfileKey("device", DEVICE, ikm="IKM-of-this-phone"))

    server = ProfileBackend(engine, gcm, clock=lambda: NOW)
    http = server.fetch(Fetch(f"/{MAC}.cfg"))
    assert (http.status, http.header("content-encoding")) == (200, "aes128gcm")
    assert server.fetch(Fetch(f"{MAC}.cfg", scheme="tftp")).status == 403


def test_required_sends_a_plain_profile_to_the_phone_s_own_credentials(engine, add_device):
    add_device(mac=None, username="phone1", password="pw1")
    server = required(engine)
    path = "/FCH2233A1B2.xml"
    first = server.fetch(Fetch(path, user_agent=UA))
    assert (first.status, first.warning) == (401, "")  # a challenge: what a phone expects, not logged
    creds = parse_authorization(_answer(first.header("www-authenticate"), "phone1", "pw1", path))
    ok = server.fetch(Fetch(path, user_agent=UA, credentials=creds, remote_addr="192.0.2.7"))
    assert ok.status == 200 and ok.body.startswith(b"<flat-profile>")
    seen = device(engine)  # the phone proved itself: what it told is kept
    assert (seen["mac"], seen["ip"], seen["last_profile_fetch"]) == (MAC, "192.0.2.7", NOW)
    wrong = parse_authorization(_answer(first.header("www-authenticate"), "phone1", "nope", path))
    denied = server.fetch(Fetch(path, credentials=wrong, remote_addr="192.0.2.9"))
    assert (denied.status, denied.cause) == (401, "denied")
    assert denied.warning == "profile fetch: authentication failed for user 'phone1' from 192.0.2.9"


def test_required_sends_a_plain_profile_to_a_certificate_that_names_the_phone(engine, add_device):
    from acs.web.tls import CertificateNames

    add_device()
    server = required(engine)
    mine = CertificateNames("CN=SEP00562B043615", frozenset({MAC}), frozenset({"SEP00562B043615"}))
    ok = server.fetch(Fetch(f"/{MAC}.cfg", scheme="https", certificate=mine))
    assert ok.status == 200 and ok.body.startswith(b"<flat-profile>")
    other = CertificateNames(
        "CN=SEP00562B0436FF", frozenset({"00562b0436ff"}), frozenset({"SEP00562B0436FF"})
    )
    refused = server.fetch(Fetch(f"/{MAC}.cfg", scheme="https", certificate=other, remote_addr="192.0.2.9"))
    assert (refused.status, refused.cause) == (403, "other certificate")
    assert "with a client certificate for another device (CN=SEP00562B0436FF)" in refused.warning


def test_required_gives_the_default_profile_to_an_unknown_phone_only_for_a_certificate_naming_its_mac(engine):
    from acs.web.tls import CertificateNames

    server = required(engine, unknown="default")
    refused = server.fetch(Fetch("/8841.xml", user_agent=UA, remote_addr="192.0.2.9"))
    assert (refused.status, refused.cause) == (403, "unknown not proven")
    assert "a client certificate that names its MAC" in refused.warning
    mic = CertificateNames("CN=CP-8841-3PCC-SEP00562B043615", frozenset({MAC}), frozenset())
    assert server.fetch(Fetch("/8841.xml", scheme="https", user_agent=UA, certificate=mic)).status == 200
    stranger = CertificateNames("CN=SEP00562B0436FF", frozenset({"00562b0436ff"}), frozenset())
    assert server.fetch(Fetch("/8841.xml", scheme="https", user_agent=UA, certificate=stranger)).status == 403
    assert server.fetch(Fetch("/00562b999999.cfg")).status == 403  # no default without the certificate
    assert required(engine).fetch(Fetch("/8841.xml", user_agent=UA)).status == 404  # --profile-unknown 404
