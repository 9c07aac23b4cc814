"""The per-server cap on concurrent in-flight panel calls, shared through Redis.

Why: the rate limiter bounds calls per minute, not calls at once. A panel that answers
each call in 3 s would otherwise hold every worker thread of the fleet; with a cap of
`BRIDGE_SERVER_MAX_IN_FLIGHT` it holds at most that many, and other panels' orders run.

How: one sorted set per server, members = slot ids ("<start ms>:<uuid4>"), scores =
the slot's expiry in ms, both on the Redis clock. The acquire script drops expired
members, then adds ours if fewer than the cap remain; release removes ours. A holder
that is SIGKILLed never releases, so every slot expires after the call's total
timeout plus a margin: the cap heals by itself, and never waits on a holder that
cannot answer. Shared by every process and host that uses the same Redis; keys
hash-tag the server for a cluster. `live_counts` tells how many calls have been in
flight for how long (bridge.contention uses it).

Fail closed like the rate limiter: a Redis error raises RateLimiterUnavailableError
and nothing is sent.
"""

import uuid
from collections.abc import Sequence

import redis
import structlog

from bridge.errors import RateLimiterUnavailableError

log = structlog.get_logger(__name__)

KEY_PREFIX = "bridge:inflight:"
# The set itself outlives its newest slot by this much, then Redis drops it.
_KEY_GRACE_MS = 60_000

# The member is "<start ms>:<id>": the start on the Redis clock, so anyone can tell
# how long a call has been in flight whatever TTL its holder used.
_ACQUIRE = """
local key = KEYS[1]
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= cap then return false end
local member = now .. ':' .. ARGV[3]
redis.call('ZADD', key, now + ttl, member)
redis.call('PEXPIRE', key, ttl + tonumber(ARGV[4]))
return member
"""

# Per key, live slots (not expired on the Redis clock) whose call started at
# least ARGV[1] ms ago, in one round trip (a key holds at most the cap's members).
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local started_by = now - tonumber(ARGV[1])
local counts = {}
for i, key in ipairs(KEYS) do
  local n = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf')) do
    local start = tonumber(string.match(member, '^(%d+):'))
    if start ~= nil and start <= started_by then n = n + 1 end
  end
  counts[i] = n
end
return counts
"""


def slot_key(server: str) -> str:
    """The Redis key of a server's slots ({...} keeps it on one cluster shard)."""
    return f"{KEY_PREFIX}{{{server}}}"


class InFlightSlots:
    """Acquire/release slots of a per-server cap on concurrent calls."""

    def __init__(
        self, client: "redis.Redis", *, limit: int, slot_ttl_seconds: float
    ) -> None:
        if limit < 1:
            msg = "limit must be >= 1"
            raise ValueError(msg)
        self._redis = client
        self.limit = limit
        self._ttl_ms = max(1, round(slot_ttl_seconds * 1000))
        self._acquire = client.register_script(_ACQUIRE)
        self._count = client.register_script(_COUNT)

    def acquire(self, server: str) -> str | None:
        """Take a slot: its id, or None when `limit` calls are already in flight.

        Raises RateLimiterUnavailableError when Redis cannot be reached.
        """
        try:
            taken = self._acquire(
                keys=[slot_key(server)],
                args=[self.limit, self._ttl_ms, uuid.uuid4().hex, _KEY_GRACE_MS],
            )
        except redis.RedisError as exc:
            msg = f"in-flight slots unavailable: {type(exc).__name__}"
            raise RateLimiterUnavailableError(msg) from exc
        if not taken:
            return None
        return taken.decode() if isinstance(taken, bytes) else str(taken)

    def release(self, server: str, slot: str) -> None:
        """Give a slot back; if Redis is away it simply expires later."""
        try:
            self._redis.zrem(slot_key(server), slot)
        except redis.RedisError as exc:
            log.warning("inflight_release_failed", server=server, error=str(exc))

    def in_flight(self, server: str) -> int:
        """Slots currently held (expired ones included until the next acquire)."""
        return int(self._redis.zcard(slot_key(server)))

    def live_counts(
        self, servers: Sequence[str], *, older_than: float = 0.0
    ) -> dict[str, int]:
        """Per server: calls in flight now that started `older_than` s ago or more.

        Expired slots (a killed holder's) do not count. One round trip.
        Raises RateLimiterUnavailableError when Redis cannot be reached.
        """
        if not servers:
            return {}
        min_age_ms = max(0, round(older_than * 1000))
        try:
            counts = self._count(keys=[slot_key(s) for s in servers], args=[min_age_ms])
        except redis.RedisError as exc:
            msg = f"in-flight slots unavailable: {type(exc).__name__}"
            raise RateLimiterUnavailableError(msg) from exc
        return {s: int(n) for s, n in zip(servers, counts, strict=True)}
