"""Package (plan) routes: anyone lists and reads; admins create, update and delete.

``default`` always exists and cannot be deleted.
"""

import re
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import require_role
from bridge.simulator.context import (
    bool_field,
    int_field,
    json_response,
    panel_of,
    principal_of,
    read_json,
    text_field,
)
from bridge.simulator.errors import ApiError, ApiValidationError
from bridge.simulator.pagination import paginate, wants_page
from bridge.simulator.records import FLAG_FIELDS, LIMIT_FIELDS, Package
from bridge.simulator.routing import add_route, obj

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _apply(package: Package, body: dict[str, Any]) -> None:
    for name in LIMIT_FIELDS:
        if name in body:
            setattr(package, name, int_field(body, name, -1))
    for name in FLAG_FIELDS:
        if name in body:
            setattr(package, name, bool_field(body, name, default=True))


def _get(request: Request, name: str) -> Package:
    package = panel_of(request).state.packages.get(name)
    if package is None:
        raise ApiError(404, "Package not found")
    return package


async def list_packages(request: Request) -> Response:
    """List packages."""
    packages = [p.to_json() for p in panel_of(request).state.packages.values()]
    if wants_page(request.query_params):
        return json_response(paginate(packages, request.query_params))
    return json_response(packages)


async def show_package(request: Request, name: str) -> Response:
    """Return one package."""
    return json_response(_get(request, name).to_json())


async def create_package(request: Request) -> Response:
    """Create a package (admin)."""
    require_role(principal_of(request), "admin")
    panel = panel_of(request)
    body = await read_json(request)
    name = text_field(body, "name")
    if not name:
        raise ApiValidationError("Name is required", "name")
    if not NAME_RE.match(name):
        raise ApiValidationError("Invalid package name", "name")
    if name in panel.state.packages:
        raise ApiError(409, "Package already exists")
    package = Package(name)
    _apply(package, body)
    panel.state.packages[name] = package
    return json_response(package.to_json(), status=201)


async def update_package(request: Request, name: str) -> Response:
    """Change a package's limits (admin); existing users keep their copies."""
    require_role(principal_of(request), "admin")
    package = _get(request, name)
    _apply(package, await read_json(request))
    return json_response(package.to_json())


async def delete_package(request: Request, name: str) -> Response:
    """Delete a package (admin); ``default`` is refused."""
    require_role(principal_of(request), "admin")
    _get(request, name)
    if name == "default":
        raise ApiError(403, "Cannot delete the default package")
    del panel_of(request).state.packages[name]
    return json_response({"success": True, "message": "Package deleted"})


def register(router: APIRouter) -> None:
    """Add the package routes to ``router``."""
    item = "/api/v1/packages/{name}"
    fields = dict.fromkeys(LIMIT_FIELDS, "integer") | dict.fromkeys(
        FLAG_FIELDS, "boolean"
    )
    add_route(
        router,
        "GET",
        "/api/v1/packages/",
        list_packages,
        summary="List packages",
        query={"page": "integer", "per_page": "integer"},
    )
    add_route(
        router,
        "POST",
        "/api/v1/packages/",
        create_package,
        summary="Create a package",
        body=obj({"name": "string"}, fields),
        status=201,
    )
    add_route(router, "GET", item, show_package, summary="Get a package")
    add_route(
        router,
        "PUT",
        item,
        update_package,
        summary="Update a package",
        body=obj(optional=fields),
    )
    add_route(router, "DELETE", item, delete_package, summary="Delete a package")
