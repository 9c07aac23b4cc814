"""The admin API (`/v1/admin`, bearer tokens): the failed-jobs queue and the audit log.

Thin: parse, call one `bridge.ops` use case with the operator as actor, shape the
answer. Server routes live in `admin_servers` and are mounted here.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from bridge import audit
from bridge.api import admin_servers
from bridge.api.admin_auth import (
    AdminRoute,
    OperatorDep,
    ReaderDep,
    ServicesDep,
)
from bridge.api.admin_schemas import ResolveIn, page_envelope
from bridge.api.edge import ErrorOut
from bridge.api.params import Page
from bridge.domain.model import Action
from bridge.domain.states import OrderStatus
from bridge.errors import InvalidOrderError
from bridge.ops import (
    cancel_order,
    get_order_by_ref,
    list_orders,
    order_detail,
    parse_moment,
    resolve_order,
    retry_order,
)
from bridge.ops.queries import MAX_PER_PAGE

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=AdminRoute)
router.include_router(admin_servers.router)

PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]
Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description="ISO date/datetime, or a duration: 90d, 12h, 30m",
    ),
]
OrderRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        description="The bridge's order id, or billing's order_id",
    ),
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such order"}
}
_CHANGE: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"model": ErrorOut, "description": "Not allowed in the order's status"},
}


def _since(text: str | None, now: datetime) -> datetime | None:
    if not text:
        return None
    try:
        return parse_moment(text, now)
    except InvalidOrderError as exc:
        detail = [{"loc": ["query", "since"], "msg": exc.reason, "type": "invalid"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None


@router.get("/orders")
def get_orders(
    services: ServicesDep,
    _: ReaderDep,
    *,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    server: Annotated[str | None, Query(max_length=64)] = None,
    action: Action | None = None,
    since: Since = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> dict[str, Any]:
    """Orders, newest first, filtered; `{data, meta}` with pagination."""
    since_at = _since(since, services.clock())
    with services.sessions() as session:
        rows, total = list_orders(
            session,
            status=status_,
            server=server,
            action=action,
            since=since_at,
            page=page,
            per_page=per_page,
        )
    return page_envelope(rows, total, page, per_page)


@router.get("/orders/{ref}", responses=_NOT_FOUND)
def get_order(ref: OrderRef, services: ServicesDep, _: ReaderDep) -> dict[str, Any]:
    """One order (bridge id or billing order_id): steps, attempts, panel errors."""
    with services.sessions() as session:
        return {"order": order_detail(get_order_by_ref(session, ref))}


@router.post("/orders/{ref}/retry", responses=_CHANGE)
def post_retry(
    ref: OrderRef, services: ServicesDep, operator: OperatorDep
) -> dict[str, Any]:
    """Queue a failed order again (4xx-refused steps get fresh keys); 409 if not
    failed or superseded by a later order of the same service."""
    return {"order": retry_order(services, ref, operator.actor)}


@router.post("/orders/{ref}/cancel", responses=_CHANGE)
def post_cancel(
    ref: OrderRef, services: ServicesDep, operator: OperatorDep
) -> dict[str, Any]:
    """Cancel a queued/waiting/awaiting-capacity/failed order; 409 while running."""
    return {"order": cancel_order(services, ref, operator.actor)}


@router.post("/orders/{ref}/resolve", responses=_CHANGE)
def post_resolve(
    ref: OrderRef, body: ResolveIn, services: ServicesDep, operator: OperatorDep
) -> dict[str, Any]:
    """Mark a failed order completed (fixed by hand); the note goes to the audit."""
    return {"order": resolve_order(services, ref, operator.actor, body.note)}


@router.get("/audit")
def get_audit(
    services: ServicesDep,
    _: ReaderDep,
    *,
    since: Since = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    order: uuid.UUID | None = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> dict[str, Any]:
    """Audit entries, newest first; `actor=ops` matches every `ops:<name>`."""
    since_at = _since(since, services.clock())
    with services.sessions() as session:
        total = audit.count_entries(
            session, since=since_at, actor=actor, order_uuid=order
        )
        rows = audit.list_entries(
            session,
            since=since_at,
            actor=actor,
            order_uuid=order,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
    return page_envelope(rows, total, page, per_page)
