"""TFTP packets (RFC 1350, 2347-2349) and the rules of a read transfer, without a socket."""

from __future__ import annotations

import pytest

from acs.provisioning import tftp


def rrq(name: str = "00562b043615.cfg", mode: str = "octet", **options: str) -> tftp.Request:
    return tftp.Request(tftp.Opcode.RRQ, name, mode, options)


def test_requests_round_trip():
    packet = b"\x00\x01Cisco/00562b043615.cfg\x00OCTET\x00BLKSIZE\x001024\x00tsize\x000\x00"
    request = tftp.decode(packet)
    assert request == tftp.Request(
        tftp.Opcode.RRQ, "Cisco/00562b043615.cfg", "octet", {"blksize": "1024", "tsize": "0"}
    )
    assert tftp.decode(tftp.encode(request)) == request


@pytest.mark.parametrize(
    "packet",
    [
        tftp.Data(7, b"x" * 512),
        tftp.Ack(65535),
        tftp.Error(tftp.ErrorCode.FILE_NOT_FOUND, "no phone known by '00562b043615'"),
        tftp.OptionAck({"blksize": "1468", "tsize": "2048"}),
    ],
)
def test_packets_round_trip(packet):
    assert tftp.decode(tftp.encode(packet)) == packet


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"\x00", "at least 4 bytes"),
        (b"\x00\x09abcd", "unknown opcode 9"),
        (b"\x00\x01name\x00octet", "NUL"),
        (b"\x00\x01name\x00", "file name, mode"),
        (b"\x00\x01\x00octet\x00", "empty file name"),
        (b"\x00\x01n\xe9\x00octet\x00", "ASCII"),
    ],
)
def test_malformed_packets_say_what_is_wrong(packet, reason):
    with pytest.raises(tftp.MalformedPacket, match=reason):
        tftp.decode(packet)


def test_an_error_code_outside_the_rfc_is_kept_in_the_message():
    assert tftp.decode(b"\x00\x05\x00\x63odd\x00") == tftp.Error(tftp.ErrorCode.NOT_DEFINED, "(code 99) odd")


def receive(transfer: tftp.ReadTransfer) -> bytes:
    """Play the client: ACK every block until the transfer is over; the data received."""
    received = []
    packet = tftp.decode(transfer.start())
    if isinstance(packet, tftp.OptionAck):
        packet = tftp.decode(transfer.on_ack(0) or b"")
    while True:
        assert isinstance(packet, tftp.Data)
        received.append(packet.data)
        following = transfer.on_ack(packet.block)
        if following is None:
            assert transfer.done
            return b"".join(received)
        packet = tftp.decode(following)


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 1024, 5000])
def test_a_file_is_sent_in_blocks_ending_with_a_short_one(size):
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    transfer = tftp.ReadTransfer(rrq(), data)
    assert receive(transfer) == data
    assert transfer.blocks == size // 512 + 1  # a multiple of 512 ends with an empty block


def test_options_are_confirmed_with_an_oack():
    transfer = tftp.ReadTransfer(rrq(blksize="1024", tsize="0", timeout="3", windowsize="4"), b"y" * 3000)
    oack = tftp.decode(transfer.start())
    assert oack == tftp.OptionAck({"blksize": "1024", "timeout": "3", "tsize": "3000"})  # windowsize: unknown
    first = tftp.decode(transfer.on_ack(0) or b"")
    assert first == tftp.Data(1, b"y" * 1024)
    assert transfer.timeout == 3.0


def test_a_block_size_over_the_cap_is_lowered_and_one_under_the_minimum_refused():
    assert tftp.ReadTransfer(rrq(blksize="65464"), b"", max_blksize=1468).accepted == {"blksize": "1468"}
    refused = tftp.ReadTransfer(rrq(blksize="4"), b"abc")
    assert refused.accepted == {}
    assert tftp.decode(refused.start()) == tftp.Data(1, b"abc")


@pytest.mark.parametrize("asked", [str(tftp.TIMEOUT_CAP + 1), "255"])
def test_a_timeout_over_the_cap_is_left_out_of_the_oack_and_the_default_used(asked):
    """RFC 2349: the OACK repeats the client's timeout or leaves it out, never says another value."""
    transfer = tftp.ReadTransfer(rrq(timeout=asked, blksize="1024"), b"y" * 3000)
    assert tftp.decode(transfer.start()) == tftp.OptionAck({"blksize": "1024"})
    assert transfer.timeout == tftp.DEFAULT_TIMEOUT


