"""The shared per-credential request budget: a GCRA in one Redis Lua script.

Fail closed. Any Redis error raises `RateLimiterUnavailableError` (retryable) and no
request is sent. Failing open (warehouse's choice) is wrong here: a panel that sees a
burst bans the credential, and a flood of 429s costs far more than a short pause.

Sizing. A plain bucket with capacity L and refill L/60 s can grant 2L in one sliding
minute (a full bucket, then a full refill). We pace instead: burst tolerance tau is
at most half an interval (never a whole extra request) and the emission interval is

    T = (window + safety + tau) / L          (window = 60 s, safety = 1 s by default)

GCRA grants the n-th request after a first one no earlier than (n-1)·T - tau later,
so L+1 grants span at least L·T - tau = window + safety. Even if request latency
compresses arrivals at the panel by up to `safety` seconds, no window of 60 s at
the panel (sliding or fixed) ever sees more than L requests. Utilisation is
window / (window + safety + tau): 98.0 % at 60/min, 98.3 % at 600/min. The small
tolerance lets a caller that wakes a few ms late still keep the pace.

Every decision uses Redis `TIME`, never the caller's clock, so processes on hosts
with skewed clocks share one schedule. The bucket also follows the panel: `observe`
adopts a lower `X-RateLimit-Limit`, pushes the schedule back when
`X-RateLimit-Remaining`/`Reset` say less is left than we think (another client may
share the credential) and turns a 429 into a shared "blocked until".
"""

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import redis

from bridge.errors import RateLimitedError, RateLimiterUnavailableError

WINDOW_SECONDS = 60.0
DEFAULT_SAFETY_SECONDS = 1.0
DEFAULT_TOLERANCE_SECONDS = 0.25
DEFAULT_BLOCK_SECONDS = 60.0
# A bucket key lives a day after its last write, so an adopted panel limit survives
# quiet periods; the state is three numbers per credential.
_KEY_TTL_MS = 86_400_000
# Reset headers larger than this are absolute Unix times; smaller ones are deltas
# (a defensive reading; the contract says absolute).
_ABSOLUTE_RESET_MIN = 1_000_000_000

# State per key (a hash): tat = theoretical arrival time (us, Redis clock), blocked =
# no grant before this (us), limit = the panel's advertised limit, iv/tol = the
# interval and tolerance (us) last used, so `observe` can convert "requests left"
# into time without knowing the configured limit.
_COMMON = """
local function ts()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(x) return string.format('%.0f', x) end
local function keep(key, now, until_us)
  local ttl = math.max(KEY_TTL_MS, math.ceil((until_us - now) / 1000) + 60000)
  redis.call('PEXPIRE', key, ttl)
end
"""

_ACQUIRE = (
    _COMMON
    + """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local safety = tonumber(ARGV[3])
local tol_cap = tonumber(ARGV[4])
local now = ts()
local st = redis.call('HMGET', key, 'tat', 'blocked', 'limit')
local panel_limit = tonumber(st[3])
if panel_limit and panel_limit > 0 and panel_limit < limit then limit = panel_limit end
local tol = math.min(tol_cap, window / limit / 2)
local iv = math.floor((window + safety + tol) / limit) + 1
local blocked = tonumber(st[2]) or 0
if blocked > now then return {0, fmt(blocked - now), fmt(now)} end
local tat = math.max(tonumber(st[1]) or now, now)
if tat - now > tol then return {0, fmt(tat - tol - now), fmt(now)} end
redis.call('HSET', key, 'tat', fmt(tat + iv), 'iv', fmt(iv), 'tol', fmt(tol))
keep(key, now, tat + iv)
return {1, '0', fmt(now)}
"""
).replace("KEY_TTL_MS", str(_KEY_TTL_MS))

