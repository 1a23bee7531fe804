"""ConnectionRequester on real sockets: HTTP Digest/Basic, UDP, failures, limits and the record it keeps.

The phone's side is the simulator's listener (:mod:`acs.testing.connreq`) without an
ACS to call back: these tests look at what the phone received and what the ACS made of
it. The end-to-end sessions are in ``tests/e2e/test_connection_requests.py``.
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads
from twisted.python.threadpool import ThreadPool

from acs.connreq import ConnectionRequester, Options
from acs.store import connection_requests
from acs.store.schema import devices, utcnow
from acs.testing import SimulatedPhone
from acs.testing.connreq import ConnectionRequestListener, Received

CR_USER, CR_PASSWORD = "cr-user", "cr-s3cret"
TIMEOUT = 1.0


@pytest.fixture
def pool() -> Iterator[ThreadPool]:
    pool = ThreadPool(minthreads=1, maxthreads=2, name="test-connreq")
    pool.start()
    yield pool
    pool.stop()


def requester(engine, pool, **options) -> ConnectionRequester:
    return ConnectionRequester(
        reactor, engine, pool, Options(**{"timeout": TIMEOUT, "min_interval": 0} | options)
    )


def add_device(engine, device_id="00562B-CP-8841-3PCC-FCH1", **columns) -> str:
    with engine.begin() as conn:
        conn.execute(
            devices.insert().values(
                id=device_id, oui="00562B", serial_number=device_id[-4:], created_at=utcnow()
            )
        )
        if not columns:
            return device_id
        names = {
            k: "udp_connection_request_address" if k == "udp" else f"connection_request_{k}" for k in columns
        }
        conn.execute(
            devices.update()
            .where(devices.c.id == device_id)
            .values({names[k]: v for k, v in columns.items()})
        )
    return device_id


def phone_listening(**kwargs) -> ConnectionRequestListener:
    """A phone with ConnectionRequestUsername/Password CR_USER/CR_PASSWORD, listening (no ACS to call)."""
    phone = SimulatedPhone()
    phone.model.set("Device.ManagementServer.ConnectionRequestUsername", CR_USER)
    phone.model.set("Device.ManagementServer.ConnectionRequestPassword", CR_PASSWORD)
    return ConnectionRequestListener(phone, None, **kwargs).start()


def history(engine, device_id):
    with engine.connect() as conn:
        return list(reversed(connection_requests.history(conn, device_id)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def until(condition, timeout: float = 5.0) -> None:
    """Wait on the reactor (never blocking it) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await threads.deferToThread(time.sleep, 0.02)


# --- HTTP --------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_digest_the_phone_challenges_the_acs_answers_the_phone_accepts(engine, pool):
    listener = phone_listening()
    try:
        device = add_device(engine, url=listener.url, username=CR_USER, password=CR_PASSWORD)

        result = await requester(engine, pool).kick(device)
    finally:
        listener.close()

    assert (result.outcome, result.method, result.summary()) == ("sent", "http", "sent by HTTP: HTTP 200")
    assert listener.received == [
        Received("http", "challenged", "no credentials"),
        Received("http", "accepted"),
    ]
    (row,) = history(engine, device)
    assert (row["method"], row["outcome"], row["detail"]) == ("http", "sent", "HTTP 200")
    assert row["elapsed"] < TIMEOUT * 2


@pytest_twisted.ensureDeferred
async def test_a_wrong_password_is_refused_and_recorded_as_such(engine, pool):
    listener = phone_listening()
    try:
        device = add_device(engine, url=listener.url, username=CR_USER, password="not-it")
        result = await requester(engine, pool).kick(device)
    finally:
        listener.close()

    assert result.outcome == "refused"
    assert result.summary() == (
        "HTTP refused: HTTP 401: the device refused the ConnectionRequestUsername/Password on record"
    )
    assert [r.verdict for r in listener.received] == ["challenged", "challenged"]
    assert [r["outcome"] for r in history(engine, device)] == ["refused"]


@pytest_twisted.ensureDeferred
async def test_without_credentials_on_record_the_refusal_says_how_to_set_them(engine, pool):
    listener = phone_listening()
    try:
        device = add_device(engine, url=listener.url)
        result = await requester(engine, pool).kick(device)
    finally:
        listener.close()

    assert result.outcome == "refused"
    assert "no ConnectionRequestUsername/Password on record" in result.summary()
    assert "acs device credentials --connection-request" in result.summary()


