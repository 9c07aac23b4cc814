"""Shared moves of operator actions: the compare-and-set, and the status guards.

A worker's lease is never overridden: the CAS matches only unleased (or expired)
orders in the status and version that were read.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from bridge.db.models import Order, Step
from bridge.db.orders import step_may_have_acted
from bridge.db.services import find_username_holder
from bridge.domain.model import Action
from bridge.domain.states import (
    OrderStatus,
    ServiceStatus,
    StepStatus,
    next_service_status,
)
from bridge.errors import InvalidTransitionError
from bridge.ops.errors import OperationRefusedError


def require_failed(order: Order, target: OrderStatus) -> None:
    """Operators retry and resolve failed orders only (design.md §3)."""
    if order.status is not OrderStatus.FAILED:
        raise InvalidTransitionError("order", order.status, target)


def refuse_if_outcome_unknown(order: Order) -> None:
    """Refuse to stop a live order whose sent step may already have acted.

    A queued or waiting order whose step was sent but never answered for sure
    (a dropped connection, a timeout, a 5xx) may have been applied by the panel:
    cancelling it would leave the panel changed while the bridge, and billing,
    believe otherwise. Raises OperationRefusedError naming the step. A failed
    order is the operator's to judge (the engine has given up on it), and steps
    never sent change nothing.
    """
    if order.status not in (OrderStatus.QUEUED, OrderStatus.WAITING):
        return
    step = _unknown_outcome_step(order)
    if step is None:
        return
    sent = step.first_sent_at.isoformat() if step.first_sent_at else "unknown"
    msg = (
        f"order {order.order_id} is {order.status.value} and its step "
        f"{step.position} ({step.kind.value}) was sent to the panel at {sent} "
        "without a definite answer: the panel may already have applied it. Let "
        "the order finish (it re-sends under the same Idempotency-Key, which is "
        "safe), or once it has failed, check the panel and resolve or cancel it"
    )
    raise OperationRefusedError(msg)


def _unknown_outcome_step(order: Order) -> Step | None:
    for step in order.steps:
        unsettled = step.status in (StepStatus.PENDING, StepStatus.IN_FLIGHT)
        if unsettled and step_may_have_acted(step):
            return step
    return None


def move_order(
    session: Session, order: Order, now: datetime, **values: Any
) -> OrderStatus:
    """Compare-and-set the order from the status (and version) we read; return it.

    Raises OperationRefusedError when a worker or another operator got there first.
    """
    expected = order.status
    moved = session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == expected,
            Order.version == order.version,
            or_(Order.lease_until.is_(None), Order.lease_until < now),
        )
        .values(version=Order.version + 1, **values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    session.refresh(order)
    if moved != 1:
        msg = (
            f"order {order.order_id} changed while it was being updated "
            f"(now {order.status.value}); look again and retry the action"
        )
        raise OperationRefusedError(msg)
    return expected


def reopen_failed_create(session: Session, order: Order) -> None:
    """A failed create left its service `failed`; back to `pending` before `active`.

    design.md §3 allows failed -> pending (as a new create does), not -> active.
    A failed create that never made its account freed its username, and another
    service may have taken it since: reopening would give the name two holders
    (the unique index would refuse it as a bare database error), so the operator
    is told which service holds it instead.
    """
    service = order.service
    if order.action is not Action.CREATE or service.status is not ServiceStatus.FAILED:
        return
    if service.server_id is not None:
        holder = find_username_holder(
            session, service.server_id, service.username, service.service_id
        )
        if holder is not None:
            msg = (
                f"username {service.username} is now held by service {holder} on "
                f"the same server: order {order.order_id} cannot create it again; "
                "cancel this order, or terminate that service first"
            )
            raise OperationRefusedError(msg)
    service.status = next_service_status(service.status, ServiceStatus.PENDING)
