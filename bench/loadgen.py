"""A CWMP load generator: many simulated Cisco MPP phones per process, cheap enough to measure the ACS.

Run: ``python bench/loadgen.py http://127.0.0.1:7547/ --phones 500 --sessions 5000``
(``--help`` for the rest). ``bench/sessions.py`` drives it against a server it starts.

Why it is built this way: on a 2-core machine the generator shares the CPU with
the server, so every microsecond it spends is taken from the figures.

- Messages are built once. A template phone (:class:`acs.testing.SimulatedPhone`,
  the project's Cisco data model) serializes each message once, with a placeholder
  identity; a phone's copy is the template with its serial, MAC and IP substituted
  by ``bytes.replace``. No lxml on the hot path.
- The ACS's requests are answered from a cache keyed by the request's bytes after
  its ``cwmp:ID`` (a GetParameterValues of the same 32 names is the same key for
  every phone). A miss is parsed and answered once by the template phone.
- HTTP/1.1 is a small ``asyncio.Protocol``: one buffer, one future per response,
  Content-Length bodies, keep-alive within a session, the cookie echoed, and the
  401 Digest round trip answered as a phone does (RFC 7616, MD5, qop=auth; what does not
  change between answers is hashed once).
- Each session opens a new TCP connection, as a phone does.

A session's latency runs from the start of its connection to the ACS's 204.
Errors are counted by kind: HTTP statuses other than 200/204 (and 401 where it
is not the expected challenge), timeouts, connection errors, and protocol
surprises (an InformResponse missing, a body without Content-Length). Every run
is bounded in time.

With ``--procs P`` the phones are split over P processes that start together; the
figures are merged, and each process reports the CPU it spent during the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import gc
import hashlib
import itertools
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make the project importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acs import cwmp
from acs.cwmp import rpc, values
from acs.cwmp.faults import CwmpError
from acs.testing.datamodel import OUI, ip_for_mac
from acs.testing.phone import SimulatedPhone

MODEL = "CP-8841-3PCC"
#: the fleet index of the template phone whose messages every phone's are made from
TEMPLATE_INDEX = 0xFFFFFE
#: phone indices stay below this: the MAC's last three octets hold the index, and the
#: template's IP prefix (10.255.255.) must not be a real phone's
MAX_INDEX = 0xFF0000
#: placeholders the templates carry, replaced per session
_UPTIME = 1234567890
_TIME = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
_ID = "BENCH-ID-PLACEHOLDER"
VOICE = "Device.Services.VoiceService.1."
#: what a periodic Inform carries: the forced-inform parameters of the simulated phone, and the
#: values an operator's dashboard wants from each phone (uptime, SIP registration of line 1)
PERIODIC_PARAMETERS = (
    "Device.RootDataModelVersion",
    "Device.DeviceInfo.HardwareVersion",
    "Device.DeviceInfo.SoftwareVersion",
    "Device.DeviceInfo.ProvisioningCode",
    "Device.DeviceInfo.UpTime",
    "Device.DeviceInfo.MemoryStatus.Free",
    "Device.ManagementServer.ParameterKey",
    "Device.ManagementServer.ConnectionRequestURL",
    "Device.ManagementServer.UDPConnectionRequestAddress",
    "Device.ManagementServer.PeriodicInformInterval",
    "Device.ManagementServer.AliasBasedAddressing",
    "Device.Ethernet.Interface.1.MACAddress",
    "Device.IP.Interface.1.IPv4Address.1.IPAddress",
    f"{VOICE}SIP.Client.1.Status",
    f"{VOICE}SIP.Client.1.AuthUserName",
    f"{VOICE}SIP.Client.1.RegisterURI",
    f"{VOICE}SIP.Network.1.ProxyServer",
    f"{VOICE}SIP.Network.1.RegistrarServer",
    f"{VOICE}CallControl.Line.1.Status",
    f"{VOICE}CallControl.Line.1.DirectoryNumber",
)
SCENARIOS = ("periodic", "bootstrap")
#: a misbehaving ACS must not keep a phone in an endless session
MAX_EXCHANGES = 1000
#: the answer cache holds what the ACS asks of every phone; requests unique to a phone are not kept
MAX_CACHED_ANSWERS = 10_000
ERROR_SAMPLES = 5


# --- identities and message templates -------------------------------------------------------


def serial(n: int) -> str:
    return f"FCH{n:08d}"


def mac(n: int) -> str:
    return f"{OUI.lower()}{n:06x}"


def device_id(n: int) -> str:
    """``OUI-ProductClass-SerialNumber``: how the ACS files phone ``n``."""
    return f"{OUI}-{MODEL}-{serial(n)}"


def _identity(n: int) -> list[bytes]:
    """The strings of phone ``n`` that differ from another phone's, in the order they are replaced."""
    m = mac(n)
    ip = ip_for_mac(m)
    return [
        serial(n).encode(),
        ":".join(m[i : i + 2] for i in range(0, 12, 2)).encode(),
        m.upper().encode(),
        m.encode(),
        ip.encode(),
        ip.rpartition(".")[0].encode() + b".",  # the gateway, DNS and DHCP server: x.y.z.1
    ]


