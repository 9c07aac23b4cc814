"""Single sign-on (§10.1): ``POST /api/v1/auth/sso/mint`` and the browser's
``GET /sso/consume/<nonce>``, with the contract's harsher readings.

Mint needs an API key (a JWT caller gets 403), an admin or reseller caller, and a
target that is neither an admin nor suspended (nor, for a reseller, someone else's
user). A nonce is single-use: a second consume answers 410, an expired one 410,
an unknown one 404.
"""

import secrets
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import can_see, require_role
from bridge.simulator.context import (
    json_response,
    panel_of,
    principal_of,
    read_json,
    text_field,
)
from bridge.simulator.errors import ApiError, ApiValidationError, error_body, json_bytes
from bridge.simulator.panel import Panel
from bridge.simulator.routing import add_route, obj

MIN_EXPIRES_S = 30
MAX_EXPIRES_S = 900
DEFAULT_EXPIRES_S = 300
CONSUME_PREFIX = "/sso/consume/"


@dataclass
class SsoNonce:
    """One minted link: who it logs in, where to, until when; used once."""

    username: str
    target_path: str
    expires_at: float
    used: bool = False


def _expires_in(body: dict[str, object]) -> int:
    value = body.get("expires_in", DEFAULT_EXPIRES_S)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiValidationError("expires_in must be an integer", "expires_in")
    return min(max(value, MIN_EXPIRES_S), MAX_EXPIRES_S)


def _target_path(body: dict[str, object]) -> str:
    if "target_path" not in body:
        return "/"
    path = body["target_path"]
    # Panel-relative only: an absolute or protocol-relative URL would make the
    # panel an open redirect.
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or any(ord(c) < 0x20 for c in path)  # noqa: PLR2004 - control characters
    ):
        raise ApiValidationError(
            "target_path must be a panel-relative path", "target_path"
        )
    return path


def _consume_url(request: Request, panel: Panel, nonce: str) -> str:
    host = request.headers.get("host", "localhost")
    return f"{request.url.scheme}://{host}{panel.prefix}{CONSUME_PREFIX}{nonce}"


async def mint(request: Request) -> Response:
    """Mint a single-use login link for a user (API key, admin or reseller)."""
    panel, principal = panel_of(request), principal_of(request)
    if principal.method != "api_key":
        raise ApiError(403, "SSO mint requires API key authentication")
    require_role(principal, "admin", "reseller")
    body = await read_json(request)
    username = text_field(body, "username")
    if not username:
        raise ApiValidationError("Username is required", "username")
    expires_in = _expires_in(body)
    target_path = _target_path(body)
    user = panel.state.users.get(username)
    if user is None:
        raise ApiError(404, "User not found")
    if user.role == "admin":
        raise ApiError(403, "Cannot mint SSO for admin accounts")
    if not can_see(principal, user):
        raise ApiError(403, "Access denied to this user")
    if user.status == "suspended":
        raise ApiError(403, "Cannot mint SSO for suspended accounts")
    nonce = secrets.token_urlsafe(32)  # 43 base64url characters
    panel.state.sso_nonces[nonce] = SsoNonce(
        username=username,
        target_path=target_path,
        expires_at=panel.now() + expires_in,
    )
    return json_response(
        {
            "nonce": nonce,
            "consume_url": _consume_url(request, panel, nonce),
            "expires_in": expires_in,
            "target_path": target_path,
        }
    )


def consume(panel: Panel, nonce: str) -> tuple[int, bytes, dict[str, str]]:
    """Redeem ``nonce`` once: 302 to its target, 410 used/expired, 404 unknown.

    Returns the status, a JSON body and extra headers (for the raw ASGI reply).
    """
    record = panel.state.sso_nonces.get(nonce)
    if record is None:
        return _error(panel, 404, "SSO link not found")
    if record.used or panel.now() >= record.expires_at:
        return _error(panel, 410, "SSO link expired or already used")
    record.used = True
    user = panel.state.users.get(record.username)
    if user is None or user.status == "suspended":
        return _error(panel, 403, "Account not available")
    panel.state.sso_sessions[record.username] = (
        panel.state.sso_sessions.get(record.username, 0) + 1
    )
    body = json_bytes({"success": True, "username": user.username})
    return 302, body, {"location": record.target_path}


_CONSUME_CODES = {403: "FORBIDDEN", 404: "NOT_FOUND", 410: "GONE"}


def _error(
    panel: Panel, status: int, message: str
) -> tuple[int, bytes, dict[str, str]]:
    code = _CONSUME_CODES[status]
    return status, json_bytes(error_body(panel.config, status, code, message)), {}


def register(router: APIRouter) -> None:
    """Add the SSO mint route to ``router`` (consume is served by the app)."""
    add_route(
        router,
        "POST",
        "/api/v1/auth/sso/mint",
        mint,
        summary="Mint a single-use SSO link (API key; admin or reseller)",
        body=obj(
            {"username": "string"},
            {"target_path": "string", "expires_in": "integer", "reason": "string"},
        ),
    )
