"""Per-credential request limits of a panel: a fixed window or a strict sliding log.

Fixed: a 60 s window opens at a credential's first request; ``reset`` is its end.
Sliding: the accepted requests of the last 60 s; ``reset`` is when the oldest one
leaves the window. Rejected requests are not counted in either mode.
"""

import math
from collections import deque
from dataclasses import dataclass

from bridge.simulator.config import Window

WINDOW_S = 60.0


@dataclass(frozen=True)
class Decision:
    """The outcome of one request against a limit, with its header values."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        """Return the ``X-RateLimit-*`` headers."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """Counts requests per credential; credentials share nothing."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._logs: dict[str, deque[float]] = {}

    def clear(self) -> None:
        """Forget every credential's history."""
        self._windows.clear()
        self._logs.clear()

    def hit(self, credential: str, now: float, limit: int, window: Window) -> Decision:
        """Count one request by ``credential`` at ``now`` unless over ``limit``."""
        if window == "sliding":
            return self._hit_sliding(credential, now, limit)
        return self._hit_fixed(credential, now, limit)

    def _hit_fixed(self, credential: str, now: float, limit: int) -> Decision:
        start, count = self._windows.get(credential, (now, 0))
        if now >= start + WINDOW_S:
            start, count = now, 0
        end = start + WINDOW_S
        allowed = count < limit
        if allowed:
            count += 1
        self._windows[credential] = (start, count)
        return _decision(allowed, limit, limit - count, end, now)

    def _hit_sliding(self, credential: str, now: float, limit: int) -> Decision:
        log = self._logs.setdefault(credential, deque())
        while log and log[0] <= now - WINDOW_S:
            log.popleft()
        allowed = len(log) < limit
        if allowed:
            log.append(now)
        return _decision(allowed, limit, limit - len(log), log[0] + WINDOW_S, now)


def _decision(
    allowed: bool, limit: int, remaining: int, reset_at: float, now: float
) -> Decision:
    return Decision(
        allowed=allowed,
        limit=limit,
        remaining=max(remaining, 0),
        reset=math.ceil(reset_at),
        retry_after=max(1, math.ceil(reset_at - now)),
    )
