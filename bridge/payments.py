"""`record_payment()`: billing reports a new `paid_until` for a service.

A service suspended *for non-payment* that the payment brings current (no longer
overdue by the suspension sweep's own test) gets an unsuspend order through intake,
`payment:unsuspend:<service_id>:<paid_until>`, so a repeated notice replays it. A
suspension for abuse or by an operator is never lifted by a payment. The payment
also cancels the sweep's own suspend/terminate orders for the service that have not
started yet: a paying customer must not lose the account to an order queued a minute
before the money arrived.

"Not started" means that no step of the order was ever sent to the panel, whatever
the order's status. A `waiting` (or re-`queued`) order whose step was sent and whose
outcome is unknown (a dropped connection, a 5xx) may already have acted on the
panel, so cancelling it could leave the account suspended (or deleted) there while
the bridge believes it active. Such an order is treated like a running one:

* a sweep suspend goes on (it re-sends under the same Idempotency-Key, so the panel
  replays its answer), and the unsuspend order this payment creates follows it in
  posting order and lifts the suspension;
* a sweep terminate goes on too: the DELETE may already have run, and nothing can
  undo it. The payment still queues the unsuspend behind it (the service is
  suspended for non-payment), so billing sees `cancelled: []` and an unsuspend order
  in the payment's answer, then the terminate's `completed` callback and the
  unsuspend's `failed` callback ("service ... is terminated"). Should the terminate
  fail instead with the account still on the panel, the unsuspend lifts the
  suspension.

`paid_until` never moves backwards here: payment notices may arrive late, retried or
out of order, and an older one must not make a paid service overdue. (Billing takes a
payment back with an explicit order, e.g. a suspend.)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.callbacks import schedule_callback
from bridge.container import Services
from bridge.db import orders as orders_db
from bridge.db.models import AuditEntry, Order, Service
from bridge.domain.dues import is_due, payment_order_id
from bridge.domain.model import Action, OrderSpec, RequestedBy, SuspendReason
from bridge.domain.states import (
    OrderStatus,
    ServiceStatus,
    next_order_status,
)
from bridge.errors import NotFoundError
from bridge.intake import accept_order, body_digest
from bridge.views import order_view, service_view

log = structlog.get_logger(__name__)

_ACTOR = RequestedBy.BILLING.value


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The service after a payment, its unsuspend order (if any), what it cancelled."""

    service: dict[str, Any]
    order: dict[str, Any] | None
    cancelled: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Outcome:
    paid_until: date  # the service's paid_until after the payment
    unsuspend: bool
    cancelled: tuple[str, ...]


def record_payment(
    services: Services, service_id: str, paid_until: date
) -> PaymentResult:
    """Record that `service_id` is paid until `paid_until`; unsuspend if due.

    Raises NotFoundError (unknown service), InvalidOrderError (the unsuspend
    cannot be accepted, e.g. the service was terminated meanwhile).
    """
    outcome = _apply(services, service_id, paid_until)
    order_id = payment_order_id(service_id, outcome.paid_until)
    if outcome.unsuspend:
        spec = OrderSpec(
            order_id=order_id,
            service_id=service_id,
            action=Action.UNSUSPEND,
            requested_by=RequestedBy.BILLING,
        )
        body = {"order_id": order_id, "service_id": service_id, "action": "unsuspend"}
        # A separate transaction: a crash before it leaves the service suspended
        # and paid, and billing's retry of the same notice creates the order.
        accept_order(services, spec, body_sha256=body_digest(body))
    with services.sessions() as session:
        service = session.get_one(Service, service_id)
        # Also on a repeat that no longer needs it: the same notice, the same order.
        order = orders_db.find_order_by_billing_id(session, order_id)
        return PaymentResult(
            service=service_view(service),
            order=order_view(order) if order is not None else None,
            cancelled=outcome.cancelled,
        )


