"""HTTP authentication, both sides: Digest (RFC 7616, and RFC 2069 without qop) and Basic.

The server's side checks CPEs (Basic only over TLS unless allowed); the
client's side (``DigestAuth``) answers a challenge: the simulated phone's to the
ACS, and the ACS's to a phone on a connection request. One Digest computation,
``digest_response``, serves both.

Nonces are stateless: a timestamp signed with the server's secret, so any worker
process (or machine sharing the secret) can check a nonce another one issued,
and nothing has to be stored per challenge. They are short-lived: a nonce older
than ``nonce_ttl`` (60 s) is answered with ``stale=true``, and the CPE retries
with the new one without asking its user again. What must be shared is the
highest nonce count each nonce was answered with, so that a replayed answer is
refused: the store keeps it (``acs.store.nonces``); ``Credentials.nonce_count``
is what is compared. An answer is bound to its request: its ``uri`` must be the
request's target, and with ``qop=auth-int`` (offered beside ``auth``) its body.

``UnknownUsers`` remembers the user names no device has, so that a stranger's
guesses cost no database lookup each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_PARAM = re.compile(r'\s*([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')
#: what the log says of a client that sent Basic where Basic is refused
BASIC_REFUSED = (
    "HTTP Basic refused on plain HTTP (it would send the password in clear); enable --allow-basic, "
    "use the HTTPS port, or configure the CPE for Digest"
)
#: Digest algorithms and their hashlib names
HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
#: seconds a nonce is fresh: long enough for a challenge's answer, short enough that its counts,
#: kept in the store until it expires, stay few
NONCE_TTL = 60.0
#: the qop values offered, and so accepted (RFC 7616 section 3.3)
QOPS = ("auth", "auth-int")
_NC = re.compile(r"[0-9a-fA-F]{1,8}")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a CPE sent: the user name, and how to check a password against it."""

    scheme: str  # "digest" or "basic"
    username: str
    params: dict[str, str]
    password: str | None = None  # Basic only

    def nonce_count(self) -> int | None:
        """The nonce count this answer claims: ``nc`` with a qop, 0 without (RFC 2069: a nonce
        answers one request); None for Basic, which has no nonce."""
        if self.scheme != "digest":
            return None
        nc = self.params.get("nc", "")
        return int(nc, 16) if self.params.get("qop") and _NC.fullmatch(nc) else 0


def parse_authorization(header: bytes | None) -> Credentials | None:
    """The Authorization header as Credentials; None when absent or unreadable."""
    if not header:
        return None
    try:
        text = header.decode("latin-1").strip()
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None
    scheme, _, rest = text.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return Credentials("basic", user, {}, password) if sep else None
    if scheme == "digest":
        # findall, not Match objects: this runs for every session's second POST
        params = {}
        for name, quoted, bare in _PARAM.findall(rest):
            value = quoted or bare
            params[name.lower()] = value.replace('\\"', '"') if "\\" in value else value
        if "username" not in params or "response" not in params:
            return None
        return Credentials("digest", params["username"], params)
    return None


