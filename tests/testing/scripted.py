"""A scripted ACS for driving the simulated phone with bytes, and the checks every phone message passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

import cwmp_schemas
from acs import cwmp
from acs.cwmp import rpc
from acs.testing import SimulatedPhone


class Clock:
    """A clock the test moves by hand, so times in messages are known."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def assert_valid(data: bytes, version: str) -> cwmp.Envelope:
    """The message validates against its CWMP version's XSD, and the codec reads it back."""
    validator = cwmp_schemas.validator(version)
    if not validator.validate(etree.fromstring(data)):
        pytest.fail(f"CWMP {version} XSD rejects:\n{data.decode()}\n{validator.error_log}")
    return cwmp.parse(data)


def ask(phone: SimulatedPhone, request: rpc.Message, ID: str = "acs-7") -> rpc.Message:
    """One ACS request through the wire format; the answer is checked against the XSD and the ID."""
    data = cwmp.serialize(cwmp.Envelope(request, ID=ID, ns=phone.ns))
    answer = phone.envelope(phone.answer(cwmp.parse(data).body), ID=ID)
    env = assert_valid(cwmp.serialize(answer), phone.cwmp_version)
    assert env.ID == ID
    return env.body


def fault_of(message: rpc.Message) -> tuple[int | None, list[tuple[str, int]]]:
    assert isinstance(message, rpc.Fault), message
    return message.FaultCode, [(f.ParameterName, f.FaultCode) for f in message.SetParameterValuesFault]


def converse(
    phone: SimulatedPhone,
    *requests: rpc.Message,
    events: list[str] | None = None,
    hold_requests: bool = False,
    fault_transfer_complete: bool = False,
) -> list[rpc.Message]:
    """A whole session with a scripted ACS; returns every message the phone sent, in order.

    The ACS answers the Inform, acknowledges the phone's TransferCompletes (or
    faults them), sends ``requests`` one by one on the empty POST, then ends.
    """
    session = phone.session(events)
    env = assert_valid(session.start(), phone.cwmp_version)
    sent: list[rpc.Message] = [env.body]
    reply = _acs(rpc.InformResponse(MaxEnvelopes=1), phone, hold=hold_requests)
    queue = list(requests)
    try:
        while (out := session.receive(reply)) is not None:
            if not out:
                reply = _acs(queue.pop(0), phone, ID=f"acs-{len(queue)}") if queue else b""
                continue
            env = assert_valid(out, phone.cwmp_version)
            sent.append(env.body)
            if isinstance(env.body, rpc.TransferComplete):
                ack = (
                    rpc.Fault(8002, "try later")
                    if fault_transfer_complete
                    else rpc.TransferCompleteResponse()
                )
                reply = _acs(ack, phone)
            else:
                reply = _acs(queue.pop(0), phone, ID=f"acs-{len(queue)}") if queue else b""
    finally:
        session.close()
    return sent


def _acs(message: rpc.Message, phone: SimulatedPhone, *, ID: str = "acs", hold: bool = False) -> bytes:
    return cwmp.serialize(cwmp.Envelope(message, ID=ID, ns=phone.ns, HoldRequests=True if hold else None))
