"""Fault-injection settings of one panel and the dice that apply them.

Rates are probabilities (0-1) applied to mutating API calls; a storm answers 429
to every API request until the panel clock passes its end.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_RATES = (
    "error_rate",
    "drop_after_apply_rate",
    "stall_after_apply_rate",
    "ssl_failure_rate",
)
_NUMBERS = ("stall_seconds", "latency_ms", "storm_seconds")


@dataclass
class Faults:
    """Current faults; ``storm_until`` is on the panel clock."""

    error_rate: float = 0.0
    drop_after_apply_rate: float = 0.0
    stall_after_apply_rate: float = 0.0
    ssl_failure_rate: float = 0.0
    stall_seconds: float = 10.0
    latency_ms: float = 0.0
    storm_until: float | None = None
    fail_next_count: int = 0
    fail_next_status: int = 500

    def update(self, changes: Mapping[str, Any], now: float) -> None:
        """Apply the JSON ``changes``; omitted fields stay unchanged.

        Raises:
            ValueError: unknown field or value out of range.
        """
        parsed: dict[str, float] = {}
        for name, value in changes.items():
            if name not in _RATES + _NUMBERS:
                raise ValueError(f"unknown fault: {name}")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number")
            if value < 0 or (name in _RATES and value > 1):
                raise ValueError(f"{name} out of range")
            parsed[name] = float(value)
        for name, number in parsed.items():
            if name == "storm_seconds":
                self.storm_until = now + number if number > 0 else None
            else:
                setattr(self, name, number)

    def fail_next(self, count: int, status: int) -> None:
        """Make the next ``count`` API requests answer ``status``."""
        self.fail_next_count = count
        self.fail_next_status = status

    def take_fail_next(self) -> int | None:
        """Consume one forced failure; return its status, or None."""
        if self.fail_next_count <= 0:
            return None
        self.fail_next_count -= 1
        return self.fail_next_status

    def storm_left(self, now: float) -> float:
        """Return the seconds of storm left at ``now`` (0 when calm)."""
        if self.storm_until is None or now >= self.storm_until:
            return 0.0
        return self.storm_until - now

    def to_json(self, now: float) -> dict[str, Any]:
        """Return the faults as the control API shows them."""
        return {
            "error_rate": self.error_rate,
            "drop_after_apply_rate": self.drop_after_apply_rate,
            "stall_after_apply_rate": self.stall_after_apply_rate,
            "ssl_failure_rate": self.ssl_failure_rate,
            "stall_seconds": self.stall_seconds,
            "latency_ms": self.latency_ms,
            "storm_seconds": self.storm_left(now),
            "fail_next": {
                "count": self.fail_next_count,
                "status": self.fail_next_status,
            },
        }


class Dice:
    """Seedable randomness for fault rates (not security relevant)."""

    def __init__(self, seed: int | None) -> None:
        self._random = random.Random(seed)  # noqa: S311 - fault dice, not secrets

    def roll(self, rate: float) -> bool:
        """Return True with probability ``rate`` (exactly for 0 and 1)."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        return self._random.random() < rate
