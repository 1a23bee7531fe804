"""A certificate authority for TLS tests: the ACS's server certificate and devices' client certificates.

Made with the ``cryptography`` library; ``openssl_client`` makes one with the real ``openssl``
command, as an operator's own CA would.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def name(**attributes: str) -> x509.Name:
    """``name(CN="x", OU="CP-8841-3PCC", L="FCH...", ST="00562b043615")``, in that order."""
    oids = {
        "CN": NameOID.COMMON_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "L": NameOID.LOCALITY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "serialNumber": NameOID.SERIAL_NUMBER,
    }
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in attributes.items()])


@dataclass
class Pki:
    """A CA in ``directory``, with ``ca.pem``; each certificate is written with its key, in one file."""

    directory: Path
    label: str = "ca"

    def __post_init__(self) -> None:
        self.key = _key()
        subject = name(CN=f"acs test {self.label}", O="acs tests")
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_path = self.directory / f"{self.label}.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        file: str,
        subject: x509.Name,
        *,
        san: list[x509.GeneralName] | None = None,
        server: bool = False,
    ) -> Path:
        key = _key()
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        usage = (
            x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        path = self.directory / file
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + _pem(key))
        return path

    def server(self, file: str = "acs.pem") -> Path:
        """The ACS's certificate, for 127.0.0.1 (checked by name, as phones check it)."""
        return self.issue(
            file, name(CN="127.0.0.1"), san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], server=True
        )

    def client(self, file: str, **subject: str) -> Path:
        return self.issue(file, name(**subject))

    def openssl_client(self, file: str, subject: str) -> Path:
        """A client certificate made with the real ``openssl`` command, e.g. subject
        ``/OU=CP-8841-3PCC/L=FCH2233A1B2/ST=00562b043615`` (Cisco MPP's)."""
        ca_key = self.directory / f"{self.label}.key"
        ca_key.write_bytes(_pem(self.key))
        key, csr, crt = (self.directory / f"{file}.{ext}" for ext in ("key", "csr", "crt"))
        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        for command in (
            ["openssl", "req", "-new", *new_key, "-keyout", str(key), "-out", str(csr), "-subj", subject],
            ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(self.ca_path), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "1", "-out", str(crt)],
        ):  # fmt: skip
            subprocess.run(command, check=True, capture_output=True)
        path = self.directory / file
        path.write_bytes(crt.read_bytes() + key.read_bytes())
        return path