_OBSERVE = (
    _COMMON
    + """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local remaining = tonumber(ARGV[2])
local reset = tonumber(ARGV[3])
local reset_is_delta = ARGV[4] == '1'
local throttled = ARGV[5] == '1'
local block = tonumber(ARGV[6])
local default_block = tonumber(ARGV[7])
local window = tonumber(ARGV[8])
local now = ts()
if reset and reset_is_delta then reset = now + reset end
-- a window never resets more than one window from now; a panel clock that is
-- hours ahead must not freeze the credential for hours
if reset then reset = math.min(reset, now + window) end
if throttled and not block then
  if reset then block = math.max(reset - now, 0) else block = default_block end
end
local until_us = now
if limit and limit > 0 then redis.call('HSET', key, 'limit', fmt(limit)) end
if block then
  local b = now + block
  local old = tonumber(redis.call('HGET', key, 'blocked')) or 0
  if b > old then redis.call('HSET', key, 'blocked', fmt(b)) else b = old end
  until_us = math.max(until_us, b)
end
local st = redis.call('HMGET', key, 'tat', 'iv', 'tol')
local iv = tonumber(st[2])
if remaining and reset and iv then
  -- at most `remaining` more grants before `reset`: the next one no earlier than
  -- reset - remaining * iv (grants may come `tol` before tat, hence + tol)
  local need = reset - remaining * iv + (tonumber(st[3]) or 0)
  local tat = tonumber(st[1]) or now
  if need > tat then
    redis.call('HSET', key, 'tat', fmt(need))
    tat = need
  end
  until_us = math.max(until_us, tat)
end
keep(key, now, until_us)
return fmt(now)
"""
).replace("KEY_TTL_MS", str(_KEY_TTL_MS))

_BLOCKED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0
return {string.format('%.0f', b), string.format('%.0f', now)}
"""

_US = 1_000_000


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a request may be sent now; if not, how long until one may.

    `at` is the Redis time (Unix seconds) the decision was taken at.
    """

    allowed: bool
    retry_after: float
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """The panel's rate-limit headers, parsed; None where absent or unreadable."""

    limit: int | None
    remaining: int | None
    reset: float | None
    retry_after: float | None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> "RateHeaders":
        lowered = {k.lower(): v for k, v in headers.items()}
        return cls(
            limit=_int(lowered.get("x-ratelimit-limit")),
            remaining=_int(lowered.get("x-ratelimit-remaining")),
            reset=_float(lowered.get("x-ratelimit-reset")),
            retry_after=parse_retry_after(lowered.get("retry-after")),
        )


class RedisRateLimiter:
    """GCRA per key in Redis; see the module docstring for the sizing argument."""

    def __init__(
        self,
        redis_client: "redis.Redis",
        *,
        safety: float = DEFAULT_SAFETY_SECONDS,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        window: float = WINDOW_SECONDS,
    ) -> None:
        if safety < 0 or tolerance < 0 or window <= 0:
            msg = "safety and tolerance must be >= 0 and window > 0"
            raise ValueError(msg)
        self._redis = redis_client
        self._safety_us = int(safety * _US)
        self._tolerance_us = int(tolerance * _US)
        self._window_us = int(window * _US)
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._observe = redis_client.register_script(_OBSERVE)
        self._blocked = redis_client.register_script(_BLOCKED)

    def acquire(self, key: str, limit_per_min: int) -> Decision:
        """Take one request's worth of budget for `key`, or say how long to wait.

        Raises RateLimiterUnavailableError when Redis cannot answer (fail closed).
        """
        if limit_per_min < 1:
            msg = "limit_per_min must be >= 1"
            raise ValueError(msg)
        args = [limit_per_min, self._window_us, self._safety_us, self._tolerance_us]
        allowed, wait_us, now_us = self._run(self._acquire, key, args)
        return Decision(
            allowed=int(allowed) == 1,
            retry_after=float(wait_us) / _US,
            at=float(now_us) / _US,
        )

    def observe(self, key: str, status: int, headers: Mapping[str, str]) -> None:
        """Fold a panel response's rate-limit headers (and a 429) into the bucket.

        On 429 every process is blocked until Retry-After, else X-RateLimit-Reset,
        else 60 s from now.
        """
        parsed = RateHeaders.parse(headers)
        throttled = status == 429  # noqa: PLR2004 - the HTTP status is the meaning
        if not throttled and parsed.limit is None and parsed.remaining is None:
            return  # nothing to learn: spare the round trip
        self._run(
            self._observe, key, _observe_args(parsed, throttled, None, self._window_us)
        )

    def block(self, key: str, seconds: float) -> None:
        """Refuse every acquire on `key` for `seconds` (Redis clock), everywhere."""
        empty = RateHeaders(limit=None, remaining=None, reset=None, retry_after=None)
        self._run(
            self._observe, key, _observe_args(empty, False, seconds, self._window_us)
        )

    def blocked_until(self, key: str) -> float | None:
        """The Unix time (Redis clock) before which `key` is blocked, or None."""
        until_us, now_us = self._run(self._blocked, key, [])
        until = float(until_us)
        return until / _US if until > float(now_us) else None

    def redis_time(self) -> float:
        """Redis's clock as Unix seconds (what every decision is measured against)."""
        try:
            seconds, micros = self._redis.time()
        except redis.RedisError as exc:
            raise RateLimiterUnavailableError(str(exc)) from exc
        return float(seconds) + float(micros) / _US

    def _run(self, script: Any, key: str, args: list[Any]) -> Any:
        try:
            return script(keys=[key], args=args)
        except redis.RedisError as exc:
            # Fail closed: without Redis nobody can prove the panel has budget left.
            raise RateLimiterUnavailableError(
                f"rate limiter unavailable: {type(exc).__name__}"
            ) from exc


