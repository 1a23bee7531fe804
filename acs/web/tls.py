"""TLS for every port (CWMP, profiles, NBI): one server context, ALPN, client certificates.

- **ALPN**: every port speaks HTTP/1.1 only, so ``http/1.1`` is selected when a client offers
  it (curl, Python, most embedded stacks offer ``h2`` and ``http/1.1``), a client that offers no
  ALPN is served as before, and one that offers only protocols we do not speak (``h2``) gets the
  fatal ``no_application_protocol`` alert RFC 7301 asks for. Twisted's own ALPN callback, set
  whenever a context is built, answers an empty protocol when nothing overlaps (always on the
  CWMP port, whose factory names no protocol), which OpenSSL turns into an ``internal_error``
  alert; this context has its own.
- **Client certificates** (``--tls-client-ca``): asked for, verified against the CA when given
  (a certificate the CA did not sign ends the handshake), optional: a fleet moves to them phone
  by phone, and the ones without keep HTTP authentication. What a certificate says about the
  device is :class:`CertificateNames`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

#: the one application protocol every port speaks
HTTP11 = b"http/1.1"
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class NoApplicationProtocol(SSL.Error):
    """The client offered ALPN protocols, none of them HTTP/1.1."""


def select_protocol(connection: SSL.Connection, offered: list[bytes]) -> bytes:
    """The ALPN choice: ``http/1.1``, or a refusal that pyOpenSSL turns into the fatal
    ``no_application_protocol`` alert (its ``NO_OVERLAPPING_PROTOCOLS`` would go on without ALPN,
    against RFC 7301, and a client that asked only for h2 would then be spoken HTTP/1.1 to)."""
    if HTTP11 in offered:
        return HTTP11
    offers = b", ".join(offered).decode("latin-1")
    # in the shape of OpenSSL's error queue, as Twisted reads it
    raise NoApplicationProtocol([("acs", "select_protocol", f"no application protocol: {offers} offered")])


def _certificates(path: Path) -> list[bytes]:
    certs = _PEM_CERT.findall(path.read_bytes())
    if not certs:
        raise ValueError(f"{path}: no PEM certificate in it")
    return certs


@implementer(IOpenSSLServerConnectionCreator)
class ServerTls:
    """What ``TLSMemoryBIOFactory`` needs to serve TLS: a connection per client, from one context.

    ``cert``: the server certificate, then the chain after it, in PEM; ``key``: its private key
    (default: the same file); ``client_ca``: the CA (PEM, several allowed) client certificates
    are checked against, None: none asked for. ValueError or OSError for files that will not do,
    so ``acs serve`` refuses to start before it binds anything.
    """

    def __init__(self, cert: Path, key: Path | None = None, client_ca: Path | None = None) -> None:
        certs = _certificates(cert)
        key_pem = (key or cert).read_bytes()
        try:
            leaf = ssl.PrivateCertificate.loadPEM(key_pem + b"\n" + certs[0])
            chain = [ssl.Certificate.loadPEM(c).original for c in certs[1:]]
        except (SSL.Error, crypto.Error, ValueError) as e:
            raise ValueError(f"{cert}: certificate or key unreadable ({e})") from None
        options = ssl.CertificateOptions(
            privateKey=leaf.privateKey.original, certificate=leaf.original, extraCertChain=chain
        )
        try:
            context = options.getContext()  # Twisted's choices: ciphers, no compression, ECDH curve
        except SSL.Error as e:
            raise ValueError(f"{cert}: the key does not go with the certificate ({e})") from None
        context.set_alpn_select_callback(select_protocol)
        if client_ca is not None:
            try:
                cas = [crypto.load_certificate(crypto.FILETYPE_PEM, c) for c in _certificates(client_ca)]
            except crypto.Error as e:
                raise ValueError(f"{client_ca}: a certificate in it is unreadable ({e})") from None
            store = context.get_cert_store()
            assert store is not None
            for ca in cas:
                store.add_cert(ca)
            context.set_client_ca_list([ca.get_subject() for ca in cas])
            # optional: a client without a certificate goes on to HTTP authentication
            context.set_verify(
                SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE, lambda conn, cert, err, depth, ok: bool(ok)
            )
        self.context = context

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        return SSL.Connection(self.context, None)


# --- who a client certificate names --------------------------------------------------------------

_HEX = "0-9A-Fa-f"
#: a MAC in the notations certificates use: 00562B043615, 00:56:2b:04:36:15, 00-56-..., 0056.2b04.3615,
#: alone or inside a name (Cisco's CP-8841-SEP00562B043615)
_MAC = re.compile(
    rf"(?<![{_HEX}])(?:[{_HEX}]{{2}}(?:[:-][{_HEX}]{{2}}){{5}}|[{_HEX}]{{4}}(?:\.[{_HEX}]{{4}}){{2}}|[{_HEX}]{{12}})(?![{_HEX}])"
)
#: ``PID:CP-8841-3PCC SN:FCH2233A1B2``, the serialNumber attribute of Cisco's MIC
_SN = re.compile(r"\bSN:\s*(\S+)")


def macs_in(text: str) -> set[str]:
    """The MACs named in ``text``, as 12 lower-case hex digits."""
    return {re.sub(rf"[^{_HEX}]", "", m).lower() for m in _MAC.findall(text)}


@dataclass(frozen=True)
class CertificateNames:
    """What a verified client certificate says about the device that holds it.

    MACs come from the subject's CN, its ST (Cisco MPP certificates carry the MAC as ``S=``) and
    the subjectAltName's DNS names and URIs; names (a serial number, ``OUI-ProductClass-Serial``)
    from the CN, the L (Cisco MPP: the serial number) and the serialNumber attribute (Cisco's
    MIC: ``PID:... SN:...``).
    """

    subject: str
    macs: frozenset[str]
    names: frozenset[str]

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateNames:
        subject = cert.subject

        def values(oid: x509.ObjectIdentifier) -> list[str]:
            return [str(a.value) for a in subject.get_attributes_for_oid(oid)]

        cn = values(NameOID.COMMON_NAME)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            alt = san.get_values_for_type(x509.DNSName) + san.get_values_for_type(
                x509.UniformResourceIdentifier
            )
        except x509.ExtensionNotFound:
            alt = []
        macs = {m for text in (*cn, *values(NameOID.STATE_OR_PROVINCE_NAME), *alt) for m in macs_in(text)}
        names = {*cn, *values(NameOID.LOCALITY_NAME)}
        for text in values(NameOID.SERIAL_NUMBER):
            names.add(text)
            names.update(_SN.findall(text))
        return cls(
            subject.rfc4514_string(), frozenset(macs), frozenset(n.strip() for n in names if n.strip())
        )

    @classmethod
    def of_peer(cls, peer: crypto.X509 | None) -> CertificateNames | None:
        """The names of the certificate a TLS client presented (``getPeerCertificate()``); None
        without one."""
        return cls.of(peer.to_cryptography()) if peer is not None else None

    def verdict(self, device_id: str | None, serial: str | None, mac: str | None) -> str:
        """``names`` (the certificate names this device), ``other`` (it names another one) or
        ``unknown`` (it names devices by MAC only, and this one's MAC is not known yet)."""
        if (mac and mac in self.macs) or self.names & {n for n in (device_id, serial) if n}:
            return "names"
        told = {n for n in self.names if not macs_in(n)}  # names that are more than a MAC's notation
        return "other" if told or (mac and self.macs) else "unknown"
