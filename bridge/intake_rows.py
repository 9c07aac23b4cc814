"""The rows one accepted order writes, built in Python and INSERTed with Core.

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
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from bridge.db.base import Base, utcnow
from bridge.db.models import AuditEntry, IntakeRequest, Order, Service, Step
from bridge.domain.model import CallbackStatus
from bridge.domain.states import StepStatus


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
