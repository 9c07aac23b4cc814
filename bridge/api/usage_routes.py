"""Usage for billing's usage-update run (HMAC): one service's latest figures, and
every service's figures collected since a time, paginated."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from bridge.api.params import Page, UtcMoment
from bridge.api.signing import SIGNATURE_HEADERS, SignedRoute
from bridge.container import Services
from bridge.usage import MAX_PER_PAGE, list_usage, service_usage

router = APIRouter(
    prefix="/v1",
    route_class=SignedRoute,
    tags=["usage"],
    dependencies=SIGNATURE_HEADERS,
)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]


class UsageOut(BaseModel):
    service_id: str
    server: str | None
    username: str
    disk_used_mb: int
    bandwidth_used_mb: int
    period_start: str | None = Field(description="As the panel wrote it")
    measured_at: str | None = Field(description="As the panel wrote it")
    collected_at: str = Field(description="When the bridge read it (UTC, ISO 8601)")


class ServiceUsageEnvelope(BaseModel):
    service_id: str
    usage: UsageOut | None = Field(description="null before the first collection")


class PageMeta(BaseModel):
    total: int
    page: int
    per_page: int
    last_page: int


class UsageList(BaseModel):
    usage: list[UsageOut]
    meta: PageMeta


@router.get(
    "/services/{service_id}/usage",
    response_model=ServiceUsageEnvelope,
    responses={
        401: {"description": "Missing/bad signature or timestamp"},
        404: {"description": "Unknown service"},
    },
)
def get_service_usage(
    service_id: Annotated[str, Path(pattern=r"^[\x21-\x7e]{1,128}$")],
    services: ServicesDep,
) -> dict[str, object]:
    """The latest disk and bandwidth figures of one service."""
    with services.sessions() as session:
        return service_usage(session, service_id)


@router.get(
    "/usage",
    response_model=UsageList,
    responses={
        401: {"description": "Missing/bad signature or timestamp"},
        404: {"description": "Unknown server"},
        422: {"description": "Invalid query (field-level detail)"},
    },
)
def get_usage(
    services: ServicesDep,
    server: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        UtcMoment | None,
        Query(description="Only figures collected at or after this time (ISO 8601)"),
    ] = None,
    page: Page = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 100,
) -> dict[str, object]:
    """Figures collected since `since` (optionally on one server), oldest first."""
    with services.sessions() as session:
        return list_usage(
            session, server=server, since=since, page=page, per_page=per_page
        )
