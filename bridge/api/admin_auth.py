"""Admin API plumbing: bearer-token operators, their roles, the error mapping.

Every `/v1/admin` route declares the role it needs with one of the `*Dep`
dependencies below (`read` < `operate` < `admin`, bridge.domain.roles).
`AdminRoute` finds that declaration when the route is built (a route without
one fails at start-up) and checks the token and its role before the body is
parsed: no token -> 401, too weak a role -> 403. The audit log records the
operator as `admin:<name>` ("bootstrap" for BRIDGE_ADMIN_TOKEN, role admin).
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, ClassVar

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bridge import admin_tokens
from bridge.admin_tokens import Operator
from bridge.api.edge import EdgeRoute, ErrorOut, services_of
from bridge.container import Services
from bridge.domain.roles import Role, role_allows
from bridge.errors import InvalidTransitionError, RateLimitedError
from bridge.ops import OperationRefusedError

_CHALLENGE = 'Bearer realm="bridge-admin"'


def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


def _unauthorized(detail: str, challenge: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": challenge},
    )


def _authenticate(services: Services, authorization: str | None) -> Operator:
    """The operator of the request's bearer token; 401 when there is none."""
    scheme, _, presented = (authorization or "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise _unauthorized("missing bearer token", _CHALLENGE)
    with services.sessions.begin() as session:
        operator = admin_tokens.authenticate(
            session, services.settings, presented, now=services.clock()
        )
    if operator is None:
        raise _unauthorized(
            "invalid or revoked token", f'{_CHALLENGE}, error="invalid_token"'
        )
    return operator


def _check_role(operator: Operator, needed: Role) -> None:
    if not role_allows(operator.role, needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"this needs an admin token of role {needed.value} or above; "
            f"{operator.name!r} is {operator.role.value}",
        )


async def authorize_operator(request: Request, needed: Role) -> Operator:
    """Authenticate the bearer token (in the threadpool: it reads the database)
    and check its role; cached on the request."""
    operator: Operator | None = getattr(request.state, "operator", None)
    if operator is None:
        operator = await run_in_threadpool(
            _authenticate, services_of(request), request.headers.get("authorization")
        )
        request.state.operator = operator
    _check_role(operator, needed)
    return operator


# Declared for the OpenAPI document only (it never refuses: AdminRoute does).
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="An admin token (`bridge admin tokens create NAME --role R`) or "
    "BRIDGE_ADMIN_TOKEN; roles read < operate < admin",
)


class RoleRequirement:
    """Dependency: the request's operator, who must hold at least `role`."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self,
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> Operator:
        return await authorize_operator(request, self.role)


ReaderDep = Annotated[Operator, Depends(RoleRequirement(Role.READ))]
OperatorDep = Annotated[Operator, Depends(RoleRequirement(Role.OPERATE))]
AdminDep = Annotated[Operator, Depends(RoleRequirement(Role.ADMIN))]


def declared_roles(dependant: Dependant) -> set[Role]:
    """Roles named by RoleRequirement dependencies anywhere under `dependant`."""
    found: set[Role] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        if isinstance(current.call, RoleRequirement):
            found.add(current.call.role)
        stack.extend(current.dependencies)
    return found


class AdminRoute(EdgeRoute):
    """An admin route: bearer token and role checked before the body is parsed;
    operator use cases' refusals mapped to HTTP (404/422 are app-wide)."""

    auth_responses: ClassVar[dict[int | str, dict[str, Any]]] = {
        401: {"model": ErrorOut, "description": "Missing, unknown or revoked token"},
        403: {"model": ErrorOut, "description": "The token's role is too weak"},
    }

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        roles = declared_roles(self.dependant)
        if not roles:
            msg = (
                f"admin route {path} declares no role (ReaderDep/OperatorDep/AdminDep)"
            )
            raise TypeError(msg)
        self.required_role = max(roles, key=list(Role).index)

    async def authorize(self, request: Request, body: bytes) -> None:
        await authorize_operator(request, self.required_role)

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
