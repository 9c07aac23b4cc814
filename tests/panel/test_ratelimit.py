"""RedisRateLimiter on real Redis, alone and behind PanelClient with the simulator."""

import multiprocessing
import threading
import time
from bisect import bisect_right
from email.utils import formatdate

import pytest
import redis

from bridge.domain.model import AuthMode
from bridge.errors import RateLimitedError, RateLimiterUnavailableError
from bridge.panel import PanelClient, PanelConfig, PanelThrottledError
from bridge.ratelimit import RedisRateLimiter
from tests.panel.conftest import HOST_ID, TIMEOUTS, MakeClient, Sim, panel_redis_url

pytestmark = pytest.mark.integration

CLOSED_REDIS = "redis://127.0.0.1:1/0"


def test_no_window_ever_holds_more_than_the_limit(panel_redis: "redis.Redis") -> None:
    # A 1 s window instead of 60 s (the sizing argument does not depend on it):
    # four threads hammer the bucket for 2.5 windows, grant times are Redis TIME.
    window, limit = 1.0, 20
    limiter = RedisRateLimiter(panel_redis, window=window, safety=0.02)
    grants: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 2.5 * window

    def hammer() -> None:
        while time.monotonic() < deadline:
            decision = limiter.acquire("bridge:rl:{t}:prop", limit)
            if decision.allowed:
                with lock:
                    grants.append(decision.at)
            else:
                time.sleep(min(decision.retry_after, 0.002))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grants.sort()
    busiest = max(
        bisect_right(grants, start + window) - i for i, start in enumerate(grants)
    )
    assert busiest <= limit
    assert len(grants) >= 2 * limit  # it kept granting, it did not just refuse


def test_first_request_is_granted_and_the_next_waits_one_interval(
    limiter: RedisRateLimiter,
) -> None:
    first = limiter.acquire("bridge:rl:{t}:a", 60)
    second = limiter.acquire("bridge:rl:{t}:a", 60)
    assert first.allowed
    assert not second.allowed
    assert 0.5 < second.retry_after < 1.1


def test_redis_down_fails_closed() -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(CLOSED_REDIS))
    with pytest.raises(RateLimiterUnavailableError):
        limiter.acquire("bridge:rl:{t}:a", 60)
    with pytest.raises(RateLimiterUnavailableError):
        limiter.observe("bridge:rl:{t}:a", 429, {})


@pytest.mark.parametrize("mode", [AuthMode.API_KEY, AuthMode.LOGIN])
def test_client_sends_nothing_when_redis_is_down(
    make_client: MakeClient, sim: Sim, mode: AuthMode
) -> None:
    dead = redis.Redis.from_url(CLOSED_REDIS)
    client = make_client(mode=mode, limiter_=RedisRateLimiter(dead))
    with pytest.raises(RateLimiterUnavailableError):
        client.get_user("admin")
    assert sim.requests() == []


def test_bucket_adopts_a_lower_panel_limit(
    make_client: MakeClient, sim: Sim, limiter: RedisRateLimiter
) -> None:
    sim.configure(limit=5)
    client = make_client()  # configured for far more than the panel allows
    client.get_user("admin")
    decision = limiter.acquire(client.bucket_key, client.config.rate_limit_per_min)
    assert not decision.allowed
    assert decision.retry_after > 5  # ~12 s: the pace of 5/min, not 1,000,000/min


def test_bucket_adopts_remaining_when_another_client_spent_the_budget(
    make_client: MakeClient, sim: Sim, limiter: RedisRateLimiter
) -> None:
    sim.configure(limit=10)
    client = make_client(rate_limit_per_min=10)
    other = sim.control  # someone else using the same key, outside our bucket
    for _ in range(9):
        other.get(
            sim.url() + "/api/v1/auth/me",
            headers={"Authorization": f"Bearer {client.config.api_key}"},
        )
    client.get_user("admin")  # Remaining: 0 until the window resets
    decision = limiter.acquire(client.bucket_key, 10)
    assert not decision.allowed
    assert decision.retry_after > 30  # the window's reset, not our 6 s pace


def test_429_blocks_the_credential_until_retry_after(
    make_client: MakeClient, sim: Sim, limiter: RedisRateLimiter
) -> None:
    client = make_client()
    sim.post("faults", {"storm_seconds": 30})
    with pytest.raises(PanelThrottledError) as caught:
        client.get_user("admin")
    assert 25 <= caught.value.retry_after <= 31
    blocked = limiter.blocked_until(client.bucket_key)
    assert blocked is not None
    assert 25 <= blocked - limiter.redis_time() <= 31
    with pytest.raises(RateLimitedError):
        client.get_user("admin")
    assert len(sim.requests()) == 1