def test_a_timeout_up_to_the_cap_is_acknowledged_and_used():
    transfer = tftp.ReadTransfer(rrq(timeout=str(tftp.TIMEOUT_CAP)), b"y")
    assert transfer.accepted == {"timeout": str(tftp.TIMEOUT_CAP)}
    assert transfer.timeout == float(tftp.TIMEOUT_CAP)
    assert tftp.ReadTransfer(rrq(timeout="9"), b"y", max_timeout=10).timeout == 9.0


@pytest.mark.parametrize("options", [{}, {"blksize": "1024"}])
def test_a_peer_that_never_acknowledged_gets_the_first_packet_and_one_resend(options):
    """Its address may be forged: the resends would all go to whoever it names."""
    transfer = tftp.ReadTransfer(rrq(**options), b"z" * 1500)
    first = transfer.start()
    assert transfer.on_timeout() == first
    assert transfer.on_timeout() is None  # given up: two packets in all
    assert not transfer.acknowledged


def test_once_it_acknowledged_a_peer_gets_more_resends_and_each_ack_gives_them_back():
    transfer = tftp.ReadTransfer(rrq(blksize="8"), bytes(8 * 40))
    transfer.start()
    for block in range(30):  # ACK 0 of the OACK, then blocks: never given up for its length
        following = transfer.on_ack(block)
        assert following is not None
        assert [transfer.on_timeout() for _ in range(tftp.RETRIES)] == [following] * tftp.RETRIES
    assert transfer.on_timeout() is None
    assert transfer.acknowledged


def test_a_stray_ack_is_no_proof_and_gives_no_resends_back():
    transfer = tftp.ReadTransfer(rrq(), b"z" * 1500)
    transfer.start()
    assert transfer.on_ack(7) is None
    assert not transfer.acknowledged
    assert transfer.on_timeout() is not None
    assert transfer.on_timeout() is None


def test_slots_cap_transfers_in_all_and_per_source():
    slots = tftp.Slots(total=3, per_source=2)
    assert slots.take("192.0.2.7") is None
    assert slots.take("192.0.2.7") is None
    assert slots.take("192.0.2.7") == "2 transfers at once to 192.0.2.7, the most per source"
    assert slots.take("192.0.2.8") is None
    assert slots.take("192.0.2.9") == "3 transfers at once, the most in all"
    slots.give_back("192.0.2.7")
    assert slots.take("192.0.2.9") is None
    for source in ("192.0.2.7", "192.0.2.8", "192.0.2.9"):
        slots.give_back(source)
    assert (slots.busy, slots.held) == (0, {})  # only live sources are kept: a flood leaves nothing
    with pytest.raises(ValueError, match="no TFTP transfer"):
        slots.give_back("192.0.2.7")


def test_duplicate_and_stray_acks_send_nothing():
    """No resend on a duplicate ACK (the Sorcerer's Apprentice bug); the timer resends instead."""
    transfer = tftp.ReadTransfer(rrq(), b"z" * 1500)
    transfer.start()
    second = transfer.on_ack(1)
    assert second is not None
    assert transfer.on_ack(1) is None  # duplicate
    assert transfer.on_ack(9) is None  # stray
    assert transfer.last == second  # what the timer would resend


def test_block_numbers_wrap_after_65535():
    data = bytes(i % 251 for i in range(8 * 65540))
    transfer = tftp.ReadTransfer(rrq(blksize="8"), data)
    assert receive(transfer) == data  # the client ACKs block 65536 as 0, 65537 as 1...
    assert transfer.blocks == 65541


def test_netascii_sends_text_with_cr_lf():
    transfer = tftp.ReadTransfer(rrq(mode="netascii"), b"<a>\n<b>x\ry</b>\n")
    assert receive(transfer) == b"<a>\r\n<b>x\r\0y</b>\r\n"


def test_a_write_request_is_no_read_transfer():
    with pytest.raises(ValueError, match="RRQ"):
        tftp.ReadTransfer(tftp.Request(tftp.Opcode.WRQ, "x", "octet"), b"")
