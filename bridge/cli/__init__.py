"""The `bridge` command line: the root group, its lazily loaded commands and
error handling.

Each top-level command's module is imported only when that command runs (or
when help lists it): `bridge worker` execs Celery, and `bridge orders show` needs
neither FastAPI nor Alembic, so neither pays for the whole stack's import (about
two seconds of CPU on a small VM; the test suite starts a hundred such processes).
"""

import importlib
import sys
from collections.abc import Sequence

import click

from bridge import __version__
from bridge.cli.context import CliContext
from bridge.errors import BridgeError, ConfigurationError

# Top-level command name -> "module:attribute" of its click command or group.
_COMMANDS = {
    "db": "bridge.cli.db:db",
    "run": "bridge.cli.embedded:run",
    "servers": "bridge.cli.servers:servers",
    "services": "bridge.cli.importer:services_group",
    "orders": "bridge.cli.orders:orders",
    "admin": "bridge.cli.admin:admin",
    "audit": "bridge.cli.admin:audit_group",
    "simulator": "bridge.cli.simulator_cmd:simulator",
    "secrets": "bridge.cli.secrets_cmd:secrets",
    "sweep": "bridge.cli.sweep:sweep",
    "usage": "bridge.cli.usage:usage",
    "api": "bridge.cli.processes:api",
    "worker": "bridge.cli.processes:worker",
    "beat": "bridge.cli.processes:beat",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self._lazy:
            module, _, attr = self._lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                msg = f"{self._lazy[cmd_name]} is not a click command"
                raise TypeError(msg)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    lazy=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """wispanel-bridge: provision billing orders onto WisPanel servers."""
    ctx.obj = CliContext()
    ctx.call_on_close(ctx.obj.close)


@cli.command()
def version() -> None:
    """Print the bridge's version."""
    click.echo(__version__)


def run(args: Sequence[str] | None = None) -> int:
    """Run the CLI on `args` (default: sys.argv) and return its exit code.

    A configuration error is one line and 2; an interrupt 130; a declined
    confirmation "aborted" and 1; a usage error click's own code; any other
    BridgeError its message and 1. Commands that end with `raise SystemExit(n)`
    propagate it (main() exits with it anyway).
    """
    try:
        code = cli.main(args=args, prog_name="bridge", standalone_mode=False)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        return _stopped(exc)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BridgeError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    # Without standalone mode click returns a command's value, or the code of a
    # `ctx.exit(n)` (an int): only the latter is an exit status.
    return code if isinstance(code, int) else 0


def _stopped(exc: BaseException) -> int:
    """130 for an interrupt (^C); "aborted" and 1 for a declined confirmation.

    click turns ^C into an Abort too, keeping the interrupt as its cause or
    context; a "no" at a prompt, or no answer (EOF), is a plain Abort.
    """
    if isinstance(exc, KeyboardInterrupt) or isinstance(
        exc.__cause__ or exc.__context__, KeyboardInterrupt
    ):
        return 130
    click.echo("aborted", err=True)
    return 1


def main() -> None:
    """Entry point of the installed `bridge` command and `python -m bridge`."""
    sys.exit(run())
