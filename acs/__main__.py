"""``python -m acs``: the ``acs`` command (how worker processes are started)."""

from acs.cli import main

main(prog_name="acs")