class Authenticator:
    """Issues challenges and checks answers. ``secret`` must be shared by all workers."""

    def __init__(
        self,
        realm: str = "acs",
        secret: bytes | None = None,
        *,
        nonce_ttl: float = NONCE_TTL,
        allow_basic: bool = False,
        qops: tuple[str, ...] = QOPS,
    ) -> None:
        self.realm = realm
        self.secret = secret or secrets.token_bytes(32)
        self.nonce_ttl = nonce_ttl
        self.allow_basic = allow_basic
        #: the qop values offered and accepted: ``auth-int`` only where the caller gives the body
        self.qops = qops

    def nonce(self, now: float | None = None) -> str:
        """A new nonce: its time, random bits (each challenge's own, so that counts of different
        clients never meet) and their signature."""
        stamp = f"{int(now if now is not None else time.time()):x}.{secrets.token_hex(8)}"
        return f"{stamp}.{self._sign(stamp)}"

    def _sign(self, stamp: str) -> str:
        return hmac.digest(self.secret, stamp.encode(), "sha256").hex()[:32]  # one C call, no HMAC object

    def nonce_state(self, nonce: str, now: float | None = None) -> str:
        """``fresh``, ``stale`` (ours but too old) or ``bad`` (not ours)."""
        stamp, _, sig = nonce.rpartition(".")
        if not nonce.isascii() or not hmac.compare_digest(sig, self._sign(stamp)):
            return "bad"
        try:
            age = (now if now is not None else time.time()) - int(stamp.partition(".")[0], 16)
        except ValueError:
            return "bad"
        return "fresh" if -60 <= age <= self.nonce_ttl else "stale"

    def nonce_expires(self, nonce: str) -> int:
        """When a nonce of ours goes stale, in seconds since the epoch (0 for one that is not ours)."""
        try:
            return int(nonce.partition(".")[0], 16) + int(self.nonce_ttl) + 1
        except ValueError:
            return 0

    def challenges(self, *, stale: bool = False, tls: bool = False) -> list[bytes]:
        """WWW-Authenticate header values: Digest always, Basic only where it is allowed."""
        qop = ",".join(self.qops)
        digest = f'Digest realm="{self.realm}", qop="{qop}", nonce="{self.nonce()}", algorithm=MD5'
        if stale:
            digest += ", stale=true"
        values = [digest.encode()]
        if self.basic_allowed(tls=tls):
            values.append(f'Basic realm="{self.realm}"'.encode())
        return values

    def basic_allowed(self, *, tls: bool) -> bool:
        """Whether HTTP Basic is taken here: inside TLS, or on plain HTTP with ``allow_basic``
        (Basic in clear text gives the password away)."""
        return tls or self.allow_basic

    def basic_refused(self, creds: Credentials, *, tls: bool) -> bool:
        """Credentials sent with Basic where Basic is not taken: a client to be told so, not a wrong
        password (``BASIC_REFUSED`` says what to do)."""
        return creds.scheme == "basic" and not self.basic_allowed(tls=tls)

    def check(
        self,
        creds: Credentials,
        password: str,
        method: bytes,
        *,
        tls: bool,
        uri: str | None = None,
        body: bytes | None = None,
    ) -> str:
        """``ok``, ``stale`` or ``denied`` for credentials against the password on record.

        ``uri``: the request's target, which a Digest answer must name (else an answer taken
        from one request would do for another); ``body``: the request's body as it came (after
        any Content-Encoding, before inflating), which ``qop=auth-int`` covers. Whether the
        nonce count was used before is the store's to say (``acs.store.nonces``).
        """
        if creds.scheme == "basic":
            if not self.basic_allowed(tls=tls):
                return "denied"
            return "ok" if hmac.compare_digest(creds.password or "", password) else "denied"
        p = creds.params
        if p.get("realm") != self.realm:
            return "denied"
        state = self.nonce_state(p.get("nonce", ""))
        if state == "bad":
            return "denied"
        qop = p.get("qop")
        if qop is not None and (qop not in self.qops or not _NC.fullmatch(p.get("nc", ""))):
            return "denied"
        if p.get("algorithm", "MD5").upper().removesuffix("-SESS") not in HASHES:
            return "denied"
        if uri is not None and not same_target(p.get("uri", ""), uri):
            return "denied"
        if qop == "auth-int" and body is None:
            return "denied"
        expected = digest_response(
            creds.username,
            password,
            method.decode("ascii", "replace"),
            p.get("uri", ""),
            realm=p.get("realm", ""),
            nonce=p.get("nonce", ""),
            algorithm=p.get("algorithm", "MD5"),
            qop=qop,
            nc=p.get("nc", ""),
            cnonce=p.get("cnonce", ""),
            body=body or b"",
        )
        if not hmac.compare_digest(expected, p.get("response", "").lower()):
            return "denied"
        return "ok" if state == "fresh" else "stale"


def same_target(uri: str, target: str) -> bool:
    """Whether a Digest answer's ``uri`` names the request target: the same text, or the same path
    and query when one of them is in absolute form (``http://acs:7547/cwmp`` for ``/cwmp``)."""
    if uri == target:
        return True
    if "://" not in uri and "://" not in target:
        return False
    a, b = urlsplit(uri), urlsplit(target)
    return (a.path or "/", a.query) == (b.path or "/", b.query)


class UnknownUsers:
    """The user names no device has, remembered: a stranger's guesses cost no database lookup each.

    Bounded (``size`` names, the oldest forgotten first) and short-lived (``ttl`` seconds). The
    store's ``credentials`` revision says when devices' credentials changed, in any process: every
    lookup reads it, and a moved revision empties the cache. A name found here is refused at once;
    so that a name given to a device meanwhile is not refused for long, one lookup (with the
    revision) is made in the background when the last one is older than ``recheck`` seconds
    (``due``): at most one per ``recheck``, whatever the rate of requests, and none of them waits.
    """

    def __init__(
        self,
        size: int = 4096,
        ttl: float = 60.0,
        recheck: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self.ttl = ttl
        self.recheck = recheck
        self.clock = clock
        self.revision: int | None = None
        self._names: OrderedDict[str, float] = OrderedDict()
        self._checked = float("-inf")

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, username: object) -> bool:
        """Whether no device had this name at a lookup less than ``ttl`` seconds ago."""
        expires = self._names.get(username) if isinstance(username, str) else None
        if expires is None:
            return False
        if expires <= self.clock():
            del self._names[str(username)]
            return False
        return True

    def due(self) -> bool:
        """Whether a lookup is due to see if the credentials changed; True once per ``recheck``."""
        now = self.clock()
        if now - self._checked < self.recheck:
            return False
        self._checked = now
        return True

    def looked_up(self, username: str, found: bool, revision: int | None) -> None:
        """What a lookup said: whether a device has the name, and the credentials' revision."""
        now = self._checked = self.clock()
        if revision != self.revision:
            self._names.clear()
            self.revision = revision
        if found:
            self._names.pop(username, None)
            return
        self._names[username] = now + self.ttl
        self._names.move_to_end(username)
        while len(self._names) > self.size:
            self._names.popitem(last=False)


