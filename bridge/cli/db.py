"""`bridge db …`: migrations."""

import click
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from bridge.cli.context import CliContext
from bridge.db import migrate
from bridge.db.session import make_engine


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command()
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def upgrade(obj: CliContext, revision: str) -> None:
    """Apply migrations up to REVISION."""
    try:
        migrate.upgrade(obj.settings.effective_database_url, revision)
    except (CommandError, RevisionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"cannot upgrade to revision {revision!r}: {reason}"
        raise click.ClickException(msg) from None
    except AssertionError:
        # Alembic asserts rather than raises when a relative target (head+5)
        # lies past a head; our own code has no asserts (ruff S101), so this one
        # is alembic's.
        msg = f"cannot upgrade to revision {revision!r}: past the newest migration"
        raise click.ClickException(msg) from None
    click.echo(f"database at {revision}")


@db.command()
@click.pass_obj
def current(obj: CliContext) -> None:
    """Print the database's current migration revision."""
    engine = make_engine(obj.settings.effective_database_url)
    try:
        click.echo(migrate.current_revision(engine) or "(empty)")
    finally:
        engine.dispose()
