"""The profile server's TFTP side, for in-house pre-provisioning (DHCP option 66, ``Profile_Rule /$PSN.xml``).

Read only: an RRQ is looked up like an HTTP fetch (``ProfileBackend.fetch`` on the
thread pool) and, when there is a profile, sent from a UDP port of its own (RFC 1350's
transfer identifier), one block per ACK, the last packet resent when an ACK is late. A
WRQ is refused. TFTP has no authentication: phones with credentials, moved phones, and
aes128gcm keys get an error instead of a profile, and so does every profile that would go
in clear unless ``acs serve --profile-auth none``.

UDP has no handshake, so anyone can send an RRQ in someone else's name. What bounds it
(the rules are pure, in ``acs.provisioning.tftp``): a transfer's slot, taken before the
lookup, in all and per source address, the total capped below the process's descriptor
limit so that the TCP ports always have some; an RRQ over a cap dropped unanswered; two
packets at most to a peer that never acknowledged; the ``timeout`` option capped; and
every log line a stranger can cause written at a bounded rate (``acs.web.boundedlog``).
"""

from __future__ import annotations

import logging
import re
import resource
from collections.abc import Callable
from typing import Any

from twisted.internet import error, protocol, threads
from twisted.python.threadpool import ThreadPool

from acs.provisioning import tftp
from acs.web.boundedlog import BoundedLog, Long
from acs.web.profilebackend import Fetch, ProfileBackend, Reply

log = logging.getLogger(__name__)

#: TFTP error for each status the profile backend may answer with
_ERRORS = {
    404: tftp.ErrorCode.FILE_NOT_FOUND,
    401: tftp.ErrorCode.ACCESS_VIOLATION,
    403: tftp.ErrorCode.ACCESS_VIOLATION,
}
#: the largest block sent, whatever a client asks: 1500-byte Ethernet less IP, UDP and TFTP headers,
#: so that no block is fragmented on the way
MAX_BLKSIZE = 1468
#: transfers at once, in all and from one address (``acs serve --tftp-max-transfers/--tftp-max-per-source``)
MAX_TRANSFERS = 128
MAX_PER_SOURCE = 8
#: the share of the process's descriptors (RLIMIT_NOFILE) TFTP's transfers may hold at most: one in four
DESCRIPTOR_SHARE = 4


