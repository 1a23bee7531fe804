"""The TFTP shell: one transfer over a fake UDP transport and clock, the server's caps with a fake
reactor, then the real ``acs serve`` on real UDP sockets under forged RRQs.

Fakes show what a well-behaved client on loopback never does: lost ACKs, packets from
another port, addresses that cannot be sent to. The real server shows what a forged RRQ
costs: the packets its victim gets, how long a port is held, and that a flood neither
takes the descriptors the CWMP port needs nor stops real clients (tftp-hpa, curl) for long.
A silent peer is one that never acknowledges, as the forged address of an RRQ does.
"""

from __future__ import annotations

import errno
import http.client
import logging
import resource
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from twisted.internet.task import Clock

from acs.cli import main
from acs.provisioning import tftp
from acs.web import tftp as shell
from acs.web.boundedlog import LOG_BURST, BoundedLog
from acs.web.profilebackend import Fetch, Reply
from acs.web.tftp import TftpServer, _Transfer
from tests.web.conftest import Server, start_server

PEER = ("192.0.2.7", 2070)


class FakeUdp:
    def __init__(self, fail: OSError | None = None) -> None:
        self.sent: list[tuple[tftp.Packet, tuple[str, int]]] = []
        self.listening = True
        self.fail = fail

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append((tftp.decode(data), addr))

    def stopListening(self) -> None:
        self.listening = False


def transfer(
    data: bytes = b"p" * 700, udp: FakeUdp | None = None, **options: str
) -> tuple[_Transfer, FakeUdp, Clock, list[str]]:
    request = tftp.Request(tftp.Opcode.RRQ, "00562b043615.cfg", "octet", options)
    clock, udp, ended = Clock(), udp or FakeUdp(), []
    proto = _Transfer(
        tftp.ReadTransfer(request, data),
        PEER,
        clock,
        request.filename,
        ended=lambda: ended.append("ended"),
        say=BoundedLog(Clock(), shell.log),
    )
    proto.transport = udp
    proto.startProtocol()
    return proto, udp, clock, ended


def test_blocks_go_out_one_per_ack_and_the_port_closes_after_the_last():
    proto, udp, clock, ended = transfer()
    proto.datagramReceived(tftp.encode(tftp.Ack(1)), PEER)
    proto.datagramReceived(tftp.encode(tftp.Ack(2)), PEER)
    assert [p for p, _ in udp.sent] == [tftp.Data(1, b"p" * 512), tftp.Data(2, b"p" * 188)]
    assert not udp.listening and ended == ["ended"]
    assert clock.getDelayedCalls() == []  # no timer left behind


def test_a_silent_peer_gets_the_first_packet_and_one_resend_then_the_port_closes():
    _proto, udp, clock, ended = transfer()
    for _ in range(10):
        clock.advance(tftp.DEFAULT_TIMEOUT)
    assert [p for p, _ in udp.sent] == [tftp.Data(1, b"p" * 512)] * 2
    assert not udp.listening and ended == ["ended"]
    assert clock.getDelayedCalls() == []

    # a peer that acknowledged once is there: a lost block goes again RETRIES times
    proto, udp, clock, ended = transfer()
    proto.datagramReceived(tftp.encode(tftp.Ack(1)), PEER)
    for _ in range(10):
        clock.advance(tftp.DEFAULT_TIMEOUT)
    resent = [tftp.Data(2, b"p" * 188)] * (1 + tftp.RETRIES)
    assert [p for p, _ in udp.sent] == [tftp.Data(1, b"p" * 512), *resent]
    assert not udp.listening and ended == ["ended"]


def test_the_clients_timeout_option_sets_the_resend_delay():
    _proto, udp, clock, _ended = transfer(timeout="5")
    assert udp.sent[0][0] == tftp.OptionAck({"timeout": "5"})
    clock.advance(4.9)
    assert len(udp.sent) == 1
    clock.advance(0.1)
    assert len(udp.sent) == 2


