"""Reseller routes (wispanel-api.md §7.10): admin-only create, list, get, delete,
limits and the reseller's users.

Harsher readings where the contract is silent: deleting a reseller deletes the
users it created too (the bridge must refuse to do that by accident), and creating
one whose username exists is a 409 like a user.
"""

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import require_role
from bridge.simulator.context import (
    int_field,
    json_response,
    panel_of,
    principal_of,
    read_json,
)
from bridge.simulator.errors import ApiError, ApiValidationError
from bridge.simulator.panel import Panel
from bridge.simulator.records import LIMIT_FIELDS, UNLIMITED, User
from bridge.simulator.routes_users import add_account
from bridge.simulator.routing import add_route, obj

_GRANTS = (
    "can_grant_php",
    "can_grant_cgi",
    "can_grant_ssl",
    "can_grant_ssh",
    "can_grant_cron",
    "can_grant_spam",
    "can_grant_catchall",
    "can_grant_dnscontrol",
    "can_grant_sysinfo",
)
_LIMITS = (*LIMIT_FIELDS, "max_users")


def _reseller_json(user: User) -> dict[str, Any]:
    body: dict[str, Any] = {"username": user.username, "package": user.package}
    body |= {name: getattr(user, name) for name in _LIMITS}
    return body | dict.fromkeys(_GRANTS, True)


def _get_reseller(panel: Panel, username: str) -> User:
    user = panel.state.users.get(username)
    if user is None or user.role != "reseller":
        raise ApiError(404, "Reseller not found")
    return user


async def list_resellers(request: Request) -> Response:
    """List resellers (admin only; a plain array, like the live panel)."""
    require_role(principal_of(request), "admin")
    panel = panel_of(request)
    resellers = [u for u in panel.state.users.values() if u.role == "reseller"]
    return json_response([_reseller_json(u) for u in resellers])


async def create_reseller(request: Request) -> Response:
    """Create a reseller account (admin only)."""
    panel, principal = panel_of(request), principal_of(request)
    require_role(principal, "admin")
    user = add_account(panel, principal, await read_json(request), "reseller")
    return json_response(
        {
            "success": True,
            "message": "Reseller created successfully",
            "username": user.username,
            "package": user.package,
        },
        status=201,
    )


async def show_reseller(request: Request, username: str) -> Response:
    require_role(principal_of(request), "admin")
    return json_response(_reseller_json(_get_reseller(panel_of(request), username)))


async def delete_reseller(request: Request, username: str) -> Response:
    """Delete a reseller and, with it, every user it created."""
    require_role(principal_of(request), "admin")
    panel = panel_of(request)
    _get_reseller(panel, username)
    for user in [u for u in panel.state.users.values() if u.creator == username]:
        panel.state.delete_user(user.username)
    panel.state.delete_user(username)
    return json_response({"success": True, "message": "Reseller deleted"})


async def set_limits(request: Request, username: str) -> Response:
    """Change a reseller's limits (only the fields sent)."""
    require_role(principal_of(request), "admin")
    panel = panel_of(request)
    user = _get_reseller(panel, username)
    body = await read_json(request)
    for name in _LIMITS:
        if name in body:
            value = int_field(body, name, UNLIMITED)
            if value < UNLIMITED:
                raise ApiValidationError(f"{name} must be >= -1", name)
            setattr(user, name, value)
    return json_response(_reseller_json(user))


async def show_limits(request: Request, username: str) -> Response:
    require_role(principal_of(request), "admin")
    user = _get_reseller(panel_of(request), username)
    return json_response({name: getattr(user, name) for name in _LIMITS})


async def reseller_users(request: Request, username: str) -> Response:
    """The users a reseller created."""
    require_role(principal_of(request), "admin")
    panel = panel_of(request)
    _get_reseller(panel, username)
    users = [u for u in panel.state.users.values() if u.creator == username]
    return json_response([u.to_json(panel.fmt) for u in users])


def register(router: APIRouter) -> None:
    """Add the reseller routes to ``router``."""
    root, item = "/api/v1/resellers/", "/api/v1/resellers/{username}"
    create_body = obj(
        {"username": "string", "email": "string", "password": "string"},
        {"package": "string"},
    )
    limits = obj(optional=dict.fromkeys(_LIMITS, "integer"))
    add_route(router, "GET", root, list_resellers, summary="List resellers")
    add_route(
        router,
        "POST",
        root,
        create_reseller,
        summary="Create a reseller",
        body=create_body,
        status=201,
    )
    add_route(router, "GET", item, show_reseller, summary="Get a reseller")
    add_route(router, "DELETE", item, delete_reseller, summary="Delete a reseller")
    add_route(router, "GET", f"{item}/limits", show_limits, summary="Limits")
    add_route(
        router, "PUT", f"{item}/limits", set_limits, summary="Set limits", body=limits
    )
    add_route(router, "GET", f"{item}/users", reseller_users, summary="Its users")