_TEMPLATE_IDENTITY = _identity(TEMPLATE_INDEX)


def substitutions(n: int) -> list[tuple[bytes, bytes]]:
    """(template bytes, phone ``n``'s bytes) pairs: a template message becomes phone n's message."""
    if not 0 <= n < MAX_INDEX:
        raise ValueError(f"phone index {n} out of range 0..{MAX_INDEX - 1}")
    return list(zip(_TEMPLATE_IDENTITY, _identity(n), strict=True))


def substitute(data: bytes, pairs: list[tuple[bytes, bytes]]) -> bytes:
    for old, new in pairs:
        data = data.replace(old, new)
    return data


def _template_phone() -> SimulatedPhone:
    """The phone every message is built from, with a few values a provisioned MPP phone has."""
    phone = SimulatedPhone(MODEL, serial(TEMPLATE_INDEX), mac(TEMPLATE_INDEX), clock=lambda: _TIME)
    m = phone.model
    m.set(f"{VOICE}SIP.Client.1.Status", "Up")
    m.set(f"{VOICE}SIP.Client.1.AuthUserName", mac(TEMPLATE_INDEX))
    m.set(f"{VOICE}SIP.Client.1.RegisterURI", f"sip:{mac(TEMPLATE_INDEX)}@sip.example.net")
    m.set(f"{VOICE}SIP.Network.1.ProxyServer", "sip.example.net")
    m.set(f"{VOICE}SIP.Network.1.RegistrarServer", "sip.example.net")
    m.set(f"{VOICE}CallControl.Line.1.Status", "Up")
    m.set(f"{VOICE}CallControl.Line.1.DirectoryNumber", "1001")
    m.set("Device.ManagementServer.PeriodicInformInterval", 3600)
    return phone


def _split(data: bytes, *placeholders: bytes) -> list[bytes]:
    """``data`` cut at each placeholder, in order: parts to join with the values of one session."""
    parts: list[bytes] = []
    for placeholder in placeholders:
        head, sep, data = data.partition(placeholder)
        if not sep:
            raise ValueError(f"placeholder {placeholder!r} not found in a template")
        parts.append(head)
    return [*parts, data]


