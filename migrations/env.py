"""Alembic environment: target metadata from bridge.db, PostgreSQL lock/timeouts.

The URL comes from `config.attributes["url"]` (set by `bridge.db.migrate`) or, for a
bare `alembic` command, from BRIDGE_DATABASE_URL via the settings.
"""

from alembic import context
from sqlalchemy import Engine, text

from bridge.db import models  # noqa: F401 - registers the tables on the metadata
from bridge.db.base import metadata
from bridge.db.session import make_engine
from bridge.settings import Settings

config = context.config


def _url() -> str:
    url = config.attributes.get("url")
    if isinstance(url, str):
        return url
    return Settings().effective_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        compare_server_default=True,
        render_as_batch=_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    try:
        _run_on(engine)
    finally:
        # Also when a revision fails: no pooled connection outlives the run.
        engine.dispose()


def _run_on(engine: Engine) -> None:
    with engine.connect() as connection:
        is_pg = connection.dialect.name == "postgresql"
        if is_pg:
            # Two deploys migrating at once serialise here instead of racing.
            connection.execute(text("SELECT pg_advisory_lock(727271)"))
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text("SET statement_timeout = '10min'"))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            compare_server_default=True,
            render_as_batch=not is_pg,
        )
        with context.begin_transaction():
            context.run_migrations()
        if is_pg:
            connection.execute(text("SELECT pg_advisory_unlock(727271)"))
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
