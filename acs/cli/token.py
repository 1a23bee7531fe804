"""``acs token``: API tokens for the northbound REST API."""

from __future__ import annotations

import click

from acs.cli.common import database_only, db_option, echo_json, echo_table, open_store, show_time
from acs.nbi import tokens


@click.group()
def token() -> None:
    """API tokens: what OSS systems send as ``Authorization: Bearer <token>``."""


@token.command()
@db_option
@database_only
@click.option(
    "--role",
    required=True,
    type=click.Choice(tokens.ROLES),
    help="read: GET only; operator: also tasks, tags, faults; admin: also policies, deleting, "
    "pre-registering and importing devices.",
)
@click.option("--name", required=True, help="Who or what uses it (unique), e.g. the OSS's name.")
@click.option("--json", "as_json", is_flag=True, help="JSON (with the token) instead of text.")
def create(db: str | None, role: str, name: str, as_json: bool) -> None:
    """Make a token. It is printed once: the ACS keeps only its hash."""
    with open_store(db).begin() as conn:
        try:
            secret, row = tokens.create(conn, name, role)
        except tokens.TokenError as e:
            raise click.ClickException(str(e)) from None
    if as_json:
        echo_json(row | {"token": secret})
        return
    click.echo(secret)
    click.echo(
        f"token {row['name']} ({row['role']}, id {row['id']}): keep it now, it cannot be shown again",
        err=True,
    )


@token.command("list")
@db_option
@database_only
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def list_(db: str | None, as_json: bool) -> None:
    """List the tokens (never the tokens themselves: only their names and roles)."""
    with open_store(db).connect() as conn:
        rows = tokens.list_tokens(conn)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("id", "name", "role", "created", "last used"),
        [
            (r["id"], r["name"], r["role"], show_time(r["created_at"]), show_time(r["last_used_at"]))
            for r in rows
        ],
    )


@token.command()
@db_option
@database_only
@click.argument("key", metavar="NAME|ID")
def revoke(db: str | None, key: str) -> None:
    """Revoke a token: requests that carry it get 401 from then on."""
    with open_store(db).begin() as conn:
        try:
            row = tokens.revoke(conn, key)
        except tokens.TokenError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"token {row['name']} (id {row['id']}) revoked")
