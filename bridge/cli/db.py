"""`bridge db …`: migrations."""

import click

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
    migrate.upgrade(obj.settings.effective_database_url, revision)
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
