"""Server settings kept in the store (table ``settings``): the shared CPE credentials.

``acs serve`` with CPE authentication on and no shared credentials given makes them at its
first start (a readable user name, a random password), keeps them here and prints them once,
so that the server a new user starts accepts phones; every later start, and every worker,
uses the same ones. ``acs cpe-credentials`` shows, replaces or switches them off (a NULL
value: only devices with their own credentials may then open sessions). The password is kept
sealed (``settings.secret``, ``acs.store.secrets``): reading it needs the server key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from acs.store.schema import settings, utcnow
from acs.store.secrets import reveal

CPE_USERNAME = "cpe_username"
CPE_PASSWORD = "cpe_password"  # noqa: S105 - the setting's name
#: letters and digits a reader cannot confuse (no 0/O, 1/l/I), and no leading "-" that a command
#: line would take for an option: 24 of them are ~140 random bits
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 24


@dataclass(frozen=True)
class SharedCredentials:
    """The user name and password every CPE may authenticate with; both None: switched off."""

    username: str | None
    password: str | None = field(repr=False)

    @property
    def off(self) -> bool:
        return self.username is None


def new_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))


def new_credentials(username: str | None = None) -> SharedCredentials:
    """Fresh credentials: ``username`` (default ``acs-`` and six random hex digits) and a strong password."""
    return SharedCredentials(username or f"acs-{secrets.token_hex(3)}", new_password())


def check(username: str, password: str) -> None:
    """ValueError when a CPE could not send these in HTTP Digest or Basic."""
    for what, value in (("user name", username), ("password", password)):
        if not value:
            raise ValueError(f"the {what} cannot be empty")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"the {what} cannot hold control characters")
    if ":" in username or '"' in username:
        raise ValueError(f"user name {username!r}: ':' and '\"' cannot be sent in HTTP authentication")


def shared_credentials(conn: Connection) -> SharedCredentials | None:
    """The stored shared credentials; None when none were ever stored."""
    c = settings.c
    found = {
        r.name: r
        for r in conn.execute(
            sa.select(c.name, c.value, c.secret).where(c.name.in_((CPE_USERNAME, CPE_PASSWORD)))
        )
    }
    if CPE_USERNAME not in found:
        return None
    password = found.get(CPE_PASSWORD)
    return SharedCredentials(found[CPE_USERNAME].value, reveal(password.secret) if password else None)


def set_shared_credentials(conn: Connection, credentials: SharedCredentials) -> None:
    """Store them (``SharedCredentials(None, None)``: switched off)."""
    if not credentials.off:
        assert credentials.password is not None
        check(credentials.username or "", credentials.password)
    stmt = _insert(conn)
    stmt = stmt.on_conflict_do_update(
        index_elements=[settings.c.name],
        set_={
            "value": stmt.excluded.value,
            "secret": stmt.excluded.secret,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(stmt, _rows(credentials))


def ensure_shared_credentials(conn: Connection) -> tuple[SharedCredentials, bool]:
    """The stored credentials, made and stored first when there are none; True when made now.

    Two servers starting at once on one database agree: the second's insert does nothing and it
    reads back the first's."""
    made = new_credentials()
    conn.execute(_insert(conn).on_conflict_do_nothing(), _rows(made))
    stored = shared_credentials(conn)
    assert stored is not None
    return stored, stored == made  # the password is random: equal only if this insert stored it


def _insert(conn: Connection) -> postgresql.Insert | sqlite.Insert:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(settings)


def _rows(credentials: SharedCredentials) -> list[dict[str, object]]:
    now = utcnow()
    return [
        {"name": CPE_USERNAME, "value": credentials.username, "secret": None, "updated_at": now},
        {"name": CPE_PASSWORD, "value": None, "secret": credentials.password, "updated_at": now},
    ]
