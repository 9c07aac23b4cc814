"""The `bridge` command line: the root group and error handling."""

import sys
from collections.abc import Sequence

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


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI on `args` (default: sys.argv) and return its exit code.

    A configuration error is one line and 2; an interrupt 130; a usage error
    click's own code; any other BridgeError its message and 1. Commands that
    end with `raise SystemExit(n)` propagate it (main() exits with it anyway).
    """
    try:
        code = cli.main(args=args, prog_name="bridge", standalone_mode=False)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BridgeError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    # Without standalone mode click returns a command's value, or the code of a
    # `ctx.exit(n)` (an int): only the latter is an exit status.
    return code if isinstance(code, int) else 0


def main() -> None:
    """Entry point of the installed `bridge` command and `python -m bridge`."""
    sys.exit(run())
