"""The composition root: `Services` and `build_services(settings)`; nothing else wires.

Built once per process (API lifespan, worker process init, CLI command) and closed
at exit. Use cases take `Services`; components take only their collaborators.
"""

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bridge.crypto import SecretBox
from bridge.db.session import make_engine, make_session_factory
from bridge.errors import ConfigurationError
from bridge.fleet import PanelRegistry
from bridge.group_commit import GroupCommit
from bridge.inflight import InFlightSlots
from bridge.panel import PanelTimeouts
from bridge.queue import (
    CeleryEnqueuer,
    Enqueuer,
    broker_url,
    install_after_commit_hook,
)
from bridge.ratelimit import RedisRateLimiter
from bridge.settings import Settings

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    """Everything a use case may touch, built explicitly."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: "redis.Redis"
    box: SecretBox
    limiter: RedisRateLimiter
    panels: PanelRegistry
    http: httpx.Client  # outbound callbacks to billing
    enqueue: Enqueuer
    clock: Clock
    host_id: str
    # Intake's shared transactions for creates of new services (bridge.intake).
    intake_commits: GroupCommit[Any, Any]

    def close(self) -> None:
        close = getattr(self.enqueue, "close", None)
        if callable(close):
            close()
        self.panels.close()
        self.http.close()
        self.redis.close()
        self.engine.dispose()


def inflight_slot_ttl(settings: Settings) -> float:
    """How long an unreleased in-flight slot lives (a SIGKILLed holder's slot).

    Longer than the longest a slot is legitimately held: a login plus the call,
    each up to its whole connect + write + read (+ pool wait) timeout.
    """
    one_call = (
        settings.panel_connect_timeout
        + settings.panel_write_timeout
        + settings.panel_read_timeout
        + settings.panel_pool_timeout
    )
    return 2 * one_call + settings.server_in_flight_margin_seconds


def build_services(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    enqueue: Enqueuer | None = None,
) -> Services:
    """Construct the process's services from settings.

    Raises ConfigurationError when a required setting is missing.
    """
    if settings.redis_url is None:
        msg = "BRIDGE_REDIS_URL: not set (only `bridge run` starts an embedded Redis)"
        raise ConfigurationError(msg)
    if settings.secret_key is None:
        msg = "BRIDGE_SECRET_KEY: not set"
        raise ConfigurationError(msg)
    engine = make_engine(settings.effective_database_url)
    sessions = make_session_factory(engine)
    redis_client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=5, socket_connect_timeout=5
    )
    box = SecretBox(settings.secret_key)
    limiter = RedisRateLimiter(redis_client)
    host_id = socket.gethostname()
    timeouts = PanelTimeouts.from_settings(settings)
    enqueuer = enqueue or CeleryEnqueuer(broker_url(settings.redis_url))
    install_after_commit_hook(sessions, enqueuer)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis_client,
        box=box,
        limiter=limiter,
        panels=PanelRegistry(
            box=box,
            redis_client=redis_client,
            limiter=limiter,
            timeouts=timeouts,
            host_id=host_id,
            token_ttl=settings.panel_token_cache_seconds,
            inflight=InFlightSlots(
                redis_client,
                limit=settings.server_max_in_flight,
                slot_ttl_seconds=inflight_slot_ttl(settings),
            ),
            inflight_retry_after=settings.server_in_flight_retry_seconds,
        ),
        http=httpx.Client(
            timeout=settings.callback_timeout,
            follow_redirects=False,
            headers={"User-Agent": "wispanel-bridge-callbacks"},
        ),
        enqueue=enqueuer,
        clock=clock,
        host_id=host_id,
        intake_commits=GroupCommit(max_batch=settings.intake_max_batch),
    )
