"""The ``/_sim`` control API of a panel: faults, clock, config, reset and inspection.

No authentication; errors are ``400 {"error": "<text>"}``. See the package
docstring for every endpoint and field.
"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.clock import format_utc
from bridge.simulator.context import json_response, panel_of, read_json
from bridge.simulator.faults import Faults
from bridge.simulator.panel import Panel
from bridge.simulator.routes_domains import domain_json
from bridge.simulator.routes_usage import register_control as usage_control
from bridge.simulator.webhooks import emit

PanelLister = Callable[[], list[dict[str, Any]]]


class ControlError(Exception):
    """A malformed control request."""


async def _body(request: Request) -> dict[str, Any]:
    return await read_json(request, ControlError)


def _state(panel: Panel) -> dict[str, Any]:
    state, now = panel.state, panel.now()
    users = {}
    for name, user in state.users.items():
        users[name] = user.to_json(panel.fmt) | {
            "token_version": user.token_version,
            "totp_enabled": user.totp_secret is not None,
        }
    keys = [k.to_json(panel.fmt) | {"owner": k.owner} for k in state.api_keys.values()]
    certs = {n: c.to_json(panel.fmt, now) for n, c in state.certificates.items()}
    return {
        "users": users,
        "packages": {n: p.to_json() for n, p in state.packages.items()},
        "api_keys": keys,
        "domains": {n: domain_json(panel, d) for n, d in state.domains.items()},
        "certificates": certs,
        "mailboxes": {a: m.to_json(panel.fmt) for a, m in state.mailboxes.items()},
        "sessions": {u: s.info() for u, s in state.sessions.items()},
        "idempotency_keys": panel.idempotency.count(),
    }


def _clock(panel: Panel) -> dict[str, Any]:
    now = panel.now()
    return {
        "now": format_utc(now),
        "now_unix": now,
        "offset_seconds": panel.clock.offset_s,
    }


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f"{name} must be a number")
    return float(value)


def _inspection_routes(router: APIRouter, list_panels: PanelLister) -> None:

    @router.get("/state")
    async def state(request: Request) -> Response:
        return json_response(_state(panel_of(request)))

    @router.get("/requests")
    async def requests(request: Request) -> Response:
        return json_response(panel_of(request).requests)

    @router.get("/ledger")
    async def ledger(request: Request) -> Response:
        return json_response(panel_of(request).state.ledger)

    @router.get("/credentials")
    async def credentials(request: Request) -> Response:
        config = panel_of(request).config
        return json_response(
            {
                "api_key": config.api_key,
                "username": config.username,
                "password": config.password,
                "totp_secret": config.totp_secret,
            }
        )

    @router.get("/panels")
    async def panels() -> Response:
        return json_response(list_panels())

    @router.get("/webhooks")
    async def webhooks(request: Request) -> Response:
        panel = panel_of(request)
        hooks = [
            h.to_json(panel.fmt, secret=True) for h in panel.state.webhooks.values()
        ]
        deliveries = [d.to_json() for d in panel.deliveries]
        return json_response({"webhooks": hooks, "deliveries": deliveries})

    @router.post("/webhooks/emit")
    async def emit_event(request: Request) -> Response:
        panel = panel_of(request)
        body = await _body(request)
        event, data, subject = (
            body.get("event"),
            body.get("data", {}),
            body.get("subject"),
        )
        if not isinstance(event, str) or not event:
            raise ControlError("event must be a non-empty string")
        if not isinstance(data, dict):
            raise ControlError("data must be an object")
        if subject is not None and not isinstance(subject, str):
            raise ControlError("subject must be a string")
        return json_response({"deliveries": emit(panel, event, data, subject)})


def _fault_routes(router: APIRouter) -> None:
    @router.get("/faults")
    async def faults(request: Request) -> Response:
        panel = panel_of(request)
        return json_response(panel.faults.to_json(panel.now()))

    @router.post("/faults")
    async def set_faults(request: Request) -> Response:
        panel = panel_of(request)
        try:
            panel.faults.update(await _body(request), panel.now())
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        return json_response(panel.faults.to_json(panel.now()))

    @router.post("/faults/clear")
    async def clear_faults(request: Request) -> Response:
        panel = panel_of(request)
        panel.faults = Faults()
        return json_response(panel.faults.to_json(panel.now()))

    @router.post("/fail-next")
    async def fail_next(request: Request) -> Response:
        panel = panel_of(request)
        body = await _body(request)
        count, status = body.get("count", 1), body.get("status", 500)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ControlError("count must be a non-negative integer")
        if not isinstance(status, int) or isinstance(status, bool):
            raise ControlError("status must be an integer")
        if not 400 <= status <= 599:  # noqa: PLR2004 - error statuses only
            raise ControlError("status must be 400-599")
        panel.faults.fail_next(count, status)
        return json_response(panel.faults.to_json(panel.now()))


def _setting_routes(router: APIRouter) -> None:
    @router.post("/revoke")
    async def revoke(request: Request) -> Response:
        body = await _body(request)
        username = body.get("username")
        if username is not None and not isinstance(username, str):
            raise ControlError("username must be a string")
        versions = panel_of(request).revoke(username)
        return json_response({"success": True, "token_versions": versions})

    @router.get("/clock")
    async def clock(request: Request) -> Response:
        return json_response(_clock(panel_of(request)))

    @router.post("/clock")
    async def advance_clock(request: Request) -> Response:
        panel = panel_of(request)
        panel.clock.advance(_number(await _body(request), "advance_seconds"))
        return json_response(_clock(panel))

    @router.get("/config")
    async def config(request: Request) -> Response:
        return json_response(panel_of(request).config.to_json())

    @router.post("/config")
    async def set_config(request: Request) -> Response:
        panel = panel_of(request)
        try:
            panel.configure(await _body(request))
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        return json_response(panel.config.to_json())

    @router.post("/reset")
    async def reset(request: Request) -> Response:
        panel_of(request).reset()
        return json_response({"success": True})


def build_control_app(list_panels: PanelLister) -> FastAPI:
    """Return the control app (one for all panels; the panel comes from the scope)."""
    router = APIRouter(prefix="/_sim")
    _inspection_routes(router, list_panels)
    _fault_routes(router)
    _setting_routes(router)
    usage_control(router, ControlError)
    app = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.include_router(router)

    async def control_error(request: Request, exc: Exception) -> Response:
        del request
        return json_response({"error": str(exc)}, status=400)

    app.add_exception_handler(ControlError, control_error)
    return app
