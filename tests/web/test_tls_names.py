"""What a client certificate names (``acs.web.tls.CertificateNames``) and the ALPN choice, without sockets."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from acs.web.tls import HTTP11, CertificateNames, NoApplicationProtocol, macs_in, select_protocol
from tests.web.pki import Pki, name

MAC = "00562b043615"


@pytest.mark.parametrize(
    "text",
    ["00562B043615", "00:56:2b:04:36:15", "00-56-2B-04-36-15", "0056.2b04.3615", "SEP00562B043615",
     "CP-8841-3PCC-SEP00562B043615", "00562b043615.phones.example.net"],
)  # fmt: skip
def test_a_mac_is_found_in_the_notations_certificates_use(text: str) -> None:
    assert macs_in(text) == {MAC}


@pytest.mark.parametrize("text", ["FCH2233A1B2", "00562B0436150", "x00562B04361", "00:56:2b:04:36"])
def test_no_mac_in_what_is_not_one(text: str) -> None:
    assert macs_in(text) == set()


def names(tmp_path: Path, subject: x509.Name, san: list[x509.GeneralName] | None = None) -> CertificateNames:
    path = Pki(tmp_path).issue("c.pem", subject, san=san)
    return CertificateNames.of(x509.load_pem_x509_certificate(path.read_bytes()))


def test_cisco_mpp_subject_model_serial_and_mac(tmp_path: Path) -> None:
    """OU=CP-8841-3PCC, L=88012BA01234, S=000e08abcdef: the MAC in S (ST), the serial in L, which
    looks like a MAC and is not taken for one."""
    got = names(tmp_path, name(OU="CP-8841-3PCC", L="88012BA01234", ST="000e08abcdef"))
    assert got.macs == {"000e08abcdef"}
    assert got.names == {"88012BA01234"}
    assert got.verdict("000E08-CP-8841-3PCC-88012BA01234", "88012BA01234", None) == "names"
    assert got.verdict("x", "other", "000e08abcdef") == "names"
    assert got.verdict("x", "other", "000e08000000") == "other"


def test_cisco_mic_serial_number_attribute(tmp_path: Path) -> None:
    got = names(
        tmp_path, name(CN="CP-8841-3PCC-SEP00562B043615", serialNumber="PID:CP-8841-3PCC SN:FCH2233A1B2")
    )
    assert got.macs == {MAC}
    assert "FCH2233A1B2" in got.names
    assert got.verdict("00562B-CP-8841-3PCC-FCH2233A1B2", "FCH2233A1B2", None) == "names"


def test_subject_alternative_names_are_read(tmp_path: Path) -> None:
    got = names(
        tmp_path,
        name(CN="phone"),
        [
            x509.DNSName("sep00562b043615.example.net"),
            x509.UniformResourceIdentifier("urn:dev:mac:00562b0436aa"),
        ],
    )
    assert got.macs == {MAC, "00562b0436aa"}


@pytest.mark.parametrize(
    ("subject", "mac", "verdict"),
    [
        ({"CN": "SEP00562B043615"}, MAC, "names"),
        ({"CN": "SEP00562B043615"}, "00562b0436ff", "other"),
        ({"CN": "SEP00562B043615"}, None, "unknown"),  # nothing to compare the MAC with
        ({"CN": "00562B-CP-7841-3PCC-CPE1"}, None, "names"),
        ({"CN": "CPE1"}, None, "names"),
        ({"CN": "CPE2"}, None, "other"),
        ({"CN": "fleet certificate"}, MAC, "other"),  # it names something: not this device
        ({"O": "no name at all"}, MAC, "unknown"),
    ],
)
def test_verdicts(tmp_path: Path, subject: dict[str, str], mac: str | None, verdict: str) -> None:
    assert names(tmp_path, name(**subject)).verdict("00562B-CP-7841-3PCC-CPE1", "CPE1", mac) == verdict


def test_alpn_selects_http_1_1_or_refuses() -> None:
    assert select_protocol(None, [b"h2", HTTP11]) == HTTP11  # type: ignore[arg-type]
    with pytest.raises(NoApplicationProtocol):
        select_protocol(None, [b"h2"])  # type: ignore[arg-type]