class Templates:
    """Every message a phone sends, built once from the template phone; answers cached by request."""

    def __init__(self) -> None:
        self.phone = _template_phone()
        time_text = values.encode(_TIME, "dateTime").encode()
        # periodic Inform: 2 PERIODIC and 20 parameters, UpTime and CurrentTime filled per session
        model = self.phone.model
        params = []
        for path in PERIODIC_PARAMETERS:
            p = model.parameter(path)
            value = _UPTIME if path == "Device.DeviceInfo.UpTime" else p.value
            params.append(rpc.ParameterValueStruct(path, value, p.type))
        periodic = rpc.Inform(
            DeviceId=self.phone.inform().DeviceId,
            Event=[rpc.EventStruct("2 PERIODIC", "")],
            MaxEnvelopes=1,
            CurrentTime=_TIME,
            RetryCount=0,
            ParameterList=params,
        )
        data = cwmp.serialize(self.phone.envelope(periodic, ID="1"))
        self.periodic = _split(data, time_text, str(_UPTIME).encode())
        # bootstrap Inform: what the simulated phone sends on first contact (0 BOOTSTRAP, 1 BOOT)
        bootstrap = self.phone.inform()
        assert {"0 BOOTSTRAP", "1 BOOT"} <= set(bootstrap.event_codes)
        data = cwmp.serialize(self.phone.envelope(bootstrap, ID="1"))
        self.bootstrap = _split(data, time_text)
        self._answers: dict[bytes, tuple[bytes, bytes, bool]] = {}

    def periodic_values(self, n: int) -> list[tuple[str, str, str]]:
        """(path, xsi type, value text) of the periodic Inform of phone ``n``: what the store will hold."""
        pairs = [(a.decode(), b.decode()) for a, b in substitutions(n)]
        rows = []
        for path in PERIODIC_PARAMETERS:
            p = self.phone.model.parameter(path)
            text = values.encode(p.value, p.type)
            for old, new in pairs:
                text = text.replace(old, new)
            rows.append((path, p.type, text))
        return rows

    def answer(self, request: bytes, pairs: list[tuple[bytes, bytes]]) -> bytes:
        """The phone's response to an ACS request, from the cache; parsed and answered once per kind."""
        request_id, key = _request_id(request)
        entry = self._answers.get(key)
        if entry is None:
            entry = self._build_answer(request)
            if len(self._answers) < MAX_CACHED_ANSWERS:
                self._answers[key] = entry
        head, tail, personal = entry
        data = head + request_id + tail if request_id is not None else head + tail
        return substitute(data, pairs) if personal else data

    def _build_answer(self, request: bytes) -> tuple[bytes, bytes, bool]:
        try:
            env = cwmp.parse(request)
        except CwmpError as e:
            raise ProtocolError(f"unreadable request from the ACS: {e}") from None
        if not isinstance(env.body, rpc.Request | rpc.UnknownMethod):
            raise ProtocolError(f"the ACS sent {type(env.body).__name__} where a request was due")
        has_id = env.ID is not None
        reply = self.phone.envelope(self.phone.answer(env.body), ID=_ID if has_id else None)
        data = cwmp.serialize(reply)
        head, _, tail = data.partition(_ID.encode()) if has_id else (data, b"", b"")
        personal = any(t in data for t in _TEMPLATE_IDENTITY)
        return head, tail, personal


_ID_ELEMENT = re.compile(rb"<(?:[\w.-]+:)?ID\b[^>]*>([^<]*)</(?:[\w.-]+:)?ID>")


def _request_id(body: bytes) -> tuple[bytes | None, bytes]:
    """(the cwmp:ID value, the bytes after it): the key of the answer cache. A bytes find, mostly."""
    start = body.find(b"<cwmp:ID ")
    if start >= 0:
        open_end = body.find(b">", start)
        close = body.find(b"</cwmp:ID>", open_end)
        if open_end >= 0 and close >= 0:
            return body[open_end + 1 : close], body[close + 10 :]
    m = _ID_ELEMENT.search(body)
    if m is None:
        return None, body
    return m.group(1), body[m.end() :]


# --- HTTP/1.1 -------------------------------------------------------------------------------


class ProtocolError(Exception):
    """The ACS said something a phone cannot go on with (not an HTTP status: those are counted apart)."""


