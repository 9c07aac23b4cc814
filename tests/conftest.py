"""Shared fixtures: real PostgreSQL (or SQLite for the smoke run), real Redis."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bridge.db import migrate
from bridge.db.base import metadata
from bridge.db.session import make_engine
from bridge.settings import Settings
from tests.infra import (
    connect_redis,
    is_sqlite,
    make_test_settings,
    recreate_database,
    suite_database_url,
    suite_redis_url,
)


@pytest.fixture(scope="session")
def database_url() -> str:
    """A fresh test database at head, created once per run."""
    url = suite_database_url()
    recreate_database(url)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def committed_db(engine: Engine) -> Iterator[Engine]:
    """Real commits visible to other threads/processes; every table emptied after."""
    yield engine
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if is_sqlite(str(engine.url)):
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - table names
        else:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back at the end."""
    with engine.connect() as conn:
        trans = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        yield session
        session.close()
        trans.rollback()


@pytest.fixture
def redis_client() -> Iterator["redis.Redis"]:
    client = connect_redis(suite_redis_url())
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_test_settings(tmp_path / "var", database_url=database_url)
