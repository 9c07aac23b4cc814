"""Payments endpoint for billing (HMAC-signed like intake): record a new paid_until."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from bridge.api.edge import ErrorOut, services_of
from bridge.api.schemas import IsoDay, OrderOut, ServiceOut
from bridge.api.signing import SIGNATURE_HEADERS, SignedRoute
from bridge.container import Services
from bridge.payments import record_payment

router = APIRouter(
    prefix="/v1",
    route_class=SignedRoute,
    tags=["payments"],
    dependencies=SIGNATURE_HEADERS,
)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    paid_until: IsoDay = Field(description="Paid through this day (UTC), YYYY-MM-DD")


class PaymentEnvelope(BaseModel):
    service: ServiceOut
    order: OrderOut | None = Field(
        description="The unsuspend order the payment created (or replayed), else null"
    )
    cancelled: list[str] = Field(
        description="order_ids of sweep orders the payment cancelled before they ran"
    )


@router.post(
    "/services/{service_id}/payments",
    response_model=PaymentEnvelope,
    responses={
        404: {"model": ErrorOut, "description": "Unknown service"},
        409: {"model": ErrorOut, "description": "The unsuspend order conflicts"},
    },
)
def post_payment(
    service_id: Annotated[str, Path(pattern=r"^[\x21-\x7e]{1,128}$")],
    body: PaymentIn,
    services: Annotated[Services, Depends(services_of)],
) -> dict[str, Any]:
    """Record a payment; a service suspended for non-payment gets unsuspended."""
    result = record_payment(services, service_id, body.paid_until)
    return {
        "service": result.service,
        "order": result.order,
        "cancelled": list(result.cancelled),
    }
