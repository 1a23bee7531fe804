"""``acs db``: the database schema (Alembic migrations, run from the installed package)."""

from __future__ import annotations

import click

from acs.cli.common import database_only
from acs.store.engine import DEFAULT_URL, URL_ENV, StoreError, show_url, upgrade


@click.group()
def db() -> None:
    """The database: create it, or bring its schema up to this version of acs."""


@db.command("upgrade")
@database_only
@click.option(
    "--db",
    "url",
    envvar=URL_ENV,
    default=None,
    metavar="URL",
    help=f"Database URL (default {DEFAULT_URL}; env {URL_ENV}), e.g. postgresql://acs@dbhost/acs.",
)
def upgrade_command(url: str | None) -> None:
    """Apply the schema migrations this acs has and the database lacks (creates an empty one)."""
    try:
        done = upgrade(url)
    except StoreError as exc:
        raise click.ClickException(f"{exc}; check --db / {URL_ENV}") from None
    where = show_url(url if url is not None else DEFAULT_URL)
    if done.before == done.after:
        click.echo(f"database {where} is at revision {done.after} (head), nothing to do")
    else:
        before = "an empty database" if done.before is None else f"revision {done.before}"
        click.echo(f"database {where} upgraded from {before} to revision {done.after} (head)")