def transfer_cap(requested: int) -> int:
    """``requested``, lowered to a quarter of the descriptors this process may open.

    Each transfer holds a UDP socket. Without this a flood of RRQs could take every
    descriptor, and the CWMP and HTTP ports could accept no connection until it passed.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft // DESCRIPTOR_SHARE))


class QuietTransferPorts(logging.Filter):
    """Drops the lines Twisted logs when it opens and closes a transfer's port (a filter on its logger).

    Two lines per transfer would be two lines per RRQ, forged ones included. The
    server's own port, and every other, is logged as before.
    """

    _OPENED = re.compile(r"TFTP transfer starting on (\d+)$")
    _CLOSED = re.compile(r"\(UDP Port (\d+) Closed\)$")

    def __init__(self) -> None:
        super().__init__()
        self.ports: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if opened := self._OPENED.match(text):
            self.ports.add(int(opened[1]))
            return False
        closed = self._CLOSED.match(text)
        if closed and int(closed[1]) in self.ports:
            self.ports.discard(int(closed[1]))
            return False
        return True


def _send(transport: Any, packet: bytes, addr: tuple[str, int]) -> bool:
    """Send ``packet``; False when the address cannot be sent to (port 0, a broadcast address: forged)."""
    try:
        transport.write(packet, addr)
    except OSError:
        return False
    return True


class _Transfer(protocol.DatagramProtocol):
    """One file to one client, from a port of its own; ``ended`` is called once, when it is over."""

    noisy = False  # no "Starting protocol" line per transfer

    def __init__(
        self,
        transfer: tftp.ReadTransfer,
        peer: tuple[str, int],
        reactor: Any,
        name: str,
        *,
        ended: Callable[[], None],
        say: Callable[..., None],
    ) -> None:
        self.transfer = transfer
        self.peer = peer
        self.reactor = reactor
        self.name = name
        self.ended = ended
        self.say = say
        self.timer: Any = None
        self.over = False

    def logPrefix(self) -> str:
        return "TFTP transfer"

    def startProtocol(self) -> None:
        self._send(self.transfer.start())

    def _send(self, packet: bytes) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        if _send(self.transport, packet, self.peer):
            self.timer = self.reactor.callLater(self.transfer.timeout, self._timeout)
        else:
            self.say(
                "unreachable",
                logging.INFO,
                "TFTP %s: cannot send to %s:%d",
                self.name,
                self.peer[0],
                self.peer[1],
            )
            self._stop()

    def _timeout(self) -> None:
        again = self.transfer.on_timeout()
        if again is not None:
            self._send(again)
            return
        if self.transfer.acknowledged:
            self.say(
                "lost",
                logging.INFO,
                "TFTP %s to %s:%d: no answer, given up",
                self.name,
                self.peer[0],
                self.peer[1],
            )
        else:
            self.say(
                "silent",
                logging.INFO,
                "TFTP %s to %s:%d: its first packet was never acknowledged, given up (a forged source?)",
                self.name,
                self.peer[0],
                self.peer[1],
            )
        self._stop()

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.over:
            return
        if addr != self.peer:  # RFC 1350: a packet from another port is answered, the transfer goes on
            _send(self.transport, tftp.error(tftp.ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr)
            return
        try:
            packet = tftp.decode(data)
        except tftp.MalformedPacket as e:
            _send(self.transport, tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, str(e)), addr)
            self._stop()
            return
        match packet:
            case tftp.Ack(block=block):
                following = self.transfer.on_ack(block)
                if self.transfer.done:
                    log.debug("TFTP %s sent to %s:%d", self.name, self.peer[0], self.peer[1])
                    self._stop()
                elif following is not None:
                    self._send(following)
            case tftp.Error(code=code, message=message):
                self.say(
                    "ended",
                    logging.INFO,
                    "TFTP %s: %s:%d ended the transfer: %s %s",
                    self.name,
                    self.peer[0],
                    self.peer[1],
                    code.name,
                    message,
                )
                self._stop()
            case _:
                _send(self.transport, tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, "expected an ACK"), addr)
                self._stop()

    def _stop(self) -> None:
        if self.over:
            return
        self.over = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        if self.transport is not None:
            self.transport.stopListening()
        self.ended()


class TftpServer(protocol.DatagramProtocol):
    """The TFTP port: an RRQ starts a transfer on a new port, anything else gets an error.

    ``max_transfers`` and ``max_per_source`` cap the transfers running at once (the
    total also by ``transfer_cap``). An RRQ over a cap is dropped without an answer: an
    answer would go to whatever address the RRQ names, and TFTP has no "busy" error a
    client would retry after; a real client sends its RRQ again when nothing comes.
    """

    def __init__(
        self,
        backend: ProfileBackend,
        pool: ThreadPool,
        reactor: Any,
        *,
        interface: str = "",
        max_blksize: int = MAX_BLKSIZE,
        max_transfers: int = MAX_TRANSFERS,
        max_per_source: int = MAX_PER_SOURCE,
    ) -> None:
        self.backend = backend
        self.pool = pool
        self.reactor = reactor
        self.interface = interface
        self.max_blksize = max_blksize
        total = transfer_cap(max_transfers)
        if total < max_transfers:
            log.warning(
                "TFTP: at most %d transfers at once, not %d: this process may open %d descriptors "
                "(ulimit -n; LimitNOFILE= for systemd) and TFTP takes a quarter at most",
                total,
                max_transfers,
                resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            )
        self.slots = tftp.Slots(total, max_per_source)
        self.say = BoundedLog(reactor, log)
        self.quiet = QuietTransferPorts()

    def startProtocol(self) -> None:
        logging.getLogger("twisted").addFilter(self.quiet)

    def stopProtocol(self) -> None:
        logging.getLogger("twisted").removeFilter(self.quiet)
        self.say.stop()

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if addr[1] == 0:
            return  # no client sends from port 0: a forged source, and no answer can go there
        try:
            packet = tftp.decode(data)
        except tftp.MalformedPacket as e:
            _send(self.transport, tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, str(e)), addr)
            return
        if not isinstance(packet, tftp.Request):
            return  # a stray packet of an ended transfer: answering could start a loop
        if packet.opcode == tftp.Opcode.WRQ:
            _send(
                self.transport,
                tftp.error(tftp.ErrorCode.ACCESS_VIOLATION, "read only: this server sends profiles"),
                addr,
            )
            return
        if packet.mode not in tftp.MODES:
            _send(
                self.transport,
                tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, f"mode {packet.mode!r}: use octet or netascii"),
                addr,
            )
            return
        refusal = self.slots.take(addr[0])
        if refusal is not None:
            self.say(
                "busy",
                logging.WARNING,
                "TFTP %s from %s:%d dropped: %s",
                packet.filename,
                addr[0],
                addr[1],
                refusal,
            )
            return
        given_back = False

        def give_back() -> None:  # once, however the request ends
            nonlocal given_back
            if not given_back:
                given_back = True
                self.slots.give_back(addr[0])

        fetch = Fetch(path=packet.filename, scheme="tftp", method="RRQ", remote_addr=addr[0])
        d = threads.deferToThreadPool(self.reactor, self.pool, self.backend.fetch, fetch)
        d.addCallbacks(self._answer, self._crash, (packet, addr, give_back), {}, (addr, give_back))

    def _answer(
        self, reply: Reply, request: tftp.Request, addr: tuple[str, int], give_back: Callable[[], None]
    ) -> None:
        if reply.status != 200:
            give_back()
            if reply.warning:
                self.say(reply.cause or "refused", logging.WARNING, "TFTP: %s", Long(reply.warning))
            else:
                self.say(
                    "refused",
                    logging.INFO,
                    "TFTP %s from %s:%d: %s",
                    request.filename,
                    addr[0],
                    addr[1],
                    reply.reason,
                )
            _send(
                self.transport,
                tftp.error(_ERRORS.get(reply.status, tftp.ErrorCode.NOT_DEFINED), reply.reason),
                addr,
            )
            return
        transfer = tftp.ReadTransfer(request, reply.body, max_blksize=self.max_blksize)
        sender = _Transfer(transfer, addr, self.reactor, request.filename, ended=give_back, say=self.say)
        try:
            self.reactor.listenUDP(0, sender, interface=self.interface)
        except error.CannotListenError as e:  # out of descriptors after all: the TCP ports took them
            give_back()
            self.say(
                "port",
                logging.WARNING,
                "TFTP %s to %s:%d: no port to send from: %s",
                request.filename,
                addr[0],
                addr[1],
                e.socketError,
            )

    def _crash(self, failure: Any, addr: tuple[str, int], give_back: Callable[[], None]) -> None:
        give_back()
        self.say("crash", logging.ERROR, "TFTP request failed: %s", failure.getTraceback())
        _send(
            self.transport, tftp.error(tftp.ErrorCode.NOT_DEFINED, "internal error; see the server log"), addr
        )
