"""Session routes: login (2FA gate, single session, per-IP limit), logout, me, refresh.

Login is the one unauthenticated API route; the pipeline passes it through.
"""

from typing import Any

import pyotp
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.auth import client_ip, issue_token, renew_token
from bridge.simulator.context import (
    json_response,
    panel_of,
    principal_of,
    read_json,
    text_field,
)
from bridge.simulator.errors import ApiError, ApiValidationError
from bridge.simulator.panel import Panel
from bridge.simulator.records import Session, User
from bridge.simulator.routing import add_route, obj


async def login(request: Request) -> Response:
    """Exchange username (or email) and password (+ TOTP code) for a JWT."""
    panel = panel_of(request)
    peer = request.client.host if request.client else ""
    ip = client_ip(request.headers, peer, panel.config.trust_forwarded_for)
    _check_login_limit(panel, ip)
    body = await read_json(request)
    username, password = text_field(body, "username"), body.get("password")
    if not username or not isinstance(password, str) or not password:
        raise ApiValidationError("Username and password are required")
    user = panel.state.find_user(username)
    if user is None or user.password != password:
        raise ApiError(401, "Invalid credentials")
    if user.status == "suspended":
        raise ApiError(401, "Account suspended")
    if user.totp_secret:
        code = text_field(body, "totp_code")
        if not code:
            return json_response(
                {"requires_2fa": True, "message": "Two-factor authentication required"}
            )
        totp = pyotp.TOTP(user.totp_secret)
        if not totp.verify(code, for_time=int(panel.now()), valid_window=1):
            raise ApiError(401, "Invalid 2FA code")
    conflict = _session_conflict(panel, user, force=body.get("force") is True)
    if conflict is not None:
        return conflict
    return _start_session(panel, user, ip, request.headers.get("user-agent", ""))


def _check_login_limit(panel: Panel, ip: str) -> None:
    limit = panel.config.login_limit_per_min
    decision = panel.login_limiter.hit(f"ip:{ip}", panel.now(), limit, "fixed")
    if decision.allowed:
        return
    headers = decision.headers()
    if panel.config.retry_after:
        headers["Retry-After"] = str(decision.retry_after)
    raise ApiError(429, "Too many requests", headers=headers)


def _session_conflict(panel: Panel, user: User, *, force: bool) -> Response | None:
    """Answer 409 for a second login in single-session mode, or kick the first."""
    session = panel.state.sessions.get(user.username)
    if not panel.config.single_session or session is None:
        return None
    alive = session.token_version == user.token_version
    if not alive or session.expires_at <= panel.now():
        return None
    if force:
        user.token_version += 1
        return None
    return json_response(
        {
            "existing_session": True,
            "session_info": session.info(),
            "message": "Another session is active; log in with force to replace it",
        },
        status=409,
    )


def _start_session(panel: Panel, user: User, ip: str, device: str) -> Response:
    now = panel.now()
    lifetime = panel.config.token_lifetime_s
    panel.state.sessions[user.username] = Session(
        ip=ip,
        device=device,
        login_at=now,
        last_seen=now,
        expires_at=now + lifetime,
        token_version=user.token_version,
    )
    token = issue_token(panel, user, ip)
    body: dict[str, Any] = {
        "token": token,
        "user": user.login_json(),
        "expires_in": lifetime,
    }
    return json_response(body)


async def logout(request: Request) -> Response:
    """End the caller's interactive session."""
    panel_of(request).state.sessions.pop(principal_of(request).username, None)
    return json_response({"message": "Logged out successfully"})


async def me(request: Request) -> Response:
    """Return the caller's user object."""
    panel = panel_of(request)
    return json_response(principal_of(request).user.to_json(panel.fmt))


async def refresh(request: Request) -> Response:
    """Return a fresh JWT for a JWT caller."""
    panel = panel_of(request)
    principal = principal_of(request)
    if principal.claims is None:
        raise ApiValidationError("Only session tokens can be refreshed")
    token = renew_token(panel, principal.claims)
    return json_response({"token": token, "expires_in": panel.config.token_lifetime_s})


def register(router: APIRouter) -> None:
    """Add the auth routes to ``router``."""
    credentials = obj(
        {"username": "string", "password": "string"},
        {"totp_code": "string", "force": "boolean"},
    )
    add_route(
        router,
        "POST",
        "/api/v1/auth/login",
        login,
        summary="Log in; returns a JWT, a 2FA challenge or a session conflict",
        body=credentials,
    )
    add_route(router, "POST", "/api/v1/auth/logout", logout, summary="Log out")
    add_route(router, "GET", "/api/v1/auth/me", me, summary="The caller's user")
    add_route(router, "POST", "/api/v1/auth/refresh", refresh, summary="Refresh JWT")
