"""A simulated phone's CWMP session through the session backend, in this process.

``SessionHandler.step`` (one transaction per message, as ``acs serve`` runs it) without HTTP,
so a test can act between two messages of a session.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from acs import cwmp
from acs.cwmp import rpc
from acs.session.service import SessionHandler
from acs.testing import SimulatedPhone


def phone_session(
    engine: Engine,
    phone: SimulatedPhone,
    *,
    on_request: Callable[[rpc.Message], None] | None = None,
    events: list[str] | None = None,
) -> list[rpc.Message]:
    """One CWMP session of ``phone`` through the backend; the requests the ACS sent, in order."""
    backend = SessionHandler(engine)
    cpe = phone.session(events)
    body: bytes | None = cpe.start()
    sid: str | None = None
    sent: list[rpc.Message] = []
    try:
        while body is not None:
            state, step = backend.step(sid, cwmp.parse(body) if body else None, "192.0.2.10")
            sid = state.id
            if step.reply is not None and isinstance(step.reply.body, rpc.Request):
                sent.append(step.reply.body)
                if on_request is not None:
                    on_request(step.reply.body)
            body = cpe.receive(cwmp.serialize(step.reply) if step.reply is not None else b"")
    finally:
        cpe.close()
    return sent
