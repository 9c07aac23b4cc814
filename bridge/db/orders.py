"""Order queries and compare-and-set commands (leases, due orders). Never commits.

A lease is a CAS on (lease_owner, lease_until): two deliveries of one message never
run the same order at once, and a dead worker's lease simply expires. Every write a
worker makes is fenced: `fence()` is the first statement of its transaction, a CAS
on (owner, version) of a lease that has not expired, which also holds the row lock
until commit, so nobody can take the lease between the check and the writes.

Clocks: lease expiry is compared with the clock of the worker that writes it, so
hosts may disagree by less than a third of BRIDGE_LEASE_SECONDS (the heartbeat
renews every third): run NTP on every host.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, selectinload

from bridge.db.models import Order, Step
from bridge.domain.states import OrderStatus, StepStatus, WaitReason
from bridge.errors import NotFoundError, StaleOrderError

LIVE_STATUSES = (OrderStatus.QUEUED, OrderStatus.RUNNING, OrderStatus.WAITING)
# Orders that hold back later orders of the same service (posting order).
BLOCKING_STATUSES = (*LIVE_STATUSES, OrderStatus.AWAITING_CAPACITY)


# Waits that end when the server can take a call: a token, an in-flight slot.
BUDGET_WAITS = (WaitReason.RATE_LIMITED, WaitReason.PANEL_BUSY)


def budget_contenders(
    session: Session,
    now: datetime,
    *,
    grace: timedelta,
    server_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, int]:
    """Per server: its orders running now or about to ask for a token.

    Running = holding a live lease. About to ask = a message sent within
    `grace` (past that it counts as lost and the order as due again) to an
    order not started yet (queued) or waiting for a token or an in-flight slot.
    """
    sent = Order.enqueued_at >= now - grace
    stmt = (
        select(Order.server_id, func.count())
        .where(
            Order.server_id.is_not(None),
            Order.status.in_(LIVE_STATUSES),
            or_(
                Order.lease_until > now,
                and_(sent, Order.status == OrderStatus.QUEUED),
                and_(sent, Order.wait_reason.in_(BUDGET_WAITS)),
            ),
        )
        .group_by(Order.server_id)
    )
    if server_id is not None:
        stmt = stmt.where(Order.server_id == server_id)
    return {sid: int(n) for sid, n in session.execute(stmt).tuples() if sid}


def _earlier_order_unfinished() -> ColumnElement[bool]:
    earlier = aliased(Order)
    return exists().where(
        earlier.service_id == Order.service_id,
        earlier.service_seq < Order.service_seq,
        earlier.status.in_(BLOCKING_STATUSES),
    )


def _is_due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Order.status.in_(LIVE_STATUSES),
        or_(Order.next_attempt_at.is_(None), Order.next_attempt_at <= now),
        or_(Order.lease_until.is_(None), Order.lease_until < now),
        ~_earlier_order_unfinished(),
    )


def get_order(session: Session, order_uuid: uuid.UUID) -> Order:
    """The order with its steps loaded. Raises NotFoundError."""
    order = session.scalars(
        select(Order).where(Order.id == order_uuid).options(selectinload(Order.steps))
    ).one_or_none()
    if order is None:
        msg = f"order {order_uuid} not found"
        raise NotFoundError(msg)
    return order


def find_order_by_billing_id(session: Session, order_id: str) -> Order | None:
    return session.scalars(
        select(Order)
        .where(Order.order_id == order_id)
        .options(selectinload(Order.steps))
    ).one_or_none()


def find_due_orders(
    session: Session, now: datetime, *, enqueue_grace: timedelta, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    """(id, server id) of runnable orders, highest priority first, not just enqueued."""
    stmt = (
        select(Order.id, Order.server_id)
        .where(
            _is_due(now),
            or_(Order.enqueued_at.is_(None), Order.enqueued_at < now - enqueue_grace),
        )
        .order_by(Order.priority.desc(), Order.created_at)
        .limit(limit)
    )
    return [(row.id, row.server_id) for row in session.execute(stmt)]


def mark_enqueued(session: Session, ids: list[uuid.UUID], now: datetime) -> None:
    if ids:
        session.execute(update(Order).where(Order.id.in_(ids)).values(enqueued_at=now))


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's hold on one order: owner and the order version it took it at."""

    order_uuid: uuid.UUID
    owner: str
    version: int


def acquire_lease(
    session: Session, order_uuid: uuid.UUID, owner: str, now: datetime, ttl: float
) -> Lease | None:
    """CAS: take the order if it is due, unleased and first in its service's line."""
    version = session.execute(
        update(Order)
        .where(Order.id == order_uuid, _is_due(now))
        .values(
            lease_owner=owner,
            lease_until=now + timedelta(seconds=ttl),
            status=OrderStatus.RUNNING,
            wait_reason=None,
            version=Order.version + 1,
        )
        .returning(Order.version)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return None if version is None else Lease(order_uuid, owner, version)


def fence(session: Session, lease: Lease, now: datetime, ttl: float) -> None:
    """CAS on our unexpired lease, extending it; the writes that follow are ours.

    Raises StaleOrderError (and the caller's transaction writes nothing) when the
    lease expired or another worker holds the order.
    """
    result = session.execute(
        update(Order)
        .where(
            Order.id == lease.order_uuid,
            Order.lease_owner == lease.owner,
            Order.version == lease.version,
            Order.status == OrderStatus.RUNNING,
            Order.lease_until > now,
        )
        .values(lease_until=now + timedelta(seconds=ttl))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleOrderError(str(lease.order_uuid))


def pending_steps(order: Order) -> list[Step]:
    """Steps still to run, in plan order (in_flight ones had an unknown outcome)."""
    return [
        s for s in order.steps if s.status in (StepStatus.PENDING, StepStatus.IN_FLIGHT)
    ]


def step_may_have_acted(step: Step) -> bool:
    """Whether `step` may have reached the panel (its effect may be there).

    The engine sets `first_sent_at` when it sends a step and clears it only when
    the panel proved nothing ran (a rate-limit refusal of the first send, or a
    fresh key on an operator's retry after a 4xx).
    """
    return step.first_sent_at is not None or step.status in (
        StepStatus.IN_FLIGHT,
        StepStatus.SUCCEEDED,
    )
