"""Carry a simulated phone's CWMP session over real HTTP/1.1, as a phone does.

One keep-alive connection per session; the session cookie the ACS sets is
returned on every later POST; a ``401`` is answered with the phone's
``ManagementServer.Username``/``Password`` (RFC 7616 Digest, RFC 2069 Digest
without qop, or Basic) and the same message is sent again. Blocking
``http.client`` on purpose: tests and a command-line demo want a session to be
one call that returns what happened. (A load generator that must cost little
CPU belongs in ``bench/``, not here.)

    log = run_session(SimulatedPhone(), "http://127.0.0.1:7547/")
    print("\\n".join(log.transcript()))

Over HTTPS the phone checks the ACS's certificate, offers ALPN ``http/1.1`` (as
``http.client`` and phone stacks do) and can present a client certificate of its own, as
Cisco phones present their MIC (``tls_context``).

``python -m acs.testing.client URL`` runs a phone from the shell.
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from acs.cwmp import rpc
from acs.testing.phone import SessionError, SimulatedPhone
from acs.web.auth import DigestAuth

CONTENT_TYPE = 'text/xml; charset="utf-8"'
#: a misbehaving ACS must not keep a test in an endless session
MAX_EXCHANGES = 10_000
#: credentials sent again after a 401, per message
AUTH_RETRIES = 2


@dataclass(slots=True)
class Exchange:
    """One HTTP round trip: the body the phone POSTed (b"" is the empty POST) and what came back."""

    sent: bytes
    status: int
    received: bytes
    request_headers: dict[str, str]
    sent_message: rpc.Message | None = None
    received_message: rpc.Message | None = None


@dataclass(slots=True)
class SessionLog:
    """What one session did on the wire, in order."""

    url: str
    device_id: str
    inform: rpc.Inform
    exchanges: list[Exchange] = field(default_factory=list)
    #: the cookies the ACS set, as the phone returned them
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def statuses(self) -> list[int]:
        return [e.status for e in self.exchanges]

    @property
    def requests(self) -> list[rpc.Message]:
        """The requests the ACS sent the phone (the RPCs it ran)."""
        return [
            e.received_message
            for e in self.exchanges
            if isinstance(e.received_message, rpc.Request | rpc.UnknownMethod)
        ]

    @property
    def responses(self) -> list[rpc.Message]:
        """What the phone answered to those requests: responses and CWMP faults."""
        return [
            e.sent_message for e in self.exchanges if isinstance(e.sent_message, rpc.Response | rpc.Fault)
        ]

    def transcript(self) -> list[str]:
        """One line per round trip, e.g. ``POST GetParameterValuesResponse -> 200 SetParameterValues``."""
        lines = []
        for e in self.exchanges:
            sent = _name(e.sent_message) if e.sent else "(empty)"
            received = _name(e.received_message) if e.received else "(empty)"
            lines.append(f"POST {sent} -> {e.status} {received}")
        return lines


def _name(message: rpc.Message | None) -> str:
    if isinstance(message, rpc.Fault):
        return f"Fault {message.FaultCode}"
    if isinstance(message, rpc.UnknownMethod):
        return message.name
    return type(message).__name__ if message is not None else "?"


def run_session(
    phone: SimulatedPhone,
    url: str,
    *,
    events: Iterable[str | rpc.EventStruct] | None = None,
    timeout: float = 10,
    ssl_context: ssl.SSLContext | None = None,
    chunked: bool = False,
    send_cookies: bool = True,
) -> SessionLog:
    """One CWMP session of ``phone`` with the ACS at ``url``, until the ACS answers 204.

    ``chunked`` sends bodies with chunked transfer coding (as some CPE stacks
    do); ``send_cookies=False`` plays a CPE that never returns the cookie.
    Raises SessionError (with ``status``, ``body`` and the ``log`` so far) on a
    status other than 200/204, a message the phone cannot read, or a broken
    connection; the phone still carries out what it accepted, as a real one would.
    """
    session = phone.session(events)
    log = SessionLog(url, phone.device_id, session.inform)
    try:
        transport = _Transport(url, phone, timeout=timeout, ssl_context=ssl_context, chunked=chunked)
    except SessionError:
        session.close()
        raise
    try:
        body: bytes | None = session.start()
        while body is not None:
            if len(log.exchanges) >= MAX_EXCHANGES:
                raise SessionError(f"the ACS kept the session going for {MAX_EXCHANGES} round trips")
            sent = session.last_sent.body if session.last_sent else None
            exchange = transport.post(body, sent, log, send_cookies=send_cookies)
            if exchange.status not in (200, 204):
                raise SessionError(
                    f"HTTP {exchange.status} from {url}: {_excerpt(exchange.received)}",
                    status=exchange.status,
                    body=exchange.received,
                )
            try:
                body = session.receive(exchange.received if exchange.status == 200 else b"")
            except SessionError as e:
                raise SessionError(
                    f"{e} (HTTP {exchange.status} from {url}: {_excerpt(exchange.received)})",
                    status=exchange.status,
                    body=exchange.received,
                ) from None
            finally:
                exchange.received_message = session.last_received.body if session.last_received else None
    except SessionError as e:
        e.log = log
        raise
    except (OSError, http.client.HTTPException) as e:
        error = SessionError(f"HTTP to {url} failed: {e!r}")
        error.log = log
        raise error from e
    finally:
        session.close()
        transport.close()
    return log


def tls_context(
    cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None
) -> ssl.SSLContext:
    """How the phone speaks TLS: the ACS's certificate checked against ``cafile`` (default: the
    system's CAs) and its name against the URL's host, ALPN ``http/1.1`` offered, and the phone's
    own certificate (``certfile``, its key in ``keyfile`` or the same file) when it has one."""
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    return context


def _excerpt(body: bytes, limit: int = 500) -> str:
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return "(empty body)"
    return text if len(text) <= limit else text[:limit] + "..."


class _Transport:
    """One keep-alive connection, the session's cookies and the answer to authentication challenges."""

    def __init__(
        self,
        url: str,
        phone: SimulatedPhone,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None,
        chunked: bool,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SessionError(f"an ACS URL is http:// or https:// with a host, not {url!r}")
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "https":
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=ssl_context
            )
        else:
            self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.phone = phone
        self.chunked = chunked
        self.auth = DigestAuth(phone.username, phone.password)

    def post(self, body: bytes, sent: rpc.Message | None, log: SessionLog, *, send_cookies: bool) -> Exchange:
        """POST one message; a 401 is answered with credentials and the same message sent again.

        At most twice per message, as Cisco phones do: an ACS that keeps
        challenging gets its 401 back as the session's error.
        """
        for _ in range(1 + AUTH_RETRIES):
            headers = {"User-Agent": self.phone.user_agent}
            if body:
                headers["Content-Type"] = CONTENT_TYPE
                headers["SOAPAction"] = ""
            if send_cookies and log.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in log.cookies.items())
            authorization = self.auth.authorization("POST", self.path, body)
            if authorization:
                headers["Authorization"] = authorization
            if self.chunked:
                self.conn.request("POST", self.path, body=iter([body]), headers=headers, encode_chunked=True)
            else:
                self.conn.request("POST", self.path, body=body, headers=headers)
            response = self.conn.getresponse()
            received = response.read()
            for cookie in response.headers.get_all("Set-Cookie") or ():
                name, _, value = cookie.split(";", 1)[0].partition("=")
                if name.strip():
                    log.cookies[name.strip()] = value.strip()
            exchange = Exchange(body, response.status, received, headers, sent_message=sent)
            log.exchanges.append(exchange)
            if response.status != 401 or not self.auth.challenge(
                response.headers.get_all("WWW-Authenticate") or ()
            ):
                return exchange
        return exchange

    def close(self) -> None:
        self.conn.close()


