"""Webhook routes (wispanel-api.md §8): list (always paginated), create (the only
answer carrying the secret), get, patch, delete; lean envelope ``{success, data}``
and lean errors ``{success: false, error, code}`` whatever the panel's envelope.

API keys need scope ``all``; a non-admin sees and changes only its own hooks.
"""

import json
import re
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.auth import Principal
from bridge.simulator.context import json_response, panel_of, principal_of
from bridge.simulator.errors import json_bytes
from bridge.simulator.pagination import paginate
from bridge.simulator.panel import Panel
from bridge.simulator.records import Webhook
from bridge.simulator.routing import add_route, obj
from bridge.simulator.webhooks import new_webhook

_PATTERN_RE = re.compile(r"^(\*|[a-z_]+\.(\*|[a-z_]+))$")


class _LeanError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        body = {"success": False, "error": self.message, "code": self.code}
        return Response(
            json_bytes(body), status_code=self.status, media_type="application/json"
        )


def _invalid(message: str) -> _LeanError:
    return _LeanError(400, "VALIDATION_ERROR", message)


def _require_all_scope(principal: Principal) -> None:
    if principal.key is not None and "all" not in principal.key.permissions:
        raise _LeanError(
            403, "FORBIDDEN", "API key is not scoped for 'webhooks' on this request"
        )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise _invalid("Invalid JSON body") from None
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object")
    return body


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("URL is required")
    url = value.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise _invalid("scheme must be http or https")
    if not rest or rest.startswith("/"):
        raise _invalid("URL must name a host")
    return url


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _invalid("At least one event pattern is required")
    for pattern in value:
        if not isinstance(pattern, str) or not _PATTERN_RE.match(pattern):
            raise _invalid(f"Invalid event pattern: {pattern!r}")
    return list(dict.fromkeys(value))


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid("enabled must be a boolean")
    return value


def _find(panel: Panel, principal: Principal, hook_id: str) -> Webhook:
    hook = panel.state.webhooks.get(hook_id)
    # Someone else's hook is "not found": ids of other owners are not disclosed.
    if hook is None or (principal.role != "admin" and hook.owner != principal.username):
        raise _LeanError(404, "NOT_FOUND", "Webhook not found")
    return hook


def _ok(data: Any, status: int = 200) -> Response:
    return json_response({"success": True, "data": data}, status=status)


async def list_webhooks(request: Request) -> Response:
    """List the caller's webhooks (admins: all), always paginated."""
    panel, principal = panel_of(request), principal_of(request)
    try:
        _require_all_scope(principal)
        hooks = [
            h.to_json(panel.fmt)
            for h in panel.state.webhooks.values()
            if principal.role == "admin" or h.owner == principal.username
        ]
        return json_response(paginate(hooks, request.query_params))
    except _LeanError as exc:
        return exc.response()


async def create_webhook(request: Request) -> Response:
    """Subscribe ``url`` to ``events``; the answer is the only one with the secret."""
    panel, principal = panel_of(request), principal_of(request)
    try:
        _require_all_scope(principal)
        body = await _body(request)
        url = _url(body.get("url"))
        events = _events(body.get("events"))
        enabled = _enabled(body.get("enabled", True))
    except _LeanError as exc:
        return exc.response()
    hook = new_webhook(principal.username, url, events, panel.now())
    hook.enabled = enabled
    panel.state.webhooks[hook.id] = hook
    return _ok(hook.to_json(panel.fmt, secret=True), status=201)


async def show_webhook(request: Request, hook_id: str) -> Response:
    """Return one webhook (secret redacted)."""
    panel, principal = panel_of(request), principal_of(request)
    try:
        _require_all_scope(principal)
        return _ok(_find(panel, principal, hook_id).to_json(panel.fmt))
    except _LeanError as exc:
        return exc.response()


async def update_webhook(request: Request, hook_id: str) -> Response:
    """Change ``url``, ``events`` or ``enabled`` (the secret cannot be rotated)."""
    panel, principal = panel_of(request), principal_of(request)
    try:
        _require_all_scope(principal)
        hook = _find(panel, principal, hook_id)
        body = await _body(request)
        url = _url(body["url"]) if "url" in body else hook.url
        events = _events(body["events"]) if "events" in body else hook.events
        enabled = _enabled(body["enabled"]) if "enabled" in body else hook.enabled
    except _LeanError as exc:
        return exc.response()
    hook.url, hook.events, hook.enabled = url, events, enabled
    return _ok(hook.to_json(panel.fmt))


async def delete_webhook(request: Request, hook_id: str) -> Response:
    """Remove a webhook; its queued deliveries still run out."""
    panel, principal = panel_of(request), principal_of(request)
    try:
        _require_all_scope(principal)
        hook = _find(panel, principal, hook_id)
    except _LeanError as exc:
        return exc.response()
    del panel.state.webhooks[hook.id]
    return json_response({"success": True})


def register(router: APIRouter) -> None:
    """Add the webhook routes to ``router``."""
    item = "/api/v1/webhooks/{hook_id}"
    fields = {"url": "string", "events": "string[]", "enabled": "boolean"}
    add_route(
        router,
        "GET",
        "/api/v1/webhooks/",
        list_webhooks,
        summary="List webhooks (paginated {success, data, meta})",
        query={"page": "integer", "per_page": "integer"},
    )
    add_route(
        router,
        "POST",
        "/api/v1/webhooks/",
        create_webhook,
        summary="Create a webhook (the secret is returned only here)",
        body=obj({"url": "string", "events": "string[]"}, {"enabled": "boolean"}),
        status=201,
    )
    add_route(router, "GET", item, show_webhook, summary="Get a webhook")
    add_route(
        router,
        "PATCH",
        item,
        update_webhook,
        summary="Update a webhook",
        body=obj(optional=fields),
    )
    add_route(router, "DELETE", item, delete_webhook, summary="Delete a webhook")
