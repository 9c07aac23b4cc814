"""User routes: list (opt-in pagination), create, get, update, delete, suspend,
unsuspend, change package and change password, with license and quota limits.
"""

import re
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import get_managed_user, get_user, require_role
from bridge.simulator.auth import Principal
from bridge.simulator.context import (
    int_field,
    json_response,
    panel_of,
    principal_of,
    read_json,
    text_field,
)
from bridge.simulator.errors import ApiError, ApiValidationError
from bridge.simulator.pagination import paginate, wants_page
from bridge.simulator.panel import Panel
from bridge.simulator.records import LIMIT_FIELDS, UNLIMITED, Package, User
from bridge.simulator.routing import add_route, obj
from bridge.simulator.webhooks import emit

USERNAME_RE = re.compile(r"^[a-z][a-z0-9]{1,15}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLES = ("user", "reseller")


def get_package(panel: Panel, name: str) -> Package:
    """Return a package by name.

    Raises:
        ApiValidationError: "Package not found".
    """
    package = panel.state.packages.get(name)
    if package is None:
        raise ApiValidationError("Package not found", "package")
    return package


async def list_users(request: Request) -> Response:
    """List the users the caller may see."""
    panel, principal = panel_of(request), principal_of(request)
    require_role(principal, "admin", "reseller")
    users = [
        u.to_json(panel.fmt)
        for u in panel.state.users.values()
        if principal.role == "admin" or u.creator == principal.username
    ]
    if wants_page(request.query_params):
        return json_response(paginate(users, request.query_params))
    return json_response(users)


async def create_user(request: Request) -> Response:
    """Create a hosting user (or, for admins, a reseller)."""
    panel, principal = panel_of(request), principal_of(request)
    require_role(principal, "admin", "reseller")
    body = await read_json(request)
    role = text_field(body, "role") or "user"
    if role not in ROLES:
        raise ApiValidationError("Invalid role", "role")
    user = add_account(panel, principal, body, role)
    return json_response(
        {
            "success": True,
            "message": "User created successfully",
            "username": user.username,
            "package": user.package,
        },
        status=201,
    )


def add_account(
    panel: Panel, principal: Principal, body: dict[str, Any], role: str
) -> User:
    """Validate and add an account of ``role`` created by ``principal``.

    Raises:
        ApiError: 400 on missing/invalid fields, 403 when only an admin may,
        409 "User already exists", 403 on license/reseller limits.
    """
    username = text_field(body, "username")
    email = text_field(body, "email")
    password = body.get("password")
    if not username or not email or not isinstance(password, str) or not password:
        raise ApiValidationError("Username, email, and password are required")
    validate_identity(username, email)
    if role == "reseller" and principal.role != "admin":
        raise ApiError(403, "Only admins can create resellers")
    package = get_package(panel, text_field(body, "package") or "default")
    if username in panel.state.users:
        raise ApiError(409, "User already exists")
    check_user_limits(panel, principal)
    user = User(
        username=username,
        email=email,
        password=password,
        role=role,
        created_at=panel.now(),
        creator=principal.username,
    )
    user.apply_package(package)
    panel.state.users[username] = user
    panel.state.record_creation("user", username)
    emit(
        panel,
        "user.created",
        {
            "username": username,
            "email": email,
            "role": role,
            "package": package.name,
            "creator": principal.username,
        },
        username,
    )
    return user


def validate_identity(username: str, email: str) -> None:
    if not USERNAME_RE.match(username):
        raise ApiValidationError(
            "Username must be 2-16 lowercase letters or digits, starting with a letter",
            "username",
        )
    if not EMAIL_RE.match(email):
        raise ApiValidationError("Invalid email address", "email")


def check_user_limits(panel: Panel, principal: Principal) -> None:
    cap = panel.config.license_max_users
    accounts = sum(1 for u in panel.state.users.values() if u.role != "admin")
    if cap != UNLIMITED and accounts >= cap:
        raise ApiError(
            403, f"License limit reached: max_users ({cap})", code="LICENSE_LIMIT"
        )
    if principal.role == "reseller" and principal.user.max_users != UNLIMITED:
        mine = sum(
            1 for u in panel.state.users.values() if u.creator == principal.username
        )
        if mine >= principal.user.max_users:
            raise ApiError(
                403,
                f"Reseller limit reached: max_users ({principal.user.max_users})",
                code="QUOTA_EXCEEDED",
            )


async def show_user(request: Request, username: str) -> Response:
    """Return one user."""
    panel = panel_of(request)
    user = get_user(panel, principal_of(request), username)
    return json_response(user.to_json(panel.fmt))


async def update_user(request: Request, username: str) -> Response:
    """Change a user's email, package or limit fields."""
    panel = panel_of(request)
    user = get_managed_user(panel, principal_of(request), username)
    body = await read_json(request)
    if "email" in body:
        email = text_field(body, "email")
        validate_identity(user.username, email)
        user.email = email
    if "package" in body:
        user.apply_package(get_package(panel, text_field(body, "package")))
    for name in (*LIMIT_FIELDS, "max_users"):
        if name in body:
            setattr(user, name, int_field(body, name, UNLIMITED))
    return json_response(user.to_json(panel.fmt))


async def delete_user(request: Request, username: str) -> Response:
    """Terminate a user with its domains, certificates, mailboxes and keys."""
    panel = panel_of(request)
    get_managed_user(panel, principal_of(request), username)
    # Emitted before the user is gone: who may hear about it depends on it.
    emit(panel, "user.deleted", {"username": username}, username)
    panel.state.delete_user(username)
    return json_response({"success": True, "message": "User deleted"})


async def suspend_user(request: Request, username: str) -> Response:
    """Suspend a user (no-op when already suspended); revokes its tokens."""
    panel = panel_of(request)
    user = get_managed_user(panel, principal_of(request), username)
    body = await read_json(request)
    if user.status != "suspended":
        user.status = "suspended"
        user.suspended_reason = text_field(body, "reason")
        user.token_version += 1
        for domain in panel.state.domains_of([user.username]):
            domain.status = "suspended"
        data = {"username": username, "reason": user.suspended_reason}
        emit(panel, "user.suspended", data, username)
    return json_response(
        {"success": True, "message": "User suspended", "status": "suspended"}
    )


async def unsuspend_user(request: Request, username: str) -> Response:
    """Reactivate a user (no-op when already active)."""
    panel = panel_of(request)
    user = get_managed_user(panel, principal_of(request), username)
    if user.status != "active":
        user.status = "active"
        user.suspended_reason = ""
        for domain in panel.state.domains_of([user.username]):
            domain.status = "active"
        emit(panel, "user.unsuspended", {"username": username}, username)
    return json_response(
        {"success": True, "message": "User unsuspended", "status": "active"}
    )


async def change_package(request: Request, username: str) -> Response:
    """Move a user to another package, copying its limits."""
    panel = panel_of(request)
    user = get_managed_user(panel, principal_of(request), username)
    name = text_field(await read_json(request), "package")
    if not name:
        raise ApiValidationError("Package is required", "package")
    previous = user.package
    user.apply_package(get_package(panel, name))
    if previous != user.package:
        data = {"username": username, "package": user.package, "previous": previous}
        emit(panel, "user.package_changed", data, username)
    return json_response(user.to_json(panel.fmt))


async def change_password(request: Request, username: str) -> Response:
    """Set a user's password; revokes its tokens."""
    panel, principal = panel_of(request), principal_of(request)
    user = get_user(panel, principal, username)
    if user.role == "admin" and user.username != principal.username:
        raise ApiError(403, "Cannot modify admin accounts")
    password = (await read_json(request)).get("password")
    if not isinstance(password, str) or not password:
        raise ApiValidationError("Password is required", "password")
    user.password = password
    user.token_version += 1
    return json_response({"success": True, "message": "Password updated"})


def register(router: APIRouter) -> None:
    """Add the user routes to ``router``."""
    item = "/api/v1/users/{username}"
    create_body = obj(
        {"username": "string", "email": "string", "password": "string"},
        {"package": "string", "role": "string"},
    )
    update_body = obj(optional={"email": "string", "package": "string"} | _limits())
    reason, package = {"reason": "string"}, {"package": "string"}
    password = {"password": "string"}
    routes: list[tuple[str, str, Any, str, dict[str, Any] | None]] = [
        ("POST", "/api/v1/users/", create_user, "Create a user", create_body),
        ("GET", item, show_user, "Get a user", None),
        ("PUT", item, update_user, "Update a user", update_body),
        ("DELETE", item, delete_user, "Delete (terminate) a user", None),
        ("POST", f"{item}/suspend", suspend_user, "Suspend", obj(optional=reason)),
        ("POST", f"{item}/unsuspend", unsuspend_user, "Unsuspend a user", None),
        ("PUT", f"{item}/package", change_package, "Change package", obj(package)),
        ("PUT", f"{item}/password", change_password, "Set password", obj(password)),
    ]  # fmt: skip
    add_route(
        router,
        "GET",
        "/api/v1/users/",
        list_users,
        summary="List users (array; paginated with page/per_page)",
        query={"page": "integer", "per_page": "integer"},
    )
    for method, path, endpoint, summary, body in routes:
        status = 201 if endpoint is create_user else 200
        add_route(
            router, method, path, endpoint, summary=summary, body=body, status=status
        )


def _limits() -> dict[str, str]:
    return dict.fromkeys((*LIMIT_FIELDS, "max_users"), "integer")
