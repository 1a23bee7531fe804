"""One TFTP transfer over a fake UDP transport and clock: resends, give-up, strangers, client errors.

The real client against the real server is in ``tests/web/test_profile_server.py``; this
covers what a well-behaved client on loopback never shows: lost ACKs and packets from
another port.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from acs.provisioning import tftp
from acs.web.tftp import RETRIES, _Transfer

PEER = ("192.0.2.7", 2070)


class FakeUdp:
    def __init__(self) -> None:
        self.sent: list[tuple[tftp.Packet, tuple[str, int]]] = []
        self.listening = True

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((tftp.decode(data), addr))

    def stopListening(self) -> None:
        self.listening = False


def transfer(data: bytes = b"p" * 700, **options: str) -> tuple[_Transfer, FakeUdp, Clock]:
    request = tftp.Request(tftp.Opcode.RRQ, "00562b043615.cfg", "octet", options)
    clock, udp = Clock(), FakeUdp()
    proto = _Transfer(tftp.ReadTransfer(request, data), PEER, clock, request.filename)
    proto.transport = udp
    proto.startProtocol()
    return proto, udp, clock


def test_blocks_go_out_one_per_ack_and_the_port_closes_after_the_last():
    proto, udp, clock = transfer()
    proto.datagramReceived(tftp.encode(tftp.Ack(1)), PEER)
    proto.datagramReceived(tftp.encode(tftp.Ack(2)), PEER)
    assert [p for p, _ in udp.sent] == [tftp.Data(1, b"p" * 512), tftp.Data(2, b"p" * 188)]
    assert not udp.listening
    assert clock.getDelayedCalls() == []  # no timer left behind


def test_a_lost_ack_makes_the_block_go_again_then_the_transfer_gives_up():
    _proto, udp, clock = transfer()
    clock.advance(tftp.DEFAULT_TIMEOUT)
    assert [p for p, _ in udp.sent] == [tftp.Data(1, b"p" * 512)] * 2
    for _ in range(RETRIES):
        clock.advance(tftp.DEFAULT_TIMEOUT)
    assert len(udp.sent) == 1 + RETRIES
    assert not udp.listening


def test_the_clients_timeout_option_sets_the_resend_delay():
    _proto, udp, clock = transfer(timeout="5")
    assert udp.sent[0][0] == tftp.OptionAck({"timeout": "5"})
    clock.advance(4.9)
    assert len(udp.sent) == 1
    clock.advance(0.1)
    assert len(udp.sent) == 2


def test_a_packet_from_another_port_is_answered_and_the_transfer_goes_on():
    proto, udp, _clock = transfer()
    stranger = (PEER[0], 9999)
    proto.datagramReceived(tftp.encode(tftp.Ack(1)), stranger)
    assert udp.sent[-1] == (tftp.Error(tftp.ErrorCode.UNKNOWN_TID, "unknown transfer ID"), stranger)
    proto.datagramReceived(tftp.encode(tftp.Ack(1)), PEER)
    assert udp.sent[-1] == (tftp.Data(2, b"p" * 188), PEER)


def test_an_error_from_the_client_ends_the_transfer():
    proto, udp, clock = transfer(blksize="1024")
    proto.datagramReceived(tftp.encode(tftp.Error(tftp.ErrorCode.OPTION_REFUSED, "no")), PEER)
    assert not udp.listening
    assert clock.getDelayedCalls() == []
