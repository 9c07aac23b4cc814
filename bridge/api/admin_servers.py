"""Admin API for the server registry: list, show, put (add/edit), delete, test.

Credentials are accepted on PUT and never returned.
"""

import time
from typing import Any

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from bridge.api.admin_auth import AdminRoute, OperatorDep, ServicesDep
from bridge.api.admin_schemas import ServerIn
from bridge.db.servers import get_server_by_name
from bridge.errors import RateLimitedError
from bridge.ops import (
    drain_server,
    list_servers,
    probe_server,
    put_server,
    remove_server,
    server_detail,
)

router = APIRouter(prefix="/servers", route_class=AdminRoute)

# A test makes three budgeted calls back to back; waiting a moment for the shared
# bucket is fine for an admin request, holding a threadpool thread longer is not.
MAX_BUDGET_WAIT_SECONDS = 2.0


def _short_wait(seconds: float) -> None:
    if seconds > MAX_BUDGET_WAIT_SECONDS:
        raise RateLimitedError(seconds)
    time.sleep(seconds)


@router.get("")
def get_servers(services: ServicesDep) -> dict[str, Any]:
    """Every server (never credentials)."""
    with services.sessions() as session:
        return {"data": list_servers(session)}


@router.get("/{name}")
def get_server(name: str, services: ServicesDep) -> dict[str, Any]:
    with services.sessions() as session:
        return {"server": server_detail(get_server_by_name(session, name))}


@router.put("/{name}", responses={201: {"description": "Server added"}})
def put(
    name: str, body: ServerIn, services: ServicesDep, actor: OperatorDep
) -> JSONResponse:
    """Add server `name`, or change only the fields sent (200)."""
    view, created = put_server(services, name, body.to_changes(), actor)
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse({"server": view}, status_code=code)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete(name: str, services: ServicesDep, actor: OperatorDep) -> Response:
    """Remove an unused server; 409 while services or orders refer to it."""
    remove_server(services, name, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{name}/drain")
def post_drain(name: str, services: ServicesDep, actor: OperatorDep) -> dict[str, Any]:
    """No new accounts on this server; existing ones are still managed."""
    return {"server": drain_server(services, name, actor)}


@router.post("/{name}/test")
def post_test(name: str, services: ServicesDep, actor: OperatorDep) -> dict[str, Any]:
    """TestConnection: reachability, TLS, auth, version, license, rate-limit headers.

    429 with Retry-After when the server's shared budget has no token now.
    """
    return {"report": probe_server(services, name, actor, sleep=_short_wait)}
