"""Moments given by operators: an ISO date/datetime or a duration back from now.

`90d`, `12h`, `30m`, `45s`, `2w` mean that long before now; `2024-05-01` is that day's
midnight UTC; a datetime without an offset is taken as UTC. Every moment comes back
in UTC, or refused when it has no UTC form (`as_utc`).
"""

import re
from datetime import UTC, datetime, timedelta

from bridge.errors import InvalidOrderError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta | None:
    """`90d` -> 90 days; None when `text` is not a duration."""
    match = _DURATION.match(text)
    if match is None:
        return None
    amount, unit = float(match.group(1)), match.group(2).lower()
    return timedelta(seconds=amount * _UNIT_SECONDS[unit])


def as_utc(moment: datetime, field: str) -> datetime:
    """`moment` (aware) in UTC.

    Raises InvalidOrderError (naming `field`) when its UTC form falls outside the
    years 1-9999: `0001-01-01T00:00+14:00` is valid ISO 8601, but converting it
    raises OverflowError, which would surface when the value is bound to a query.
    """
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        msg = "out of range once converted to UTC (years 1 to 9999)"
        raise InvalidOrderError(field, msg) from None


def parse_moment(text: str, now: datetime, *, field: str = "since") -> datetime:
    """The moment `text` names, relative to `now` for durations.

    Raises InvalidOrderError (naming `field`) when it is neither form, or out of
    range.
    """
    try:
        duration = parse_duration(text)
        if duration is not None:
            return now - duration
    except OverflowError:
        # "99999999999d" is a duration, just not one a datetime can go back.
        raise InvalidOrderError(field, "duration out of range") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = "an ISO date/datetime or a duration such as 90d, 12h, 30m"
        raise InvalidOrderError(field, msg) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return as_utc(moment, field)
