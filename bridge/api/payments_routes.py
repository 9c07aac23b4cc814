"""Payments endpoint for billing (HMAC-signed like intake): record a new paid_until."""

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bridge.api.schemas import OrderOut, ServiceOut
from bridge.api.signing import verified_body
from bridge.container import Services
from bridge.payments import record_payment

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

router = APIRouter(
    prefix="/v1", dependencies=[Depends(verified_body)], tags=["payments"]
)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    paid_until: date = Field(description="Paid through this day (UTC), YYYY-MM-DD")

    @field_validator("paid_until", mode="before")
    @classmethod
    def _iso_day(cls, value: object) -> object:
        # Pydantic would read a number as a Unix timestamp: billing sends a day.
        if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
            msg = "expected a date as YYYY-MM-DD"
            raise ValueError(msg)
        return value


class PaymentEnvelope(BaseModel):
    service: ServiceOut
    order: OrderOut | None = Field(
        description="The unsuspend order the payment created (or replayed), else null"
    )
    cancelled: list[str] = Field(
        description="order_ids of sweep orders the payment cancelled before they ran"
    )


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.post(
    "/services/{service_id}/payments",
    response_model=PaymentEnvelope,
    responses={
        401: {"description": "Missing/bad signature or timestamp"},
        404: {"description": "Unknown service"},
        422: {"description": "Invalid body"},
    },
)
def post_payment(
    service_id: Annotated[str, Path(pattern=r"^[\x21-\x7e]{1,128}$")],
    body: PaymentIn,
    services: Annotated[Services, Depends(_services)],
) -> dict[str, object]:
    """Record a payment; a service suspended for non-payment gets unsuspended."""
    result = record_payment(services, service_id, body.paid_until)
    return {
        "service": result.service,
        "order": result.order,
        "cancelled": list(result.cancelled),
    }
