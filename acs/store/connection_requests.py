"""Connection requests in the store: where and how to reach a device, and what each request came to.

The history (``connection_requests``) is what operators look at, and its latest row
per device is the per-device rate limit that holds across processes (the CLI, every
``acs serve`` worker).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from acs.store.schema import connection_requests, devices
from acs.store.secrets import reveal

_c = connection_requests.c


@dataclass(frozen=True, slots=True)
class Target:
    """What a connection request to one device needs, as the store knows it."""

    device_id: str
    url: str | None
    username: str | None
    #: unsealed (acs.store.secrets): the CPE's challenge is answered with it
    password: str | None = field(repr=False)
    udp_address: str | None
    #: the latest request to the device, by any process
    last_requested_at: datetime | None


_LAST = (
    sa.select(sa.func.max(_c.requested_at))
    .where(_c.device_id == devices.c.id)
    .correlate(devices)
    .scalar_subquery()
)
_TARGET = sa.select(
    devices.c.id,
    devices.c.connection_request_url,
    devices.c.connection_request_username,
    devices.c.connection_request_password,
    devices.c.udp_connection_request_address,
    _LAST.label("last_requested_at"),
).where(devices.c.id == sa.bindparam("device"))


def target(conn: Connection, device_id: str) -> Target | None:
    row = conn.execute(_TARGET, {"device": device_id}).one_or_none()
    if row is None:
        return None
    device, url, username, password, udp, last = row
    return Target(device, url, username, reveal(password), udp, last)


def record(conn: Connection, device_id: str, attempts: Iterable[Any]) -> None:
    """Store attempts (``acs.connreq.result.Attempt``: method, outcome, detail, requested_at, elapsed)."""
    rows = [
        {
            "device_id": device_id,
            "requested_at": a.requested_at,
            "method": a.method,
            "outcome": a.outcome,
            "detail": a.detail,
            "elapsed": a.elapsed,
        }
        for a in attempts
    ]
    if rows:
        conn.execute(connection_requests.insert(), rows)


def history(conn: Connection, device_id: str, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """A device's connection requests, newest first."""
    q = (
        sa.select(connection_requests)
        .where(_c.device_id == device_id)
        .order_by(_c.id.desc())
        .limit(limit)
        .offset(offset or None)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def set_credentials(conn: Connection, device_id: str, username: str | None, password: str | None) -> None:
    """The ConnectionRequestUsername/Password the device expects, when known out of band (None: forget).

    Set by the ACS through SetParameterValues they are recorded by themselves
    (``inventory.record_facts``).
    """
    conn.execute(
        devices.update()
        .where(devices.c.id == device_id)
        .values(connection_request_username=username, connection_request_password=password)
    )