def _apply(services: Services, service_id: str, paid_until: date) -> _Outcome:
    """Update paid_until under the service lock and decide what the payment does."""
    now = services.clock()
    grace = services.settings.suspend_after_days
    with services.sessions.begin() as session:
        service = session.scalars(
            select(Service).where(Service.service_id == service_id).with_for_update()
        ).one_or_none()
        if service is None:
            msg = "service not found"
            raise NotFoundError(msg)
        previous = service.paid_until
        if previous is None or paid_until > previous:
            service.paid_until = paid_until
        current = service.paid_until or paid_until
        settled = not is_due(current, grace, now.astimezone(UTC).date())
        cancelled: Sequence[Order] = ()
        suspend_pending = False
        if settled:
            cancelled, suspend_pending = _cancel_sweep_orders(
                services, session, service_id, now
            )
        suspended_unpaid = (
            service.status is ServiceStatus.SUSPENDED
            and service.suspension_reason is SuspendReason.NON_PAYMENT
        )
        unsuspend = settled and (suspended_unpaid or suspend_pending)
        session.add(
            AuditEntry(
                actor=_ACTOR,
                action="payment_recorded",
                service_id=service_id,
                before_status=service.status.value,
                after_status=service.status.value,
                detail={
                    "paid_until": paid_until.isoformat(),
                    "previous": previous.isoformat() if previous else None,
                    "applied": service.paid_until == paid_until,
                    "unsuspend": unsuspend,
                    "cancelled": [o.order_id for o in cancelled],
                },
            )
        )
    log.info(
        "payment_recorded",
        service_id=service_id,
        paid_until=paid_until.isoformat(),
        unsuspend=unsuspend,
        cancelled=len(cancelled),
    )
    return _Outcome(current, unsuspend, tuple(o.order_id for o in cancelled))


def _cancel_sweep_orders(
    services: Services, session: Session, service_id: str, now: datetime
) -> tuple[list[Order], bool]:
    """Cancel the sweep's unstarted suspend/terminate orders of the service.

    Unstarted: queued or waiting, and no step ever sent (see the module's doc).
    Returns the cancelled orders, and whether a non-payment suspension is still
    on its way (started, or posted by billing itself): then an unsuspend must
    follow it.
    """
    live = session.scalars(
        select(Order)
        .where(
            Order.service_id == service_id,
            Order.action.in_((Action.SUSPEND, Action.TERMINATE)),
            Order.status.in_(orders_db.LIVE_STATUSES),
        )
        .order_by(Order.service_seq)
        # Locked: a worker's lease (a compare-and-set on the row) waits for us,
        # then finds the order cancelled; or we wait and find it running.
        .with_for_update()
    ).all()
    cancelled: list[Order] = []
    suspend_pending = False
    for order in live:
        unpaid = order.payload.get("reason") == SuspendReason.NON_PAYMENT.value
        if (
            order.requested_by is RequestedBy.SWEEP
            and order.status in (OrderStatus.QUEUED, OrderStatus.WAITING)
            and not _ever_sent(order)
        ):
            _cancel(services, session, order, now)
            cancelled.append(order)
            continue
        if order.action is Action.SUSPEND and unpaid:
            suspend_pending = True
        elif order.requested_by is RequestedBy.SWEEP:
            log.warning(
                "payment_found_termination_running",
                service_id=service_id,
                order_id=order.order_id,
                status=order.status.value,
            )
    return cancelled, suspend_pending


def _ever_sent(order: Order) -> bool:
    """Whether any step of the order may have reached the panel."""
    return any(orders_db.step_may_have_acted(step) for step in order.steps)


def _cancel(services: Services, session: Session, order: Order, now: datetime) -> None:
    before = order.status
    order.status = next_order_status(order.status, OrderStatus.CANCELLED)
    order.wait_reason = None
    order.next_attempt_at = None
    order.finished_at = now
    order.last_error = "cancelled: payment recorded"
    order.version += 1
    schedule_callback(services.settings, session, order, now)
    session.add(
        AuditEntry(
            actor=_ACTOR,
            action="order_cancelled",
            order_uuid=order.id,
            service_id=order.service_id,
            before_status=before.value,
            after_status=order.status.value,
            detail={"order_id": order.order_id, "reason": "payment"},
        )
    )
