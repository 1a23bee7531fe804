"""HTTP Digest nonce counts, in the store: a replayed answer is refused by every worker and node.

RFC 7616 lets a client answer many requests with one nonce, each with a higher nonce count
(``nc``); an answer seen again (the same ``nc``, or a lower one) is a replay. Nonces themselves
are stateless (``acs.web.auth``: a signed timestamp), so any process can check one; the count
must be seen by all of them, since workers (``acs serve --workers N``) and servers sharing a
database take a CPE's connections in turn. One upsert per authenticated request, in the
transaction of the message it authenticates: the count moves only if that message's work
commits, and two processes racing with the same answer meet on the row's key (PostgreSQL makes
the second wait for the first's commit, then finds the count taken).

An answer without qop (RFC 2069) carries no count: it is taken as count 0, so such a nonce opens
one request only, and the client is challenged again for the next one.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from acs.store.prepared import Prepared
from acs.store.schema import digest_nonces

_n = digest_nonces.c


def _use(dialect: str) -> sa.Insert:
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(digest_nonces)
    return insert.on_conflict_do_update(
        index_elements=[_n.nonce], set_={"nc": insert.excluded.nc}, where=_n.nc < insert.excluded.nc
    )


_USE = Prepared(_use, columns=("nonce", "nc", "expires"))
_PURGE = sa.delete(digest_nonces).where(_n.expires < sa.bindparam("now"))
#: rows outlive their nonce by this many seconds: a node whose clock is behind (nonces are taken
#: as fresh up to 60 s ahead of the clock, ``acs.web.auth``) must still find the count
KEEP = 120


def use(conn: Connection, nonce: str, nc: int, expires: int) -> bool:
    """Record that ``nonce`` answered a request with count ``nc``; False when that count (or a
    higher one) was used already: a replay. ``expires``: when the nonce goes stale (epoch seconds)."""
    return _USE.execute(conn, {"nonce": nonce, "nc": nc, "expires": expires}) == 1  # rows written


def purge(conn: Connection, now: float) -> int:
    """Forget the nonces stale for ``KEEP`` seconds at ``now`` (epoch seconds): no process takes
    them as fresh any more, so their counts can no longer matter."""
    return conn.execute(_PURGE, {"now": int(now) - KEEP}).rowcount