def digest_response(
    username: str,
    password: str,
    method: str,
    uri: str,
    *,
    realm: str,
    nonce: str,
    algorithm: str = "MD5",
    qop: str | None = "auth",
    nc: str = "00000001",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The ``response`` of an HTTP Digest answer (RFC 7616 section 3.4.1; RFC 2069 when qop is None).

    One computation for both sides: the server checks answers with it, the
    simulated phone makes them. KeyError for an algorithm that is not known.
    """
    name = HASHES[algorithm.upper().removesuffix("-SESS")]

    def h(text: str | bytes) -> str:
        data = text.encode() if isinstance(text, str) else text
        return hashlib.new(name, data, usedforsecurity=False).hexdigest()

    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}:{h(body)}" if qop == "auth-int" else f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --- the client's side: answering a challenge ------------------------------------------------

_CHALLENGE_PARAM = re.compile(
    r"""[\s,]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?"""
)


def parse_challenges(headers: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    """``WWW-Authenticate`` values -> [(scheme, params)], several challenges per header allowed."""
    challenges: list[tuple[str, dict[str, str]]] = []
    for header in headers:
        for m in _CHALLENGE_PARAM.finditer(header):
            name, value = m.group(1), m.group(2)
            if value is None:
                challenges.append((name.lower(), {}))
            elif challenges:
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                challenges[-1][1][name.lower()] = value
    return challenges


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAuth:
    """The client's side of HTTP authentication: Digest (RFC 7616, or RFC 2069 without qop) or Basic.

    After a Digest challenge every later request carries credentials for the
    same nonce with a growing nonce count, as RFC 7616 intends; a second
    challenge for a nonce already answered means the credentials were refused.
    """

    def __init__(self, username: str, password: str, *, qop: str = "auth") -> None:
        self.username = username
        self.password = password
        #: the qop answered with when the challenge offers it (``auth-int`` covers the body too)
        self.qop = qop
        self.scheme: str | None = None
        self.params: dict[str, str] = {}
        self.nc = 0

    def challenge(self, headers: Iterable[str]) -> bool:
        """Take a 401's challenges; False when there is nothing (new) to answer them with."""
        if not self.username and not self.password:
            return False
        challenges = dict(reversed(parse_challenges(headers)))  # the first of a scheme wins
        digest = challenges.get("digest")
        if digest is not None and digest.get("algorithm", "MD5").upper().removesuffix("-SESS") in HASHES:
            stale = digest.get("stale", "").lower() == "true"
            if self.scheme == "digest" and digest.get("nonce") == self.params.get("nonce") and not stale:
                return False
            self.scheme, self.params, self.nc = "digest", digest, 0
            return True
        if "basic" in challenges and self.scheme != "basic":
            self.scheme = "basic"
            return True
        return False

    def authorization(self, method: str, uri: str, body: bytes = b"") -> str | None:
        if self.scheme == "basic":
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
            return f"Basic {token}"
        if self.scheme != "digest":
            return None
        self.nc += 1
        p = self.params
        cnonce = secrets.token_hex(8)
        qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
        qop = self.qop if self.qop in qops else "auth" if "auth" in qops or not qops else qops[0]
        response = digest_response(
            self.username,
            self.password,
            method,
            uri,
            realm=p.get("realm", ""),
            nonce=p.get("nonce", ""),
            algorithm=p.get("algorithm", "MD5"),
            qop=qop if qops else None,
            nc=f"{self.nc:08x}",
            cnonce=cnonce,
            body=body,
        )
        fields = [
            f"username={_quote(self.username)}",
            f"realm={_quote(p.get('realm', ''))}",
            f"nonce={_quote(p.get('nonce', ''))}",
            f"uri={_quote(uri)}",
            f"algorithm={p.get('algorithm', 'MD5')}",
            f"response={_quote(response)}",
        ]
        if qops:
            fields += [f"qop={qop}", f"nc={self.nc:08x}", f"cnonce={_quote(cnonce)}"]
        if "opaque" in p:
            fields.append(f"opaque={_quote(p['opaque'])}")
        return "Digest " + ", ".join(fields)
