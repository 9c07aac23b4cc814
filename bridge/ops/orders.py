"""Operator actions that end an order: cancel it, or resolve it as fixed by hand.

Each is one transaction: a compare-and-set on the order, the service's new state,
billing's callback, and an audit entry with who, before and after.
"""

import uuid
from typing import Any

from bridge import audit
from bridge.callbacks import schedule_callback
from bridge.container import Services
from bridge.domain.states import OrderStatus, next_order_status
from bridge.effects import apply_service_effect, wipe_secrets
from bridge.errors import InvalidOrderError
from bridge.ops.errors import OperationRefusedError
from bridge.ops.queries import get_order_by_ref, order_detail
from bridge.ops.transitions import (
    move_order,
    refuse_if_outcome_unknown,
    reopen_failed_create,
    require_failed,
)


def cancel_order(
    services: Services, order_ref: str | uuid.UUID, actor: str
) -> dict[str, Any]:
    """Cancel a queued, waiting, awaiting-capacity or failed order; billing is told.

    Raises NotFoundError, InvalidTransitionError (already final) and
    OperationRefusedError (a worker holds it right now, or it is queued or
    waiting with a step sent whose outcome is unknown: the panel may already
    have applied it).
    """
    now = services.clock()
    with services.sessions.begin() as session:
        order = get_order_by_ref(session, order_ref)
        if order.status is OrderStatus.RUNNING:
            until = order.lease_until.isoformat() if order.lease_until else "unknown"
            msg = (
                f"order {order.order_id} is running on a worker (lease until "
                f"{until}); cancel it once it is waiting or has failed"
            )
            raise OperationRefusedError(msg)
        next_order_status(order.status, OrderStatus.CANCELLED)
        refuse_if_outcome_unknown(order)
        before = move_order(
            session,
            order,
            now,
            status=OrderStatus.CANCELLED,
            wait_reason=None,
            next_attempt_at=None,
            finished_at=now,
            lease_owner=None,
            lease_until=None,
            enqueued_at=None,
        )
        apply_service_effect(order, OrderStatus.CANCELLED, now)
        wipe_secrets(order)  # a cancelled order never runs again
        schedule_callback(services.settings, session, order, now)
        audit.record(
            session,
            actor=actor,
            action="order_cancelled",
            order=order,
            before=before.value,
            after=order.status.value,
            detail={"previous_error": order.last_error},
        )
        return order_detail(order)


def resolve_order(
    services: Services, order_ref: str | uuid.UUID, actor: str, note: str
) -> dict[str, Any]:
    """Mark a failed order completed because an operator fixed it by hand.

    The service moves as if the order had completed, billing gets its callback,
    and the note goes to the audit log. Raises InvalidOrderError (no note),
    NotFoundError, InvalidTransitionError (not failed, or the service cannot
    take that state) and OperationRefusedError (a lost race).
    """
    if not note.strip():
        raise InvalidOrderError("note", "say what was fixed by hand")
    now = services.clock()
    with services.sessions.begin() as session:
        order = get_order_by_ref(session, order_ref)
        require_failed(order, OrderStatus.COMPLETED)
        previous_error = order.last_error
        before = move_order(
            session,
            order,
            now,
            status=OrderStatus.COMPLETED,
            wait_reason=None,
            next_attempt_at=None,
            finished_at=now,
            lease_owner=None,
            lease_until=None,
            last_error=None,
        )
        reopen_failed_create(session, order)
        apply_service_effect(order, OrderStatus.COMPLETED, now)
        wipe_secrets(order)  # resolved by hand: nothing will send them
        schedule_callback(services.settings, session, order, now)
        audit.record(
            session,
            actor=actor,
            action="order_resolved",
            order=order,
            before=before.value,
            after=order.status.value,
            detail={"note": note.strip(), "previous_error": previous_error},
        )
        return order_detail(order)