@pytest_twisted.ensureDeferred
async def test_basic_is_answered_only_when_allowed(engine, pool):
    listener = phone_listening(auth="basic")
    try:
        device = add_device(engine, url=listener.url, username=CR_USER, password=CR_PASSWORD)
        refused = await requester(engine, pool).kick(device)
        sent = await requester(engine, pool, allow_basic=True).kick(device)
    finally:
        listener.close()

    assert refused.outcome == "refused"
    assert "sends the password in clear; allow it with ACS_CONNREQ_ALLOW_BASIC=1" in refused.summary()
    assert (sent.outcome, sent.method) == ("sent", "http")
    assert [r.verdict for r in listener.received] == ["challenged", "challenged", "accepted"]


@pytest_twisted.ensureDeferred
async def test_a_port_nobody_listens_on_is_unreachable(engine, pool):
    device = add_device(engine, url=f"http://127.0.0.1:{free_port()}/cr")

    result = await requester(engine, pool).kick(device)

    assert (result.outcome, result.method) == ("unreachable", "http")
    assert result.summary() == "HTTP unreachable: connection refused: nothing listens there"


@pytest_twisted.ensureDeferred
async def test_a_phone_that_never_answers_times_out_within_the_bound(engine, pool):
    listener = phone_listening(mute=True)
    try:
        device = add_device(engine, url=listener.url, username=CR_USER, password=CR_PASSWORD)
        started = time.monotonic()
        result = await requester(engine, pool).kick(device)
        took = time.monotonic() - started
    finally:
        listener.close()

    assert (result.outcome, result.summary()) == ("timed_out", "HTTP timed_out: no answer within 1 s")
    assert listener.received == [Received("http", "ignored", "mute")]
    assert TIMEOUT <= took < TIMEOUT + 3  # the bound holds; it is not a speed figure
    (row,) = history(engine, device)
    assert row["outcome"] == "timed_out"


@pytest_twisted.ensureDeferred
async def test_a_url_that_is_not_http_is_an_error_named_as_such(engine, pool):
    device = add_device(engine, url="https://10.0.0.1/cr")

    result = await requester(engine, pool).kick(device)

    assert result.outcome == "error"
    assert "is not an http:// URL (TR-069 3.2.2)" in result.summary()


@pytest_twisted.ensureDeferred
async def test_a_device_that_reported_no_address_cannot_be_kicked_and_the_record_says_so(engine, pool):
    device = add_device(engine)

    result = await requester(engine, pool).kick(device)

    assert result.outcome == "unreachable"
    assert "reported no ConnectionRequestURL nor UDPConnectionRequestAddress" in result.summary()
    assert [(r["method"], r["outcome"]) for r in history(engine, device)] == [(None, "unreachable")]


@pytest_twisted.ensureDeferred
async def test_an_unknown_device_is_an_error_and_nothing_is_recorded(engine, pool):
    result = await requester(engine, pool).kick("no-such-device")

    assert (result.outcome, result.summary()) == ("error", "error: no device 'no-such-device'")


# --- UDP ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_udp_three_signed_copies_the_phone_takes_one_and_drops_the_repeats(engine, pool):
    listener = phone_listening(http=False, udp=True)
    try:
        device = add_device(engine, udp=listener.udp_address, username=CR_USER, password=CR_PASSWORD)
        result = await requester(engine, pool).kick(device)
        await until(lambda: len(listener.received) == 3)
    finally:
        listener.close()

    assert (result.outcome, result.method) == ("sent", "udp")
    assert result.summary() == (
        f"sent by UDP: 3 datagrams to {listener.udp_address} "
        "(no reply by design: the 6 CONNECTION REQUEST session confirms it)"
    )
    accepted, *repeats = listener.received
    assert accepted == Received("udp", "accepted")
    assert [r.verdict for r in repeats] == ["dropped", "dropped"]
    assert all("was taken already (a retransmission)" in r.reason for r in repeats)


@pytest_twisted.ensureDeferred
async def test_udp_with_the_wrong_password_leaves_but_the_phone_drops_it(engine, pool):
    listener = phone_listening(http=False, udp=True)
    try:
        device = add_device(engine, udp=listener.udp_address, username=CR_USER, password="not-it")
        result = await requester(engine, pool, udp_copies=1).kick(device)
        await until(lambda: len(listener.received) == 1)
    finally:
        listener.close()

    assert result.outcome == "sent"  # UDP has no answer: only the session would tell
    assert listener.received == [
        Received("udp", "dropped", "sig does not verify with this CPE's ConnectionRequestPassword")
    ]


@pytest_twisted.ensureDeferred
async def test_udp_is_tried_when_http_cannot_reach_the_device(engine, pool):
    listener = phone_listening(http=False, udp=True)
    try:
        device = add_device(
            engine,
            url=f"http://127.0.0.1:{free_port()}/cr",
            udp=listener.udp_address,
            username=CR_USER,
            password=CR_PASSWORD,
        )
        result = await requester(engine, pool).kick(device)
        await until(lambda: len(listener.received) == 3)
    finally:
        listener.close()

    assert (result.outcome, result.method) == ("sent", "udp")
    assert result.summary().endswith("(after HTTP unreachable: connection refused: nothing listens there)")
    assert [(r["method"], r["outcome"]) for r in history(engine, device)] == [
        ("http", "unreachable"),
        ("udp", "sent"),
    ]
    assert listener.received[0] == Received("udp", "accepted")


