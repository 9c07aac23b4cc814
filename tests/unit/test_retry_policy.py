"""Retry timing: capped exponential backoff, full jitter, retry-after, give-up."""

from datetime import UTC, datetime, timedelta

from bridge.domain.retry_policy import RetryPolicy

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def top(_low: float, high: float) -> float:
    return high


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(
        base=1, cap=10, max_attempts=20, max_age_seconds=1e9, jitter=top
    )
    delays = [policy.next_delay(a, now=NOW, started_at=NOW) for a in range(1, 7)]
    assert delays == [1, 2, 4, 8, 10, 10]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    seen: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        seen.append((low, high))
        return low

    policy = RetryPolicy(
        base=2, cap=60, max_attempts=5, max_age_seconds=1e9, jitter=record
    )
    assert policy.next_delay(3, now=NOW, started_at=None) == 0
    assert seen == [(0.0, 8)]


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(
        base=1, cap=10, max_attempts=5, max_age_seconds=1e9, jitter=top
    )
    assert policy.next_delay(1, now=NOW, started_at=NOW, retry_after=30) == 30


def test_gives_up_after_max_attempts_or_max_age() -> None:
    policy = RetryPolicy(base=1, cap=10, max_attempts=3, max_age_seconds=60, jitter=top)
    assert policy.next_delay(3, now=NOW, started_at=NOW) is None
    old = NOW - timedelta(seconds=61)
    assert policy.next_delay(1, now=NOW, started_at=old) is None
    assert policy.next_delay(2, now=NOW, started_at=NOW - timedelta(seconds=59)) == 2
