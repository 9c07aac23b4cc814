"""Disk and bandwidth usage (§7.1, ASSUMED): ``GET /api/v1/users/:username/usage``
(admin, or the owning reseller) and the bulk ``GET /api/v1/usage/`` (admin only;
plain array, or paginated with ``page``/``per_page``). Figures are set through the
control API (``POST /_sim/usage``); an account never set reads 0.
"""

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import get_user, require_role
from bridge.simulator.context import json_response, panel_of, principal_of, read_json
from bridge.simulator.pagination import paginate, wants_page
from bridge.simulator.panel import Panel
from bridge.simulator.records import User
from bridge.simulator.routing import add_route

_PERIOD_S = 30 * 86400


@dataclass
class UsageFigures:
    """What the control API set for one account (MB), and when (panel clock)."""

    disk_used_mb: int = 0
    bandwidth_used_mb: int = 0
    measured_at: float | None = None


def usage_json(panel: Panel, user: User) -> dict[str, Any]:
    """Return the usage object of ``user`` as of now."""
    figures = panel.state.usage.get(user.username, UsageFigures())
    now = panel.now()
    # The billing period starts on the account's creation and repeats every 30 days.
    periods = int(max(now - user.created_at, 0) // _PERIOD_S)
    return {
        "username": user.username,
        "disk_used_mb": figures.disk_used_mb,
        "bandwidth_used_mb": figures.bandwidth_used_mb,
        "period_start": panel.fmt(user.created_at + periods * _PERIOD_S),
        "measured_at": panel.fmt(figures.measured_at or now),
    }


async def user_usage(request: Request, username: str) -> Response:
    """One account's usage (admin, or the reseller that created it)."""
    panel, principal = panel_of(request), principal_of(request)
    require_role(principal, "admin", "reseller")
    return json_response(usage_json(panel, get_user(panel, principal, username)))


async def all_usage(request: Request) -> Response:
    """Every hosting account's usage (admin only)."""
    panel, principal = panel_of(request), principal_of(request)
    require_role(principal, "admin")
    rows = [
        usage_json(panel, u) for u in panel.state.users.values() if u.role != "admin"
    ]
    if wants_page(request.query_params):
        return json_response(paginate(rows, request.query_params))
    return json_response(rows)


async def set_usage(request: Request, error: type[Exception]) -> dict[str, Any]:
    """Control API body ``{"username", "disk_used_mb", "bandwidth_used_mb"}``."""
    panel = panel_of(request)
    body = await read_json(request, error)
    username = body.get("username")
    if not isinstance(username, str) or username not in panel.state.users:
        raise error("username: unknown user")
    figures = panel.state.usage.setdefault(username, UsageFigures())
    for name in ("disk_used_mb", "bandwidth_used_mb"):
        value = body.get(name, getattr(figures, name))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise error(f"{name}: a non-negative integer")
        setattr(figures, name, value)
    figures.measured_at = panel.now()
    return usage_json(panel, panel.state.users[username])


def register(router: APIRouter) -> None:
    """Add the usage routes to ``router``."""
    add_route(
        router,
        "GET",
        "/api/v1/users/{username}/usage",
        user_usage,
        summary="Disk and bandwidth usage of one account",
    )
    add_route(
        router,
        "GET",
        "/api/v1/usage/",
        all_usage,
        summary="Usage of every account (array; paginated with page/per_page)",
        query={"page": "integer", "per_page": "integer"},
    )


def register_control(router: APIRouter, error: type[Exception]) -> None:
    """Add ``POST /_sim/usage`` (set an account's figures) to the control router."""

    async def post_usage(request: Request) -> Response:
        return json_response(await set_usage(request, error))

    router.add_api_route("/usage", post_usage, methods=["POST"])