def test_a_timeout_of_255_seconds_holds_the_port_no_longer_than_the_default():
    _proto, udp, clock, ended = transfer(timeout="255", blksize="1024")
    assert udp.sent[0][0] == tftp.OptionAck({"blksize": "1024"})  # not acknowledged: not used
    clock.advance(tftp.DEFAULT_TIMEOUT)
    clock.advance(tftp.DEFAULT_TIMEOUT)
    assert len(udp.sent) == 2 and not udp.listening and ended == ["ended"]


def test_a_packet_from_another_port_is_answered_and_the_transfer_goes_on():
    proto, udp, _clock, _ended = transfer()
    stranger = (PEER[0], 9999)
    proto.datagramReceived(tftp.encode(tftp.Ack(1)), stranger)
    assert udp.sent[-1] == (tftp.Error(tftp.ErrorCode.UNKNOWN_TID, "unknown transfer ID"), stranger)
    proto.datagramReceived(tftp.encode(tftp.Ack(1)), PEER)
    assert udp.sent[-1] == (tftp.Data(2, b"p" * 188), PEER)


def test_an_error_from_the_client_ends_the_transfer():
    proto, udp, clock, ended = transfer(blksize="1024")
    proto.datagramReceived(tftp.encode(tftp.Error(tftp.ErrorCode.OPTION_REFUSED, "no")), PEER)
    assert not udp.listening and ended == ["ended"]
    assert clock.getDelayedCalls() == []


def test_an_address_that_cannot_be_sent_to_ends_the_transfer_at_once():
    """A forged source may be a broadcast address (EACCES) or port 0 (EINVAL): no exception, no port kept."""
    _proto, udp, clock, ended = transfer(udp=FakeUdp(fail=OSError(errno.EACCES, "Permission denied")))
    assert not udp.listening and ended == ["ended"]
    assert clock.getDelayedCalls() == []


# --- the server's caps, with a fake reactor and pool -----------------------------------------------


