"""The ``sessions`` table: where a CWMP session's state is kept between its POSTs.

The session service (``acs.session.service``) keeps no state in memory: each message loads its
session's row here (locked, so two POSTs of one session never interleave), and saves it back in
the same transaction, so any worker process can continue any session. The hot-path statements
are compiled once (``acs.store.prepared``). FOR UPDATE locks the row on PostgreSQL and renders
as nothing on SQLite (one writer at a time).

Also here: the one read a session's authentication makes of the store, a CPE user name's
device and password (``device_password``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from acs.store.prepared import Prepared
from acs.store.schema import SessionStatus, devices, revisions, sessions

_s = sessions.c
_LOAD = Prepared(
    sa.select(_s.state)
    .where(
        _s.id == sa.bindparam("sid"),
        _s.status == SessionStatus.OPEN,
        _s.last_message_at >= sa.bindparam("cutoff"),
    )
    .with_for_update()
)
_OPEN = Prepared(
    sa.insert(sessions).values(
        id=sa.bindparam("sid"),
        device_id=sa.bindparam("device"),
        started_at=sa.bindparam("now"),
        last_message_at=sa.bindparam("now"),
        status=SessionStatus.OPEN,
        remote_addr=sa.bindparam("remote"),
        cwmp_ns=sa.bindparam("ns"),
        state=sa.bindparam("new_state"),
    )
)
_SUPERSEDE = Prepared(
    sa.update(sessions)
    .where(_s.device_id == sa.bindparam("device"), _s.status == SessionStatus.OPEN)
    .values(status=SessionStatus.FAILED, ended_at=sa.bindparam("now"))
)
_END = Prepared(
    sa.update(sessions)
    .where(_s.id == sa.bindparam("sid"))
    .values(status=SessionStatus.ENDED, ended_at=sa.bindparam("now"), last_message_at=sa.bindparam("now"))
)
_SAVE = Prepared(
    sa.update(sessions)
    .where(_s.id == sa.bindparam("sid"))
    .values(state=sa.bindparam("new_state"), last_message_at=sa.bindparam("now"))
)
_TIME_OUT = (
    sa.update(sessions)
    .where(_s.status == SessionStatus.OPEN, _s.last_message_at < sa.bindparam("cutoff"))
    .values(status=SessionStatus.TIMED_OUT, ended_at=sa.bindparam("now"))
)
#: a CPE user name's device and password, with the credentials' revision (``acs.web.auth.UnknownUsers``)
_PASSWORD = Prepared(
    sa.select(revisions.c.revision, devices.c.id, devices.c.password)
    .select_from(revisions.outerjoin(devices, devices.c.username == sa.bindparam("username")))
    .where(revisions.c.name == "credentials")
)


def load_state(conn: Connection, sid: str, *, heard_since: datetime) -> dict[str, Any] | None:
    """The saved state of open session ``sid`` heard from at ``heard_since`` or later, its row
    locked until the transaction ends; None when it ended, timed out or was superseded."""
    row = _LOAD.first(conn, {"sid": sid, "cutoff": heard_since})
    return row[0] if row is not None else None


def open_session(
    conn: Connection,
    sid: str,
    device_id: str,
    *,
    now: datetime,
    remote_addr: str | None,
    ns: str,
    state: dict[str, Any],
) -> None:
    """The row of a session an Inform opened, with the state the Inform left it in."""
    params = {
        "sid": sid,
        "device": device_id,
        "now": now,
        "remote": remote_addr,
        "ns": ns,
        "new_state": state,
    }
    _OPEN.execute(conn, params)


def supersede(conn: Connection, device_id: str, *, now: datetime) -> None:
    """A new Inform ends the device's earlier sessions (``failed``), wherever they ran."""
    _SUPERSEDE.execute(conn, {"device": device_id, "now": now})


def end(conn: Connection, sid: str, *, now: datetime) -> None:
    """The session ended as CWMP ends one: nothing left to send."""
    _END.execute(conn, {"sid": sid, "now": now})


def save_state(conn: Connection, sid: str, state: dict[str, Any], *, now: datetime) -> None:
    """The session's state after a message, heard from ``now``."""
    _SAVE.execute(conn, {"sid": sid, "new_state": state, "now": now})


def time_out(conn: Connection, *, silent_since: datetime, now: datetime) -> int:
    """Open sessions last heard from before ``silent_since`` are ``timed_out``; how many."""
    return conn.execute(_TIME_OUT, {"cutoff": silent_since, "now": now}).rowcount


def device_password(conn: Connection, username: str) -> tuple[int | None, str | None, Any]:
    """The credentials' revision, the device whose CPE user name this is (None: no device's) and its
    password (sealed: ``.reveal()`` it; None when the device has none)."""
    row = _PASSWORD.first(conn, {"username": username})
    if row is None:
        return None, None, None
    return row[0], row[1], row[2]
