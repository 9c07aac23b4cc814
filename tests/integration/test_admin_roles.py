"""Scoped operator tokens: every admin route, walked with every role.

The routes come from the app itself (a new route cannot be forgotten), and the
policy is written down here, apart from the code that enforces it.
"""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from bridge.api.admin_auth import AdminRoute
from bridge.api.app import create_app
from bridge.api.edge import EdgeRoute
from bridge.container import Services
from bridge.db.models import AuditEntry
from bridge.domain.roles import Role
from bridge.ops import issue_token
from tests.infra import ADMIN_TOKEN

pytestmark = pytest.mark.integration

# The policy (issue 11): read = list/show/audit; operate = retry/cancel/resolve/
# sweeps; admin = servers, tokens, secrets.
POLICY = {
    ("GET", "/v1/admin/orders"): Role.READ,
    ("GET", "/v1/admin/orders/{ref}"): Role.READ,
    ("GET", "/v1/admin/audit"): Role.READ,
    ("GET", "/v1/admin/servers"): Role.READ,
    ("GET", "/v1/admin/servers/{name}"): Role.READ,
    ("POST", "/v1/admin/orders/{ref}/retry"): Role.OPERATE,
    ("POST", "/v1/admin/orders/{ref}/cancel"): Role.OPERATE,
    ("POST", "/v1/admin/orders/{ref}/resolve"): Role.OPERATE,
    ("PUT", "/v1/admin/servers/{name}"): Role.ADMIN,
    ("DELETE", "/v1/admin/servers/{name}"): Role.ADMIN,
    ("POST", "/v1/admin/servers/{name}/drain"): Role.ADMIN,
    ("POST", "/v1/admin/servers/{name}/test"): Role.ADMIN,
    ("POST", "/v1/admin/services/{service_id}/link"): Role.ADMIN,
}
# A body each route accepts far enough to reach its use case (which then finds
# nothing: the path names no existing order or server).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/admin/orders/{ref}/resolve"): {"note": "fixed by hand"},
    ("PUT", "/v1/admin/servers/{name}"): {"rate_limit_per_min": 30},
    ("POST", "/v1/admin/services/{service_id}/link"): {"service_id": "whmcs-1"},
}
# What an allowed caller gets: lists answer (200); nothing exists at the other
# paths (404); a PUT would add a server, which needs a URL and credentials (422).
ALLOWED_STATUS = {("PUT", "/v1/admin/servers/{name}"): 422}


def allowed_status(method: str, path: str) -> int:
    return ALLOWED_STATUS.get((method, path), 404 if "{" in path else 200)


RANK = [Role.READ, Role.OPERATE, Role.ADMIN]


def admin_routes(app: FastAPI) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for route in iter_route_contexts(app.routes):
        if route.path and route.path.startswith("/v1/admin"):
            for method in route.methods or ():
                found[method, route.path] = route.original_route
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: f"no-such-{m.group(1)}", path)


def audit_count(services: Services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


def test_every_route_passes_the_edge_and_every_admin_route_has_a_policy(
    app: FastAPI,
) -> None:
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            assert isinstance(route.original_route, EdgeRoute), route.path
    routes = admin_routes(app)
    assert set(routes) == set(POLICY), "a new admin route needs a line in POLICY"
    for key, route in routes.items():
        assert isinstance(route, AdminRoute), key
        assert route.required_role is POLICY[key], key


def test_a_route_without_a_declared_role_cannot_be_built() -> None:
    def endpoint() -> None:
        """Forgot its role."""

    with pytest.raises(TypeError, match="declares no role"):
        AdminRoute("/v1/admin/forgotten", endpoint, methods=["GET"])


@pytest.fixture
def tokens(services: Services) -> dict[Role, str]:
    return {
        role: issue_token(services, f"{role.value}-op", "ops:root", role=role)
        for role in Role
    }


def test_every_admin_route_with_every_role(
    api: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    for (method, path), needed in POLICY.items():
        url = concrete(path)
        body = BODIES.get((method, path))
        anonymous = api.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, path)
        for role, token in tokens.items():
            before = audit_count(services)
            response = api.request(
                method, url, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            if RANK.index(role) < RANK.index(needed):
                assert response.status_code == 403, (method, path, role)
                assert needed.value in response.json()["detail"]
                assert audit_count(services) == before
            else:
                expected = allowed_status(method, path)
                assert response.status_code == expected, (method, path, role)
        bootstrap = api.request(
            method, url, json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert bootstrap.status_code == allowed_status(method, path)


def test_a_too_weak_role_is_refused_before_the_body_is_read(
    api: httpx.Client, tokens: dict[Role, str]
) -> None:
    # Garbage that would be a 422 if parsed: the role check comes first.
    response = api.put(
        "/v1/admin/servers/x",
        content=b"{not json",
        headers={
            "Authorization": f"Bearer {tokens[Role.OPERATE]}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 403


def test_operate_token_retries_but_cannot_touch_servers(
    api: httpx.Client, services: Services, tokens: dict[Role, str], server: Any
) -> None:
    headers = {"Authorization": f"Bearer {tokens[Role.OPERATE]}"}
    assert api.get("/v1/admin/servers/sim", headers=headers).status_code == 200
    assert api.post("/v1/admin/servers/sim/drain", headers=headers).status_code == 403
    with services.sessions() as session:
        assert (
            session.scalar(
                select(AuditEntry.action).where(AuditEntry.action == "server_edited")
            )
            is None
        )
