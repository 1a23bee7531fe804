"""Secrets at rest: what acs needs in clear, kept sealed with a server key that lives outside the database.

HTTP Digest checks a CPE's answer against its password, a connection request answers the CPE's
challenge with its ConnectionRequestPassword, a profile is encrypted with its phone's key: acs
needs these in clear, so they cannot be hashed as API tokens are (``acs.nbi.tokens``). They are
sealed instead, with Fernet (``cryptography``: AES-128-CBC then HMAC-SHA256, a random IV and a
timestamp per value), under a key kept in a file of its own (``acs.key`` beside a SQLite database,
a path given for PostgreSQL). A copy of the database without the key file (a backup, a dump, a
disk image, a replica) holds ciphertext only.

How to use it: a secret column is ``sa.Column("x", SealedText)``. What is written to it is sealed
(a ``str``; a ``Sealed`` read from another row is copied as it is); what is read from it is a
``Sealed``, opened with ``reveal()`` only where the clear text is used, so listing devices needs
no key and a sealed value never slips into JSON or a log (``Sealed`` is not a ``str``). Existing
rows are sealed by the column's migration (it gets the key from ``engine.upgrade(keyring=...)``);
``acs db rotate-key`` finds the column by its type. ``seal()``/``unseal()`` are the same
operations on plain text, for values that are not in such a column.

The key file holds Fernet keys, one a line: the first seals, every one opens (``MultiFernet``).
``rotate_key`` writes the new key in front of the old ones before it re-seals anything, and
drops the old ones only once every value is sealed with the new key, so a crash at any point
leaves a file that opens everything. A running ``acs serve`` notices the file changed (one
``stat`` per use) and reloads it. The file is made 0600 and refused when other users may read
or write it. A database remembers its key: the setting ``secrets_key_check`` is a sealed
constant, so a wrong key file (another server's, a database copied without its key) is refused
at start instead of failing the first device that authenticates.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import signal
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Dialect, Engine

from acs.store.engine import connect

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

log = logging.getLogger(__name__)

#: where the key file is when no --secrets-key-file is given
KEY_FILE_ENV = "ACS_SECRETS_KEY_FILE"
#: the setting whose sealed constant tells whether a key is this database's
CHECK_SETTING = "secrets_key_check"
CHECK_TEXT = "acs secrets key check"
#: For crash tests: ``rotate_key`` kills its own process (SIGKILL) at this point,
#: ``before-commit`` (every value re-sealed, not committed) or ``after-commit`` (the key file still
#: holds the old keys too).
KILL_DURING_ROTATION = "ACS_TEST_KILL_DURING_ROTATION"
_HEADER = (
    "# acs secrets key (Fernet, one a line: the first seals, every one opens).\n"
    "# Keep it apart from the database's backups, readable by the acs user only: without it\n"
    "# the credentials sealed in the database are lost; with the database, it opens them.\n"
)
#: a Fernet token's first byte (its version), base64url-encoded: what a sealed value starts with
_TOKEN_START = "gAAAAA"  # noqa: S105 - not a secret: every token starts so


class SecretsError(Exception):
    """A key that cannot be used, or a value it cannot open, in words that say what to do."""


class Keyring:
    """The keys of a key file: the first seals, each of them opens."""

    def __init__(self, keys: Sequence[bytes], path: Path | None = None, stamp: Any = None) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise SecretsError(f"{path or 'the key file'} holds no key")
        self.keys = tuple(keys)
        self.path = path
        self.stamp = stamp
        self._fernet: MultiFernet = MultiFernet([Fernet(k) for k in self.keys])

    @classmethod
    def generate(cls) -> Keyring:
        from cryptography.fernet import Fernet

        return cls([Fernet.generate_key()])

    @classmethod
    def load(cls, path: Path) -> Keyring:
        """The key file at ``path``; refused when other users may read or write it."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise SecretsError(f"no secrets key file at {path}") from None
        except OSError as e:
            raise SecretsError(f"cannot read the secrets key file {path}: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if info.st_mode & 0o077:
                raise SecretsError(
                    f"the secrets key file {path} is open to other users (mode "
                    f"{stat.S_IMODE(info.st_mode):04o}): `chmod 600 {path}`, and check who read it"
                )
            text = f.read().decode("ascii", "replace")
        keys = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                if len(base64.urlsafe_b64decode(line.encode())) != 32:
                    raise ValueError
            except (ValueError, binascii.Error):
                raise SecretsError(f"{path}:{number}: not a secrets key (44 characters of base64)") from None
            keys.append(line.encode())
        return cls(keys, path, _stamp(info))

    @classmethod
    def create(cls, path: Path) -> Keyring:
        """A new key in a new file at ``path`` (mode 0600); the file already there if another
        process made it meanwhile."""
        keyring = cls.generate()
        try:
            _write(path, keyring.keys, exclusive=True)
        except FileExistsError:
            pass
        except OSError as e:
            raise SecretsError(f"cannot create the secrets key file {path}: {e.strerror}") from None
        return cls.load(path)

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def unseal(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii", "replace")).decode()
        except InvalidToken:
            if not token.startswith(_TOKEN_START):
                raise SecretsError(
                    "a secret in the database is not sealed (written by something other than acs, or "
                    "never migrated: run `acs db upgrade`)"
                ) from None
            raise SecretsError(
                f"a secret in the database does not open with the key in {self.path or 'use'}: "
                "they were sealed with another key (was the database copied without its key file?)"
            ) from None

    def rotate(self, token: str) -> str:
        """The value sealed again with the first key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")


# --- the process's key ------------------------------------------------------------------------

_lock = threading.Lock()
_active: Keyring | None = None
#: why there is no key, for the error a seal or reveal then raises
_why_none = "no secrets key loaded"


def use(keyring: Keyring | None, why_none: str = "no secrets key loaded") -> None:
    """The key ``seal``, ``unseal`` and ``Sealed.reveal`` use in this process (None: none, and why)."""
    global _active, _why_none
    with _lock:
        _active, _why_none = keyring, why_none


def active() -> Keyring:
    """The process's key, reloaded when its file changed (``acs db rotate-key`` ran meanwhile)."""
    global _active
    keyring = _active
    if keyring is None:
        raise SecretsError(_why_none)
    if keyring.path is not None:
        try:
            changed = _stamp(os.stat(keyring.path)) != keyring.stamp
        except OSError:
            changed = False  # replaced at this very moment, or gone: the keys in memory still work
        if changed:
            with _lock:
                if _active is keyring:
                    _active = Keyring.load(keyring.path)
                keyring = _active
            assert keyring is not None
    return keyring


def seal(text: str) -> str:
    """``text`` sealed with the process's key: what a SealedText column stores."""
    return active().seal(text)


def unseal(token: str) -> str:
    return active().unseal(token)


class Sealed:
    """A secret as the store keeps it. ``reveal()`` opens it; it is never shown, compared or
    serialized as text by accident."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def reveal(self) -> str:
        return unseal(self.token)

    def __repr__(self) -> str:
        return "Sealed(...)"


class SealedText(sa.TypeDecorator[Any]):
    """A text column whose values are sealed on the way in and read back as ``Sealed``."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.token
        if isinstance(value, str):
            return seal(value)
        raise TypeError(f"a sealed column takes str or Sealed, not {type(value).__name__}")

    def process_result_value(self, value: Any, dialect: Dialect) -> Sealed | None:
        return None if value is None else Sealed(value)


def reveal(value: Sealed | None) -> str | None:
    return None if value is None else value.reveal()


# --- the key file -----------------------------------------------------------------------------


def key_path(url: URL, given: str | Path | None = None) -> Path:
    """Where the key file is: ``given`` (--secrets-key-file), else $ACS_SECRETS_KEY_FILE, else beside
    a SQLite database (``./acs.db`` -> ``./acs.key``). PostgreSQL needs it given: its servers may
    run on several machines, which must share one key, so none is made where one happens to start."""
    given = given or os.environ.get(KEY_FILE_ENV) or None
    if given is not None:
        return Path(given).absolute()
    database = url.database if url.get_backend_name() == "sqlite" else None
    if database in (None, "", ":memory:") or "uri" in url.query:
        backend = "a PostgreSQL" if url.get_backend_name() == "postgresql" else "an in-memory SQLite"
        raise SecretsError(
            f"{backend} database needs its secrets key file named: --secrets-key-file PATH or "
            f"{KEY_FILE_ENV} (made at the first start if the database has no secrets yet; every "
            "server on the database needs a copy of the same file)"
        )
    assert database is not None
    path = Path(database).absolute()
    key = path.with_suffix(".key")
    return key if key != path else path.with_name(f"{path.name}.key")


def _stamp(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


def _write(path: Path, keys: Sequence[bytes], *, exclusive: bool = False) -> None:
    """The key file, written whole in a temporary file first, then put in place: renamed over the
    old one, or for a new one (``exclusive``) linked, which fails if another process made it
    meanwhile. A reader, or a crash, sees the old file or the new one, never half of one."""
    text = _HEADER + "".join(k.decode("ascii") + "\n" for k in keys)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(temporary, path)
            os.unlink(temporary)
        else:
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# --- a database and its key -------------------------------------------------------------------

_settings = sa.table("settings", sa.column("name"), sa.column("secret"), sa.column("updated_at"))


def _check_row(conn: Connection) -> tuple[bool, str | None]:
    """Whether the database can keep the check (its schema has sealed settings), and the check."""
    inspector = sa.inspect(conn)
    if not inspector.has_table("settings"):
        return False, None
    if "secret" not in {c["name"] for c in inspector.get_columns("settings")}:
        return False, None
    found = conn.execute(sa.select(_settings.c.secret).where(_settings.c.name == CHECK_SETTING))
    return True, found.scalar_one_or_none()


def check_value(keyring: Keyring) -> dict[str, Any]:
    """The check row for this key, as inserted in ``settings`` (migrations write it too)."""
    from acs.store.schema import utcnow

    return {"name": CHECK_SETTING, "secret": keyring.seal(CHECK_TEXT), "updated_at": utcnow()}


def open_key(
    engine: Engine, given: str | Path | None = None, *, create: bool = False
) -> tuple[Keyring, bool]:
    """The database's key, made into the process's (``use``); True when the key file was made now.

    ``create`` (``acs serve``, ``acs db upgrade``): make the file when it is missing and the
    database has no secrets yet. A database whose check does not open with the file is refused,
    as is a missing file for a database that has secrets."""
    path = key_path(engine.url, given)
    with connect(engine) as conn, conn.begin():
        can_check, check = _check_row(conn)
        made = False
        if not path.exists():
            if check is not None:
                raise SecretsError(
                    f"no secrets key file at {path}, and the database's secrets were sealed with one: "
                    "restore it from where it was kept (every server on the database needs the same file)"
                )
            if not create:
                raise SecretsError(
                    f"no secrets key file at {path}: `acs serve` or `acs db upgrade` makes it "
                    f"(give --secrets-key-file or {KEY_FILE_ENV} if it is elsewhere)"
                )
            keyring = Keyring.create(path)
            made = True
        else:
            keyring = Keyring.load(path)
        if check is not None:
            keyring.unseal(check)  # the database's key, or SecretsError saying it is not
        elif can_check:
            conn.execute(_insert(conn).values(check_value(keyring)).on_conflict_do_nothing())
            stored = _check_row(conn)[1]
            assert stored is not None
            keyring.unseal(stored)  # another process claimed the database with another key meanwhile?
    use(keyring)
    return keyring, made


def _insert(conn: Connection) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(_settings)


def sealed_columns() -> list[sa.Column[Any]]:
    """Every SealedText column of the schema: what a rotation re-seals."""
    from acs.store.schema import metadata

    return [
        column
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, SealedText)
    ]


def reseal(conn: Connection, keyring: Keyring, *, unless: Keyring | None = None) -> int:
    """Seal sealed values again with ``keyring``'s first key, in the caller's transaction; how many.
    ``unless``: only those this key does not open.

    Read as stored (plain text, not through SealedText), rows locked on PostgreSQL, so that a
    value written meanwhile is not overwritten with an older one."""
    count = 0
    for column in sealed_columns():
        table = column.table
        keys = list(table.primary_key.columns)
        raw = sa.table(table.name, *(sa.column(c.name) for c in keys), sa.column(column.name))
        rows = conn.execute(
            sa.select(*(raw.c[c.name] for c in keys), raw.c[column.name])
            .where(raw.c[column.name].is_not(None))
            .with_for_update()
        ).all()
        for *pk, token in rows:
            if unless is not None and _opens(unless, token):
                continue
            where = [raw.c[c.name] == value for c, value in zip(keys, pk, strict=True)]
            conn.execute(sa.update(raw).where(*where).values({column.name: keyring.rotate(token)}))
            count += 1
    return count


def _opens(keyring: Keyring, token: str) -> bool:
    try:
        keyring.unseal(token)
    except SecretsError:
        return False
    return True


def rotate_key(engine: Engine, given: str | Path | None = None) -> tuple[Path, int]:
    """A new key for the database: every sealed value re-sealed with it in one transaction, then
    the key file holding it alone. Returns the key file and how many values were re-sealed.

    The file first gets the new key in front of the old ones, so whatever is in the database at any
    moment opens with it; the old keys go once everything is sealed with the new one. On SQLite the
    file is then vacuumed: pages that held values sealed with the old key are not left in it."""
    from cryptography.fernet import Fernet

    old, _ = open_key(engine, given)
    assert old.path is not None
    path = old.path
    both = Keyring([Fernet.generate_key(), *old.keys], path)
    _write(path, both.keys)
    use(Keyring.load(path))
    with engine.begin() as conn:
        count = reseal(conn, both)
        _test_kill("before-commit")
    _test_kill("after-commit")
    # a value a server sealed with an old key before it saw the new file, and committed after the
    # re-sealing read its table: sealed again too, before the old keys go
    with engine.begin() as conn:
        reseal(conn, both, unless=Keyring(both.keys[:1]))
    _write(path, both.keys[:1])
    use(Keyring.load(path))
    if engine.dialect.name == "sqlite":
        wipe_free_pages(engine)
    return path, count


def wipe_free_pages(engine: Engine) -> bool:
    """VACUUM a SQLite file and empty its WAL: what replaced values held (old clear text, old
    ciphertext) may stay in free pages and WAL frames until then (SQLite builds without
    SECURE_DELETE leave it). False, and a warning, when another process kept it busy: the values
    are sealed all the same."""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except sa.exc.OperationalError as e:
        log.warning(
            "%s could not be vacuumed now (%s): replaced values may stay in its free pages until "
            "`sqlite3 %s VACUUM` is run",
            engine.url.database,
            " ".join(str(e.orig).split()),
            engine.url.database,
        )
        return False
    return True


def _test_kill(point: str) -> None:
    if os.environ.get(KILL_DURING_ROTATION) == point:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def using(keyring: Keyring | None) -> Iterator[None]:
    """``keyring`` as the process's key for a while (tests, tools that open several databases)."""
    before, why = _active, _why_none
    use(keyring)
    try:
        yield
    finally:
        use(before, why)
