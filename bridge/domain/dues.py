"""Due dates of the sweeps and payments (design.md §3, §4): pure date arithmetic.

A service is due for an action when today (UTC) > base + N days, where the base is
`paid_until` (suspension) or the day of `suspended_at` (termination). Its *due date*
is the first day that holds (base + N + 1). The due date names the sweep's order, so
one base date yields at most one order, whatever day the sweep runs.
"""

from datetime import UTC, date, datetime, time, timedelta


def due_cutoff(today: date, grace_days: int) -> date:
    """Bases strictly before this day are due `today` (the index range bound)."""
    return today - timedelta(days=grace_days)


def is_due(base: date, grace_days: int, today: date) -> bool:
    """True when today > base + grace_days."""
    return base < due_cutoff(today, grace_days)


def due_date(base: date, grace_days: int) -> date:
    """The first day an action on `base` is due."""
    return base + timedelta(days=grace_days + 1)


def day_start(day: date) -> datetime:
    """Midnight UTC starting `day` (earlier timestamps fall on earlier days)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def sweep_order_id(action: str, service_id: str, due: date) -> str:
    return f"sweep:{action}:{service_id}:{due.isoformat()}"


def payment_order_id(service_id: str, paid_until: date) -> str:
    return f"payment:unsuspend:{service_id}:{paid_until.isoformat()}"