@pytest_twisted.ensureDeferred
async def test_udp_is_not_tried_when_the_phone_answered_http(engine, pool):
    listener = phone_listening(udp=True)
    try:
        device = add_device(
            engine, url=listener.url, udp=listener.udp_address, username=CR_USER, password="not-it"
        )
        result = await requester(engine, pool).kick(device)
    finally:
        listener.close()

    assert [a.method for a in result.attempts] == ["http"]
    assert {r.method for r in listener.received} == {"http"}


# --- limits ------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_one_request_per_interval_per_device_and_kicks_waiting_for_it_share_it(engine, pool):
    listener = phone_listening()
    try:
        device = add_device(engine, url=listener.url, username=CR_USER, password=CR_PASSWORD)
        kicker = requester(engine, pool, min_interval=0.5)
        first = await kicker.kick(device)
        # three kicks while the device's interval runs: one request, when it is over
        results = await defer.gatherResults([kicker.kick(device) for _ in range(3)])
    finally:
        listener.close()

    assert [r.outcome for r in [first, *results]] == ["sent"] * 4
    assert [r.verdict for r in listener.received].count("accepted") == 2
    times = [r["requested_at"] for r in history(engine, device)]
    assert len(times) == 2
    assert times[1] - times[0] >= timedelta(seconds=0.5)


@pytest_twisted.ensureDeferred
async def test_the_interval_counts_requests_other_processes_recorded(engine, pool):
    listener = phone_listening()
    try:
        device = add_device(engine, url=listener.url, username=CR_USER, password=CR_PASSWORD)
        await requester(engine, pool).kick(device)  # another process, as far as the next one knows
        result = await requester(engine, pool, min_interval=0.5).kick(device)
    finally:
        listener.close()

    assert result.outcome == "sent"
    first, second = (r["requested_at"] for r in history(engine, device))
    assert second - first >= timedelta(seconds=0.5)


class _HoldingServer(http.server.ThreadingHTTPServer):
    """Answers 204 after a while, and notes how many requests it held at once."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Holding)
        self.lock = threading.Lock()
        self.now = self.most = self.total = 0


class _Holding(http.server.BaseHTTPRequestHandler):
    server: _HoldingServer

    def do_GET(self):
        with self.server.lock:
            self.server.now += 1
            self.server.total += 1
            self.server.most = max(self.server.most, self.server.now)
        time.sleep(0.3)
        with self.server.lock:
            self.server.now -= 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest_twisted.ensureDeferred
async def test_at_most_concurrency_devices_are_kicked_at_once(engine, pool):
    server = _HoldingServer()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        port = server.server_address[1]
        kicker = requester(engine, pool, concurrency=3)
        ids = [
            add_device(engine, f"00562B-CP-8841-3PCC-FD{i:02d}", url=f"http://127.0.0.1:{port}/{i}")
            for i in range(7)
        ]
        results = await defer.gatherResults([kicker.kick(i) for i in ids])
    finally:
        server.shutdown()
        server.server_close()

    assert all(r.sent for r in results)
    assert server.most == 3


# --- options -----------------------------------------------------------------------------------


def test_options_from_the_environment():
    options = Options.from_env(
        {"ACS_CONNREQ_TIMEOUT": "2.5", "ACS_CONNREQ_CONCURRENCY": "7", "ACS_CONNREQ_ALLOW_BASIC": "yes"}
    )

    assert (options.timeout, options.concurrency, options.allow_basic, options.min_interval) == (
        2.5,
        7,
        True,
        5.0,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACS_CONNREQ_TIMEOUT": "soon"}, "ACS_CONNREQ_TIMEOUT: a number, not 'soon'"),
        ({"ACS_CONNREQ_TIMEOUT": "0"}, "ACS_CONNREQ_TIMEOUT: the time-out is 0-300 seconds, not 0"),
        ({"ACS_CONNREQ_CONCURRENCY": "0"}, "ACS_CONNREQ_CONCURRENCY: 1-10000 devices at once, not 0"),
        ({"ACS_CONNREQ_ALLOW_BASIC": "maybe"}, "ACS_CONNREQ_ALLOW_BASIC: 1 or 0, not 'maybe'"),
        ({"ACS_CONNREQ_UDP_COPIES": "50"}, "ACS_CONNREQ_UDP_COPIES: 1-10 datagrams, not 50"),
    ],
)
def test_bad_options_name_the_variable_and_what_it_takes(env, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Options.from_env(env)
