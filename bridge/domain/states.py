"""Statuses and allowed transitions of orders, steps and services (design.md §3).

Pure: the tables and `next_status()`; persistence applies them with compare-and-set.
"""

from enum import StrEnum

from bridge.errors import InvalidTransitionError


class OrderStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    AWAITING_CAPACITY = "awaiting_capacity"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class ServiceStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    FAILED = "failed"
    TERMINATED = "terminated"


class WaitReason(StrEnum):
    RATE_LIMITED = "rate_limited"
    RETRY_BACKOFF = "retry_backoff"
    PANEL_UNAVAILABLE = "panel_unavailable"
    PANEL_BUSY = "panel_busy"
    SSL_PENDING = "ssl_pending"
    SERVICE_BUSY = "service_busy"
    # The server's credentials were rejected (401 after the one re-login): its
    # orders wait, consuming nothing, until `servers test`/`servers edit`.
    PANEL_AUTH = "panel_auth"


_O = OrderStatus
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _O.QUEUED: frozenset({_O.RUNNING, _O.CANCELLED}),
    _O.RUNNING: frozenset({_O.WAITING, _O.COMPLETED, _O.FAILED}),
    _O.WAITING: frozenset({_O.RUNNING, _O.CANCELLED}),
    _O.AWAITING_CAPACITY: frozenset({_O.QUEUED, _O.CANCELLED}),
    _O.FAILED: frozenset({_O.QUEUED, _O.COMPLETED, _O.CANCELLED}),
    _O.COMPLETED: frozenset(),
    _O.CANCELLED: frozenset(),
}

_S = StepStatus
STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    _S.PENDING: frozenset({_S.IN_FLIGHT, _S.SKIPPED}),
    _S.IN_FLIGHT: frozenset({_S.SUCCEEDED, _S.FAILED, _S.PENDING, _S.SKIPPED}),
    _S.FAILED: frozenset({_S.PENDING}),
    _S.SUCCEEDED: frozenset(),
    _S.SKIPPED: frozenset(),
}

_V = ServiceStatus
SERVICE_TRANSITIONS: dict[ServiceStatus, frozenset[ServiceStatus]] = {
    _V.PENDING: frozenset({_V.ACTIVE, _V.FAILED}),
    _V.ACTIVE: frozenset({_V.SUSPENDED, _V.TERMINATED}),
    _V.SUSPENDED: frozenset({_V.ACTIVE, _V.TERMINATED}),
    _V.FAILED: frozenset({_V.TERMINATED, _V.PENDING}),
    _V.TERMINATED: frozenset(),
}

# Services that hold their panel username on their server (one per server).
LIVE_SERVICE_STATUSES = frozenset({_V.PENDING, _V.ACTIVE, _V.SUSPENDED})

FINAL_ORDER_STATUSES = frozenset({_O.COMPLETED, _O.FAILED, _O.CANCELLED})
# Orders the dispatcher may hand to a worker (when due and unleased).
RUNNABLE_ORDER_STATUSES = frozenset({_O.QUEUED, _O.WAITING, _O.RUNNING})


def next_order_status(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """Return `target` if design.md §3 allows current -> target, else raise."""
    if target not in ORDER_TRANSITIONS[current]:
        raise InvalidTransitionError("order", current, target)
    return target


def next_step_status(current: StepStatus, target: StepStatus) -> StepStatus:
    """Return `target` if the step table allows current -> target, else raise."""
    if target not in STEP_TRANSITIONS[current]:
        raise InvalidTransitionError("step", current, target)
    return target


def next_service_status(current: ServiceStatus, target: ServiceStatus) -> ServiceStatus:
    """Return `target` if the service table allows current -> target, else raise."""
    if current == target:
        return target
    if target not in SERVICE_TRANSITIONS[current]:
        raise InvalidTransitionError("service", current, target)
    return target
