"""`bridge secrets rotate`: re-encrypt stored secrets under the newest key."""

import click

from bridge.cli.context import CliContext
from bridge.rekey import rotate_secrets


@click.group()
def secrets() -> None:
    """Secrets at rest."""


@secrets.command()
@click.pass_obj
def rotate(obj: CliContext) -> None:
    """Re-encrypt credentials and order secrets with the first BRIDGE_SECRET_KEY."""
    report = rotate_secrets(obj.services)
    click.echo(
        f"re-encrypted {report.servers} server(s) and {report.steps} step secret(s)"
    )
