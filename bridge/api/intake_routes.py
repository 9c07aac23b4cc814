"""Intake endpoints for billing (HMAC-signed): post orders, read orders and services."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bridge.api.edge import ErrorOut, services_of
from bridge.api.schemas import (
    OrderEnvelope,
    OrderIn,
    OrderList,
    ServiceEnvelope,
    canonical_body,
    to_spec,
)
from bridge.api.signing import SIGNATURE_HEADERS, SignedRoute
from bridge.container import Services
from bridge.db.models import Order, Service
from bridge.intake import accept_order, body_digest
from bridge.metrics import INTAKE_ORDERS
from bridge.views import order_view, service_view

router = APIRouter(
    prefix="/v1",
    route_class=SignedRoute,
    tags=["intake"],
    dependencies=SIGNATURE_HEADERS,
)

ServicesDep = Annotated[Services, Depends(services_of)]


@router.post(
    "/orders",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderEnvelope,
    responses={
        200: {"model": OrderEnvelope, "description": "Duplicate: the first answer"},
        409: {"model": ErrorOut, "description": "Same order_id, different body"},
    },
)
def post_order(body: OrderIn, services: ServicesDep) -> JSONResponse:
    """Accept an order: persisted with its whole plan before this answers.

    A repeat of an `order_id` with the same body replays the first answer (200).
    An `Idempotency-Key` header is ignored: it is not covered by the signature.
    """
    result = accept_order(
        services, to_spec(body), body_sha256=body_digest(canonical_body(body))
    )
    code = status.HTTP_202_ACCEPTED if result.created else status.HTTP_200_OK
    INTAKE_ORDERS.labels(body.action, "new" if result.created else "replayed").inc()
    return JSONResponse(result.response, status_code=code)


@router.get(
    "/orders/{order_uuid}",
    response_model=OrderEnvelope,
    responses={404: {"model": ErrorOut, "description": "No such order"}},
)
def get_order(order_uuid: uuid.UUID, services: ServicesDep) -> dict[str, Any]:
    """An order by the bridge's id: status, steps, attempts, last error."""
    with services.sessions() as session:
        order = session.scalars(
            select(Order)
            .where(Order.id == order_uuid)
            .options(selectinload(Order.steps))
        ).one_or_none()
        if order is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="order not found")
        return {"order": order_view(order)}


@router.get("/orders", response_model=OrderList)
def find_orders(
    services: ServicesDep, order_id: Annotated[str, Query(max_length=255)]
) -> dict[str, Any]:
    """Orders by billing's order_id (zero or one)."""
    with services.sessions() as session:
        orders = session.scalars(
            select(Order)
            .where(Order.order_id == order_id)
            .options(selectinload(Order.steps))
        ).all()
        return {"orders": [order_view(o) for o in orders]}


@router.get(
    "/services/{service_id}",
    response_model=ServiceEnvelope,
    responses={404: {"model": ErrorOut, "description": "No such service"}},
)
def get_service(
    service_id: Annotated[str, Path(max_length=128)], services: ServicesDep
) -> dict[str, Any]:
    """A service as the bridge knows it."""
    with services.sessions() as session:
        service = session.get(Service, service_id)
        if service is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="service not found")
        return {"service": service_view(service)}
