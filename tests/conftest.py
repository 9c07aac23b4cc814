"""Shared fixtures: real PostgreSQL (or SQLite for the smoke run), real Redis."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bridge.api.app import create_app
from bridge.container import Services, build_services
from bridge.db import migrate
from bridge.db.base import metadata
from bridge.db.models import Server
from bridge.db.session import make_engine
from bridge.domain.model import AuthMode
from bridge.fleet import ServerSpec, save_server
from bridge.settings import Settings
from bridge.simulator import SimulatorConfig, SimulatorServer
from tests.http_server import serve_in_thread
from tests.infra import (
    connect_redis,
    is_sqlite,
    make_test_settings,
    recreate_database,
    suite_database_url,
    suite_redis_url,
)
from tests.panel_api import PanelApi
from tests.simctl import FakeClock, SimControl


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


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    """One simulator process-wide (panels p1..p3 too); reset per test by `sim`."""
    with SimulatorServer(
        SimulatorConfig(ssl_delay_s=0.5, limit=6000), panels=3
    ) as server:
        yield server


@pytest.fixture
def sim(simulator: SimulatorServer) -> Iterator[SimControl]:
    control = SimControl(simulator.base_url)
    control.reset()
    yield control
    control.reset()
    control.close()


@pytest.fixture
def panel_api(simulator: SimulatorServer, sim: SimControl) -> Iterator[PanelApi]:
    """The default panel's own API as its admin, behind the bridge's back."""
    client = PanelApi(simulator.base_url, simulator.credentials().api_key)
    yield client
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def services(
    settings: Settings,
    committed_db: Engine,
    redis_client: "redis.Redis",
    clock: FakeClock,
) -> Iterator[Services]:
    built = build_services(settings, clock=clock)
    yield built
    built.close()


@pytest.fixture
def server(services: Services, simulator: SimulatorServer, sim: SimControl) -> Server:
    """The default simulator panel registered as server `sim` (api_key mode)."""
    creds = simulator.credentials()
    with services.sessions.begin() as session:
        return save_server(
            session,
            services.box,
            ServerSpec(
                name="sim",
                base_url=simulator.base_url,
                auth_mode=AuthMode.API_KEY,
                api_key=creds.api_key,
                rate_limit_per_min=6000,
            ),
        )


@pytest.fixture
def api(services: Services) -> Iterator[httpx.Client]:
    """The bridge's API served on a real socket, and a client for it."""
    with (
        serve_in_thread(create_app(services)) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as client,
    ):
        yield client
