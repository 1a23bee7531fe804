"""The ``acs`` command: click groups, one module per noun."""

from __future__ import annotations

import click

from acs import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="acs")
def main() -> None:
    """acs: TR-069 (CWMP) Auto-Configuration Server."""


# The commands register after the group exists.
from acs.cli.cpe_credentials import cpe_credentials  # noqa: E402
from acs.cli.db import db  # noqa: E402
from acs.cli.device import device  # noqa: E402
from acs.cli.policy import policy  # noqa: E402
from acs.cli.profile import profile  # noqa: E402
from acs.cli.serve import serve  # noqa: E402
from acs.cli.task import task  # noqa: E402
from acs.cli.token import token  # noqa: E402

for command in (serve, device, task, policy, profile, token, cpe_credentials, db):
    main.add_command(command)
