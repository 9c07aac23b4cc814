"""System routes: license (limits and usage, admin only) and version info."""

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.access import require_role
from bridge.simulator.context import json_response, panel_of, principal_of
from bridge.simulator.routing import add_route

PANEL_VERSION = "1.4.2"


async def show_license(request: Request) -> Response:
    """Return the license with its limits and current usage."""
    require_role(principal_of(request), "admin")
    panel = panel_of(request)
    state, config = panel.state, panel.config
    return json_response(
        {
            "license": {
                "key": "WISP-****SIM0",
                "tier": "free",
                "is_valid": True,
                "has_license_file": True,
                "needs_refresh": False,
                "max_users": config.license_max_users,
                "max_domains": config.license_max_domains,
                "max_databases": -1,
                "expires_at": None,
                "valid_until": None,
                "last_checked": None,
            },
            "usage": {
                "accounts": sum(1 for u in state.users.values() if u.role != "admin"),
                "databases": 0,
                "domains": len(state.domains),
            },
        }
    )


async def version_info(request: Request) -> Response:
    """Return the panel version this simulator imitates."""
    del request
    return json_response(
        {
            "version": PANEL_VERSION,
            "channel": "stable",
            "build_time": "2026-05-18T00:00:00Z",
            "git_commit": "simulator",
            "info": "WisPanel simulator",
        }
    )


def register(router: APIRouter) -> None:
    """Add the system routes to ``router``."""
    add_route(router, "GET", "/api/v1/license/", show_license, summary="License")
    add_route(router, "GET", "/api/v1/version/info", version_info, summary="Version")