def parse_retry_after(value: str | None) -> float | None:
    """Read `Retry-After` as seconds (delta-seconds or an HTTP date), else None."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _observe_args(
    parsed: RateHeaders, throttled: bool, block: float | None, window_us: int
) -> list[str | int]:
    if block is None and throttled:
        block = parsed.retry_after
    reset = parsed.reset
    is_delta = reset is not None and reset < _ABSOLUTE_RESET_MIN
    return [
        "" if parsed.limit is None else parsed.limit,
        "" if parsed.remaining is None else parsed.remaining,
        "" if reset is None else int(reset * _US),
        "1" if is_delta else "0",
        "1" if throttled else "0",
        "" if block is None else int(max(block, 0.0) * _US),
        int(DEFAULT_BLOCK_SECONDS * _US),
        window_us,
    ]


def _int(value: str | None) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


# --- Lanes on top of the shared bucket (issue 13): additive, the GCRA above is
# untouched. Both are `bridge.panel.config.Budget`s, so a PanelClient built with
# one spends from the same per-credential bucket as every other caller.

# Priority: a waiting human (SSO) claims the bucket's next slot. The claim is
# written into the `blocked` field that every ordinary acquire already honours,
# so queued work stands aside until the claimant has taken its slot (or the claim
# lapses, `grace` after the slot opens). The claimant itself ignores a `blocked`
# equal to its claim but honours any other block (a 429, an operator's block).
# No request is ever granted outside the GCRA schedule, so the sizing argument of
# the module docstring holds unchanged; the cost is at most one idle slot when a
# claimant gives up.
_PRIORITY = (
    _COMMON
    + """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local safety = tonumber(ARGV[3])
local tol_cap = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local grace = tonumber(ARGV[6])
local now = ts()
local st = redis.call('HMGET', key, 'tat', 'blocked', 'limit', 'claim')
local panel_limit = tonumber(st[3])
if panel_limit and panel_limit > 0 and panel_limit < limit then limit = panel_limit end
local tol = math.min(tol_cap, window / limit / 2)
local iv = math.floor((window + safety + tol) / limit) + 1
local blocked = tonumber(st[2]) or 0
local claim = tonumber(st[4]) or 0
if blocked > now and blocked ~= claim then return {0, fmt(blocked - now), fmt(now)} end
local tat = math.max(tonumber(st[1]) or now, now)
if tat - now <= tol then
  redis.call('HSET', key, 'tat', fmt(tat + iv), 'iv', fmt(iv), 'tol', fmt(tol))
  if claim > 0 then
    if blocked == claim then redis.call('HSET', key, 'blocked', '0') end
    redis.call('HDEL', key, 'claim')
  end
  keep(key, now, tat + iv)
  return {1, '0', fmt(now)}
