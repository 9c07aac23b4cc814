"""The panel's controllable clock and its timestamp formats.

Every time-dependent behaviour (rate windows, JWT exp/iat, idempotency window,
SSL delay, fault storms) reads this clock, never ``time.time()`` directly.
"""

import time
from datetime import UTC, datetime, timedelta, timezone

NEVER = "0001-01-01T00:00:00Z"
"""The panel's spelling of "never / unset" for timestamp fields."""


class PanelClock:
    """Wall-clock time shifted by an offset that tests advance."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> float:
        """Return the panel's current time in Unix seconds."""
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        """Move the panel's time forward (or back, for negative values)."""
        self.offset_s += seconds

    def reset(self) -> None:
        """Return to wall-clock time."""
        self.offset_s = 0.0


def format_ts(ts: float | None, tz_offset_minutes: int) -> str:
    """Format Unix seconds as RFC 3339 in the panel's offset (``NEVER`` for None)."""
    if ts is None:
        return NEVER
    tz = timezone(timedelta(minutes=tz_offset_minutes))
    return datetime.fromtimestamp(ts, tz=tz).isoformat(timespec="seconds")


def format_utc(ts: float) -> str:
    """Format Unix seconds as RFC 3339 UTC with microseconds (request log)."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="microseconds")
