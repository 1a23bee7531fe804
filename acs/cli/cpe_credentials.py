"""``acs cpe-credentials``: the shared credentials every CPE may authenticate with.

Beside ``acs device credentials KEY`` (a device's own), these are the server's: what phones are
given as ACS_Username/ACS_Password (TR-069 ManagementServer.Username/Password). ``acs serve``
makes them at its first start when none are given or stored (``credentials_at_start``), so the
server the README starts accepts phones with authentication on.
"""

from __future__ import annotations

import click
from sqlalchemy.engine import Engine

from acs.cli.common import (
    database_only,
    db_option,
    echo_json,
    open_secrets,
    open_store,
    read_password,
    secrets_key_option,
)
from acs.store import settings
from acs.store.settings import SharedCredentials

_SHOW_AGAIN = "`acs cpe-credentials show` prints them again"
_LATER = "acs serve uses them from its next start; phones need them as ACS_Username/ACS_Password"


@click.group("cpe-credentials")
def cpe_credentials() -> None:
    """The shared CPE credentials: the user name and password every CPE may authenticate with.

    acs serve makes them at its first start and keeps them in the database; --cpe-username and
    --cpe-password (or ACS_CPE_USERNAME/ACS_CPE_PASSWORD) given to acs serve take their place.
    A device's own credentials: acs device credentials. The password is kept sealed with the
    server's secrets key (--secrets-key-file), which these commands need too.
    """


@cpe_credentials.command()
@db_option
@database_only
@secrets_key_option
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def show(db: str | None, as_json: bool, secrets_key_file: str | None) -> None:
    """Print the stored shared credentials, password included."""
    engine = open_store(db)
    open_secrets(engine, secrets_key_file)
    with engine.connect() as conn:
        stored = settings.shared_credentials(conn)
    if stored is None:
        raise click.ClickException(
            "no shared CPE credentials stored yet: acs serve makes them at its first start, "
            "or set them with `acs cpe-credentials set`"
        )
    if as_json:  # off: both null
        echo_json({"username": stored.username, "password": stored.password})
        return
    if stored.off:
        click.echo("shared CPE credentials are off: only devices with their own credentials open sessions")
        return
    _echo(stored)


@cpe_credentials.command("set")
@db_option
@database_only
@secrets_key_option
@click.option("--username", required=True, help="The user name.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (its first line)."
)
@click.option(
    "--password",
    default=None,
    help="Its password; on the command line every local user sees it (ps): leave it out to be "
    "prompted, or use --password-stdin.",
)
def set_(
    db: str | None, username: str, password_stdin: bool, password: str | None, secrets_key_file: str | None
) -> None:
    """Replace the shared credentials with these (the password is prompted for, never echoed)."""
    password = read_password(password, password_stdin)
    engine = open_store(db)
    open_secrets(engine, secrets_key_file)
    _store(engine, SharedCredentials(username, password))
    click.echo(f"shared CPE credentials set: user name {username!r}; {_LATER}")


@cpe_credentials.command()
@db_option
@database_only
@secrets_key_option
@click.option("--username", default=None, help="The user name (default: the stored one, or a new one).")
def generate(db: str | None, username: str | None, secrets_key_file: str | None) -> None:
    """Replace the shared credentials with a new random password (and user name), and print them."""
    engine = open_store(db)
    open_secrets(engine, secrets_key_file)
    with engine.connect() as conn:
        stored = settings.shared_credentials(conn)
    made = settings.new_credentials(username or (stored.username if stored is not None else None))
    _store(engine, made)
    click.echo("new shared CPE credentials:")
    _echo(made)
    click.echo(f"{_LATER}; {_SHOW_AGAIN}", err=True)


@cpe_credentials.command()
@db_option
@database_only
def disable(db: str | None) -> None:
    """Switch the shared credentials off: only devices with their own credentials open sessions.

    `acs cpe-credentials set` or `generate` switch them on again."""
    _store(db, SharedCredentials(None, None))
    click.echo(
        "shared CPE credentials off: only devices with their own credentials open sessions "
        "(from acs serve's next start)"
    )


def _store(db: str | Engine | None, credentials: SharedCredentials) -> None:
    engine = db if isinstance(db, Engine) else open_store(db)
    with engine.begin() as conn:
        try:
            settings.set_shared_credentials(conn, credentials)
        except ValueError as e:
            raise click.ClickException(str(e)) from None


def _echo(credentials: SharedCredentials, prefix: str = "", err: bool = False) -> None:
    click.echo(f"{prefix}user name  {credentials.username}", err=err)
    click.echo(f"{prefix}password   {credentials.password}", err=err)


def credentials_at_start(
    engine: Engine, username: str | None, password: str | None
) -> tuple[str | None, str | None]:
    """The shared credentials ``acs serve`` (its first process, with authentication on) serves with.

    Given ones (--cpe-username/--cpe-password, ACS_CPE_*) win; else the stored ones; else new
    ones, stored and printed in full this once. Workers get them from the first process.
    """
    if username is not None:
        source = click.get_current_context().get_parameter_source("cpe_username")
        given = "ACS_CPE_USERNAME" if source is click.core.ParameterSource.ENVIRONMENT else "--cpe-username"
        click.echo(f"acs: shared CPE credentials in use: user name {username!r} (from {given})", err=True)
        return username, password
    with engine.begin() as conn:
        stored, made = settings.ensure_shared_credentials(conn)
    if stored.off:
        return None, None  # acs serve warns that only devices with their own credentials get in
    if made:
        click.echo(
            "acs: new shared CPE credentials, kept in the database (the phones' ACS_Username "
            "and ACS_Password):",
            err=True,
        )
        _echo(stored, prefix="acs:   ", err=True)
        click.echo(f"acs: {_SHOW_AGAIN}; `acs cpe-credentials set` replaces them", err=True)
    else:
        click.echo(
            f"acs: shared CPE credentials in use: user name {stored.username!r} (from the database; "
            "`acs cpe-credentials show` prints the password)",
            err=True,
        )
    return stored.username, stored.password
