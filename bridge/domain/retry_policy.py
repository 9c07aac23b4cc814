"""Retry timing: capped exponential backoff with full jitter, honouring retry-after.

Pure policy: `next_delay()` returns seconds to wait, or None to give up.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

Jitter = Callable[[float, float], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float
    cap: float
    max_attempts: int
    max_age_seconds: float
    jitter: Jitter = random.uniform

    def next_delay(
        self,
        attempt: int,
        *,
        now: datetime,
        started_at: datetime | None,
        retry_after: float | None = None,
    ) -> float | None:
        """Delay before try number `attempt + 1`, or None when the budget is spent.

        `attempt` counts the tries already consumed (1 after the first failure).
        """
        if attempt >= self.max_attempts:
            return None
        if (
            started_at is not None
            and (now - started_at).total_seconds() >= self.max_age_seconds
        ):
            return None
        ceiling = min(self.cap, self.base * (2 ** max(attempt - 1, 0)))
        delay = self.jitter(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
