"""TFTP for phones that resync over it (DHCP option 66): packets and one read transfer, no I/O.

RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR) with the option extension of RFC 2347 (OACK)
and its ``blksize`` (RFC 2348), ``tsize`` and ``timeout`` (RFC 2349) options. The
server only reads: it sends profiles, it never stores what a client writes. The
Twisted shell (``acs/web/tftp.py``) moves these bytes over UDP and keeps the timers.

TFTP answers whatever address an RRQ claims to come from, so the rules here also bound
what a forged RRQ costs: how long a transfer lasts without an ACK, how many packets go
to a peer that never proved it is there (``ReadTransfer.on_timeout``), and how many
transfers run at once, in all and per source (``Slots``).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

DEFAULT_BLKSIZE = 512
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464  # RFC 2348
MIN_TIMEOUT, MAX_TIMEOUT = 1, 255  # RFC 2349, seconds
DEFAULT_TIMEOUT = 2.0
#: the longest ``timeout`` accepted from a client, in seconds: a larger one is not acknowledged (RFC 2349
#: lets the server refuse it, not change it), else a 36-byte RRQ would hold a port for 255 s a try
TIMEOUT_CAP = 5
#: resends of the last packet, without an ACK, to a peer that has acknowledged something before
RETRIES = 5
#: resends to a peer that never acknowledged anything: its address may be forged, and each
#: resend would be sent to whoever it names
SILENT_RETRIES = 1
MODES = ("netascii", "octet")  # "mail" is obsolete (RFC 1350 section 1)


class Opcode(enum.IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(enum.IntEnum):
    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


class MalformedPacket(ValueError):
    """A datagram that is not a TFTP packet; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Request:
    """RRQ or WRQ: a file name, a transfer mode and the options asked for (names in lower case)."""

    opcode: Opcode
    filename: str
    mode: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Data:
    block: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    block: int


@dataclass(frozen=True, slots=True)
class Error:
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class OptionAck:
    options: dict[str, str]


Packet = Request | Data | Ack | Error | OptionAck


def _strings(payload: bytes, what: str) -> list[str]:
    if not payload.endswith(b"\0"):
        raise MalformedPacket(f"{what}: strings must end with a NUL byte")
    try:
        return payload[:-1].decode("ascii").split("\0")
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what}: strings must be ASCII (netascii)") from None


def decode(packet: bytes) -> Packet:
    """A datagram as a packet; MalformedPacket when it is none."""
    if len(packet) < 4:
        raise MalformedPacket(f"a TFTP packet has at least 4 bytes, this one {len(packet)}")
    (code,) = struct.unpack("!H", packet[:2])
    try:
        opcode = Opcode(code)
    except ValueError:
        raise MalformedPacket(f"unknown opcode {code}; TFTP has 1 RRQ to 6 OACK") from None
    payload = packet[2:]
    if opcode in (Opcode.RRQ, Opcode.WRQ):
        parts = _strings(payload, opcode.name)
        if len(parts) < 2 or len(parts) % 2:
            raise MalformedPacket(f"{opcode.name}: expected file name, mode and option/value pairs")
        filename, mode, *rest = parts
        if not filename:
            raise MalformedPacket(f"{opcode.name}: empty file name")
        options = {rest[i].lower(): rest[i + 1] for i in range(0, len(rest), 2)}
        return Request(opcode, filename, mode.lower(), options)
    if opcode == Opcode.DATA:
        return Data(struct.unpack("!H", payload[:2])[0], payload[2:])
    if opcode == Opcode.ACK:
        return Ack(struct.unpack("!H", payload[:2])[0])
    if opcode == Opcode.ERROR:
        (number,) = struct.unpack("!H", payload[:2])
        message = payload[2:].rstrip(b"\0").decode("ascii", "replace")
        try:
            return Error(ErrorCode(number), message)
        except ValueError:
            return Error(ErrorCode.NOT_DEFINED, f"(code {number}) {message}")
    parts = _strings(payload, "OACK")
    if len(parts) % 2:
        raise MalformedPacket("OACK: expected option/value pairs")
    return OptionAck({parts[i].lower(): parts[i + 1] for i in range(0, len(parts), 2)})


def _zstrings(*parts: str) -> bytes:
    return b"".join(p.encode("ascii") + b"\0" for p in parts)


def encode(packet: Packet) -> bytes:
    match packet:
        case Request(opcode=opcode, filename=filename, mode=mode, options=options):
            pairs = [s for item in options.items() for s in item]
            return struct.pack("!H", opcode) + _zstrings(filename, mode, *pairs)
        case Data(block=block, data=data):
            return struct.pack("!HH", Opcode.DATA, block) + data
        case Ack(block=block):
            return struct.pack("!HH", Opcode.ACK, block)
        case Error(code=code, message=message):
            text = message.encode("ascii", "replace")
            return struct.pack("!HH", Opcode.ERROR, code) + text + b"\0"
        case OptionAck(options=options):
            return struct.pack("!H", Opcode.OACK) + _zstrings(*(s for item in options.items() for s in item))
    raise TypeError(f"not a TFTP packet: {packet!r}")


def error(code: ErrorCode, message: str) -> bytes:
    return encode(Error(code, message))


