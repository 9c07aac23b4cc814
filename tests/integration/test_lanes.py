"""Priority and share lanes on the shared GCRA bucket, on real Redis (Redis TIME).

Small windows (1 s) stand in for the panel's minute; the sizing argument does not
depend on the window's length.
"""

import threading
import time
from bisect import bisect_right

import pytest
import redis

from bridge.ratelimit import PriorityLane, RedisRateLimiter, ShareLane, share_key

pytestmark = pytest.mark.integration

KEY = "bridge:rl:{lanes}:k"


@pytest.fixture
def limiter(redis_client: "redis.Redis") -> RedisRateLimiter:
    return RedisRateLimiter(redis_client, window=1.0, safety=0.02)


def busiest(grants: list[float], window: float) -> int:
    grants = sorted(grants)
    return max(
        (bisect_right(grants, start + window) - i for i, start in enumerate(grants)),
        default=0,
    )


def test_priority_claims_the_next_slot_and_queued_work_stands_aside(
    limiter: RedisRateLimiter,
) -> None:
    lane = PriorityLane(limiter, max_wait=5, grace=0.5)
    assert limiter.acquire(KEY, 10).allowed  # ordinary work just took a slot

    claim = lane.acquire(KEY, 10)
    assert not claim.allowed
    time.sleep(claim.retry_after)
    ordinary = limiter.acquire(KEY, 10)  # the slot has opened: it is claimed
    granted = lane.acquire(KEY, 10)

    assert not ordinary.allowed
    assert granted.allowed


def test_priority_grant_lifts_the_claim_for_everyone_else(
    limiter: RedisRateLimiter, redis_client: "redis.Redis"
) -> None:
    lane = PriorityLane(limiter, max_wait=5, grace=0.5)
    assert limiter.acquire(KEY, 10).allowed
    time.sleep(lane.acquire(KEY, 10).retry_after)
    assert lane.acquire(KEY, 10).allowed

    assert redis_client.hget(KEY, "claim") is None
    assert limiter.blocked_until(KEY) is None


def test_priority_claims_nothing_beyond_its_max_wait(
    limiter: RedisRateLimiter, redis_client: "redis.Redis"
) -> None:
    lane = PriorityLane(limiter, max_wait=0, grace=0.5)
    assert limiter.acquire(KEY, 10).allowed

    refused = lane.acquire(KEY, 10)

    assert not refused.allowed
    assert refused.retry_after > 0
    assert redis_client.hget(KEY, "claim") is None
    assert limiter.blocked_until(KEY) is None


def test_priority_honours_a_panel_block(limiter: RedisRateLimiter) -> None:
    lane = PriorityLane(limiter, max_wait=5)
    limiter.block(KEY, 30)

    decision = lane.acquire(KEY, 10)

    assert not decision.allowed
    assert decision.retry_after > 25


def test_priority_never_lets_a_window_exceed_the_limit(
    limiter: RedisRateLimiter,
) -> None:
    window, limit = 1.0, 20
    lane = PriorityLane(limiter, max_wait=1, grace=0.05)
    grants: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 2.5 * window

    def hammer(acquire: object) -> None:
        while time.monotonic() < deadline:
            decision = acquire(KEY, limit)  # type: ignore[operator]
            if decision.allowed:
                with lock:
                    grants.append(decision.at)
            else:
                time.sleep(min(decision.retry_after, 0.003))

    threads = [
        threading.Thread(target=hammer, args=(limiter.acquire,)),
        threading.Thread(target=hammer, args=(limiter.acquire,)),
        threading.Thread(target=hammer, args=(lane.acquire,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert busiest(grants, window) <= limit
    assert len(grants) >= 2 * limit


def test_share_lane_caps_background_work_and_leaves_the_rest(
    limiter: RedisRateLimiter,
) -> None:
    window, limit = 1.0, 20
    lane = ShareLane(limiter, share=0.2, lane="usage")
    background: list[float] = []
    everything: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 2.5 * window

    def hammer(acquire: object, mine: list[float]) -> None:
        while time.monotonic() < deadline:
            decision = acquire(KEY, limit)  # type: ignore[operator]
            if decision.allowed:
                with lock:
                    mine.append(decision.at)
                    everything.append(decision.at)
            else:
                time.sleep(min(decision.retry_after, 0.003))

    provisioning: list[float] = []
    threads = [
        threading.Thread(target=hammer, args=(lane.acquire, background)),
        threading.Thread(target=hammer, args=(lane.acquire, background)),
        threading.Thread(target=hammer, args=(limiter.acquire, provisioning)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert busiest(background, window) <= lane.lane_limit(limit)
    assert busiest(everything, window) <= limit
    # Provisioning got the rest: well over half the budget in its busiest window.
    assert busiest(provisioning, window) >= limit // 2


def test_share_lane_sub_bucket_lives_beside_the_main_key(
    limiter: RedisRateLimiter, redis_client: "redis.Redis"
) -> None:
    lane = ShareLane(limiter, share=0.5, lane="usage")

    assert lane.acquire(KEY, 60).allowed

    assert redis_client.exists(share_key(KEY, "usage"))
    assert share_key(KEY, "usage").startswith("bridge:rl:{lanes}:")


def test_share_lane_shrinks_with_a_lower_panel_limit(
    limiter: RedisRateLimiter, redis_client: "redis.Redis"
) -> None:
    lane = ShareLane(limiter, share=0.2, lane="usage")

    lane.observe(KEY, 200, {"X-RateLimit-Limit": "30"})

    assert redis_client.hget(KEY, "limit") == b"30"
    assert redis_client.hget(share_key(KEY, "usage"), "limit") == b"6"
