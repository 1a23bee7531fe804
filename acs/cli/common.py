"""What the ``acs`` commands share: the database option, durations, tables and JSON output."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click
from sqlalchemy.engine import Engine

from acs.store import secrets
from acs.store.engine import StoreError, create_engine, ensure_schema
from acs.usecases.encoding import jsonable

F = TypeVar("F", bound=Callable[..., Any])

#: where the device and task commands find a server's REST API instead of the database
API_URL_ENV = "ACS_API_URL"

_DURATION = re.compile(r"(\d+)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def db_option(f: F) -> F:
    return click.option(
        "--db",
        envvar="ACS_DATABASE_URL",
        default=None,
        metavar="URL",
        help="Database URL (default sqlite:///./acs.db; env ACS_DATABASE_URL).",
    )(f)


NEW_KEY = (
    "it seals the passwords and keys kept in the database; keep a copy apart from the database's "
    "backups (without it they are lost)"
)


def secrets_key_option(f: F) -> F:
    return click.option(
        "--secrets-key-file",
        envvar=secrets.KEY_FILE_ENV,
        default=None,
        metavar="PATH",
        help="The server key that seals the stored passwords and profile keys (default: beside a SQLite "
        f"database, ./acs.key for ./acs.db; PostgreSQL needs it named; env {secrets.KEY_FILE_ENV}).",
    )(f)


def open_secrets(engine: Engine, key_file: str | None, *, create: bool = False) -> secrets.Keyring:
    """The database's secrets key, loaded for this process, or a click error saying what to do."""
    try:
        keyring, made = secrets.open_key(engine, key_file, create=create)
    except (secrets.SecretsError, StoreError) as e:
        raise click.ClickException(str(e)) from None
    if made:
        click.echo(f"acs: new secrets key in {keyring.path}: {NEW_KEY}", err=True)
    return keyring


def read_password(given: str | None, from_stdin: bool) -> str:
    """A password from standard input's first line (``--password-stdin``), else as given (on the
    command line, visible to other local users), else prompted for twice, never echoed."""
    if from_stdin:
        if given is not None:
            raise click.UsageError("give --password or --password-stdin, not both")
        # sys.stdin, which click's runner replaces too (click 8.3 deprecates get_text_stream)
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: standard input had no password on its first line")
        return line
    if given is not None:
        return given
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


def database_only(f: F) -> F:
    """For a command that works on the database alone (under ``--db``): when the operator has named
    an API (``ACS_API_URL``, or ``--api``, accepted here only to be refused), it refuses rather than
    quietly work on ``./acs.db``. A database named too (``--db``, ``ACS_DATABASE_URL``) is used."""

    @functools.wraps(f)
    def command(*args: Any, api: str | None, **kwargs: Any) -> Any:
        if api is not None:
            ctx = click.get_current_context()
            name = " ".join(["acs", *ctx.command_path.split()[1:]])
            if ctx.get_parameter_source("api") is click.core.ParameterSource.COMMANDLINE:
                raise click.UsageError(
                    f"{name} works on the database only, not through the API: give --db URL"
                )
            if kwargs.get("db", kwargs.get("url")) is None:
                raise click.UsageError(
                    f"{name} works on the database only, not through the API, and {API_URL_ENV} is set: "
                    f"give --db URL (or ACS_DATABASE_URL) to work on a database, or unset {API_URL_ENV}"
                )
        return f(*args, **kwargs)

    option = click.option("--api", envvar=API_URL_ENV, default=None, hidden=True, metavar="URL")
    return option(command)  # type: ignore[return-value]


def open_store(db: str | None) -> Engine:
    """An engine on a database at the current schema, or a click error that says how to fix it.

    Reading or writing, no command creates or migrates a database: a missing one is reported
    (only ``acs serve`` and ``acs db upgrade`` make one), so a mistyped ``--db`` cannot leave an
    empty ``acs.db`` behind and answer with an empty table.
    """
    try:
        engine = create_engine(db)
        ensure_schema(engine, create=False)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    return engine


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d``, ``1w``, or a sum such as ``1h30m``."""
    text = text.strip().lower()
    pos, seconds = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos or (m.group(2) == "" and m.end() != len(text)):
            break
        seconds += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise click.BadParameter(f"{text!r} is not a duration; use e.g. 90s, 15m, 2h, 1d or 1h30m")
    return timedelta(seconds=seconds)


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except click.BadParameter as e:
            self.fail(e.message, param, ctx)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2, sort_keys=False))


def show_time(value: datetime | str | None) -> str:
    """A time for a table: from the store, or as the API writes it (RFC 3339 text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A plain aligned table: readable in a terminal, easy to cut with awk."""
    cells = [[("-" if v is None or v == "" else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
