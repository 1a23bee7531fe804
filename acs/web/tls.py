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
  by phone, and the ones without keep HTTP authentication.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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
        self.client_ca = client_ca
        if client_ca is not None:
            cas = [crypto.load_certificate(crypto.FILETYPE_PEM, c) for c in _certificates(client_ca)]
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
