"""Due dates of the sweeps and the blast-radius guard: pure arithmetic."""

from datetime import UTC, date, datetime

import pytest

from bridge.domain.dues import (
    day_start,
    due_cutoff,
    due_date,
    is_due,
    payment_order_id,
    sweep_order_id,
)
from bridge.settings import Settings
from bridge.sweeps import guard_trips

TODAY = date(2030, 3, 10)


@pytest.mark.parametrize(
    ("base", "due"),
    [
        (date(2030, 3, 7), False),  # today == base + 3: last day of grace
        (date(2030, 3, 6), True),  # today == base + 4: first due day
        (date(2030, 3, 10), False),
        (date(2029, 1, 1), True),
    ],
)
def test_due_strictly_after_the_grace_days(base: date, due: bool) -> None:
    assert is_due(base, 3, TODAY) is due


def test_due_date_is_the_first_due_day() -> None:
    base = date(2030, 2, 27)
    first = due_date(base, 3)
    assert first == date(2030, 3, 3)
    assert is_due(base, 3, first)
    assert not is_due(base, 3, date(2030, 3, 2))
    assert due_cutoff(first, 3) == date(2030, 2, 28)


def test_zero_grace_days_means_due_the_next_day() -> None:
    assert not is_due(TODAY, 0, TODAY)
    assert is_due(TODAY, 0, date(2030, 3, 11))


def test_day_start_is_midnight_utc() -> None:
    assert day_start(TODAY) == datetime(2030, 3, 10, tzinfo=UTC)


def test_order_ids_name_the_action_service_and_day() -> None:
    assert sweep_order_id("suspend", "svc-1", TODAY) == "sweep:suspend:svc-1:2030-03-10"
    assert payment_order_id("svc-1", TODAY) == "payment:unsuspend:svc-1:2030-03-10"


@pytest.mark.parametrize(
    ("candidates", "fleet", "trips"),
    [
        (3, 30, False),  # exactly 10 %
        (4, 30, True),
        (20, 20, False),  # a fleet at the floor is never blocked
        (21, 21, True),
        (0, 1000, False),
        (101, 1000, True),
    ],
)
def test_guard_share_and_floor(candidates: int, fleet: int, trips: bool) -> None:
    settings = Settings(sweep_guard_max_share=0.10, sweep_guard_floor=20)
    assert guard_trips(settings, candidates, fleet) is trips
