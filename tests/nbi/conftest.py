"""The NBI on a real socket (127.0.0.1, a port the OS picks) in this process's reactor, against
this test's database (SQLite and PostgreSQL), with tokens of each role; and devices that came
the way devices come, through a CWMP session of the backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest_twisted
import treq
from sqlalchemy.engine import Engine
from twisted.internet import reactor
from twisted.python.threadpool import ThreadPool

from acs import cwmp
from acs.connreq import Attempt, KickResult
from acs.cwmp import rpc
from acs.jobs import policies
from acs.nbi import tokens
from acs.session.service import SessionHandler
from acs.store.schema import utcnow
from acs.web.server import ServeOptions, nbi_site

#: seconds any one API call may take before the test fails
CALL_TIMEOUT = 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/problem+json", (self.status, self.headers)
        assert self.body["status"] == self.status
        return self.body


@dataclass
class Api:
    """An API client: ``await api.get("/devices", role="read")``; ``role=None`` sends no token."""

    url: str
    tokens: dict[str, str]
    kicked: list[str] = field(default_factory=list)

    async def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "admin",
        json_body: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if role is not None:
            sent["Authorization"] = f"Bearer {self.tokens[role]}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        response = await treq.request(
            method, self.url + path, params=params, data=data, headers=sent, timeout=CALL_TIMEOUT
        )
        raw = await response.content()
        got = {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()}
        body = json.loads(raw) if raw and "json" in got.get("content-type", "") else (raw or None)
        return Answer(response.code, got, body)

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return await self.call("POST", path, json_body=body, **kwargs)

    async def patch(self, path: str, body: Any, **kwargs: Any) -> Answer:
        return await self.call("PATCH", path, json_body=body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Answer:
        return await self.call("DELETE", path, **kwargs)


def make_tokens(engine: Engine) -> dict[str, str]:
    with engine.begin() as conn:
        return {role: tokens.create(conn, f"{role}-client", role)[0] for role in tokens.ROLES}


@pytest_twisted.async_yield_fixture
async def api(engine: Engine) -> AsyncIterator[Api]:
    """The NBI on 127.0.0.1:0 with a kicker that records the devices it was asked to kick."""
    with engine.begin() as conn:
        policies.set_enabled(conn, "discovery", False)  # sessions here carry only what the test queues
    issued = make_tokens(engine)
    pool = ThreadPool(minthreads=1, maxthreads=2, name="test-nbi")
    pool.start()
    kicked: list[str] = []

    async def kick(device_id: str) -> KickResult:  # stands in for acs.connreq's requester
        kicked.append(device_id)
        return KickResult(device_id, (Attempt("http", "sent", "HTTP 200", utcnow(), 0.01),))

    from twisted.internet import defer

    site = nbi_site(engine, pool, ServeOptions(), reactor, kicker=lambda d: defer.ensureDeferred(kick(d)))
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    site.resource.rest.poll_interval = 0.05
    try:
        yield Api(f"http://127.0.0.1:{port.getHost().port}", issued, kicked)
    finally:
        await port.stopListening()
        pool.stop()


# --- devices, as they come: an Inform through the CWMP backend -------------------------------------------


def inform_of(
    serial: str,
    *,
    model: str = "CP-8841-3PCC",
    events: tuple[str, ...] = ("1 BOOT",),
    params: dict[str, str] | None = None,
    mac: str | None = None,
) -> cwmp.Envelope:
    values = {"Device.DeviceInfo.SoftwareVersion": "sip88xx.12-0-1MPP-1"} | (params or {})
    if mac is not None:
        values["Device.LAN.MACAddress"] = mac
    body = rpc.Inform(
        DeviceId=rpc.DeviceIdStruct("Cisco Systems, Inc.", "00562B", model, serial),
        Event=[rpc.EventStruct(e, "") for e in events],
        ParameterList=[rpc.ParameterValueStruct(k, v, "string") for k, v in values.items()],
    )
    return cwmp.Envelope(body=body, ID="cpe-1", ns=cwmp.NAMESPACES["1.2"])


def session(
    engine: Engine, envelope: cwmp.Envelope, respond: Callable[[rpc.Message], rpc.Message] | None = None
) -> str:
    """One CWMP session through the backend: the Inform, then the empty POST; queued requests are
    answered by ``respond`` (or left unanswered, the session ending there). Returns the device id."""
    backend = SessionHandler(engine)
    sess, step = backend.step(None, envelope, "192.0.2.7")
    sess, step = backend.step(sess.id, None, "192.0.2.7")
    while step.reply is not None and respond is not None:
        answer = cwmp.Envelope(body=respond(step.reply.body), ID=step.reply.ID, ns=cwmp.NAMESPACES["1.2"])
        sess, step = backend.step(sess.id, answer, "192.0.2.7")
    inform = envelope.body
    assert isinstance(inform, rpc.Inform)
    return f"{inform.DeviceId.OUI}-{inform.DeviceId.ProductClass}-{inform.DeviceId.SerialNumber}"
