"""`POST /v1/services/{service_id}/sso` (HMAC, like intake): a single-use panel
login link for the service's account. The answer is a credential: no-store."""

import math
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from bridge.api.signing import SIGNATURE_HEADERS, SignedRoute
from bridge.container import Services
from bridge.sso import (
    MAX_EXPIRES,
    MIN_EXPIRES,
    SsoConflictError,
    SsoPanelError,
    SsoUnavailableError,
    check_target_path,
    mint_sso,
)

router = APIRouter(
    prefix="/v1",
    route_class=SignedRoute,
    tags=["sso"],
    dependencies=SIGNATURE_HEADERS,
)

SERVICE_ID = Path(pattern=r"^[\x21-\x7e]{1,128}$")


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


class SsoIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target_path: str | None = Field(
        default=None,
        max_length=512,
        description="Panel-relative landing path, e.g. /files (default: the panel's)",
    )
    # Strict: "60" and 60.0 are not lifetimes (lax mode would take them).
    expires_in: StrictInt | None = Field(
        default=None,
        ge=MIN_EXPIRES,
        le=MAX_EXPIRES,
        description="Link lifetime in seconds (default BRIDGE_SSO_LINK_SECONDS)",
    )

    @field_validator("target_path")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return check_target_path(value)


class SsoOut(BaseModel):
    url: str = Field(description="Single-use login link; open it in the browser once")
    expires_at: datetime = Field(description="When the link stops working (UTC)")


def _error(code: int, detail: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


@router.post(
    "/services/{service_id}/sso",
    response_model=SsoOut,
    responses={
        401: {"description": "Missing/bad signature or timestamp"},
        404: {"description": "Unknown service"},
        409: {"description": "Service not active, or its server has no API key"},
        422: {"description": "Invalid body (field-level detail)"},
        502: {"description": "The panel has no such account or no SSO endpoint"},
        503: {"description": "Panel unavailable or out of budget (Retry-After)"},
    },
)
def post_sso(
    service_id: Annotated[str, SERVICE_ID],
    services: Annotated[Services, Depends(_services)],
    body: SsoIn | None = None,
) -> JSONResponse:
    """Mint a single-use link that logs the customer into their panel account."""
    request = body or SsoIn()
    try:
        link = mint_sso(
            services,
            service_id,
            target_path=request.target_path,
            expires_in=request.expires_in,
        )
    except SsoConflictError as exc:
        return _error(status.HTTP_409_CONFLICT, str(exc))
    except SsoUnavailableError as exc:
        return _error(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), exc.retry_after)
    except SsoPanelError as exc:
        return _error(status.HTTP_502_BAD_GATEWAY, str(exc))
    expires_at = link.expires_at.isoformat() if link.expires_at else None
    return JSONResponse(
        {"url": link.url, "expires_at": expires_at},
        headers={"Cache-Control": "no-store"},
    )
