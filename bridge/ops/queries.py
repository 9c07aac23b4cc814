"""What operators look at: find an order by either id, list orders, show one in full.

Read-only. Views never include a secret: passwords live only encrypted on the
steps (`secret_body`), which is never read here, and a stored `callback_url` is
shown without any `user:password@` (`without_credentials`).
"""

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from bridge.db.models import Order, Server, Step
from bridge.domain.model import Action
from bridge.domain.states import OrderStatus, StepStatus
from bridge.errors import NotFoundError
from bridge.views import order_view

MAX_PER_PAGE = 200


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def without_credentials(url: str | None) -> str | None:
    """`url` without its userinfo (`user:password@`), for showing it.

    Intake refuses credentials in a `callback_url` now, but orders stored before
    that may still hold them; every view of a stored URL goes through here.
    """
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


def get_order_by_ref(session: Session, ref: str | uuid.UUID) -> Order:
    """The order by the bridge's id or billing's order_id, steps loaded.

    Raises NotFoundError.
    """
    order_uuid: uuid.UUID | None = ref if isinstance(ref, uuid.UUID) else None
    if order_uuid is None:
        try:
            order_uuid = uuid.UUID(str(ref))
        except ValueError:
            order_uuid = None
    stmt = select(Order).options(selectinload(Order.steps), selectinload(Order.server))
    order = None
    if order_uuid is not None:
        order = session.scalars(stmt.where(Order.id == order_uuid)).one_or_none()
    if order is None and not isinstance(ref, uuid.UUID):
        order = session.scalars(stmt.where(Order.order_id == ref)).one_or_none()
    if order is None:
        msg = f"order {ref} not found"
        raise NotFoundError(msg)
    return order


def _order_filters(
    status: OrderStatus | None,
    server: str | None,
    action: Action | None,
    since: datetime | None,
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if status is not None:
        clauses.append(Order.status == status)
    if server is not None:
        server_id = select(Server.id).where(Server.name == server).scalar_subquery()
        clauses.append(Order.server_id == server_id)
    if action is not None:
        clauses.append(Order.action == action)
    if since is not None:
        clauses.append(Order.created_at >= since)
    return clauses


def list_orders(
    session: Session,
    *,
    status: OrderStatus | None = None,
    server: str | None = None,
    action: Action | None = None,
    since: datetime | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """One page of matching orders (newest first) as summaries, and the total."""
    page = max(page, 1)
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    clauses = _order_filters(status, server, action, since)
    total = session.scalar(select(func.count()).select_from(Order).where(*clauses)) or 0
    stmt = (
        select(Order)
        .where(*clauses)
        .options(selectinload(Order.steps), selectinload(Order.server))
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return [order_summary(o) for o in session.scalars(stmt)], total


def failed_order_ids(
    session: Session,
    *,
    server: str | None = None,
    action: Action | None = None,
    since: datetime | None = None,
) -> list[uuid.UUID]:
    """Failed orders matching the filters, oldest first (the order to retry them)."""
    clauses = _order_filters(OrderStatus.FAILED, server, action, since)
    stmt = (
        select(Order.id)
        .where(*clauses)
        .order_by(Order.service_id, Order.service_seq, Order.created_at)
    )
    return list(session.scalars(stmt))


def _failed_step(order: Order) -> Step | None:
    return next((s for s in order.steps if s.status is StepStatus.FAILED), None)


def order_summary(order: Order) -> dict[str, Any]:
    """One line of `orders list`: the order and, if any, the step that failed."""
    failed = _failed_step(order)
    summary = order_view(order)
    del summary["steps"]
    summary["failed_step"] = failed.kind.value if failed else None
    summary["panel_status"] = failed.panel_status if failed else None
    return summary


def step_detail(step: Step) -> dict[str, Any]:
    return {
        "position": step.position,
        "kind": step.kind.value,
        "status": step.status.value,
        "attempts": step.attempts,
        "idempotency_key": step.idempotency_key,
        "panel_status": step.panel_status,
        "error_code": step.error_code,
        "error_message": step.error_message,
        "first_sent_at": _iso(step.first_sent_at),
        "last_sent_at": _iso(step.last_sent_at),
        "retry_started_at": _iso(step.retry_started_at),
        "request": step.request_body,
        "response": step.response,
        "updated_at": _iso(step.updated_at),
    }


def order_detail(order: Order) -> dict[str, Any]:
    """`orders show`: the public view plus lease, callback and per-step detail."""
    view = order_view(order)
    view.update(
        {
            "priority": order.priority,
            "server_group": order.server_group,
            "payload": order.payload,
            "lease_owner": order.lease_owner,
            "lease_until": _iso(order.lease_until),
            "callback_url": without_credentials(order.callback_url),
            "callback_attempts": order.callback_attempts,
            "callback_next_at": _iso(order.callback_next_at),
            "callback_last_error": order.callback_last_error,
            "steps": [step_detail(s) for s in order.steps],
        }
    )
    return view
