"""A simulated phone's connection-request listeners: HTTP (TR-069 3.2.2) and UDP (Annex G), on real sockets.

The HTTP listener answers a GET to the phone's ConnectionRequestURL as a CPE
must: 401 with a Digest challenge (or a Basic one, ``auth="basic"``) until the
request carries the phone's ConnectionRequestUsername/Password, then 200 with an
empty body, and only then the session. The UDP listener takes a signed datagram
(:mod:`acs.connreq.udp`) and drops, as CPEs do, one whose ``un`` or ``sig`` does
not match, a repeat of the last id it took, or one older than the last it took.
Either way the phone then opens a session with ``6 CONNECTION REQUEST`` (and
runs the sessions its requests cause, such as the ``1 BOOT`` / ``M Reboot`` one
after a Reboot), on a thread of the listener's; a request that comes during a
session gets one more session after it.

With ``acs_url`` None the phone only records what it receives (``received``), for
tests of the ACS's side alone. ``mute=True`` plays a phone that never answers: HTTP connections are accepted
and held open without a reply, datagrams are dropped.

    with ConnectionRequestListener(phone, "http://127.0.0.1:7547/", udp=True) as listener:
        ...                               # the ACS kicks the phone
        log, = listener.wait_for_sessions(1)

While a listener runs, its thread owns the phone's sessions: a test does not run
sessions of the same phone by itself meanwhile. Blocking sockets and threads on
purpose, like :mod:`acs.testing.client`: the phone is the ACS's counterpart, not
part of it.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from acs.connreq import udp
from acs.testing.client import SessionLog, run_session
from acs.testing.phone import SimulatedPhone
from acs.web.auth import Authenticator, parse_authorization

CONNECTION_REQUEST = "6 CONNECTION REQUEST"
_CR = "Device.ManagementServer.ConnectionRequest"


@dataclass(frozen=True, slots=True)
class Received:
    """One connection request as the phone saw it: over ``http`` or ``udp``, and what it did with it."""

    method: str
    #: "accepted", "challenged" (HTTP 401), "refused" (HTTP 404), "dropped" (UDP) or "ignored" (mute)
    verdict: str
    reason: str = ""


class ConnectionRequestListener:
    def __init__(
        self,
        phone: SimulatedPhone,
        acs_url: str | None,
        *,
        http: bool = True,
        udp: bool = False,
        auth: str = "digest",
        mute: bool = False,
        realm: str = "Cisco",
        session_timeout: float = 15.0,
        follow: int = 5,
    ) -> None:
        if auth not in ("digest", "basic"):
            raise ValueError(f"auth is 'digest' or 'basic', not {auth!r}")
        if not (http or udp):
            raise ValueError("listen over http, udp or both")
        self.phone = phone
        self.acs_url = acs_url
        self.auth = auth
        self.mute = mute
        self.session_timeout = session_timeout
        self.follow = follow
        self.authenticator = Authenticator(
            realm, allow_basic=auth == "basic", qops=("auth",)
        )  # as phones offer
        self.received: list[Received] = []
        self.sessions: list[SessionLog] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Condition()
        self._wanted = False
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http: _Server | None = None
        self._udp: socket.socket | None = None
        self._last_udp: tuple[int, int] | None = None  # (ts, id) of the last datagram taken
        self.url = ""
        self.udp_address = ""
        if http:
            self._http = _Server(("127.0.0.1", 0), _Handler)
            self._http.listener = self
            self.url = f"http://127.0.0.1:{self._http.server_address[1]}/{phone.mac}"
        if udp:
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._udp.bind(("127.0.0.1", 0))
            self._udp.settimeout(0.1)
            self.udp_address = f"127.0.0.1:{self._udp.getsockname()[1]}"

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> ConnectionRequestListener:
        """Listen, and tell the phone so: its next Inform reports the addresses."""
        self.phone.listen_for_connection_requests(self.url, self.udp_address)
        if self._http is not None:
            self._spawn(self._http.serve_forever, 0.05)
        if self._udp is not None:
            self._spawn(self._serve_udp)
        if self.acs_url is not None:
            self._spawn(self._run_sessions)
        return self

    def close(self) -> None:
        """Stop listening and wait for the threads (a session under way finishes first)."""
        self._closing.set()
        with self._lock:
            self._lock.notify_all()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(self.session_timeout * 2)
        if self._udp is not None:
            self._udp.close()

    def __enter__(self) -> ConnectionRequestListener:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"cr-{self.phone.mac}")
        thread.start()
        self._threads.append(thread)

    # --- what tests look at ------------------------------------------------------------------------

    def wait_for_sessions(self, count: int, timeout: float = 30.0) -> list[SessionLog]:
        """The first ``count`` sessions connection requests caused; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.sessions) < count and not self.errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            if self.errors:
                raise AssertionError(f"the phone's session failed: {self.errors[0]!r}") from self.errors[0]
            if len(self.sessions) < count:
                raise AssertionError(
                    f"{len(self.sessions)} session(s) after {timeout:g} s, not {count}; "
                    f"connection requests received: {self.received}"
                )
            return self.sessions[:count]

    # --- taking a request -----------------------------------------------------------------------

    def _credentials(self) -> tuple[str, str]:
        return str(self.phone.value(_CR + "Username")), str(self.phone.value(_CR + "Password"))

    def _note(self, method: str, verdict: str, reason: str = "", *, wake: bool = True) -> None:
        """Record a request in the order they came; an accepted one starts a session unless
        ``wake`` is False (then ``_wake`` does, once its answer is sent)."""
        with self._lock:
            self.received.append(Received(method, verdict, reason))
            if verdict == "accepted" and wake:
                self._wanted = True
            self._lock.notify_all()

    def _wake(self) -> None:
        with self._lock:
            self._wanted = True
            self._lock.notify_all()

    def _check_http(self, path: str, authorization: str | None) -> tuple[int, list[str], str]:
        """(status, WWW-Authenticate values, reason) for a GET."""
        if urlsplit(path).path != urlsplit(self.url).path:
            return 404, [], f"{path} is not the ConnectionRequestURL's path"
        username, password = self._credentials()
        creds = parse_authorization(authorization.encode("latin-1") if authorization else None)
        verdict = "denied"
        if creds is not None and creds.username == username:
            verdict = self.authenticator.check(creds, password, b"GET", tls=False)
        if verdict == "ok":
            return 200, [], ""
        if self.auth == "basic":
            challenges = [f'Basic realm="{self.authenticator.realm}"']
        else:
            challenges = [c.decode() for c in self.authenticator.challenges(stale=verdict == "stale")]
        reason = "no credentials" if creds is None else f"credentials {verdict}"
        return 401, challenges, reason

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._closing.is_set():
            try:
                datagram, _ = self._udp.recvfrom(udp.MAX_SIZE + 1)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mute:
                self._note("udp", "ignored", "mute")
                continue
            self._note("udp", *self._check_udp(datagram))

    def _check_udp(self, datagram: bytes) -> tuple[str, str]:
        try:
            request = udp.parse(datagram)
        except ValueError as e:
            return "dropped", str(e)
        reason = request.verify(*self._credentials())
        if reason:
            return "dropped", reason
        if self._last_udp is not None:
            last_ts, last_id = self._last_udp
            if request.id == last_id:
                return "dropped", f"id {request.id} was taken already (a retransmission)"
            if request.ts < last_ts:
                return "dropped", f"ts {request.ts} is older than the last one taken ({last_ts})"
        self._last_udp = (request.ts, request.id)
        return "accepted", ""

    # --- the sessions -------------------------------------------------------------------------

    def _run_sessions(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._closing.is_set():
                    self._lock.wait()
                if self._closing.is_set():
                    return
                self._wanted = False
            events: list[str] | None = [CONNECTION_REQUEST]
            for _ in range(1 + self.follow):
                assert self.acs_url is not None
                try:
                    log = run_session(self.phone, self.acs_url, events=events, timeout=self.session_timeout)
                except BaseException as e:
                    with self._lock:
                        self.errors.append(e)
                        self._lock.notify_all()
                    break
                with self._lock:
                    self.sessions.append(log)
                    self._lock.notify_all()
                events = None
                if not self.phone.pending_events:
                    break


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    listener: ConnectionRequestListener


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        listener = self.server.listener
        if listener.mute:
            listener._note("http", "ignored", "mute")
            listener._closing.wait()  # hold the connection, never answer
            self.close_connection = True
            return
        status, challenges, reason = listener._check_http(self.path, self.headers.get("Authorization"))
        verdict = {200: "accepted", 401: "challenged"}.get(status, "refused")
        listener._note("http", verdict, reason, wake=False)  # recorded in the order requests came
        self.send_response(status)
        for challenge in challenges:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()
        if verdict == "accepted":  # the answer first, then the session (TR-069 3.2.2)
            listener._wake()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``listener.received``."""