class HttpStatus(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    cookie: bytes | None
    challenge: bytes | None
    close: bool


class _Http(asyncio.Protocol):
    """One client connection: requests written whole, one response awaited at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.lost: Exception | None = None
        self._head: tuple[int, int, int | None, bytes | None, bytes | None, bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("the ACS closed the connection")
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(self.lost)

    def request(self, data: bytes) -> asyncio.Future[Response]:
        if self.lost is not None or self.transport is None:
            raise ConnectionResetError("the connection is closed")
        self.waiter = self.loop.create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        waiter = self.waiter
        if waiter is None:
            return
        head = self._head
        if head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                head = self._head = _parse_head(bytes(buf[:end]), end + 4)
            except ProtocolError as e:
                self.waiter = None
                waiter.set_exception(e)
                return
        start, status, length, cookie, challenge, close = head
        if length is None:
            if status == 204 or status == 304 or status < 200:
                length = 0
            else:
                self.waiter = self._head = None
                waiter.set_exception(ProtocolError(f"HTTP {status} without Content-Length"))
                return
        end = start + length
        if len(buf) < end:
            return
        body = bytes(buf[start:end])
        del buf[:end]
        self.waiter = self._head = None
        waiter.set_result(Response(status, body, cookie, challenge, close))


def _parse_head(head: bytes, start: int) -> tuple[int, int, int | None, bytes | None, bytes | None, bool]:
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0][9:12])
    except ValueError:
        raise ProtocolError(f"not an HTTP status line: {lines[0][:80]!r}") from None
    length: int | None = None
    cookie = challenge = None
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"set-cookie":
            cookie = value.strip().split(b";", 1)[0]
        elif name == b"www-authenticate":
            if value.strip()[:6].lower() == b"digest":
                challenge = value.strip()
        elif name == b"connection":
            close = b"close" in value.lower()
        elif name == b"transfer-encoding":
            coding = value.strip().decode("latin-1")
            raise ProtocolError(f"Transfer-Encoding {coding!r}: small CPE stacks read by Content-Length")
    return start, status, length, cookie, challenge, close


_CHALLENGE_PARAM = re.compile(rb'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


@functools.lru_cache(maxsize=256)
def _md5_cached(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class Digest:
    """A phone's side of HTTP Digest (RFC 7616 with qop=auth, or RFC 2069 without qop), MD5 only.

    HA1 and HA2 are the same in every answer of a run: they are hashed once. After a
    challenge, each answer takes the next nonce count; a new challenge for the nonce
    already answered means the answer was refused.
    """

    def __init__(self, username: str, password: str, uri: str) -> None:
        self.username = username
        self.password = password
        self.uri = uri
        self.nonce: str | None = None
        self.realm = ""
        self.opaque: str | None = None
        self.qop = True
        self.nc = 0

    def challenge(self, header: bytes) -> bool:
        """Take a ``WWW-Authenticate: Digest ...`` challenge; False when there is nothing new to answer."""
        p = {
            m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)).decode("latin-1")
            for m in _CHALLENGE_PARAM.finditer(header, 6)
        }
        if p.get(b"algorithm", "MD5").upper() != "MD5":
            return False
        nonce = p.get(b"nonce", "")
        if nonce == self.nonce and p.get(b"stale", "").lower() != "true":
            return False
        self.nonce, self.realm, self.opaque, self.nc = nonce, p.get(b"realm", ""), p.get(b"opaque"), 0
        self.qop = "auth" in [q.strip() for q in p.get(b"qop", "").split(",")]
        return True

    def authorization(self) -> bytes:
        """The Authorization header line for the next request; empty before any challenge."""
        if self.nonce is None:
            return b""
        ha1 = _md5_cached(f"{self.username}:{self.realm}:{self.password}")
        ha2 = _md5_cached(f"POST:{self.uri}")
        fields = f'username="{self.username}", realm="{self.realm}", nonce="{self.nonce}", uri="{self.uri}"'
        if self.qop:
            self.nc += 1
            nc = f"{self.nc:08x}"
            cnonce = f"{next(_CNONCES):016x}"
            response = _md5(f"{ha1}:{self.nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
        else:
            response = _md5(f"{ha1}:{self.nonce}:{ha2}")
        fields += f', algorithm=MD5, response="{response}"'
        if self.opaque is not None:
            fields += f', opaque="{self.opaque}"'
        return b"Authorization: Digest " + fields.encode() + b"\r\n"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


#: client nonces: unique per process, no system call per answer
_CNONCES = itertools.count(int.from_bytes(os.urandom(6), "big") << 16)


# --- phones and the run ---------------------------------------------------------------------


@dataclass
class Config:
    """What one load generator process does."""

    url: str
    scenario: str = "periodic"
    phones: int = 50
    #: sessions to run in all (None: until ``duration`` is over)
    sessions: int | None = 1000
    duration: float | None = None
    #: sessions/s to aim at (None: back to back, each phone as fast as the ACS answers)
    rate: float | None = None
    #: the first phone's fleet index; periodic phones are first_index..first_index+phones-1, and a
    #: bootstrap session takes a fresh index (a new phone) each time from first_index on
    first_index: int = 0
    username: str | None = None
    password: str | None = None
    #: reuse a phone's last Digest nonce (nc+1) instead of taking the 401 round trip every session
    reuse_nonce: bool = False
    #: seconds a phone waits for a connection or for each HTTP response before it gives up
    timeout: float = 30.0
    #: the run's bound, in seconds: no session starts after it (nor after ``duration``), and
    #: sessions still running then are cut off and counted as errors
    max_time: float = 600.0


@dataclass
class Result:
    sessions: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    #: milliseconds, one per completed session
    latencies: list[float] = field(default_factory=list)
    exchanges: int = 0
    #: wall clock (time.time()) of the first session start and the last session end
    start: float = 0.0
    end: float = 0.0
    #: user + system CPU seconds the generator spent during the load (its set-up excluded)
    cpu: float = 0.0
    #: fleet indices of the phones that bootstrapped (first, last + 1), per process
    bootstrapped: list[tuple[int, int]] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @classmethod
    def merge(cls, results: list[Result]) -> Result:
        merged = cls()
        errors: Counter[str] = Counter()
        for r in results:
            merged.sessions += r.sessions
            errors.update(r.errors)
            merged.error_samples += r.error_samples[: ERROR_SAMPLES - len(merged.error_samples)]
            merged.latencies += r.latencies
            merged.exchanges += r.exchanges
            merged.cpu += r.cpu
            merged.bootstrapped += r.bootstrapped
        merged.errors = dict(errors)
        merged.start = min((r.start for r in results if r.start), default=0.0)
        merged.end = max((r.end for r in results), default=0.0)
        return merged


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]


class _Watchdog:
    """Cuts a session off when the ACS keeps a phone waiting too long for one connection or response."""

    __slots__ = ("handle", "loop", "task", "timed_out", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.task = asyncio.current_task()
        self.timeout = timeout
        self.timed_out = False
        self.handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.handle = self.loop.call_later(self.timeout, self._expire)

    def disarm(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _expire(self) -> None:
        self.timed_out = True
        if self.task is not None:
            self.task.cancel()


class LoadGenerator:
    """The phones of one process and their sessions."""

    def __init__(self, config: Config, templates: Templates | None = None) -> None:
        if config.scenario not in SCENARIOS:
            raise ValueError(f"scenario is one of {', '.join(SCENARIOS)}, not {config.scenario!r}")
        if config.sessions is None and config.duration is None:
            raise ValueError("give a number of sessions or a duration")
        self.config = config
        self.templates = templates or Templates()
        parts = urlsplit(config.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an http:// URL with a host is needed, not {config.url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        host = f"{self.host}:{self.port}".encode()
        self._post = b"POST " + self.path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
        self.latencies = array("d")
        self.errors: Counter[str] = Counter()
        self.samples: list[str] = []
        self.exchanges = 0
        self.started = 0
        self.next_index = config.first_index
        self._clock_second = -1
        self._clock_text = b""
        self._t0 = 0.0

    # --- a phone's messages ---

    def _now_text(self) -> bytes:
        second = int(time.time())
        if second != self._clock_second:
            self._clock_second = second
            self._clock_text = values.encode(datetime.fromtimestamp(second, UTC), "dateTime").encode()
        return self._clock_text

    def _inform(self, n: int, pairs: list[tuple[bytes, bytes]], personal: list[bytes] | None) -> bytes:
        if self.config.scenario == "periodic":
            assert personal is not None
            uptime = str(86_400 + 37 * n + int(time.monotonic() - self._t0)).encode()
            return personal[0] + self._now_text() + personal[1] + uptime + personal[2]
        head, tail = self.templates.bootstrap
        return substitute(head, pairs) + self._now_text() + substitute(tail, pairs)

    def _headers(self, n: int) -> bytes:
        m = mac(n)
        return (
            self._post
            + f"User-Agent: Cisco-{MODEL}/12.0.1 ({m})\r\n".encode()
            + b'Content-Type: text/xml; charset="utf-8"\r\nSOAPAction: ""\r\n'
        )

    def _digest(self) -> Digest | None:
        """A phone's Digest state, or None when the run has no credentials."""
        cfg = self.config
        if cfg.username is None or cfg.password is None:
            return None
        return Digest(cfg.username, cfg.password, self.path)

    # --- the run ---

    async def run(self) -> Result:
        cfg = self.config
        self._t0 = time.monotonic()
        start_wall = time.time()
        cpu0 = _cpu()
        self._deadline = self._t0 + min(
            cfg.duration if cfg.duration is not None else cfg.max_time, cfg.max_time
        )
        phones = [asyncio.ensure_future(self._phone(i)) for i in range(cfg.phones)]
        done, pending = await asyncio.wait(phones, timeout=cfg.max_time)
        for task in pending:  # past the bound: cut off, counted as timeouts
            task.cancel()
        if pending:
            self.errors["timeout (run bound)"] += len(pending)
            await asyncio.wait(pending, timeout=5)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        result = Result(
            sessions=len(self.latencies),
            errors=dict(self.errors),
            error_samples=self.samples,
            latencies=[round(x, 3) for x in self.latencies],
            exchanges=self.exchanges,
            start=start_wall,
            end=time.time(),
            cpu=_cpu() - cpu0,
        )
        if cfg.scenario == "bootstrap" and self.next_index > cfg.first_index:
            result.bootstrapped = [(cfg.first_index, self.next_index)]
        return result

    def _take(self) -> int | None:
        """Start another session? The session's number in this process, or None when the run is over."""
        cfg = self.config
        if cfg.sessions is not None and self.started >= cfg.sessions:
            return None
        if time.monotonic() >= self._deadline:
            return None
        self.started += 1
        return self.started - 1

    async def _phone(self, slot: int) -> None:
        cfg = self.config
        n = cfg.first_index + slot
        pairs = substitutions(n) if cfg.scenario == "periodic" else []
        personal = [substitute(p, pairs) for p in self.templates.periodic] if pairs else None
        headers = self._headers(n) if pairs else b""
        digest = self._digest() if cfg.reuse_nonce and cfg.scenario == "periodic" else None
        while (k := self._take()) is not None:
            if cfg.rate:
                delay = self._t0 + k / cfg.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if cfg.scenario == "bootstrap":
                n = self.next_index
                self.next_index += 1
                pairs = substitutions(n)
                headers = self._headers(n)
            if not await self._session(n, pairs, personal, headers, digest):
                await asyncio.sleep(0.05)  # a phone that failed does not hammer the ACS at once

    async def _session(
        self,
        n: int,
        pairs: list[tuple[bytes, bytes]],
        personal: list[bytes] | None,
        headers: bytes,
        digest: Digest | None,
    ) -> bool:
        """One session from TCP connect to the ACS's 204; True when it completed."""
        loop = asyncio.get_running_loop()
        watchdog = _Watchdog(loop, self.config.timeout)
        conn: _Http | None = None
        start = time.perf_counter()
        try:
            conn = await self._connect(loop, watchdog)
            inform = self._inform(n, pairs, personal)
            if digest is None or not self.config.reuse_nonce:
                digest = self._digest()  # a new challenge every session: the 401 round trip is measured
            auth = digest.authorization() if digest is not None else b""
            resp, conn = await self._post_message(loop, watchdog, conn, headers, inform, None, auth)
            for _ in range(2):  # Cisco phones answer a challenge at most twice per message
                if resp.status != 401 or resp.challenge is None:
                    break
                if digest is None or not digest.challenge(resp.challenge):
                    break  # no credentials, or the same nonce challenged again: refused
                auth = digest.authorization()
                resp, conn = await self._post_message(loop, watchdog, conn, headers, inform, None, auth)
            if resp.status != 200:
                raise HttpStatus(resp.status, resp.body)
            if b"InformResponse" not in resp.body:
                raise ProtocolError(f"no InformResponse to the Inform: {resp.body[:200]!r}")
            cookie = resp.cookie
            body = b""
            for _ in range(MAX_EXCHANGES):
                resp, conn = await self._post_message(loop, watchdog, conn, headers, body, cookie, b"")
                if resp.status == 204:
                    break
                if resp.status != 200:
                    raise HttpStatus(resp.status, resp.body)
                if not resp.body:
                    raise ProtocolError("HTTP 200 with an empty body: the end of a session is a 204")
                cookie = resp.cookie or cookie
                body = self.templates.answer(resp.body, pairs)
            else:
                raise ProtocolError(f"the ACS kept the session going past {MAX_EXCHANGES} round trips")
        except asyncio.CancelledError:
            if not watchdog.timed_out:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            self._error("timeout", f"phone {n}: nothing from the ACS within {self.config.timeout:g} s")
            return False
        except HttpStatus as e:
            self._error(f"HTTP {e.status}", f"phone {n}: HTTP {e.status}: {e.body[:300]!r}")
            return False
        except ProtocolError as e:
            self._error("protocol", f"phone {n}: {e}")
            return False
        except OSError as e:
            self._error(f"connection ({type(e).__name__})", f"phone {n}: {e!r}")
            return False
        finally:
            watchdog.disarm()
            if conn is not None and conn.transport is not None:
                conn.transport.close()
        self.latencies.append((time.perf_counter() - start) * 1000)
        return True

    async def _connect(self, loop: asyncio.AbstractEventLoop, watchdog: _Watchdog) -> _Http:
        watchdog.arm()
        _, conn = await loop.create_connection(lambda: _Http(loop), self.host, self.port)
        watchdog.disarm()
        return conn

    async def _post_message(
        self,
        loop: asyncio.AbstractEventLoop,
        watchdog: _Watchdog,
        conn: _Http,
        headers: bytes,
        body: bytes,
        cookie: bytes | None,
        auth: bytes,
    ) -> tuple[Response, _Http]:
        """POST one body; a connection the ACS closed between messages is opened again (the cookie
        carries the session)."""
        if conn.lost is not None:
            conn = await self._connect(loop, watchdog)
        if body:
            head = headers + b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        else:
            head = self._post_empty(headers)
        if cookie:
            head += b"Cookie: " + cookie + b"\r\n"
        self.exchanges += 1
        watchdog.arm()
        resp = await conn.request(head + auth + b"\r\n" + body)
        watchdog.disarm()
        if resp.close and conn.transport is not None:
            conn.transport.close()
        return resp, conn

    def _post_empty(self, headers: bytes) -> bytes:
        # the empty POST carries no Content-Type, as phones send it
        return headers.partition(b"Content-Type:")[0] + b"Content-Length: 0\r\n"

    def _error(self, kind: str, sample: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(sample)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(config: Config, templates: Templates | None = None) -> Result:
    """One process's load, in this process."""
    generator = LoadGenerator(config, templates)
    gc.collect()
    gc.freeze()  # the templates and the phone model live for the whole run: keep them out of GC passes
    return asyncio.run(generator.run())


# --- several processes ----------------------------------------------------------------------


def split(config: Config, procs: int) -> list[Config]:
    """The load cut into ``procs`` shares: phones, sessions and fleet indices, each its own."""
    procs = max(1, min(procs, config.phones))
    shares: list[Config] = []
    for i in range(procs):
        phones = config.phones // procs + (i < config.phones % procs)
        sessions = None
        if config.sessions is not None:
            sessions = config.sessions // procs + (i < config.sessions % procs)
        rate = config.rate / procs if config.rate else None
        if config.scenario == "periodic":
            first = config.first_index + sum(s.phones for s in shares)
        else:  # each process takes new phones from its own range
            first = config.first_index + i * ((MAX_INDEX - config.first_index) // procs)
        share = {"phones": phones, "sessions": sessions, "rate": rate, "first_index": first}
        shares.append(Config(**(asdict(config) | share)))
    return shares


def run_processes(config: Config, procs: int = 1, *, start_timeout: float = 60.0) -> Result:
    """The load over ``procs`` child processes that start together; their figures merged.

    Each child builds its messages, says it is ready, and waits for the word to go,
    so that set-up is neither timed nor counted as load. Children are killed if
    they outlive the run's bound, and on any error or Ctrl-C.
    """
    children: list[subprocess.Popen[bytes]] = []
    bound = config.max_time + 30
    try:
        for share in split(config, procs):
            children.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(asdict(share))],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    preexec_fn=die_with_parent,
                )
            )
        for child in children:
            assert child.stdout is not None
            line = _readline(child, start_timeout)
            if line.strip() != b"ready":
                raise RuntimeError(f"load generator process {child.pid} did not start: {line[:500]!r}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, _ = child.communicate(timeout=bound)
            if child.returncode != 0:
                raise RuntimeError(f"load generator process {child.pid} failed (exit {child.returncode})")
            results.append(Result(**json.loads(out.splitlines()[-1])))
        return Result.merge(results)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)


