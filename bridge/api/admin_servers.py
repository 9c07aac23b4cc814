"""Admin API for the server registry: list, show, put (add/edit), delete, test.

Credentials are accepted on PUT and never returned.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from fastapi.responses import JSONResponse

from bridge.api.admin_auth import AdminDep, AdminRoute, ReaderDep, ServicesDep
from bridge.api.admin_schemas import ServerIn
from bridge.api.edge import ErrorOut
from bridge.db.servers import get_server_by_name
from bridge.fleet import SERVER_NAME_PATTERN
from bridge.ops import (
    drain_server,
    list_servers,
    probe_server,
    put_server,
    remove_server,
    server_detail,
)
from bridge.ratelimit import short_waits

router = APIRouter(prefix="/servers", route_class=AdminRoute)

# A test makes three budgeted calls back to back; waiting a moment for the shared
# bucket is fine for an admin request, holding a threadpool thread longer is not.
MAX_BUDGET_WAIT_SECONDS = 2.0

ServerName = Annotated[
    str, Path(pattern=SERVER_NAME_PATTERN, description="Server name")
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such server"}
}


_short_wait = short_waits(MAX_BUDGET_WAIT_SECONDS)


@router.get("")
def get_servers(services: ServicesDep, _: ReaderDep) -> dict[str, Any]:
    """Every server (never credentials)."""
    with services.sessions() as session:
        return {"data": list_servers(session)}


@router.get("/{name}", responses=_NOT_FOUND)
def get_server(name: ServerName, services: ServicesDep, _: ReaderDep) -> dict[str, Any]:
    with services.sessions() as session:
        return {"server": server_detail(get_server_by_name(session, name))}


@router.put(
    "/{name}",
    responses={
        201: {"description": "Server added"},
        404: _NOT_FOUND[404],
    },
)
def put(
    name: ServerName, body: ServerIn, services: ServicesDep, operator: AdminDep
) -> JSONResponse:
    """Add server `name`, or change only the fields sent (200)."""
    view, created = put_server(services, name, body.to_changes(), operator.actor)
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse({"server": view}, status_code=code)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        200: {
            "description": "Removed, but the panel kept the webhook subscription",
            "content": {"application/json": {"example": {"warning": "…"}}},
        },
        **_NOT_FOUND,
        409: {"model": ErrorOut, "description": "Services or orders refer to it"},
    },
)
def delete(name: ServerName, services: ServicesDep, operator: AdminDep) -> Response:
    """Remove an unused server; 409 while services or orders refer to it.

    200 `{"warning"}` instead of 204 when the panel could not be told to drop the
    bridge's webhook subscription (the server is removed all the same).
    """
    warning = remove_server(services, name, operator.actor)
    if warning:
        return JSONResponse({"warning": warning}, status_code=status.HTTP_200_OK)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/drain", responses=_NOT_FOUND)
def post_drain(
    name: ServerName, services: ServicesDep, operator: AdminDep
) -> dict[str, Any]:
    """No new accounts on this server; existing ones are still managed."""
    return {"server": drain_server(services, name, operator.actor)}


@router.post(
    "/{name}/test",
    responses={
        **_NOT_FOUND,
        429: {"model": ErrorOut, "description": "The server's budget has no token"},
        503: {"model": ErrorOut, "description": "Redis (the shared budget) is down"},
    },
)
def post_test(
    name: ServerName, services: ServicesDep, operator: AdminDep
) -> dict[str, Any]:
    """TestConnection: reachability, TLS, auth, version, license, rate-limit headers.

    429 with Retry-After when the server's shared budget has no token now.
    """
    return {"report": probe_server(services, name, operator.actor, sleep=_short_wait)}
