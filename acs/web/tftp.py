"""The profile server's TFTP side, for in-house pre-provisioning (DHCP option 66, ``Profile_Rule /$PSN.xml``).

Read only: an RRQ is looked up like an HTTP fetch (``ProfileBackend.fetch`` on the
thread pool) and, when there is a profile, sent from a UDP port of its own (RFC 1350's
transfer identifier), one block per ACK, the last block resent when an ACK is late,
given up after a few tries. A WRQ is refused. TFTP has no authentication: phones
with credentials, moved phones, and aes128gcm keys get an error instead of a profile.
The packets and the transfer's rules are pure, in ``acs.provisioning.tftp``.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import protocol, threads
from twisted.python.threadpool import ThreadPool

from acs.provisioning import tftp
from acs.web.profilebackend import Fetch, ProfileBackend, Reply

log = logging.getLogger(__name__)

#: times the last packet is sent again without an answer before a transfer is given up
RETRIES = 5
#: TFTP error for each status the profile backend may answer with
_ERRORS = {
    404: tftp.ErrorCode.FILE_NOT_FOUND,
    401: tftp.ErrorCode.ACCESS_VIOLATION,
    403: tftp.ErrorCode.ACCESS_VIOLATION,
}
#: the largest block sent, whatever a client asks: 1500-byte Ethernet less IP, UDP and TFTP headers,
#: so that no block is fragmented on the way
MAX_BLKSIZE = 1468


class _Transfer(protocol.DatagramProtocol):
    """One file to one client, from a port of its own."""

    def __init__(self, transfer: tftp.ReadTransfer, peer: tuple[str, int], reactor: Any, name: str) -> None:
        self.transfer = transfer
        self.peer = peer
        self.reactor = reactor
        self.name = name
        self.tries = 0
        self.timer: Any = None
        self.over = False

    def startProtocol(self) -> None:
        self._send(self.transfer.start())

    def _send(self, packet: bytes) -> None:
        self.transport.write(packet, self.peer)
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = self.reactor.callLater(self.transfer.timeout, self._timeout)

    def _timeout(self) -> None:
        self.tries += 1
        if self.tries > RETRIES:
            log.info("TFTP %s to %s:%d: no answer, given up", self.name, *self.peer)
            self._stop()
            return
        self._send(self.transfer.last)

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.over:
            return
        if addr != self.peer:  # RFC 1350: a packet from another port is answered, the transfer goes on
            self.transport.write(tftp.error(tftp.ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr)
            return
        try:
            packet = tftp.decode(data)
        except tftp.MalformedPacket as e:
            self.transport.write(tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, str(e)), addr)
            self._stop()
            return
        match packet:
            case tftp.Ack(block=block):
                following = self.transfer.on_ack(block)
                if self.transfer.done:
                    log.debug("TFTP %s sent to %s:%d", self.name, *self.peer)
                    self._stop()
                elif following is not None:
                    self.tries = 0
                    self._send(following)
            case tftp.Error(code=code, message=message):
                log.info(
                    "TFTP %s: %s:%d ended the transfer: %s %s", self.name, *self.peer, code.name, message
                )
                self._stop()
            case _:
                self.transport.write(tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, "expected an ACK"), addr)
                self._stop()

    def _stop(self) -> None:
        self.over = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.transport.stopListening()


class TftpServer(protocol.DatagramProtocol):
    """The TFTP port: an RRQ starts a transfer on a new port, anything else gets an error."""

    def __init__(
        self,
        backend: ProfileBackend,
        pool: ThreadPool,
        reactor: Any,
        *,
        interface: str = "",
        max_blksize: int = MAX_BLKSIZE,
    ) -> None:
        self.backend = backend
        self.pool = pool
        self.reactor = reactor
        self.interface = interface
        self.max_blksize = max_blksize

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = tftp.decode(data)
        except tftp.MalformedPacket as e:
            self.transport.write(tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, str(e)), addr)
            return
        if not isinstance(packet, tftp.Request):
            return  # a stray packet of an ended transfer: answering could start a loop
        if packet.opcode == tftp.Opcode.WRQ:
            self.transport.write(
                tftp.error(tftp.ErrorCode.ACCESS_VIOLATION, "read only: this server sends profiles"), addr
            )
            return
        if packet.mode not in tftp.MODES:
            self.transport.write(
                tftp.error(tftp.ErrorCode.ILLEGAL_OPERATION, f"mode {packet.mode!r}: use octet or netascii"),
                addr,
            )
            return
        fetch = Fetch(path=packet.filename, scheme="tftp", method="RRQ", remote_addr=addr[0])
        d = threads.deferToThreadPool(self.reactor, self.pool, self.backend.fetch, fetch)
        d.addCallback(self._answer, packet, addr)
        d.addErrback(self._crash, addr)

    def _answer(self, reply: Reply, request: tftp.Request, addr: tuple[str, int]) -> None:
        if reply.status != 200:
            log.info("TFTP %s from %s:%d: %s", request.filename, *addr, reply.reason)
            code = _ERRORS.get(reply.status, tftp.ErrorCode.NOT_DEFINED)
            self.transport.write(tftp.error(code, reply.reason), addr)
            return
        transfer = tftp.ReadTransfer(request, reply.body, max_blksize=self.max_blksize)
        self.reactor.listenUDP(
            0, _Transfer(transfer, addr, self.reactor, request.filename), interface=self.interface
        )

    def _crash(self, failure: Any, addr: tuple[str, int]) -> None:
        log.error("TFTP request failed: %s", failure.getTraceback())
        self.transport.write(
            tftp.error(tftp.ErrorCode.NOT_DEFINED, "internal error; see the server log"), addr
        )
