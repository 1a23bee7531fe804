"""The profile server's answer to one fetch: which phone asks, what status, which bytes.

Phones that resync by ``Profile_Rule`` fetch their profile over HTTP(S) or TFTP. The
phone is found by the MAC in the file name (``/$MA.cfg``), else by the MAC in its
User-Agent (``/$PSN.xml`` names only the model), else by a serial number in the name
(``/$SN.xml``). The status is chosen for what the phone does with it (Cisco's table 2,
``reference/cisco-mpp-provisioning-guide-zh.md``):

- 200 with the profile: success, the phone's periodic resync timer restarts;
- 301/302 for a phone moved to another provisioning server: it retries at once there;
- 401 with a Digest challenge for a phone with credentials: it retries with them at
  most twice, then counts an "other failure"; a client certificate that names the phone
  (``--tls-client-ca``) stands for them, one that names another phone gets 403;
- 404 for a phone the ACS does not know (unless a default profile is served to
  unknown phones): "file not found", retried after ``Resync_Error_Retry_Delay``;
- anything else (a server error) is an "other failure".

Runs on the thread pool, one transaction per fetch: the lookup, the device record
(model, firmware, MAC, address, time of the fetch, from what the phone just told) and
the rendering. Nothing is logged here: what a refusal should say in the log is the reply's
``warning``, which the shell logs at a bounded rate (strangers cause them). Credentials and keys
are never in it.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.engine import Connection, Engine

from acs.provisioning import crypto, flatprofile, store
from acs.provisioning.paths import ProfileName, parse_profile_path
from acs.provisioning.useragent import PhoneAgent, parse_user_agent
from acs.store import inventory
from acs.store.schema import utcnow
from acs.web.auth import BASIC_REFUSED, Authenticator, Credentials
from acs.web.negotiation import qualities
from acs.web.tls import CertificateNames

UnknownPhones = Literal["404", "default"]
XML = "text/xml; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Fetch:
    """One profile request as the HTTP or TFTP shell received it."""

    path: str
    scheme: str = "http"  # http, https or tftp
    method: str = "GET"
    user_agent: str | None = None
    remote_addr: str | None = None
    credentials: Credentials | None = field(default=None, repr=False)
    accept_encoding: str | None = None
    #: what the TLS client certificate, verified against ``--tls-client-ca``, names; None without one
    certificate: CertificateNames | None = None


@dataclass
class Reply:
    """What to answer: status, headers and body; ``reason`` says why, for logs and error bodies."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    reason: str = ""
    device_id: str | None = None
    #: a line for the log, for refusals an operator should hear of (a wrong password, a certificate
    #: naming another device, Basic on plain HTTP)
    warning: str | None = None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A phone's profile as XML, and the key it is to be sent under (None: in clear)."""

    xml: bytes
    key: store.ProfileKey | None = None


#: renders the profile of a device row (``known``) or of an unknown phone described by what it
#: told (its MAC, model, firmware, address, in the same keys); None when there is none to serve
Render = Callable[[Connection, Mapping[str, Any], bool], Rendered | None]


def accepts_gzip(header: str | None) -> bool:
    """Whether an Accept-Encoding header takes gzip (``gzip``, ``x-gzip`` or ``*`` with q > 0)."""
    weights = qualities(header or "")
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def redirect_location(target: str, path: str) -> str:
    """Where a moved phone is sent: ``target`` as it is, or, when it ends with ``/`` (a server,
    not a file), the path the phone asked for on that server."""
    return target + path.lstrip("/") if target.endswith("/") else target


def _pseudo_device(name: ProfileName, agent: PhoneAgent | None, remote_addr: str | None) -> dict[str, Any]:
    """What an unknown phone told of itself, in the device row's keys, for its macros."""
    return {
        "id": None,
        "mac": name.mac or (agent.mac if agent else None),
        "serial_number": agent.serial if agent else None,
        "product_class": agent.model if agent else None,
        "software_version": agent.firmware if agent else None,
        "manufacturer": agent.vendor if agent else None,
        "ip": remote_addr,
    }


