"""The rows one accepted order writes (`planned_rows`), built in Python and
INSERTed with Core (`write_rows`), and its message to a worker (`enqueue_rows`).

Intake is CPU-bound on the API process (bench/intake.py): the ORM unit of work
(identity map, dependency sort, per-object flush) cost more than the rest of the
request. An accepted order is always new rows (order, its whole plan of steps,
its audit entry, its duplicate-check records), so they are built as transient
ORM objects (the order's view needs them) and written as one executemany per
table through the session's connection, inside the caller's transaction; a
batch of orders accepted together (`bridge.group_commit`) shares the statements.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from bridge.container import Services
from bridge.db.base import Base, utcnow
from bridge.db.models import AuditEntry, IntakeRequest, Order, Server, Service, Step
from bridge.domain.model import ACTION_PRIORITY, CallbackStatus, OrderSpec
from bridge.domain.planner import plan
from bridge.domain.states import OrderStatus, StepStatus
from bridge.queue import RUN_ORDER_TASK, enqueue_after_commit
from bridge.views import order_view


@dataclass
class PlannedRows:
    """Everything one accepted order INSERTs (the service row only when new)."""

    order: Order
    audit: AuditEntry
    response: dict[str, Any]  # the 202 body, also stored for replays
    intake: list[IntakeRequest] = field(default_factory=list)
    new_service: Service | None = None


def new_order(now: datetime, **values: Any) -> Order:
    """A transient order with every defaulted column set (nothing is flushed)."""
    created = utcnow()
    return Order(
        id=uuid.uuid4(),
        attempts=0,
        version=0,
        callback_status=CallbackStatus.NONE,
        callback_attempts=0,
        created_at=created,
        updated_at=created,
        enqueued_at=now,
        **values,
    )


def new_step(order: Order, position: int, **values: Any) -> Step:
    """A transient step of `order` with every defaulted column set."""
    return Step(
        id=uuid.uuid4(),
        order=order,
        order_uuid=order.id,
        position=position,
        status=StepStatus.PENDING,
        attempts=0,
        needs_reconcile=False,
        created_at=order.created_at,
        updated_at=order.created_at,
        **values,
    )


def write_rows(session: Session, batch: Sequence[PlannedRows]) -> None:
    """INSERT the rows of every order in `batch`, parents first, one statement
    per table (and per set of columns, which executemany needs to be one).

    Pending ORM changes (a re-created service's UPDATE) are flushed first, so
    the foreign keys of the new rows find their parents.
    """
    session.flush()
    conn = session.connection()
    tables: list[list[Base]] = [
        [r.new_service for r in batch if r.new_service is not None],
        [r.order for r in batch],
        [step for r in batch for step in r.order.steps],
        [r.audit for r in batch],
        [intake for r in batch for intake in r.intake],
    ]
    for objects in tables:
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for obj in objects:
            values = _values(obj)
            shapes.setdefault(tuple(values), []).append(values)
        for rows in shapes.values():
            statement = insert(_table(type(objects[0])))
            # One row: a plain execute (a list takes the driver's executemany
            # path, which costs more for one row).
            conn.execute(statement, rows[0] if len(rows) == 1 else rows)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - narrows for mypy
    return table


def _values(obj: Base) -> dict[str, Any]:
    """Column values of a transient object; unset columns keep their defaults.

    Every row of one table sets the same columns (executemany needs one shape):
    a column is left out only when no object of the table sets it, which the
    builders above guarantee by setting every defaulted column explicitly.
    """
    state = obj.__dict__
    table = _table(type(obj))
    values: dict[str, Any] = {}
    for column in table.columns:
        key = column.key
        if key in state:
            values[key] = state[key]
        elif (
            column.default is None
            and column.server_default is None
            and column is not table.autoincrement_column
        ):
            values[key] = None
    return values


def planned_rows(
    services: Services,
    spec: OrderSpec,
    service: Service,
    server: Server | None,
    *,
    keys: list[str],
    digest: str,
) -> PlannedRows:
    """The order, its whole plan, its audit entry and duplicate-check records."""
    settings = services.settings
    now = services.clock()
    order = new_order(
        now,
        order_id=spec.order_id,
        service_id=service.service_id,
        service_seq=service.order_seq,
        action=spec.action,
        payload=_public_payload(spec),
        status=OrderStatus.QUEUED if server else OrderStatus.AWAITING_CAPACITY,
        priority=ACTION_PRIORITY[spec.action],
        requested_by=spec.requested_by,
        server=server,  # for the view; a transient object's FK is not synced
        server_id=server.id if server is not None else None,
        server_group=spec.server_group,
        callback_url=spec.callback_url or settings.billing_callback_url,
    )
    for position, planned in enumerate(
        plan(spec, username=service.username, role=service.account_role)
    ):
        new_step(
            order,
            position,
            kind=planned.kind,
            params=planned.params,
            request_body=planned.body,
            secret_body=(
                services.box.encrypt_json(planned.secret) if planned.secret else None
            ),
            idempotency_key=str(uuid.uuid4()),
        )
    audit = AuditEntry(
        actor=spec.requested_by.value,
        action=f"order_{spec.action.value}",
        order_uuid=order.id,
        service_id=service.service_id,
        before_status=None,
        after_status=order.status.value,
        detail={"order_id": spec.order_id},
        at=order.created_at,
    )
    response = {"order": order_view(order)}
    expires = now + timedelta(seconds=settings.intake_idempotency_ttl_seconds)
    intake = [
        IntakeRequest(
            key=key,
            body_digest=digest,
            order_uuid=order.id,
            response=response,
            created_at=order.created_at,
            expires_at=expires,
        )
        for key in keys
    ]
    return PlannedRows(order=order, audit=audit, response=response, intake=intake)


def enqueue_rows(session: Session, rows: PlannedRows) -> None:
    """Send the order to a worker once the transaction commits (if placed)."""
    if rows.order.server_id is not None:
        enqueue_after_commit(session, RUN_ORDER_TASK, str(rows.order.id))


def _public_payload(spec: OrderSpec) -> dict[str, Any]:
    """What billing sent, minus every secret."""
    payload: dict[str, Any] = {
        "domain": spec.domain,
        "ssl": spec.ssl,
        "server": spec.server,
        "server_group": spec.server_group,
        "paid_until": spec.paid_until.isoformat() if spec.paid_until else None,
        "reason": spec.reason.value if spec.reason else None,
        "package": spec.package,
        "force": spec.force,
    }
    if spec.account is not None:
        payload["account"] = {
            "username": spec.account.username,
            "email": spec.account.email,
            "package": spec.account.package,
            "role": spec.account.role.value,
        }
        if spec.account.limits:
            payload["account"]["limits"] = dict(spec.account.limits)
    if spec.mailboxes:
        payload["mailboxes"] = [
            {"local_part": m.local_part, "quota_mb": m.quota_mb} for m in spec.mailboxes
        ]
    return {k: v for k, v in payload.items() if v not in (None, False, [])}
