"""Per-server in-flight cap: shared slots in real Redis, applied in PanelClient."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import pytest
import redis

from bridge.domain.model import AuthMode
from bridge.errors import RateLimitedError
from bridge.inflight import InFlightSlots
from bridge.panel import PanelClient, PanelConfig, PanelNotSentError
from bridge.panel.client import bucket_key
from bridge.ratelimit import RedisRateLimiter
from tests.panel.conftest import HOST_ID, TIMEOUTS, UNPACED, Sim, panel_redis_url

pytestmark = pytest.mark.integration

HOLDER = """
import sys, time, redis
from bridge.inflight import InFlightSlots
slots = InFlightSlots(redis.Redis.from_url(sys.argv[1]), limit=2, slot_ttl_seconds=1)
assert slots.acquire("p") and slots.acquire("p")
print("held", flush=True)
time.sleep(600)
"""


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_no_slot_beyond_the_limit_until_one_is_released(
    panel_redis: "redis.Redis",
) -> None:
    slots = InFlightSlots(panel_redis, limit=2, slot_ttl_seconds=60)
    first, second = slots.acquire("p1"), slots.acquire("p1")
    assert first
    assert second
    assert first != second
    assert slots.acquire("p1") is None
    assert slots.acquire("p2") is not None  # another server has its own slots
    slots.release("p1", first)
    assert slots.acquire("p1") is not None


def test_slots_are_shared_across_processes_and_expire_when_the_holder_is_killed(
    panel_redis: "redis.Redis",
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, panel_redis_url()],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        slots = InFlightSlots(panel_redis, limit=2, slot_ttl_seconds=60)
        assert slots.acquire("p") is None  # the other process holds both
        assert slots.live_counts(["p", "q"]) == {"p": 2, "q": 0}
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
        # Nobody releases them: they expire after the holder's 1 s slot TTL,
        # and stop counting as calls in flight even before anyone cleans up.
        wait_for(lambda: slots.live_counts(["p"]) == {"p": 0}, "expired slots")
        assert slots.in_flight("p") == 2  # still in the set, but not live
        wait_for(lambda: slots.acquire("p") is not None, "a killed holder's slot")
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def gated_client(
    sim: Sim,
    panel_redis: "redis.Redis",
    slots: InFlightSlots,
    *,
    base_url: str | None = None,
) -> PanelClient:
    creds = sim.server.credentials(None)
    return PanelClient(
        PanelConfig(
            name="root",
            base_url=base_url or sim.url(None),
            auth_mode=AuthMode.API_KEY,
            api_key=creds.api_key,
            rate_limit_per_min=UNPACED,
        ),
        redis=panel_redis,
        limiter=RedisRateLimiter(panel_redis),
        timeouts=TIMEOUTS,
        host_id=HOST_ID,
        token_ttl=3600,
        inflight=slots,
        inflight_retry_after=0.25,
    )


def test_a_call_without_a_slot_sends_nothing_and_takes_no_token(
    sim: Sim, panel_redis: "redis.Redis"
) -> None:
    slots = InFlightSlots(panel_redis, limit=1, slot_ttl_seconds=60)
    slow, other = gated_client(sim, panel_redis, slots), None
    try:
        other = gated_client(sim, panel_redis, slots)
        sim.post("faults", {"latency_ms": 1500})
        holder = threading.Thread(target=lambda: slow.request("auth_me"))
        holder.start()
        wait_for(lambda: slots.in_flight("root") == 1, "the slow call's slot")
        bucket = bucket_key(other.config)
        before = panel_redis.hget(bucket, "tat")
        with pytest.raises(RateLimitedError) as refused:
            other.request("auth_me")
        assert refused.value.retry_after == 0.25
        assert panel_redis.hget(bucket, "tat") == before  # no token spent
        holder.join()
        assert len(sim.requests()) == 1  # only the slow call reached the panel
        assert slots.in_flight("root") == 0  # released when it answered
        sim.post("faults/clear")
        assert other.request("auth_me").status == 200
    finally:
        slow.close()
        if other is not None:
            other.close()


def test_the_slot_is_released_when_the_call_fails(
    sim: Sim, panel_redis: "redis.Redis"
) -> None:
    slots = InFlightSlots(panel_redis, limit=1, slot_ttl_seconds=60)
    # Nothing listens on port 9 of loopback: a connect error, nothing sent.
    client = gated_client(
        sim, panel_redis, slots, base_url="http://127.0.0.1:9/" + uuid.uuid4().hex
    )
    try:
        with pytest.raises(PanelNotSentError):
            client.request("auth_me")
        assert slots.in_flight("root") == 0
    finally:
        client.close()
