"""Admin API plumbing: bearer-token operators and the admin routes' error mapping.

Every `/v1/admin` request names its operator (a named token, or "bootstrap" for
BRIDGE_ADMIN_TOKEN); the audit log records them as `admin:<name>`.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from bridge import admin_tokens
from bridge.container import Services
from bridge.errors import InvalidTransitionError, RateLimitedError
from bridge.ops import OperationRefusedError

_CHALLENGE = 'Bearer realm="bridge-admin"'


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _unauthorized(detail: str, challenge: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": challenge},
    )


def require_operator(
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The audit actor of the request's bearer token; 401 when there is none."""
    scheme, _, presented = (authorization or "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise _unauthorized("missing bearer token", _CHALLENGE)
    with services.sessions.begin() as session:
        name = admin_tokens.authenticate(
            session, services.settings, presented, now=services.clock()
        )
    if name is None:
        raise _unauthorized(
            "invalid or revoked token", f'{_CHALLENGE}, error="invalid_token"'
        )
    return f"admin:{name}"


OperatorDep = Annotated[str, Depends(require_operator)]


class AdminRoute(APIRoute):
    """Maps the operator use cases' refusals to HTTP (404/422 are app-wide)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def mapped(request: Request) -> Response:
            try:
                return await handler(request)
            except (InvalidTransitionError, OperationRefusedError) as exc:
                return JSONResponse({"detail": str(exc)}, status_code=409)
            except RateLimitedError as exc:
                wait = max(1, round(exc.retry_after))
                return JSONResponse(
                    {"detail": f"panel budget exhausted; retry in {wait}s"},
                    status_code=429,
                    headers={"Retry-After": str(wait)},
                )

        return mapped