def _throttle_in_another_process(base_url: str, api_key: str, redis_url: str) -> str:
    """Process A: one call that the panel answers 429; returns the error class."""
    conn = redis.Redis.from_url(redis_url)
    config = PanelConfig(
        name="root",
        base_url=base_url,
        auth_mode=AuthMode.API_KEY,
        api_key=api_key,
        rate_limit_per_min=1_000_000,
    )
    with PanelClient(
        config,
        redis=conn,
        limiter=RedisRateLimiter(conn),
        timeouts=TIMEOUTS,
        host_id=HOST_ID,
        token_ttl=3600,
    ) as client:
        try:
            client.get_user("admin")
        except PanelThrottledError as exc:
            return type(exc).__name__
        finally:
            conn.close()
    return "no error"


def test_a_429_in_one_process_blocks_every_process(
    make_client: MakeClient, sim: Sim, limiter: RedisRateLimiter
) -> None:
    client = make_client()
    sim.post("fail-next", {"count": 1, "status": 429})
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        outcome = pool.apply(
            _throttle_in_another_process,
            (sim.url(), client.config.api_key, panel_redis_url()),
        )
    assert outcome == "PanelThrottledError"
    decision = limiter.acquire(client.bucket_key, client.config.rate_limit_per_min)
    assert not decision.allowed
    assert decision.retry_after > 50  # no Retry-After, no Reset: 60 s
    with pytest.raises(RateLimitedError):
        client.get_user("admin")
    assert [r["status"] for r in sim.requests()] == [429]


def test_bucket_keys_are_per_credential_with_a_server_hash_tag(
    make_client: MakeClient,
) -> None:
    by_key = make_client()
    by_login = make_client(mode=AuthMode.LOGIN)
    assert by_key.bucket_key.startswith("bridge:rl:{root}:")
    assert by_key.bucket_key != by_login.bucket_key
    assert str(by_key.config.api_key) not in by_key.bucket_key


def test_block_is_shared_and_expires_on_the_redis_clock(
    limiter: RedisRateLimiter,
) -> None:
    key = "bridge:rl:{t}:block"
    assert limiter.blocked_until(key) is None
    limiter.block(key, 30)
    until = limiter.blocked_until(key)
    assert until is not None
    assert 29 <= until - limiter.redis_time() <= 30
    limiter.block(key, 5)  # a shorter block never shortens a longer one
    assert limiter.blocked_until(key) == until
    assert not limiter.acquire(key, 60).allowed


def test_retry_after_as_http_date_and_reset_as_delta_are_read(
    limiter: RedisRateLimiter,
) -> None:
    key = "bridge:rl:{t}:hdr"
    limiter.observe(
        key, 429, {"Retry-After": formatdate(time.time() + 40, usegmt=True)}
    )
    until = limiter.blocked_until(key)
    assert until is not None
    assert 35 <= until - limiter.redis_time() <= 41
    other = "bridge:rl:{t}:delta"
    limiter.observe(other, 429, {"X-RateLimit-Reset": "20"})
    until = limiter.blocked_until(other)
    assert until is not None
    assert 19 <= until - limiter.redis_time() <= 20


def test_reset_far_in_the_future_is_capped_at_one_window(
    limiter: RedisRateLimiter,
) -> None:
    key = "bridge:rl:{t}:skew"
    assert limiter.acquire(key, 60).allowed
    hours_ahead = str(int(time.time()) + 7200)
    limiter.observe(
        key, 200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": hours_ahead}
    )
    decision = limiter.acquire(key, 60)
    assert not decision.allowed
    assert decision.retry_after <= 61


@pytest.mark.parametrize(
    "kwargs", [{"safety": -1}, {"tolerance": -1}, {"window": 0}], ids=["s", "t", "w"]
)
def test_nonsense_parameters_are_refused(
    panel_redis: "redis.Redis", kwargs: dict[str, float]
) -> None:
    with pytest.raises(ValueError, match="must be"):
        RedisRateLimiter(panel_redis, **kwargs)


def test_limit_below_one_is_refused(limiter: RedisRateLimiter) -> None:
    with pytest.raises(ValueError, match="limit_per_min"):
        limiter.acquire("bridge:rl:{t}:zero", 0)


def test_redis_clock_unavailable_fails_closed() -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(CLOSED_REDIS))
    with pytest.raises(RateLimiterUnavailableError):
        limiter.redis_time()
    with pytest.raises(RateLimiterUnavailableError):
        limiter.blocked_until("bridge:rl:{t}:a")
