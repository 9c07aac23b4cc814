"""Status machines of design.md §3."""

import pytest

from bridge.domain.states import (
    OrderStatus,
    ServiceStatus,
    StepStatus,
    next_order_status,
    next_service_status,
    next_step_status,
)
from bridge.errors import InvalidTransitionError


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (OrderStatus.QUEUED, OrderStatus.RUNNING),
        (OrderStatus.RUNNING, OrderStatus.WAITING),
        (OrderStatus.WAITING, OrderStatus.RUNNING),
        (OrderStatus.RUNNING, OrderStatus.COMPLETED),
        (OrderStatus.RUNNING, OrderStatus.FAILED),
        (OrderStatus.AWAITING_CAPACITY, OrderStatus.QUEUED),
        (OrderStatus.FAILED, OrderStatus.QUEUED),
        (OrderStatus.FAILED, OrderStatus.COMPLETED),
        (OrderStatus.FAILED, OrderStatus.CANCELLED),
        (OrderStatus.WAITING, OrderStatus.CANCELLED),
    ],
)
def test_allowed_order_transitions(current: OrderStatus, target: OrderStatus) -> None:
    assert next_order_status(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (OrderStatus.COMPLETED, OrderStatus.QUEUED),
        (OrderStatus.CANCELLED, OrderStatus.QUEUED),
        (OrderStatus.QUEUED, OrderStatus.COMPLETED),
        (OrderStatus.RUNNING, OrderStatus.CANCELLED),
    ],
)
def test_forbidden_order_transitions(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidTransitionError):
        next_order_status(current, target)


def test_step_transitions() -> None:
    assert (
        next_step_status(StepStatus.PENDING, StepStatus.IN_FLIGHT)
        is StepStatus.IN_FLIGHT
    )
    assert (
        next_step_status(StepStatus.IN_FLIGHT, StepStatus.PENDING) is StepStatus.PENDING
    )
    assert next_step_status(StepStatus.FAILED, StepStatus.PENDING) is StepStatus.PENDING
    with pytest.raises(InvalidTransitionError):
        next_step_status(StepStatus.SUCCEEDED, StepStatus.PENDING)


def test_service_transitions() -> None:
    assert (
        next_service_status(ServiceStatus.PENDING, ServiceStatus.ACTIVE)
        is ServiceStatus.ACTIVE
    )
    assert (
        next_service_status(ServiceStatus.ACTIVE, ServiceStatus.ACTIVE)
        is ServiceStatus.ACTIVE
    )
    assert (
        next_service_status(ServiceStatus.SUSPENDED, ServiceStatus.TERMINATED)
        is ServiceStatus.TERMINATED
    )
    with pytest.raises(InvalidTransitionError):
        next_service_status(ServiceStatus.TERMINATED, ServiceStatus.ACTIVE)
