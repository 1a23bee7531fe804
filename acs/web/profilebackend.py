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
- 403 (``--profile-auth required``, the default) for a profile that would go in clear to a
  requester that proved nothing: a profile holds the phone's SIP and admin passwords, so it
  goes in clear only to the phone's credentials or certificate, else encrypted with its key;
- 404 for a phone the ACS does not know (unless a default profile is served to
  unknown phones): "file not found", retried after ``Resync_Error_Retry_Delay``;
- anything else (a server error) is an "other failure".

Runs on the thread pool, one transaction per fetch: the lookup, the device record
(model, firmware, MAC, address, time of the fetch, from what the phone just told; only the
time when the requester did not authenticate) and the rendering. Credentials and keys are
never logged; what a stranger can cause is not logged here but handed to the shell
(``Reply.warning``), which logs it at a bounded rate on the reactor.
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
#: ``required``: a profile goes in clear only to a requester that proved it is the phone, else
#: encrypted with the phone's key, else not at all; ``none``: to anyone who names the phone (a lab)
ProfileAuth = Literal["required", "none"]
PROFILE_AUTH: tuple[ProfileAuth, ...] = ("required", "none")
#: what an operator does about a refused plain profile, in the log line and the 403's body
_WHAT_TO_DO = (
    "give the phone credentials of its own (acs device credentials; --uid/--pwd in its Profile_Rule) "
    "or a key (acs profile key set; [--key ...] in its rule), or have it fetch over HTTPS with a client "
    "certificate that names it (--tls-client-ca); --profile-auth none serves it in clear (a lab)"
)
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
    #: a line for the log at WARNING (a refusal the operator should know of), written by the shell
    #: at a bounded rate under ``cause``: a stranger can cause it as often as it likes
    warning: str = ""
    cause: str = ""

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
    (``devices.username/password``, the ones they use for CWMP); None asks for none (``acs
    serve --no-auth --profile-auth none``). ``auth``: ``required`` sends a profile in clear
    only to a requester that authenticated (its credentials, a client certificate that names
    it), else encrypted with the phone's key, else refuses it (403); ``none`` sends it to
    anyone who names the phone, as a lab wants.
    """

    def __init__(
        self,
        engine: Engine,
        render: Render | None = None,
        *,
        unknown: UnknownPhones = "404",
        authenticator: Authenticator | None = None,
        auth: ProfileAuth = "required",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if unknown not in ("404", "default"):
            raise ValueError(f"unknown phones get '404' or 'default', not {unknown!r}")
        if auth not in PROFILE_AUTH:
            raise ValueError(f"profile authentication is 'required' or 'none', not {auth!r}")
        if auth == "required" and authenticator is None:
            authenticator = Authenticator()  # phones with credentials always answer a challenge
        self.engine = engine
        self.render = render or render_profile
        self.unknown = unknown
        self.authenticator = authenticator
        self.auth = auth
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
            gate = self._gate(request, device)
            if isinstance(gate, Reply):
                return gate
            proven = gate or self.auth == "none"
            told = (
                {"mac": agent.mac, "model": agent.model, "vendor": agent.vendor, "firmware": agent.firmware}
                if agent
                else {}
            )
            now = self.clock()
            facts = inventory.profile_fetch_facts(device, now=now, ip=request.remote_addr, **told)
            # with what the phone just told (its firmware picks the CBC digest)
            rendered = self.render(conn, device | facts, True)
            if rendered is not None and not proven and not sealed(rendered, request.scheme):
                return self._not_proven(request, device, rendered)
            if proven:
                inventory.record_profile_fetch(conn, device, now=now, ip=request.remote_addr, **told)
            else:  # an encrypted profile to a requester that proved nothing: what it told is not kept
                inventory.record_profile_fetch(conn, device, now=now)
        if rendered is None:
            return Reply(404, reason=f"no profile for device {device['id']}", device_id=device["id"])
        return self._ok(request, rendered, device["id"])

    def _not_proven(self, request: Fetch, device: Mapping[str, Any], rendered: Rendered) -> Reply:
        """403 for a profile that would go in clear to a requester that proved nothing."""
        device_id = device["id"]
        if request.scheme == "tftp" and rendered.key is not None and rendered.key.ikm:
            why = "TFTP cannot authenticate, and aes128gcm needs HTTP: TFTP carries only the openssl form"
        elif request.scheme == "tftp":
            why = "TFTP cannot authenticate, and it has no key"
        elif request.certificate is not None:
            why = "the client certificate does not name it, and it has no credentials nor key"
        else:
            why = "it has no credentials of its own nor key, and no client certificate named it"
        reason = (
            f"device {device_id}'s profile holds its passwords: it goes in clear only to a phone "
            f"that authenticates, else encrypted; {why}"
        )
        return Reply(
            403,
            reason=reason,
            device_id=device_id,
            warning=f"profile {request.path} from {request.remote_addr} refused: {reason}; {_WHAT_TO_DO}",
            cause="not proven",
        )

    def _unknown(
        self, conn: Connection, request: Fetch, name: ProfileName, agent: PhoneAgent | None
    ) -> Reply:
        mac = name.mac or (agent.mac if agent else None)
        who = mac or name.key or name.filename
        if self.unknown == "default":
            rendered = self.render(conn, _pseudo_device(name, agent, request.remote_addr), False)
            if rendered is not None:
                if self.auth == "required" and not (request.certificate and mac in request.certificate.macs):
                    reason = (
                        f"no phone known by {who!r}, and the default profile (its passwords) goes to an "
                        "unknown phone only over HTTPS with a client certificate that names its MAC"
                    )
                    return Reply(
                        403,
                        reason=reason,
                        warning=f"profile {request.path} from {request.remote_addr} refused: {reason} "
                        "(--tls-client-ca; --profile-auth none serves it to anyone)",
                        cause="unknown not proven",
                    )
                return self._ok(request, rendered, None)
        return Reply(404, reason=f"no phone known by {who!r} (import it, or let it inform over TR-069)")

    def _gate(self, request: Fetch, device: Mapping[str, Any]) -> Reply | bool:
        """A redirect, or a refusal to send the profile before the phone authenticates; else whether
        the requester proved it is this phone (its credentials, or a certificate that names it)."""
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
            return False
        if request.certificate is not None:
            verdict = request.certificate.verdict(device_id, device.get("serial_number"), device.get("mac"))
            if verdict == "names":
                return True  # the certificate authenticates the phone: no password asked
            if verdict == "other":
                return Reply(
                    403,
                    reason="the client certificate names another device",
                    device_id=device_id,
                    warning=f"profile fetch for {device_id} from {request.remote_addr} with a client "
                    f"certificate for another device ({request.certificate.subject}); refused",
                    cause="other certificate",
                )
        sealed = device.get("password")
        if sealed is None:
            return False
        password = sealed.reveal()
        if tftp:
            return Reply(403, reason=f"device {device_id} has credentials: its profile goes over HTTP only")
        creds = request.credentials
        verdict = "challenge"
        warning, cause = "", ""
        if creds is not None and self.authenticator.basic_refused(creds, tls=request.scheme == "https"):
            warning = f"profile fetch for {device_id} from {request.remote_addr}: {BASIC_REFUSED}"
            cause = "basic refused"
        elif creds is not None:
            verdict = (
                self.authenticator.check(
                    creds, password, request.method.encode(), tls=request.scheme == "https"
                )
                if creds.username == device.get("username")
                else "denied"
            )
        if verdict == "ok":
            return True
        if verdict == "denied":
            warning = (
                f"profile fetch: authentication failed for user {creds and creds.username!r} "
                f"from {request.remote_addr}"
            )
            cause = "denied"
        challenges = self.authenticator.challenges(stale=verdict == "stale", tls=request.scheme == "https")
        return Reply(
            401,
            headers=[("www-authenticate", c.decode()) for c in challenges],
            reason="this phone's profile needs its credentials (HTTP Digest)",
            device_id=device_id,
            warning=warning,
            cause=cause,
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


def sealed(rendered: Rendered, scheme: str) -> bool:
    """Whether the profile goes out encrypted over this scheme (``_ok``'s choice): a CBC passphrase
    anywhere, an RFC 8188 IKM over HTTP(S) only (TFTP carries no Content-Encoding)."""
    key = rendered.key
    return key is not None and bool(key.passphrase or (key.ikm and scheme != "tftp"))


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
