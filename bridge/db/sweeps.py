"""Sweep queries and bulk commands: due services, fleet size, batched order inserts.

Never commits. Selections follow the `services` indexes (status, paid_until) and
(status, suspension_reason, suspended_at) and page by keyset in that order, so no
batch rescans what an earlier one saw. Inserts are set-based (one multi-row INSERT
per table and batch) with `ON CONFLICT (order_id) DO NOTHING` on the deterministic
sweep order_id: a racing twin can never add a second order for a service and due date.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bridge.db.models import AuditEntry, Order, Server, Service, Step
from bridge.db.orders import BLOCKING_STATUSES
from bridge.domain.dues import day_start, due_cutoff, due_date, sweep_order_id
from bridge.domain.model import (
    ACTION_PRIORITY,
    AccountRole,
    Action,
    OrderSpec,
    RequestedBy,
    SuspendReason,
)
from bridge.domain.planner import plan
from bridge.domain.states import OrderStatus, ServiceStatus

# The fleet the blast-radius guard measures a sweep against. Suspended services
# count: termination candidates are themselves suspended, so a fleet of mostly
# suspended services must still trip the guard.
FLEET_STATUSES = (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED)

SortKey = tuple[date | datetime, str]


@dataclass(frozen=True, slots=True)
class SweepTarget:
    """Which services one sweep acts on: `action` due on `today` after N days."""

    action: Action
    today: date
    grace_days: int


@dataclass(frozen=True, slots=True)
class DueService:
    service_id: str
    server_id: uuid.UUID
    server: str
    username: str
    order_seq: int
    due_date: date
    sort_key: SortKey
    role: AccountRole = AccountRole.USER


def _sort_column(action: Action) -> Any:
    return Service.paid_until if action is Action.SUSPEND else Service.suspended_at


def _due_filter(target: SweepTarget) -> list[ColumnElement[bool]]:
    cutoff = due_cutoff(target.today, target.grace_days)
    if target.action is Action.SUSPEND:
        state = [
            Service.status == ServiceStatus.ACTIVE,
            Service.paid_until < cutoff,
        ]
    else:
        state = [
            Service.status == ServiceStatus.SUSPENDED,
            Service.suspension_reason == SuspendReason.NON_PAYMENT,
            Service.suspended_at < day_start(cutoff),
        ]
    # A service with any unfinished order is left for the next run: its state is
    # about to change (a payment's unsuspend, billing's own suspend), and orders of
    # one service run in posting order, so a sweep order would queue behind it.
    busy = exists().where(
        Order.service_id == Service.service_id, Order.status.in_(BLOCKING_STATUSES)
    )
    return [
        *state,
        Service.username.is_not(None),
        Service.server_id.is_not(None),
        ~busy,
    ]


def due_services(target: SweepTarget) -> Select[Any]:
    """The sweep's selection, in keyset order (the benchmark EXPLAINs this)."""
    column = _sort_column(target.action)
    return (
        select(
            Service.service_id,
            Service.server_id,
            Server.name,
            Service.username,
            Service.order_seq,
            column,
            Service.account_role,
        )
        .join(Server, Server.id == Service.server_id)
        .where(*_due_filter(target))
        .order_by(column, Service.service_id)
    )


def count_due(session: Session, target: SweepTarget) -> int:
    stmt = select(func.count()).select_from(Service).where(*_due_filter(target))
    return session.scalar(stmt) or 0


def count_fleet(session: Session) -> int:
    stmt = select(func.count()).where(Service.status.in_(FLEET_STATUSES))
    return session.scalar(stmt) or 0


def due_batch(
    target: SweepTarget,
    *,
    limit: int,
    after: SortKey | None = None,
    lock: bool = False,
) -> Select[Any]:
    """One page of the selection after the keyset position `after`."""
    stmt = due_services(target).limit(limit)
    if after is not None:
        column = _sort_column(target.action)
        position = tuple_(
            bindparam(None, after[0], type_=column.type),
            bindparam(None, after[1], type_=Service.service_id.type),
        )
        stmt = stmt.where(tuple_(column, Service.service_id) > position)
    if lock:
        # As intake does: the rows stay locked until the orders are in, so their
        # order_seq is bumped exactly once.
        stmt = stmt.with_for_update(of=Service)
    return stmt


