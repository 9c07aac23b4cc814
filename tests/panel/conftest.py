"""Panel client fixtures: real Redis, the simulator over HTTP, client builder.

Redis is the suite's index (one per xdist worker, tests.infra.suite_redis_url),
flushed before and after each test. An unreachable Redis fails the test run; it
never skips.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from bridge.domain.model import AuthMode
from bridge.panel import PanelClient, PanelConfig, PanelTimeouts
from bridge.ratelimit import RedisRateLimiter
from bridge.simulator import SimulatorConfig, SimulatorServer
from tests.infra import connect_redis, suite_redis_url

# High enough that sequential test calls never wait on our own pacing; tests
# about pacing set their own limits.
UNPACED = 1_000_000
TIMEOUTS = PanelTimeouts(connect=2.0, read=5.0, write=5.0, pool=2.0)
HOST_ID = "test-host"


def panel_redis_url() -> str:
    """The suite's Redis index: tests of one worker run one at a time, each
    flushing it before and after, so a second index would isolate nothing more."""
    return suite_redis_url()


@dataclass
class Sim:
    """The simulator plus a thin client for its /_sim control API."""

    server: SimulatorServer
    control: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=5))

    def url(self, panel: str | None = None) -> str:
        return self.server.panel_url(panel)

    def post(
        self, path: str, body: dict[str, Any] | None = None, panel: str | None = None
    ) -> Any:
        response = self.control.post(self.url(panel) + "/_sim/" + path, json=body or {})
        response.raise_for_status()
        return response.json()

    def get(self, path: str, panel: str | None = None) -> Any:
        response = self.control.get(self.url(panel) + "/_sim/" + path)
        response.raise_for_status()
        return response.json()

    def requests(self, panel: str | None = None) -> list[dict[str, Any]]:
        return list(self.get("requests", panel))

    def configure(self, panel: str | None = None, **changes: Any) -> None:
        self.post("config", changes, panel)


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(limit=UNPACED, ssl_delay_s=0)
    with SimulatorServer(config, panels=2, host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def sim(simulator_server: SimulatorServer) -> Iterator[Sim]:
    handle = Sim(simulator_server)
    for name in [None, *simulator_server.panel_names]:
        handle.post("reset", panel=name)
    yield handle
    handle.control.close()


@pytest.fixture
def panel_redis() -> Iterator["redis.Redis"]:
    client = connect_redis(panel_redis_url())
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def limiter(panel_redis: "redis.Redis") -> RedisRateLimiter:
    return RedisRateLimiter(panel_redis)


MakeClient = Callable[..., PanelClient]


@pytest.fixture
def make_client(
    sim: Sim, panel_redis: "redis.Redis", limiter: RedisRateLimiter
) -> Iterator[MakeClient]:
    """Build a PanelClient for a simulated panel; every one is closed afterwards."""
    built: list[PanelClient] = []

    def build(
        panel: str | None = None,
        *,
        mode: AuthMode = AuthMode.API_KEY,
        limiter_: Any = None,
        host_id: str = HOST_ID,
        **overrides: Any,
    ) -> PanelClient:
        creds = sim.server.credentials(panel)
        values: dict[str, Any] = {
            "name": panel or "root",
            "base_url": sim.url(panel),
            "auth_mode": mode,
            "rate_limit_per_min": UNPACED,
        }
        if mode is AuthMode.API_KEY:
            values["api_key"] = creds.api_key
        else:
            values.update(username=creds.username, password=creds.password)
        values.update(overrides)
        client = PanelClient(
            PanelConfig(**values),
            redis=panel_redis,
            limiter=limiter_ or limiter,
            timeouts=TIMEOUTS,
            host_id=host_id,
            token_ttl=3600,
        )
        built.append(client)
        return client

    yield build
    for client in built:
        client.close()
