"""API tokens: who may call the northbound API, and in which role.

A token is 32 random bytes (URL-safe base64 after an ``acs_`` prefix), shown once when it
is made. The store keeps only its SHA-256. A password needs a slow, salted hash because
people choose guessable ones; a token is 256 random bits, so no guess or precomputed table
finds one from its digest, and a fast hash lets each API request be checked with one
indexed lookup. Tokens are never logged: the log names a token by its name.

Roles are ordered: ``read`` (GET), ``operator`` (also tasks, tags, faults), ``admin``
(also policies, deleting and pre-registering devices).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from acs.store.schema import TOKEN_ROLES, api_tokens, utcnow

ROLES = TOKEN_ROLES
PREFIX = "acs_"
#: ``last_used_at`` is written at most this often per token: not one write per API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_c = api_tokens.c
_SHOWN = (_c.id, _c.name, _c.role, _c.created_at, _c.last_used_at)
_BY_HASH = sa.select(*_SHOWN).where(_c.token_hash == sa.bindparam("digest"))
_TOUCH = (
    sa.update(api_tokens)
    .where(_c.id == sa.bindparam("token_id"))
    .values(last_used_at=sa.bindparam("now", type_=_c.last_used_at.type))
)


class TokenError(ValueError):
    """A token request that cannot be done, saying what was wrong and what is allowed."""


class AccessDenied(Exception):
    """Raised by an ``Authorize`` callable: ``status`` 401 (no or unknown token) or 403 (role too low)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


#: Checks a presented token (None: none was presented) against the role an operation needs
#: (``read`` or ``operator``); returns who it is (recorded as a task's creator) or raises AccessDenied.
#: The SOAP flavour of the NBI takes one (``acs.nbi.resource.soap_authorize``).
Authorize = Callable[[str | None, str], str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (roles include the ones before them)."""
    return ROLES.index(role) >= ROLES.index(needed)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; allowed: {', '.join(ROLES)}")


def create(conn: Connection, name: str, role: str) -> tuple[str, dict[str, Any]]:
    """Make a token; returns it (the only time it exists outside its holder's hands) and its row."""
    _check_role(role)
    name = name.strip()
    if not name:
        raise TokenError("a token needs a name (who or what uses it, e.g. the OSS's name)")
    if conn.execute(sa.select(_c.id).where(_c.name == name)).first() is not None:
        raise TokenError(f"a token named {name!r} exists already (see `acs token list`)")
    token = PREFIX + secrets.token_urlsafe(32)
    row = {"name": name, "role": role, "token_hash": hash_token(token), "created_at": utcnow()}
    shown = conn.execute(sa.insert(api_tokens).returning(*_SHOWN), row).mappings().one()
    return token, dict(shown)


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(*_SHOWN).order_by(_c.id)).mappings()]


def revoke(conn: Connection, key: str) -> dict[str, Any]:
    """Delete a token by its name or id; requests carrying it are refused from then on."""
    cond = _c.name == key
    if key.isdigit():
        cond = sa.or_(cond, _c.id == int(key))
    row = conn.execute(sa.delete(api_tokens).where(cond).returning(*_SHOWN)).mappings().first()
    if row is None:
        raise TokenError(f"no token {key!r}: give its name or id (see `acs token list`)")
    return dict(row)


def authenticate(conn: Connection, token: str) -> dict[str, Any] | None:
    """The token's row (id, name, role...) if it is a live token, else None; notes when it was used."""
    row = conn.execute(_BY_HASH, {"digest": hash_token(token)}).mappings().first()
    if row is None:
        return None
    now = utcnow()
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_RESOLUTION:
        conn.execute(_TOUCH, {"token_id": row["id"], "now": now})
    return dict(row)
