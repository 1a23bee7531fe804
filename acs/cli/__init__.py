"""The ``acs`` command: click groups, one module per noun, each imported only when it runs.

``acs device list`` needs neither Twisted (``serve``) nor the profile tools: importing every
command up front cost a second before any of them ran. ``COMMANDS`` names the module of each
and the line ``acs --help`` shows for it, so the help imports none of them
(``tests/test_cli_startup.py`` checks both: the lines against the commands, the imports in a
subprocess).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NamedTuple

import click

from acs import __version__


class Lazy(NamedTuple):
    """Where a command lives (``module:attribute``), and its summary: its help's first sentence."""

    where: str
    summary: str


COMMANDS: dict[str, Lazy] = {
    "cpe-credentials": Lazy(
        "acs.cli.cpe_credentials:cpe_credentials",
        "The shared CPE credentials: the user name and password every CPE may authenticate with.",
    ),
    "db": Lazy("acs.cli.db:db", "The database: create it, or bring its schema up to this version of acs."),
    "device": Lazy("acs.cli.device:device", "Devices (phones and other CPEs) the ACS knows."),
    "policy": Lazy(
        "acs.cli.policy:policy",
        "Policies: tasks queued on events (0 BOOTSTRAP, 1 BOOT, 2 PERIODIC, NEW, *...).",
    ),
    "profile": Lazy(
        "acs.cli.profile:profile",
        "Cisco MPP flat profiles (XML): create, assign to devices, models or tags, diff, export.",
    ),
    "serve": Lazy(
        "acs.cli.serve:serve",
        "Serve CWMP sessions: phones inform, the ACS answers and sends their queued tasks.",
    ),
    "task": Lazy("acs.cli.task:task", "Tasks: RPCs queued for devices, sent at their next session."),
    "token": Lazy(
        "acs.cli.token:token",
        "API tokens: what OSS systems send as ``Authorization: Bearer <token>``.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when resolved (run, or asked for their own help).

    click's documented pattern, plus a help page written from the summaries: click's own
    ``format_commands`` resolves every subcommand to read its help.
    """

    def __init__(self, *args: Any, lazy: dict[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].where.partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """A secret the command needed and could not open (no key, the wrong key) ends it in words,
        wherever in the store that happened."""
        try:
            return super().invoke(ctx)
        except Exception as e:
            store = sys.modules.get("acs.store.secrets")  # not imported: not what was raised
            if store is not None and isinstance(e, store.SecretsError):
                raise click.ClickException(str(e)) from None
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))  # as click's format_commands
        rows = []
        for name in names:
            # a stub with the summary as its help: click shortens it as it would the command's own
            command = self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="acs")
def main() -> None:
    """acs: TR-069 (CWMP) Auto-Configuration Server."""
    # Before any command makes a file (the SQLite database and its WAL, the secrets key, an export):
    # none of them is for other local users.
    os.umask(0o077)
