"""API key routes under a user: issue (secret shown once), list and revoke.

Admins manage anyone's keys; everyone else only their own (a reseller cannot mint
keys for its users).
"""

import secrets
from ipaddress import ip_network
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import get_user
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
from bridge.simulator.panel import Panel
from bridge.simulator.records import ApiKey, User
from bridge.simulator.routing import add_route, obj

DAY_S = 86400


def _key_owner(panel: Panel, principal: Principal, username: str) -> User:
    user = get_user(panel, principal, username)
    if principal.role != "admin" and user.username != principal.username:
        raise ApiError(403, "Cannot manage API keys of other users")
    return user


def _string_list(body: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = body.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiValidationError(f"{name} must be a list of strings", name)
    return list(value)


async def create_key(request: Request, username: str) -> Response:
    """Issue a ``wsp_`` key for a user; the secret is returned only here."""
    panel = panel_of(request)
    owner = _key_owner(panel, principal_of(request), username)
    body = await read_json(request)
    name = text_field(body, "name")
    if not name:
        raise ApiValidationError("Name is required", "name")
    permissions = _string_list(body, "permissions", ["read"])
    whitelist = _string_list(body, "ip_whitelist", [])
    for entry in whitelist:
        try:
            ip_network(entry, strict=False)
        except ValueError as exc:
            raise ApiValidationError(f"Invalid IP address: {entry}") from exc
    days = int_field(body, "expires_in", 0)
    if days < 0:
        raise ApiValidationError("expires_in must be >= 0", "expires_in")
    now = panel.now()
    secret = "wsp_" + secrets.token_hex(24)
    key = ApiKey(
        id=secrets.token_hex(8),
        secret=secret,
        owner=owner.username,
        name=name,
        created_at=now,
        permissions=permissions,
        ip_whitelist=whitelist,
        expires_at=now + days * DAY_S if days else None,
    )
    panel.state.api_keys[secret] = key
    return json_response(
        {
            "success": True,
            "message": "Store this key now: it will not be shown again",
            "secret_key": secret,
            "api_key": secret,
            "key": key.to_json(panel.fmt),
        },
        status=201,
    )


async def list_keys(request: Request, username: str) -> Response:
    """List a user's keys without secrets."""
    panel = panel_of(request)
    owner = _key_owner(panel, principal_of(request), username)
    keys = [
        k.to_json(panel.fmt)
        for k in panel.state.api_keys.values()
        if k.owner == owner.username
    ]
    return json_response(keys)


async def delete_key(request: Request, username: str, key_id: str) -> Response:
    """Revoke one key."""
    panel = panel_of(request)
    owner = _key_owner(panel, principal_of(request), username)
    for secret, key in panel.state.api_keys.items():
        if key.id == key_id and key.owner == owner.username:
            del panel.state.api_keys[secret]
            return json_response({"success": True})
    raise ApiError(404, "API key not found")


def register(router: APIRouter) -> None:
    """Add the API key routes to ``router``."""
    base = "/api/v1/users/{username}/api-keys"
    body = obj(
        {"name": "string"},
        {
            "permissions": "string[]",
            "ip_whitelist": "string[]",
            "expires_in": "integer",
        },
    )
    add_route(
        router,
        "POST",
        base,
        create_key,
        summary="Issue an API key",
        body=body,
        status=201,
    )
    add_route(router, "GET", base, list_keys, summary="List a user's API keys")
    add_route(
        router, "DELETE", base + "/{key_id}", delete_key, summary="Revoke an API key"
    )