try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl  # looked up before any fork
except (OSError, AttributeError):  # not Linux
    _prctl = None


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the process that started it dies, even by SIGKILL (Linux)."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _readline(child: subprocess.Popen[bytes], timeout: float) -> bytes:
    """A line of the child's stdout, or what there is after ``timeout`` seconds."""
    import selectors

    assert child.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(child.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return b"(nothing within %d s)" % timeout
    return child.stdout.readline()


def _child(config_json: str) -> None:
    config = Config(**json.loads(config_json))
    templates = Templates()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        return
    result = run(config, templates)
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    sys.stdout.flush()


def summary(result: Result) -> str:
    lat = sorted(result.latencies)
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(result.errors.items())) or "none"
    return (
        f"{result.sessions} sessions in {result.elapsed:.2f} s = {result.sessions / result.elapsed:.0f}/s; "
        f"latency p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms; "
        f"{result.exchanges} HTTP exchanges; errors: {errors}; generator CPU {result.cpu:.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("url", nargs="?", help="the ACS URL, e.g. http://127.0.0.1:7547/")
    parser.add_argument("--scenario", choices=SCENARIOS, default="periodic")
    parser.add_argument("--phones", type=int, default=50, help="concurrent phones (default 50)")
    parser.add_argument("--sessions", type=int, default=None, help="sessions in all (default 1000)")
    parser.add_argument("--duration", type=float, default=None, help="seconds to run instead of a count")
    parser.add_argument("--rate", type=float, default=None, help="sessions/s to aim at (default: flat out)")
    parser.add_argument("--procs", type=int, default=1, help="load generator processes (default 1)")
    parser.add_argument("--first-index", type=int, default=0, help="fleet index of the first phone")
    parser.add_argument("--username", help="the CPE user name for Digest authentication")
    parser.add_argument("--password", help="its password")
    parser.add_argument(
        "--reuse-nonce", action="store_true", help="answer the last nonce again instead of a 401 each session"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a phone waits for each response (default 30)"
    )
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if not args.url:
        parser.error("the ACS URL is required")
    config = Config(
        url=args.url,
        scenario=args.scenario,
        phones=args.phones,
        sessions=args.sessions if args.sessions is not None or args.duration else 1000,
        duration=args.duration,
        rate=args.rate,
        first_index=args.first_index,
        username=args.username,
        password=args.password,
        reuse_nonce=args.reuse_nonce,
        timeout=args.timeout,
    )
    result = run_processes(config, args.procs)
    print(summary(result))
    for sample in result.error_samples:
        print("  error:", sample)
    return 1 if result.error_count else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
