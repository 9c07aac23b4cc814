"""Per-request context for route handlers: the panel, the caller and the JSON body.

The ASGI dispatcher and the pipeline put the panel and principal into the scope;
handlers read them only through these accessors.
"""

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bridge.simulator.auth import Principal
from bridge.simulator.errors import ApiError, ApiValidationError, json_bytes
from bridge.simulator.panel import Panel

PANEL_KEY = "wispanel.panel"
PRINCIPAL_KEY = "wispanel.principal"


def panel_of(request: Request) -> Panel:
    """Return the panel this request addresses."""
    panel = request.scope.get(PANEL_KEY)
    if not isinstance(panel, Panel):
        raise TypeError("request was not routed through the simulator dispatcher")
    return panel


def principal_of(request: Request) -> Principal:
    """Return the authenticated caller (set by the pipeline)."""
    principal = request.scope.get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        raise ApiError(401, "Missing authorization")
    return principal


async def read_json(
    request: Request, error: Callable[[str], Exception] = ApiValidationError
) -> dict[str, Any]:
    """Return the JSON object body ({} when empty).

    Raises:
        `error` (ApiValidationError for the panel API): not a JSON object.
    """
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise error("Invalid JSON body") from exc
    if not isinstance(body, dict):
        raise error("Request body must be a JSON object")
    return body


def json_response(payload: object, status: int = 200) -> Response:
    """Return a compact JSON response."""
    return Response(
        json_bytes(payload), status_code=status, media_type="application/json"
    )


def text_field(body: dict[str, Any], name: str) -> str:
    """Return a string field stripped, or '' when absent or not a string."""
    value = body.get(name)
    return value.strip() if isinstance(value, str) else ""


def int_field(body: dict[str, Any], name: str, default: int) -> int:
    """Return an integer field (``default`` when absent).

    Raises:
        ApiValidationError: present but not an integer.
    """
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiValidationError(f"{name} must be an integer", name)
    return value


def bool_field(body: dict[str, Any], name: str, default: bool) -> bool:
    """Return a boolean field (``default`` when absent).

    Raises:
        ApiValidationError: present but not a boolean.
    """
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ApiValidationError(f"{name} must be a boolean", name)
    return value