def find_due(
    session: Session,
    target: SweepTarget,
    *,
    limit: int,
    after: SortKey | None = None,
    lock: bool = False,
) -> list[DueService]:
    """Up to `limit` due services after `after` (locked with `lock`)."""
    stmt = due_batch(target, limit=limit, after=after, lock=lock)
    return [_due_service(target, row) for row in session.execute(stmt)]


def _due_service(target: SweepTarget, row: Any) -> DueService:
    service_id, server_id, server, username, order_seq, sort_value, role = row
    base = sort_value
    if isinstance(sort_value, datetime):
        base = sort_value.astimezone(UTC).date()
    return DueService(
        service_id=service_id,
        server_id=server_id,
        server=server,
        username=username,
        order_seq=order_seq,
        due_date=due_date(base, target.grace_days),
        sort_key=(sort_value, service_id),
        role=role,
    )


def insert_orders(
    session: Session,
    target: SweepTarget,
    due: Sequence[DueService],
    *,
    actor: str,
    callback_url: str | None,
    run_id: int,
) -> list[uuid.UUID]:
    """Create one sweep order per due service (rows locked); return the new ids.

    Services whose order_id already exists (same due date) are skipped silently.
    """
    if not due:
        return []
    rows = {d.service_id: _order_row(target, d, callback_url) for d in due}
    created = session.execute(
        _insert_ignoring_duplicates(session).returning(Order.id, Order.service_id),
        list(rows.values()),
    ).all()
    if not created:
        return []
    by_service = {d.service_id: d for d in due}
    session.execute(
        insert(Step),
        [
            row
            for order_uuid, sid in created
            for row in _step_rows(target, by_service[sid], order_uuid)
        ],
    )
    session.execute(
        update(Service)
        .where(Service.service_id.in_([sid for _, sid in created]))
        .values(order_seq=Service.order_seq + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(AuditEntry),
        [
            {
                "actor": actor,
                "action": f"order_{target.action.value}",
                "order_uuid": order_uuid,
                "service_id": sid,
                "after_status": OrderStatus.QUEUED.value,
                "detail": {
                    "order_id": rows[sid]["order_id"],
                    "due_date": by_service[sid].due_date.isoformat(),
                    "sweep_run": run_id,
                },
            }
            for order_uuid, sid in created
        ],
    )
    return [order_uuid for order_uuid, _ in created]


def _insert_ignoring_duplicates(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(Order).on_conflict_do_nothing(
            index_elements=[Order.order_id]
        )
    return sqlite.insert(Order).on_conflict_do_nothing(index_elements=[Order.order_id])


def _order_row(
    target: SweepTarget, due: DueService, callback_url: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"due_date": due.due_date.isoformat()}
    if target.action is Action.SUSPEND:
        payload["reason"] = SuspendReason.NON_PAYMENT.value
    return {
        "id": uuid.uuid4(),
        "order_id": sweep_order_id(target.action.value, due.service_id, due.due_date),
        "service_id": due.service_id,
        # The row is locked, so this is exactly what the bump below makes it.
        "service_seq": due.order_seq + 1,
        "action": target.action,
        "payload": payload,
        "status": OrderStatus.QUEUED,
        "priority": ACTION_PRIORITY[target.action],
        "requested_by": RequestedBy.SWEEP,
        "server_id": due.server_id,
        "callback_url": callback_url,
        # Left NULL: the dispatcher sends sweep orders in priority order.
        "enqueued_at": None,
    }


def _step_rows(
    target: SweepTarget, due: DueService, order_uuid: uuid.UUID
) -> list[dict[str, Any]]:
    spec = OrderSpec(
        order_id=sweep_order_id(target.action.value, due.service_id, due.due_date),
        service_id=due.service_id,
        action=target.action,
        reason=(SuspendReason.NON_PAYMENT if target.action is Action.SUSPEND else None),
        requested_by=RequestedBy.SWEEP,
    )
    # Suspend and terminate plans carry no secret: nothing to encrypt here.
    return [
        {
            "id": uuid.uuid4(),
            "order_uuid": order_uuid,
            "position": position,
            "kind": step.kind,
            "params": step.params,
            "request_body": step.body,
            "secret_body": None,
            "idempotency_key": str(uuid.uuid4()),
        }
        for position, step in enumerate(
            plan(spec, username=due.username, role=due.role)
        )
    ]
