"""``acs db``: the database schema (Alembic migrations, from the installed package) and its secrets key."""

from __future__ import annotations

import click
from sqlalchemy.engine import Engine

from acs.cli.common import NEW_KEY, F, database_only, open_store, secrets_key_option
from acs.store import secrets
from acs.store.engine import DEFAULT_URL, URL_ENV, StoreError, create_engine, show_url, upgrade


def _db_option(f: F) -> F:
    return click.option(
        "--db",
        "url",
        envvar=URL_ENV,
        default=None,
        metavar="URL",
        help=f"Database URL (default {DEFAULT_URL}; env {URL_ENV}), e.g. postgresql://acs@dbhost/acs.",
    )(f)


@click.group()
def db() -> None:
    """The database: create it, or bring its schema up to this version of acs."""


@db.command("upgrade")
@database_only
@_db_option
@secrets_key_option
def upgrade_command(url: str | None, secrets_key_file: str | None) -> None:
    """Apply the schema migrations this acs has and the database lacks (creates an empty one).

    Secrets in clear (from an acs before 0013) are sealed with the secrets key, made beside a SQLite
    database if missing; PostgreSQL needs --secrets-key-file when it has any.
    """
    try:
        engine = create_engine(url)
        try:
            keyring = _upgrade_key(engine, secrets_key_file)
            done = upgrade(engine, keyring=keyring)
        finally:
            engine.dispose()
    except StoreError as exc:
        raise click.ClickException(f"{exc}; check --db / {URL_ENV}") from None
    where = show_url(url if url is not None else DEFAULT_URL)
    if done.before == done.after:
        click.echo(f"database {where} is at revision {done.after} (head), nothing to do")
    else:
        before = "an empty database" if done.before is None else f"revision {done.before}"
        click.echo(f"database {where} upgraded from {before} to revision {done.after} (head)")


def _upgrade_key(engine: Engine, key_file: str | None) -> secrets.Keyring | None:
    """The key migrations seal with: made if missing (as ``acs serve`` does); none for a PostgreSQL
    database without --secrets-key-file, which is refused only if it has secrets to seal."""
    try:
        secrets.key_path(engine.url, key_file)
    except secrets.SecretsError:
        return None
    try:
        keyring, made = secrets.open_key(engine, key_file, create=True)
    except secrets.SecretsError as e:
        raise click.ClickException(str(e)) from None
    if made:
        click.echo(f"acs: new secrets key in {keyring.path}: {NEW_KEY}", err=True)
    return keyring


@db.command("rotate-key")
@database_only
@_db_option
@secrets_key_option
def rotate_key_command(url: str | None, secrets_key_file: str | None) -> None:
    """Seal every stored secret with a new key, and replace the key file with it.

    In one transaction; the key file holds the old keys beside the new one until every value is
    sealed with the new one, so a crash at any point loses nothing (run it again). Servers on this
    machine reload the file; copy it to the other machines serving the database, or stop them first.
    """
    engine = open_store(url)
    try:
        path, count = secrets.rotate_key(engine, secrets_key_file)
    except (secrets.SecretsError, StoreError) as e:
        raise click.ClickException(str(e)) from None
    finally:
        engine.dispose()
    click.echo(f"{count} secret{'' if count == 1 else 's'} sealed again with a new key, now in {path}")