class FakeReactor(Clock):
    """A clock whose thread hand-offs run at once and whose UDP ports are FakeUdp's (or fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[tuple[_Transfer, FakeUdp]] = []
        self.out_of_descriptors = False

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)

    def listenUDP(self, port: int, proto: _Transfer, interface: str = "") -> FakeUdp:
        if self.out_of_descriptors:
            from twisted.internet.error import CannotListenError

            raise CannotListenError(interface, port, OSError(errno.EMFILE, "Too many open files"))
        udp = FakeUdp()
        proto.transport = udp
        proto.startProtocol()
        self.ports.append((proto, udp))
        return udp


class InlinePool:
    def callInThreadWithCallback(
        self, on_result: Callable[..., None], f: Callable[..., Any], *args: Any
    ) -> None:
        on_result(True, f(*args))


class Profiles:
    """The profile backend: every file is a 700-byte profile; the fetches it was asked for."""

    def __init__(self) -> None:
        self.fetched: list[Fetch] = []

    def fetch(self, request: Fetch) -> Reply:
        self.fetched.append(request)
        return Reply(200, b"p" * 700)


def tftp_server(**caps: int) -> tuple[TftpServer, Profiles, FakeReactor, FakeUdp]:
    backend, reactor, udp = Profiles(), FakeReactor(), FakeUdp()
    server = TftpServer(backend, InlinePool(), reactor, **caps)  # type: ignore[arg-type]
    server.transport = udp
    return server, backend, reactor, udp


RRQ = tftp.encode(tftp.Request(tftp.Opcode.RRQ, "00562b043615.cfg", "octet"))


def test_rrqs_over_the_caps_are_dropped_before_their_lookup_and_the_slots_come_back(caplog):
    server, backend, reactor, udp = tftp_server(max_transfers=3, max_per_source=2)
    with caplog.at_level(logging.WARNING, "acs.web.tftp"):
        for addr in [("192.0.2.7", 1001), ("192.0.2.7", 1002), ("192.0.2.7", 1003), ("192.0.2.8", 1001)]:
            server.datagramReceived(RRQ, addr)
        server.datagramReceived(RRQ, ("192.0.2.9", 1001))
    assert [(f.remote_addr) for f in backend.fetched] == ["192.0.2.7", "192.0.2.7", "192.0.2.8"]
    assert [proto.peer for proto, _ in reactor.ports] == [
        ("192.0.2.7", 1001),
        ("192.0.2.7", 1002),
        ("192.0.2.8", 1001),
    ]
    assert udp.sent == []  # no answer to a dropped RRQ: it may be forged
    assert [r.getMessage() for r in caplog.records] == [
        "TFTP 00562b043615.cfg from 192.0.2.7:1003 dropped: "
        "2 transfers at once to 192.0.2.7, the most per source",
        "TFTP 00562b043615.cfg from 192.0.2.9:1001 dropped: 3 transfers at once, the most in all",
    ]
    # the silent transfers give their slots back; the RRQ sent again is served
    reactor.advance(tftp.DEFAULT_TIMEOUT)
    reactor.advance(tftp.DEFAULT_TIMEOUT)
    assert all(not port.listening for _, port in reactor.ports)
    server.datagramReceived(RRQ, ("192.0.2.9", 1001))
    assert reactor.ports[-1][0].peer == ("192.0.2.9", 1001)
    assert (server.slots.busy, server.slots.held) == (1, {"192.0.2.9": 1})


def test_refusals_and_crashes_give_the_slot_back_and_no_port_means_no_answer():
    server, backend, reactor, udp = tftp_server(max_transfers=1)
    backend.fetch = lambda request: Reply(404, reason="no phone known by '00562b043615'")  # type: ignore[method-assign]
    server.datagramReceived(RRQ, PEER)
    assert udp.sent == [(tftp.Error(tftp.ErrorCode.FILE_NOT_FOUND, "no phone known by '00562b043615'"), PEER)]
    backend.fetch = lambda request: 1 / 0  # type: ignore[method-assign,assignment,return-value]

    class Raising(InlinePool):
        def callInThreadWithCallback(self, on_result, f, *args):
            try:
                f(*args)
            except ZeroDivisionError as e:
                on_result(False, e)

    server.pool = Raising()  # type: ignore[assignment]
    server.datagramReceived(RRQ, PEER)
    assert udp.sent[-1][0] == tftp.Error(tftp.ErrorCode.NOT_DEFINED, "internal error; see the server log")
    server.pool = InlinePool()  # type: ignore[assignment]
    backend.fetch = Profiles().fetch  # type: ignore[method-assign]
    reactor.out_of_descriptors = True
    server.datagramReceived(RRQ, PEER)
    assert len(udp.sent) == 2  # nothing more: as busy as over a cap
    assert server.slots.busy == 0


def test_an_rrq_from_port_0_is_dropped():
    """No client sends from port 0, and nothing can be sent there: a forged source."""
    server, backend, reactor, udp = tftp_server()
    server.datagramReceived(RRQ, ("192.0.2.7", 0))
    assert (backend.fetched, reactor.ports, udp.sent) == ([], [], [])


@pytest.mark.parametrize(("soft", "cap"), [(1024, 128), (256, 64), (resource.RLIM_INFINITY, 128)])
def test_transfers_take_a_quarter_of_the_descriptors_at_most(monkeypatch, caplog, soft, cap):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, resource.RLIM_INFINITY))
    assert shell.transfer_cap(128) == cap
    with caplog.at_level(logging.WARNING, "acs.web.tftp"):
        server, *_ = tftp_server()
    assert server.slots.total == cap
    assert [r.getMessage().split(":")[1].strip() for r in caplog.records] == (
        [f"at most {cap} transfers at once, not 128"] if cap < 128 else []
    )


def test_lines_a_stranger_causes_are_logged_at_a_bounded_rate(caplog):
    clock = Clock()
    say = BoundedLog(clock, shell.log, burst=2, interval=10.0)
    with caplog.at_level(logging.INFO, "acs.web.tftp"):
        for n in range(50):
            say("busy", logging.WARNING, "RRQ %d dropped", n)
        say("silent", logging.INFO, "given up")
        clock.advance(10.0)
        say("busy", logging.WARNING, "RRQ %d dropped", 50)
        say.stop()
    assert [r.getMessage() for r in caplog.records] == [
        "RRQ 0 dropped",
        "RRQ 1 dropped",
        "given up",
        "RRQ 49 dropped (and 48 more like it in the last 10 s)",
        "RRQ 50 dropped",
    ]
    assert clock.getDelayedCalls() == []


def test_twisted_logs_no_line_per_transfer_port():
    quiet = shell.QuietTransferPorts()

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("twisted", logging.INFO, __file__, 1, text, None, None)

    assert not quiet.filter(record("TFTP transfer starting on 40000"))
    assert not quiet.filter(record("(UDP Port 40000 Closed)"))
    assert quiet.filter(record("(UDP Port 69 Closed)"))  # the server's own port, and every other, as before
    assert quiet.filter(record("TftpServer starting on 69"))
    assert quiet.ports == set()


# --- the real acs serve, on real UDP sockets -------------------------------------------------------

MAC = "00562b043615"
PROFILE = (
    "<flat-profile>\n"
    + "".join(f'  <Proxy_{n}_ ua="na">sip{n}.example.net:5060</Proxy_{n}_>\n' for n in range(1, 25))
    + "</flat-profile>\n"
)
#: seconds a test waits, at most, for what it waits for
WAIT = 30.0


@pytest.fixture
def serve(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``acs serve --tftp-port 0`` with one phone (MAC) and a profile of several blocks for everyone, in
    clear (``--profile-auth none``: what is measured is the transfer, not who may have it)."""
    (tmp_path / "inventory.csv").write_text(f"mac,serial,model\n{MAC},FCH2233A1B2,CP-8841-3PCC\n")
    (tmp_path / "base.xml").write_text(PROFILE)
    for command in (
        ["device", "import", str(tmp_path / "inventory.csv")],
        ["profile", "create", "base", str(tmp_path / "base.xml")],
        ["profile", "assign", "base", "--default"],
    ):
        result = CliRunner().invoke(main, [*command, "--db", db_url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    started: list[Server] = []

    def run(*args: str, nofile: int | None = None) -> Server:
        server = start_server(
            db_url, "--no-auth", "--profile-auth", "none", "--tftp-port", "0", *args, nofile=nofile
        )
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


@pytest.fixture
def sockets() -> Iterator[Callable[..., socket.socket]]:
    """UDP sockets on 127.0.0.x, closed after the test."""
    with ExitStack() as stack:

        def make(host: str = "127.0.0.1") -> socket.socket:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.bind((host, 0))
            sock.settimeout(WAIT)
            return sock

        yield make


def over_http(server: Server) -> bytes:
    """The phone's profile as the profile server's HTTP port serves it: what TFTP must send."""
    conn = http.client.HTTPConnection("127.0.0.1", server.profile_port, timeout=WAIT)
    try:
        conn.request("GET", f"/{MAC}.cfg")
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def rrq(**options: str) -> bytes:
    return tftp.encode(tftp.Request(tftp.Opcode.RRQ, f"{MAC}.cfg", "octet", options))


def wait_closed(port: int, prober: socket.socket) -> None:
    """Until the transfer's port is closed: it answers a stranger with an error, a closed port with ICMP."""
    prober.connect(("127.0.0.1", port))
    prober.settimeout(1.0)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        prober.send(tftp.encode(tftp.Ack(0)))
        try:
            assert tftp.decode(prober.recv(1024)) == tftp.Error(
                tftp.ErrorCode.UNKNOWN_TID, "unknown transfer ID"
            )
        except ConnectionRefusedError:
            return
        time.sleep(0.2)
    pytest.fail(f"the transfer's port {port} was still open after {WAIT:g} s")


def drain(sock: socket.socket) -> list[tuple[tftp.Packet, int]]:
    """What the socket has received so far: (packet, the server's port)."""
    got = []
    sock.setblocking(False)
    try:
        while True:
            data, (_, port) = sock.recvfrom(65536)
            got.append((tftp.decode(data), port))
    except BlockingIOError:
        return got
    finally:
        sock.settimeout(WAIT)


def test_a_silent_peer_gets_two_packets_and_a_timeout_of_255_s_holds_no_port(serve, sockets):
    """A forged RRQ's victim gets the first packet and one resend (on the wire: 20x its RRQ, not 62x),
    and the 37-byte RRQ asking for 255 s, which held a port for 25 minutes, holds it for 4 s."""
    server = serve()
    victim, patient = sockets(), sockets()
    victim.sendto(rrq(), ("127.0.0.1", server.tftp_port))
    patient.sendto(rrq(timeout="255", blksize="1024", tsize="0"), ("127.0.0.1", server.tftp_port))
    first, (_, port) = victim.recvfrom(65536)
    oack, (_, patient_port) = patient.recvfrom(65536)
    block = tftp.Data(1, over_http(server)[:512])
    assert tftp.decode(first) == block
    assert tftp.decode(oack) == tftp.OptionAck({"blksize": "1024", "tsize": str(len(over_http(server)))})
    wait_closed(port, sockets())
    wait_closed(patient_port, sockets())
    assert drain(victim) == [(block, port)]  # the one resend, nothing after
    assert drain(patient) == [(tftp.decode(oack), patient_port)]
    assert not any("TFTP transfer starting" in line or "UDP Port" in line for line in server.log)


def tftp_hpa(port: int, target: Path) -> str:
    done = subprocess.run(
        ["tftp", "127.0.0.1", str(port), "-m", "octet", "-c", "get", f"{MAC}.cfg", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def test_rrqs_over_the_per_source_cap_are_dropped_and_real_clients_are_served_after(serve, sockets, tmp_path):
    server = serve()
    flood = [sockets() for _ in range(shell.MAX_PER_SOURCE + 12)]
    for sock in flood:
        sock.sendto(rrq(), ("127.0.0.1", server.tftp_port))
    served = []
    for sock in flood[: shell.MAX_PER_SOURCE]:  # RRQs are read in order: the first ones get the slots
        _, (_, port) = sock.recvfrom(65536)
        served.append(port)
    for port in served:
        wait_closed(port, sockets())
    assert [drain(sock) for sock in flood[shell.MAX_PER_SOURCE :]] == [[]] * 12  # never answered
    dropped = [line for line in server.log if "dropped: 8 transfers at once to 127.0.0.1" in line]
    assert 1 <= len(dropped) <= LOG_BURST + 1  # 12 drops, a few lines

    # the slots came back: tftp-hpa (no options) and curl (blksize, tsize, timeout) fetch the profile
    assert tftp_hpa(server.tftp_port, tmp_path / "hpa.cfg") == ""
    assert (tmp_path / "hpa.cfg").read_bytes() == over_http(server)
    curl = subprocess.run(
        ["curl", "-sS", "--tftp-blksize", "1024", f"tftp://127.0.0.1:{server.tftp_port}/{MAC}.cfg"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (curl.returncode, curl.stdout) == (0, over_http(server)), curl.stderr
    assert not any("Traceback" in line or " ERROR " in line for line in server.log)


def test_a_flood_leaves_the_cwmp_port_descriptors(serve, sockets):
    """Under a systemd-like descriptor limit, RRQs from 40 addresses never take what TCP needs."""
    server = serve(nofile=256)
    assert any("TFTP: at most 64 transfers at once, not 128" in line for line in server.log)
    flood = [sockets(f"127.0.0.{n}") for n in range(2, 42)]
    for _ in range(shell.MAX_PER_SOURCE):
        for sock in flood:
            sock.sendto(rrq(timeout="255"), ("127.0.0.1", server.tftp_port))
    # until the server has answered what it answers: every RRQ, or nothing new for a second
    answered: set[tuple[int, int]] = set()
    deadline = time.monotonic() + WAIT
    while len(answered) < 8 * len(flood) and time.monotonic() < deadline:
        before = len(answered)
        time.sleep(1.0)
        answered |= {(i, port) for i, sock in enumerate(flood) for _, port in drain(sock)}
        if len(answered) == before and answered:
            break
    assert 0 < len(answered) <= 64  # transfers: the distinct ports that sent something
    conn = http.client.HTTPConnection(server.host, server.port, timeout=WAIT)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().status == 405  # the CWMP port answers: it took a descriptor
    finally:
        conn.close()