end
local wait = tat - tol - now
if wait <= max_wait then
  local hold = tat - tol + grace
  if hold > blocked then
    redis.call('HSET', key, 'blocked', fmt(hold), 'claim', fmt(hold))
    keep(key, now, hold)
  end
end
return {0, fmt(wait), fmt(now)}
"""
).replace("KEY_TTL_MS", str(_KEY_TTL_MS))


class PriorityLane:
    """Acquire ahead of queued work: a refused caller holds the next slot for itself.

    Meant for a caller that waits in place for `retry_after` (a person behind an
    SSO click) and then asks again; a wait longer than `max_wait` claims nothing.
    """

    def __init__(
        self, limiter: RedisRateLimiter, *, max_wait: float, grace: float = 0.25
    ) -> None:
        if max_wait < 0 or grace < 0:
            msg = "max_wait and grace must be >= 0"
            raise ValueError(msg)
        self._limiter = limiter
        self._max_wait_us = int(max_wait * _US)
        self._grace_us = int(grace * _US)
        self._script = limiter._redis.register_script(_PRIORITY)

    def acquire(self, key: str, limit_per_min: int) -> Decision:
        """Take the next slot of `key`, claiming it first if it is not free yet."""
        if limit_per_min < 1:
            msg = "limit_per_min must be >= 1"
            raise ValueError(msg)
        lim = self._limiter
        args = [
            limit_per_min,
            lim._window_us,
            lim._safety_us,
            lim._tolerance_us,
            self._max_wait_us,
            self._grace_us,
        ]
        allowed, wait_us, now_us = lim._run(self._script, key, args)
        return Decision(
            allowed=int(allowed) == 1,
            retry_after=float(wait_us) / _US,
            at=float(now_us) / _US,
        )

    def observe(self, key: str, status: int, headers: Mapping[str, str]) -> None:
        self._limiter.observe(key, status, headers)


def share_key(key: str, lane: str) -> str:
    """The sub-bucket of `key` for `lane` (same hash tag, so same cluster slot)."""
    return f"{key}:{lane}"


class ShareLane:
    """Background work capped at `share` of a credential's budget.

    Each request takes a token from a sub-bucket paced at `share x limit` first,
    then from the credential's main bucket. The sub-bucket caps the lane; the main
    bucket keeps the panel's limit for everyone, so provisioning always keeps at
    least `1 - share` of it. (A sub-bucket token spent when the main bucket then
    says no is lost: that only slows the lane, never provisioning.)
    """

    def __init__(self, limiter: RedisRateLimiter, *, share: float, lane: str) -> None:
        if not 0 < share <= 1:
            msg = "share must be in (0, 1]"
            raise ValueError(msg)
        self._limiter = limiter
        self._share = share
        self._lane = lane

    def lane_limit(self, limit_per_min: int) -> int:
        return max(1, math.floor(limit_per_min * self._share))

    def acquire(self, key: str, limit_per_min: int) -> Decision:
        """A token from the lane's sub-bucket, then from the main bucket."""
        lane = self._limiter.acquire(
            share_key(key, self._lane), self.lane_limit(limit_per_min)
        )
        if not lane.allowed:
            return lane
        return self._limiter.acquire(key, limit_per_min)

    def observe(self, key: str, status: int, headers: Mapping[str, str]) -> None:
        """Fold the answer into the main bucket; a lower panel limit also shrinks
        the lane, so it stays `share` of what the panel really allows."""
        self._limiter.observe(key, status, headers)
        advertised = RateHeaders.parse(headers).limit
        if advertised is not None and advertised > 0:
            scaled = {"X-RateLimit-Limit": str(self.lane_limit(advertised))}
            self._limiter.observe(share_key(key, self._lane), 200, scaled)


def short_waits(
    max_seconds: float, sleep: Callable[[float], None] = time.sleep
) -> Callable[[float], None]:
    """A `sleep` for a person's command: it waits out a budget wait of up to
    `max_seconds` and raises RateLimitedError for a longer one (reported, not
    waited for). Never for workers: they hand a wait back to the database."""

    def wait(seconds: float) -> None:
        if seconds > max_seconds:
            raise RateLimitedError(seconds)
        sleep(seconds)

    return wait
