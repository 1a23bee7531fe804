"""``acs policy``: tasks the ACS queues by itself when devices inform."""

from __future__ import annotations

import json
from typing import Any

import click

from acs.cli.common import database_only, db_option, echo_json, echo_table, open_store
from acs.jobs import policies


@click.group()
def policy() -> None:
    """Policies: tasks queued on events (0 BOOTSTRAP, 1 BOOT, 2 PERIODIC, NEW, *...)."""


@policy.command("list")
@db_option
@database_only
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
def list_(db: str | None, as_json: bool) -> None:
    """List the policies, in the order they run."""
    with open_store(db).connect() as conn:
        rows = policies.list_policies(conn)
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ("name", "enabled", "priority", "rule"),
        [(p["name"], "yes" if p["enabled"] else "no", p["priority"], policies.describe(p)) for p in rows],
    )


def _task(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[dict[str, Any]]:
    tasks = []
    for text in values:
        try:
            tasks.append(json.loads(text))
        except json.JSONDecodeError as e:
            raise click.BadParameter(f"{text!r} is not JSON ({e})", ctx, param) from None
    return tasks


@policy.command()
@db_option
@database_only
@click.argument("name")
@click.option(
    "--on",
    "events",
    multiple=True,
    required=True,
    metavar="EVENT",
    help='An EventCode ("1 BOOT", "2 PERIODIC", "M Reboot"...), NEW (first Inform) or * (every one).',
)
@click.option("--product-class", help="Only devices of this ProductClass.")
@click.option("--oui", help="Only devices of this OUI.")
@click.option("--software-version", help="Only devices reporting this SoftwareVersion.")
@click.option("--tag", help="Only devices with this tag.")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    callback=_task,
    metavar="JSON",
    help='A task to queue: \'{"kind": "GetParameterValues", "args": {"ParameterNames": '
    '["{root}DeviceInfo."]}}\'; {root} is Device. or InternetGatewayDevice.; kind Discover '
    "reads the whole tree.",
)
@click.option(
    "--periodic-inform",
    type=click.IntRange(1),
    metavar="SECONDS",
    help="Shorthand: set PeriodicInformEnable and PeriodicInformInterval to SECONDS.",
)
@click.option(
    "--issue-credentials",
    is_flag=True,
    help="Shorthand: give each device that informs with the shared credentials its own (a new password, "
    "set on it by SetParameterValues of ManagementServer.Username/Password; its own once applied).",
)
@click.option("--priority", default=100, show_default=True, help="Lower runs first.")
@click.option("--disabled", is_flag=True, help="Create it switched off.")
def add(
    db: str | None,
    name: str,
    events: tuple[str, ...],
    product_class: str | None,
    oui: str | None,
    software_version: str | None,
    tag: str | None,
    tasks: list[dict[str, Any]],
    periodic_inform: int | None,
    issue_credentials: bool,
    priority: int,
    disabled: bool,
) -> None:
    """Create a policy NAME that queues tasks when matching devices inform."""
    tasks = list(tasks)
    if issue_credentials:
        tasks.append({"kind": policies.ISSUE_CREDENTIALS})
    if periodic_inform is not None:
        tasks.append(
            {
                "kind": "SetParameterValues",
                "args": {
                    "ParameterList": [
                        ["{root}ManagementServer.PeriodicInformEnable", True, "boolean"],
                        ["{root}ManagementServer.PeriodicInformInterval", periodic_inform, "unsignedInt"],
                    ]
                },
            }
        )
    if not tasks:
        raise click.UsageError("give at least one --task (or --periodic-inform, --issue-credentials)")
    match = {"product_class": product_class, "oui": oui, "software_version": software_version, "tag": tag}
    with open_store(db).begin() as conn:
        try:
            policies.add(
                conn, name, events=events, tasks_=tasks, match=match, priority=priority, enabled=not disabled
            )
        except policies.PolicyError as e:
            raise click.ClickException(str(e)) from None
    shown = {"events": list(events), "tasks": tasks} | {f"match_{k}": v for k, v in match.items()}
    click.echo(f"policy {name}: {policies.describe(shown)}")


def _switch(db: str | None, name: str, enabled: bool) -> None:
    with open_store(db).begin() as conn:
        try:
            policies.set_enabled(conn, name, enabled)
        except policies.PolicyError as e:
            raise click.ClickException(f"{e} (see `acs policy list`)") from None
    click.echo(f"policy {name} {'enabled' if enabled else 'disabled'}")


@policy.command()
@db_option
@database_only
@click.argument("name")
def enable(db: str | None, name: str) -> None:
    """Switch a policy on."""
    _switch(db, name, True)


@policy.command()
@db_option
@database_only
@click.argument("name")
def disable(db: str | None, name: str) -> None:
    """Switch a policy off (e.g. the built-in discovery)."""
    _switch(db, name, False)


@policy.command()
@db_option
@database_only
@click.argument("name")
def remove(db: str | None, name: str) -> None:
    """Delete a policy. Tasks it queued stay queued."""
    with open_store(db).begin() as conn:
        try:
            policies.remove(conn, name)
        except policies.PolicyError as e:
            raise click.ClickException(f"{e} (see `acs policy list`)") from None
    click.echo(f"policy {name} removed")


@policy.command("discovery-batch")
@db_option
@database_only
@click.argument("name")
@click.argument("batch", type=click.IntRange(1), required=False)
@click.option("--product-class", help="Only for this model (ProductClass, e.g. CP-8841-3PCC).")
@click.option("--oui", help="With --product-class: only that manufacturer's.")
@click.option("--forget", is_flag=True, help="Drop the model's batch: it takes the policy's again.")
def discovery_batch(
    db: str | None, name: str, batch: int | None, product_class: str | None, oui: str | None, forget: bool
) -> None:
    """Names per GetParameterValues of policy NAME's Discover: for every device, or for a model.

    E.g. `acs policy discovery-batch discovery 16 --product-class CP-8841-3PCC`. A device whose
    session died on a batch gets half as many from then on, whatever is set here.
    """
    if forget == (batch is not None):
        raise click.UsageError("give a BATCH, or --forget with --product-class")
    if forget and product_class is None:
        raise click.UsageError("--forget drops a model's batch: give --product-class")
    with open_store(db).begin() as conn:
        try:
            changed = policies.set_discovery_batch(conn, name, batch, product_class=product_class, oui=oui)
        except policies.PolicyError as e:
            raise click.ClickException(f"{e} (see `acs policy list`)") from None
    click.echo(f"policy {name}: {policies.describe(changed)}")
