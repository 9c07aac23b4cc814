"""`servers test`: reachability, TLS, auth, version, license and rate-limit headers.

A failed test is a report (reachable? authenticated? why not?), not an exception;
only an exhausted budget raises, because trying again later is the answer. The
license's `max_users` is remembered on the server row for placement.
"""

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bridge import audit
from bridge.container import Services
from bridge.db.models import Server
from bridge.db.servers import get_server_by_name
from bridge.errors import ConfigurationError, RateLimitedError
from bridge.logging import redact_value
from bridge.packages import PackagesUnavailableError, refresh_packages
from bridge.panel import ConnectionReport, PanelAuthError, PanelError
from bridge.webhook_subscriptions import sync_subscription


def _base(server: Server) -> dict[str, Any]:
    return {
        "server": server.name,
        "url": server.base_url,
        "auth_mode": server.auth_mode.value,
        "ok": False,
        "reachable": False,
        "authenticated": False,
        "identity": None,
        "version": None,
        "license": None,
        "rate_limit": None,
        "tls": None,
        "notes": [],
        "error": None,
        "packages": None,
    }


def _from_report(result: dict[str, Any], report: ConnectionReport) -> dict[str, Any]:
    identity = redact_value(report.me)
    return {
        **result,
        "ok": True,
        "reachable": True,
        "authenticated": True,
        "identity": {
            k: identity.get(k) for k in ("username", "role", "email") if k in identity
        },
        "version": report.version,
        "license": _license(report.license),
        "rate_limit": asdict(report.rate_limit),
        "tls": asdict(report.tls) if report.tls else None,
        "notes": list(report.notes),
    }


def _license(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The license limits, flat, with usage; never the license key itself."""
    if data is None:
        return None
    inner = data.get("license")
    limits = inner if isinstance(inner, dict) else data
    view = {k: v for k, v in limits.items() if k != "key"}
    usage = data.get("usage")
    if isinstance(usage, dict):
        view["usage"] = usage
    return dict(redact_value(view))


def _from_error(result: dict[str, Any], exc: PanelError) -> dict[str, Any]:
    # A status means the panel answered: reachable, TLS fine, something else wrong.
    answered = exc.status is not None
    return {
        **result,
        "reachable": answered,
        "authenticated": answered and not isinstance(exc, PanelAuthError),
        "error": str(exc),
    }


def _license_max_users(report: dict[str, Any]) -> int | None:
    value = (report.get("license") or {}).get("max_users")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _refresh_packages(
    services: Services,
    name: str,
    sleep: Callable[[float], None] | None,
    notes: list[str],
) -> int | None:
    """Refresh the cached package list; a failure is a note, not a failed test."""
    try:
        return len(refresh_packages(services, name, sleep=sleep).packages)
    except (PackagesUnavailableError, RateLimitedError) as exc:
        notes.append(f"packages: {exc}")
        return None


def probe_server(
    services: Services,
    name: str,
    actor: str,
    *,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Probe server `name` with three budgeted calls and a TLS handshake.

    `sleep` lets the CLI wait for budget; without it RateLimitedError is raised.
    Raises NotFoundError.
    """
    with services.sessions() as session:
        server = get_server_by_name(session, name)
        result = _base(server)
        try:
            client = services.panels.client_for(server)
        except ConfigurationError as exc:
            client = None
            result["error"] = str(exc)
    if client is not None:
        try:
            result = _from_report(result, client.test_connection(sleep=sleep))
        except PanelError as exc:
            result = _from_error(result, exc)
    if result["ok"]:
        result["packages"] = _refresh_packages(services, name, sleep, result["notes"])
    with services.sessions.begin() as session:
        server = get_server_by_name(session, name)
        max_users = _license_max_users(result)
        if max_users is not None:
            server.license_max_users = max_users
        if result["ok"]:
            # The credentials work again: the orders waiting with panel_auth go.
            server.auth_error = None
        audit.record(
            session,
            actor=actor,
            action="server_tested",
            detail={"server": name, "ok": result["ok"], "error": result["error"]},
        )
    if result["ok"]:
        result["webhook"] = sync_subscription(services, name, sleep=sleep, actor=actor)
    return result
