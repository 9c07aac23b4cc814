"""`dispatch_due_orders()`: the beat tick. The DB is the schedule; this enqueues.

Enqueues due, unleased orders (highest priority first, one per service line, no
more per server than its budget can serve this tick), due callbacks, and places
orders waiting for capacity once a server is free. Messages carry ids only; a lost
or duplicated message is harmless.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.callbacks import find_due_callbacks
from bridge.container import Services
from bridge.contention import room
from bridge.db import orders as orders_db
from bridge.db import servers as servers_db
from bridge.db.models import Order, Server
from bridge.db.services import find_username_holder
from bridge.domain.states import OrderStatus
from bridge.queue import DELIVER_CALLBACK_TASK, RUN_ORDER_TASK
from bridge.settings import PlacementPolicy

log = structlog.get_logger(__name__)

_OVERFETCH = 4


@dataclass(frozen=True, slots=True)
class DispatchReport:
    orders: int
    callbacks: int
    placed: int


def dispatch_due_orders(services: Services) -> DispatchReport:
    """One tick: enqueue what is due now."""
    settings = services.settings
    now = services.clock()
    # Recently enqueued orders are skipped for one lease period: a lost message
    # is re-sent after that, so recovery stays within lease TTL + one tick.
    grace = timedelta(seconds=settings.lease_seconds)
    with services.sessions.begin() as session:
        placed = _place_waiting_for_capacity(
            session, settings.dispatch_batch, settings.placement_policy
        )
        candidates = orders_db.find_due_orders(
            session,
            now,
            enqueue_grace=grace,
            # Room for orders skipped below, so one saturated panel does not hide
            # the due orders of the others.
            limit=settings.dispatch_batch * _OVERFETCH,
        )
        budgets = _tick_budgets(services, session, now, grace)
        due = _within_budgets(candidates, budgets, settings.dispatch_batch)
        orders_db.mark_enqueued(session, due, now)
        callbacks = find_due_callbacks(session, now, settings.dispatch_batch)
    for order_uuid in due:
        services.enqueue(RUN_ORDER_TASK, str(order_uuid))
    for order_uuid in callbacks:
        services.enqueue(DELIVER_CALLBACK_TASK, str(order_uuid))
    if due or callbacks or placed:
        log.info("dispatched", orders=len(due), callbacks=len(callbacks), placed=placed)
    return DispatchReport(orders=len(due), callbacks=len(callbacks), placed=placed)


def _tick_budgets(
    services: Services, session: Session, now: datetime, grace: timedelta
) -> dict[uuid.UUID, int]:
    """How many orders each server can usefully start this tick.

    Its room (bridge.contention): at most `contender_cap` of a server's orders
    compete for its budget at once, counting those already running or coming
    back for a token; more only make workers lease, be refused a token and
    release, which with thousands due on a 60/min panel is thousands of wasted
    transactions a second. A server whose circuit is open gets none; its probe
    goes out once the circuit's wait is over.
    """
    servers = list(session.scalars(select(Server)))
    free = room(services, session, now, servers, grace=grace)
    budgets: dict[uuid.UUID, int] = {}
    for server in servers:
        if server.auth_error is not None or (
            server.circuit_open_until is not None and server.circuit_open_until > now
        ):
            # Rejected credentials wait for `servers test`/`edit`; an open
            # circuit for its probe time.
            budgets[server.id] = 0
        else:
            budgets[server.id] = max(0, free[server.id])
    return budgets


def _within_budgets(
    candidates: list[tuple[uuid.UUID, uuid.UUID | None]],
    budgets: dict[uuid.UUID, int],
    limit: int,
) -> list[uuid.UUID]:
    """Candidates in priority order, at most each server's budget, `limit` in all."""
    chosen: list[uuid.UUID] = []
    for order_uuid, server_id in candidates:
        if server_id is not None:
            if budgets.get(server_id, 0) <= 0:
                continue
            budgets[server_id] -= 1
        chosen.append(order_uuid)
        if len(chosen) >= limit:
            break
    return chosen


def _place_waiting_for_capacity(
    session: Session, limit: int, policy: PlacementPolicy
) -> int:
    waiting = session.scalars(
        select(Order)
        .where(Order.status == OrderStatus.AWAITING_CAPACITY)
        .order_by(Order.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    placed = 0
    placement = servers_db.Placement(session, policy)  # each group read once
    for order in waiting:
        server = placement.place(order.server_group)
        if server is None:
            continue
        holder = find_username_holder(
            session, server.id, order.service.username, order.service_id
        )
        if holder is not None:
            placement.unplace(server, order.server_group)  # nothing placed there
            # Another service holds this username where placement would put it:
            # one account per name, so the order keeps waiting (that service may
            # be terminated, or room may free up elsewhere), and says why.
            _say_username_taken(order, server, holder)
            continue
        order.last_error = None
        order.server = server
        order.service.server = server
        order.status = OrderStatus.QUEUED
        order.enqueued_at = None
        placed += 1
    return placed


def _say_username_taken(order: Order, server: Server, holder: str) -> None:
    """Record (and log once) why a placeable create still waits for capacity."""
    reason = (
        f"username {order.service.username} is held by service {holder} on server "
        f"{server.name}, where placement would put it: waiting until that service "
        "is terminated or room frees up on another server (or cancel this order)"
    )
    if order.last_error != reason:
        order.last_error = reason
        log.warning(
            "placement_username_taken",
            order_id=order.order_id,
            server=server.name,
            holder=holder,
        )
