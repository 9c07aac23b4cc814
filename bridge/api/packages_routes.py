"""`GET /v1/packages?server=…|group=…` (HMAC): the cached package list billing's
package picker shows (refreshed on a schedule and by `bridge servers test`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from bridge.api.signing import SIGNATURE_HEADERS, SignedRoute
from bridge.container import Services
from bridge.db.servers import get_server_by_name
from bridge.packages import cached_packages, group_packages

router = APIRouter(
    prefix="/v1",
    route_class=SignedRoute,
    tags=["packages"],
    dependencies=SIGNATURE_HEADERS,
)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


class PackagesOut(BaseModel):
    server: str | None = Field(default=None, description="Set for ?server=")
    group: str | None = Field(default=None, description="Set for ?group=")
    servers: list[str] | None = Field(
        default=None, description="?group=: the group's active servers"
    )
    known_servers: list[str] | None = Field(
        default=None, description="?group=: those whose list is cached"
    )
    refreshed_at: str | None = Field(
        default=None, description="?server=: when the list was read (null: never)"
    )
    packages: list[dict[str, Any]] = Field(
        description="[{name, …limits}]; for a group, the names every server offers"
    )


@router.get(
    "/packages",
    response_model=PackagesOut,
    responses={
        401: {"description": "Missing/bad signature or timestamp"},
        404: {"description": "Unknown server, or no active server in the group"},
        422: {"description": "Give exactly one of server and group"},
    },
)
def get_packages(
    services: Annotated[Services, Depends(_services)],
    server: Annotated[str | None, Query(max_length=64)] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The packages of one server, or those every server of a group offers."""
    if (server is None) == (group is None):
        detail = [
            {
                "loc": ["query", "server"],
                "msg": "give exactly one of server and group",
                "type": "invalid",
            }
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)
    with services.sessions() as session:
        if group is not None:
            return group_packages(session, group)
        row = get_server_by_name(session, server or "")
        cached = cached_packages(session, row)
        return {
            "server": cached.server,
            "group": row.group_name,
            "refreshed_at": cached.refreshed_at.isoformat()
            if cached.refreshed_at
            else None,
            "packages": list(cached.packages),
        }