# --- from the shell ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run one simulated phone against an ACS and print each session's round trips."""
    parser = argparse.ArgumentParser(
        prog="python -m acs.testing.client", description="A simulated Cisco MPP phone talking CWMP to an ACS."
    )
    parser.add_argument("url", help="the ACS URL, e.g. http://127.0.0.1:7547/")
    parser.add_argument("--model", default="CP-8841-3PCC")
    parser.add_argument("--serial", default="FCH2233A1B2")
    parser.add_argument("--mac", default="00562b043615")
    parser.add_argument("--cwmp-version", default="1.2", choices=["1.0", "1.1", "1.2", "1.3", "1.4"])
    parser.add_argument("--username", default="", help="ManagementServer.Username for HTTP authentication")
    parser.add_argument("--password", default="")
    parser.add_argument("--event", action="append", default=[], help='e.g. "6 CONNECTION REQUEST"')
    parser.add_argument(
        "--cafile", help="over HTTPS: the CA (or certificate) the ACS's certificate is checked against"
    )
    parser.add_argument(
        "--cert", help="over HTTPS: the phone's client certificate (PEM), with its key unless --key"
    )
    parser.add_argument("--key", help="the private key of --cert")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="run the follow-up sessions the ACS's requests cause (after Reboot, Download...)",
    )
    args = parser.parse_args(argv)
    try:
        phone = SimulatedPhone(
            args.model,
            args.serial,
            args.mac,
            cwmp_version=args.cwmp_version,
            acs_url=args.url,
            username=args.username,
            password=args.password,
        )
    except ValueError as e:
        parser.error(str(e))
    events: list[str] | None = args.event or None
    try:
        context = tls_context(args.cafile, args.cert, args.key) if args.url.startswith("https:") else None
    except (OSError, ssl.SSLError) as e:
        parser.error(f"TLS: {e}")
    for _ in range(6 if args.follow else 1):
        try:
            log = run_session(phone, args.url, events=events, ssl_context=context)
        except SessionError as e:
            print(f"{phone.device_id}: session failed: {e}", file=sys.stderr)
            return 1
        print(f"{phone.device_id}: {', '.join(log.inform.event_codes)}")
        for line in log.transcript():
            print(f"  {line}")
        events = None
        if not phone.pending_events:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