class ProfileBackend:
    """Answers profile fetches; shared by the HTTP resource and the TFTP server.

    ``unknown``: ``404`` (file not found for a phone the ACS does not know) or
    ``default`` (render for it what ``render`` gives with ``known=False``).
    ``authenticator``: HTTP Digest for phones with credentials of their own
    (``devices.username/password``, the ones they use for CWMP); None serves every
    known phone without asking.
    """

    def __init__(
        self,
        engine: Engine,
        render: Render | None = None,
        *,
        unknown: UnknownPhones = "404",
        authenticator: Authenticator | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if unknown not in ("404", "default"):
            raise ValueError(f"unknown phones get '404' or 'default', not {unknown!r}")
        self.engine = engine
        self.render = render or render_profile
        self.unknown = unknown
        self.authenticator = authenticator
        self.clock = clock

    def fetch(self, request: Fetch) -> Reply:
        name = parse_profile_path(request.path)
        if name is None:
            return Reply(404, reason=f"{request.path!r} names no profile file; phones fetch e.g. /$MA.cfg")
        agent = parse_user_agent(request.user_agent)
        with self.engine.begin() as conn:
            macs = [name.mac] if name.mac else ([agent.mac] if agent and agent.mac else [])
            serials = [s for s in (name.key, agent.serial if agent else None) if s]
            try:
                device = inventory.find_phone(conn, macs, serials, agent.model if agent else None)
            except inventory.AmbiguousDevice as e:
                shared = f"{e.key} names devices {', '.join(e.device_ids)}"
                return Reply(409, reason=f"{shared}, and the User-Agent does not say which: serving none")
            if device is None:
                return self._unknown(conn, request, name, agent)
            refusal = self._refusal(request, device)
            if refusal is not None:
                return refusal
            told = (
                {"mac": agent.mac, "model": agent.model, "vendor": agent.vendor, "firmware": agent.firmware}
                if agent
                else {}
            )
            device |= inventory.record_profile_fetch(
                conn, device, now=self.clock(), ip=request.remote_addr, **told
            )
            rendered = self.render(conn, device, True)  # with what the phone just told (its firmware)
        if rendered is None:
            return Reply(404, reason=f"no profile for device {device['id']}", device_id=device["id"])
        return self._ok(request, rendered, device["id"])

    def _unknown(
        self, conn: Connection, request: Fetch, name: ProfileName, agent: PhoneAgent | None
    ) -> Reply:
        who = name.mac or (agent.mac if agent else None) or name.key or name.filename
        if self.unknown == "default":
            rendered = self.render(conn, _pseudo_device(name, agent, request.remote_addr), False)
            if rendered is not None:
                return self._ok(request, rendered, None)
        return Reply(404, reason=f"no phone known by {who!r} (import it, or let it inform over TR-069)")

    def _refusal(self, request: Fetch, device: Mapping[str, Any]) -> Reply | None:
        """A redirect, or a refusal to send the profile before the phone authenticates."""
        device_id = device["id"]
        tftp = request.scheme == "tftp"
        target = device.get("profile_redirect")
        if target:
            if tftp:
                return Reply(403, reason=f"device {device_id} moved to {target}; TFTP cannot redirect")
            location = redirect_location(target, request.path.partition("?")[0])
            status = device.get("profile_redirect_status") or 301
            return Reply(status, headers=[("location", location)], reason=f"moved to {location}")
        if self.authenticator is None:
            return None
        if request.certificate is not None:
            verdict = request.certificate.verdict(device_id, device.get("serial_number"), device.get("mac"))
            if verdict == "names":
                return None  # the certificate authenticates the phone: no password asked
            if verdict == "other":
                return Reply(
                    403,
                    reason="the client certificate names another device",
                    device_id=device_id,
                    warning=f"profile fetch for {device_id} from {request.remote_addr} with a client "
                    f"certificate for another device ({request.certificate.subject}); refused",
                )
        sealed = device.get("password")
        if sealed is None:
            return None
        password = sealed.reveal()
        if tftp:
            return Reply(403, reason=f"device {device_id} has credentials: its profile goes over HTTP only")
        creds = request.credentials
        verdict, warning = "challenge", None
        if creds is not None and self.authenticator.basic_refused(creds, tls=request.scheme == "https"):
            warning = f"profile fetch for {device_id} from {request.remote_addr}: {BASIC_REFUSED}"
        elif creds is not None:
            verdict = (
                self.authenticator.check(
                    creds, password, request.method.encode(), tls=request.scheme == "https"
                )
                if creds.username == device.get("username")
                else "denied"
            )
        if verdict == "ok":
            return None
        if verdict == "denied":
            username = creds.username if creds is not None else None
            warning = f"profile fetch: authentication failed for user {username!r} from {request.remote_addr}"
        challenges = self.authenticator.challenges(stale=verdict == "stale", tls=request.scheme == "https")
        return Reply(
            401,
            headers=[("www-authenticate", c.decode()) for c in challenges],
            reason="this phone's profile needs its credentials (HTTP Digest)",
            device_id=device_id,
            warning=warning,
        )

    def _ok(self, request: Fetch, rendered: Rendered, device_id: str | None) -> Reply:
        headers = [("cache-control", "no-store")]
        body = rendered.xml
        key = rendered.key
        if key is not None and (key.passphrase or key.ikm):
            if request.scheme == "tftp" and not key.passphrase:
                return Reply(
                    403,
                    reason="aes128gcm needs HTTP (Content-Encoding); TFTP carries only the openssl form",
                    device_id=device_id,
                )
            body, extra = encrypt(body, key)
            return Reply(200, body, headers + extra, reason="profile sent", device_id=device_id)
        headers.append(("content-type", XML))
        if request.scheme != "tftp":
            headers.append(("vary", "accept-encoding"))
            if accepts_gzip(request.accept_encoding):
                body = gzip.compress(body, mtime=0)
                headers.append(("content-encoding", "gzip"))
        return Reply(200, body, headers, reason="profile sent", device_id=device_id)


def render_profile(conn: Connection, device: Mapping[str, Any], known: bool) -> Rendered | None:
    """A device's effective profile (default -> model -> tag -> device, macros expanded) with its
    key; for an unknown phone the default and model layers only, in clear. None when empty."""
    record = dict(device) if known else dict(device) | {"tags": []}
    profile = store.effective_profile(conn, record)
    if not len(profile):
        return None
    key = store.profile_key(conn, record) if known else None
    return Rendered(flatprofile.render(profile), key)


def encrypt(xml: bytes, key: store.ProfileKey) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers for a keyed profile. A passphrase wins over an IKM: a phone whose
    Profile_Rule has ``--key`` decrypts AES-256-CBC whatever the headers say (Cisco)."""
    if key.passphrase:
        return crypto.openssl_encrypt(xml, key.passphrase, key.digest), [
            ("content-type", "application/octet-stream")
        ]
    assert key.ikm
    return crypto.aes128gcm_encrypt(xml, key.ikm), [("content-type", XML), ("content-encoding", "aes128gcm")]
