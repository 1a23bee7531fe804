"""UDP Connection Requests (TR-069 Annex G): the signed datagram, built and checked. Pure, no I/O.

The datagram is an HTTP/1.1 GET request line and a Host header in one UDP packet::

    GET http://203.0.113.7:49152?ts=1700000000&id=123456&un=cr-user&cn=9f2c1e0a7b3d4c11&sig=<hex> HTTP/1.1
    Host: 203.0.113.7:49152

``ts`` is Unix time in seconds, ``id`` a message id that stays the same on
retransmissions, ``un`` the ConnectionRequestUsername, ``cn`` a random cnonce and
``sig`` the HMAC-SHA1, keyed with the ConnectionRequestPassword, of ``ts id un cn``
concatenated as text. There is no reply: the CPE drops what it cannot verify,
repeats of an id it took and anything older than the last one it took, and opens
a ``6 CONNECTION REQUEST`` session for the rest. The simulated phone checks
datagrams with ``parse`` and ``UdpConnectionRequest.verify``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

#: TR-181 UDPConnectionRequestAddress: "host" alone means port 80
DEFAULT_PORT = 80
#: a CPE reads one datagram; anything longer is not a connection request
MAX_SIZE = 1400
_REQUEST_LINE = re.compile(r"GET (\S+) HTTP/1\.1")


def signature(ts: int, message_id: int, username: str, cnonce: str, password: str) -> str:
    """``sig``: HMAC-SHA1 keyed with the password over ``ts``, ``id``, ``un`` and ``cn`` as text, in hex."""
    text = f"{ts}{message_id}{username}{cnonce}"
    return hmac.new(password.encode(), text.encode(), hashlib.sha1).hexdigest()


def parse_address(text: str) -> tuple[str, int]:
    """``host:port``, ``host`` or ``[v6]:port`` (a UDPConnectionRequestAddress) -> (host, port).

    ValueError naming what is wrong: TR-181 allows only those forms.
    """
    text = text.strip()
    if not text:
        raise ValueError("the UDPConnectionRequestAddress is empty")
    port_text: str | None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if sep and rest.startswith(":") else None if rest or not sep else ""
    elif text.count(":") > 1:  # a bare IPv6 address, no port
        host, port_text = text, ""
    else:
        host, _, port_text = text.partition(":")
    if port_text is None or not host:
        raise ValueError(f"{text!r} is not host, host:port or [IPv6]:port")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    return host, int(port_text)


def _authority(host: str, port: int) -> str:
    try:
        bracket = ipaddress.ip_address(host).version == 6
    except ValueError:
        bracket = False
    return f"[{host}]:{port}" if bracket else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class UdpConnectionRequest:
    """One UDP Connection Request: where it goes and its signed fields."""

    host: str
    port: int
    ts: int
    id: int
    un: str
    cn: str
    sig: str

    @classmethod
    def signed(
        cls, host: str, port: int, username: str, password: str, *, ts: int, message_id: int, cnonce: str
    ) -> UdpConnectionRequest:
        return cls(
            host,
            port,
            ts,
            message_id,
            username,
            cnonce,
            signature(ts, message_id, username, cnonce, password),
        )

    def encode(self) -> bytes:
        """The datagram. ``un`` is percent-encoded in the URL; the signature is over its plain text."""
        authority = _authority(self.host, self.port)
        un, cn = quote(self.un, safe=""), quote(self.cn, safe="")
        query = f"ts={self.ts}&id={self.id}&un={un}&cn={cn}&sig={self.sig}"
        return f"GET http://{authority}?{query} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()

    def verify(self, username: str, password: str) -> str | None:
        """Why a CPE with these credentials drops this request; None when it is genuine.

        The signature is compared in any case (GenieACS writes lower-case hex, FreeACS upper).
        """
        if self.un != username:
            return f"un {self.un!r} is not this CPE's ConnectionRequestUsername"
        expected = signature(self.ts, self.id, self.un, self.cn, password)
        if not hmac.compare_digest(expected, self.sig.lower()):
            return "sig does not verify with this CPE's ConnectionRequestPassword"
        return None


def parse(datagram: bytes) -> UdpConnectionRequest:
    """A datagram as a UdpConnectionRequest; ValueError saying what is missing or malformed."""
    if len(datagram) > MAX_SIZE:
        raise ValueError(f"{len(datagram)} bytes: a UDP Connection Request fits in {MAX_SIZE}")
    try:
        text = datagram.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("not ASCII: a UDP Connection Request is an HTTP request line") from None
    m = _REQUEST_LINE.fullmatch(text.split("\r\n", 1)[0].strip())
    if m is None:
        raise ValueError("the first line is not 'GET http://host:port?... HTTP/1.1'")
    url = urlsplit(m.group(1))
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"{m.group(1)[:60]!r} is not an http:// URL with a host")
    fields = parse_qs(url.query, keep_blank_values=True)
    missing = [k for k in ("ts", "id", "un", "cn", "sig") if len(fields.get(k, ())) != 1]
    if missing:
        raise ValueError(f"{', '.join(missing)} missing (or given twice) in the query")
    ts, message_id = fields["ts"][0], fields["id"][0]
    if not ts.isdigit() or not message_id.isdigit():
        raise ValueError("ts and id must be unsigned integers")
    return UdpConnectionRequest(
        url.hostname,
        url.port or DEFAULT_PORT,
        int(ts),
        int(message_id),
        fields["un"][0],
        fields["cn"][0],
        fields["sig"][0],
    )