def netascii(data: bytes) -> bytes:
    """RFC 764's NVT text, as netascii transfers carry it: LF -> CR LF, a bare CR -> CR NUL."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def _int_option(value: str, low: int, high: int) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return None if number < low else min(number, high)


class ReadTransfer:
    """One file sent in answer to an RRQ: which packet goes out for each ACK, and when it is over.

    Options the client asked for and the server accepts are confirmed with an OACK
    (RFC 2347), answered by ACK 0; without options the first DATA goes at once.
    Block numbers wrap from 65535 to 0, so a file may have more than 65535 blocks.
    A duplicate ACK is ignored (no resend, or both sides would double every packet
    from then on: the "Sorcerer's Apprentice" bug of RFC 1123 4.2.3.1).
    """

    def __init__(
        self,
        request: Request,
        data: bytes,
        *,
        max_blksize: int = MAX_BLKSIZE,
        max_timeout: int = TIMEOUT_CAP,
    ) -> None:
        if request.opcode != Opcode.RRQ:
            raise ValueError("a read transfer answers an RRQ")
        self.data = netascii(data) if request.mode == "netascii" else data
        self.blksize = DEFAULT_BLKSIZE
        self.timeout = DEFAULT_TIMEOUT
        accepted: dict[str, str] = {}
        asked = request.options
        if "blksize" in asked:
            size = _int_option(asked["blksize"], MIN_BLKSIZE, min(max_blksize, MAX_BLKSIZE))
            if size is not None:
                self.blksize = size
                accepted["blksize"] = str(size)
        if "timeout" in asked:
            # RFC 2349: the OACK repeats the client's value or leaves the option out; out of
            # range, over the cap or not a plain number, it is left out and the default is used
            seconds = _int_option(asked["timeout"], MIN_TIMEOUT, MAX_TIMEOUT)
            if seconds is not None and asked["timeout"] == str(seconds) and seconds <= max_timeout:
                self.timeout = float(seconds)
                accepted["timeout"] = str(seconds)
        if "tsize" in asked:
            accepted["tsize"] = str(len(self.data))
        self.accepted = accepted
        self.blocks = len(self.data) // self.blksize + 1  # the last one is shorter, maybe empty
        self.sent = 0  # blocks sent so far (0: only the OACK, or nothing yet)
        self.done = False
        self.last: bytes = b""
        #: the peer has acknowledged something: it received a packet from this transfer's port, so
        #: its address is its own
        self.acknowledged = False
        self.resends = 0  # of ``last``, since the last ACK that moved the transfer on

    def start(self) -> bytes:
        """The first packet: the OACK when options were accepted, else DATA block 1."""
        self.last = encode(OptionAck(self.accepted)) if self.accepted else self._block(1)
        return self.last

    def _block(self, number: int) -> bytes:
        self.sent = number
        chunk = self.data[(number - 1) * self.blksize : number * self.blksize]
        return encode(Data(number & 0xFFFF, chunk))

    def on_ack(self, block: int) -> bytes | None:
        """The next packet after ACK ``block``; None when there is nothing to send (a duplicate or
        stray ACK, or the last block acknowledged, after which ``done`` is true)."""
        if self.done or block != self.sent & 0xFFFF:
            return None
        self.acknowledged = True
        self.resends = 0
        if self.sent == self.blocks:
            self.done = True
            return None
        self.last = self._block(self.sent + 1)
        return self.last

    def on_timeout(self) -> bytes | None:
        """The packet to send again when ``timeout`` passed without an ACK; None: give up.

        A peer that never acknowledged gets the first packet and SILENT_RETRIES resends, no
        more: an RRQ with a forged source makes the server send to the forged address, and
        each resend multiplies what it sends there. Once the peer has acknowledged, a lost
        packet is resent RETRIES times. What ends a transfer is silence, never its length:
        a long transfer that is acknowledged goes on.
        """
        if self.done or self.resends >= (RETRIES if self.acknowledged else SILENT_RETRIES):
            return None
        self.resends += 1
        return self.last


class Slots:
    """How many transfers run at once, in all and per source address; a request over either cap waits.

    A slot is taken when an RRQ arrives (before the profile is looked up, so a flood costs
    no database work either) and given back when its transfer ends, however it ends.
    """

    def __init__(self, total: int, per_source: int) -> None:
        if total < 1 or per_source < 1:
            raise ValueError("TFTP needs at least one transfer in all and per source")
        self.total = total
        self.per_source = per_source
        self.held: dict[str, int] = {}
        self.busy = 0

    def take(self, source: str) -> str | None:
        """Take a slot for ``source``; None when taken, else why not."""
        if self.busy >= self.total:
            return f"{self.busy} transfers at once, the most in all"
        held = self.held.get(source, 0)
        if held >= self.per_source:
            return f"{held} transfers at once to {source}, the most per source"
        self.held[source] = held + 1
        self.busy += 1
        return None

    def give_back(self, source: str) -> None:
        held = self.held.get(source, 0)
        if held <= 0:
            raise ValueError(f"no TFTP transfer to {source} to end")
        if held == 1:
            del self.held[source]  # the table holds live sources only: it cannot grow with a flood
        else:
            self.held[source] = held - 1
        self.busy -= 1
