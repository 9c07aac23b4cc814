"""The `bridge` command line: the root group and error handling."""

import sys

import click

from bridge import __version__
from bridge.cli import (
    admin,
    db,
    embedded,
    importer,
    orders,
    processes,
    secrets_cmd,
    servers,
    simulator_cmd,
    sweep,
    usage,
)
from bridge.cli.context import CliContext
from bridge.errors import BridgeError, ConfigurationError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """wispanel-bridge: provision billing orders onto WisPanel servers."""
    ctx.obj = CliContext()
    ctx.call_on_close(ctx.obj.close)


@cli.command()
def version() -> None:
    """Print the bridge's version."""
    click.echo(__version__)


cli.add_command(db.db)
cli.add_command(embedded.run)
cli.add_command(servers.servers)
cli.add_command(importer.services_group)
cli.add_command(orders.orders)
cli.add_command(admin.admin)
cli.add_command(admin.audit_group)
cli.add_command(simulator_cmd.simulator)
cli.add_command(secrets_cmd.secrets)
cli.add_command(sweep.sweep)
cli.add_command(usage.usage)
for command in processes.COMMANDS:
    cli.add_command(command)


def main() -> None:
    """Entry point: run the CLI; a configuration error is one line and exit code 2."""
    try:
        cli.main(standalone_mode=False)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BridgeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
