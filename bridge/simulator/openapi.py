"""The OpenAPI 3.0 document served at ``GET /openapi.yaml``, built from the routes.

Only ``/api/v1`` routes are described; the ``/_sim`` control API is documented
in the package docstring.
"""

import re
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute

from bridge.simulator.routes_system import PANEL_VERSION

_PARAM_RE = re.compile(r"{(\w+)}")
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PUBLIC = frozenset({"/api/v1/auth/login"})

_ERROR_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "description": "flat envelope (newer docs; default)",
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "code": {"type": "string"},
                "error": {"type": "string"},
                "message": {"type": "string"},
                "status": {"type": "integer"},
            },
        },
        {
            "description": "nested envelope (older docs)",
            "type": "object",
            "properties": {"error": {"type": "object"}},
        },
        {
            "description": "lean envelope (webhook pages)",
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "error": {"type": "string"},
                "code": {"type": "string"},
            },
        },
    ]
}


def _operation(route: APIRoute, method: str) -> dict[str, Any]:
    extra = dict(route.openapi_extra or {})
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM_RE.findall(route.path)
    ]
    params += extra.pop("parameters", [])
    if method in _MUTATING and route.path not in _PUBLIC:
        params.append({"$ref": "#/components/parameters/IdempotencyKey"})
    operation: dict[str, Any] = {
        "summary": route.summary or route.name,
        "operationId": f"{method.lower()}_{route.name}",
        "tags": list(route.tags),
    }
    if params:
        operation["parameters"] = params
    operation.update(extra)
    if route.path in _PUBLIC:
        operation["security"] = []
    return operation


def build_spec(api: FastAPI) -> dict[str, Any]:
    """Return the OpenAPI document describing ``api``'s schema-visible routes."""
    paths: dict[str, dict[str, Any]] = {}
    for route in api.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(route.methods or ()):
            paths.setdefault(route.path, {})[method.lower()] = _operation(route, method)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "WisPanel API (simulator)",
            "version": PANEL_VERSION,
            "description": "Routes served by the bridge's WisPanel simulator. "
            "Authenticated responses carry X-RateLimit-Limit, X-RateLimit-Remaining "
            "and X-RateLimit-Reset; session JWTs may be refreshed via X-New-Token.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A wsp_ API key, or a JWT from /api/v1/auth/login",
                }
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "1-255 printable ASCII chars; retries within 24 h "
                    "replay the stored response",
                    "schema": {"type": "string", "maxLength": 255},
                }
            },
            "responses": {
                "Error": {
                    "description": "Error in the panel's configured envelope",
                    "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                }
            },
        },
    }


def render_yaml(api: FastAPI) -> bytes:
    """Return the OpenAPI document as YAML bytes."""
    return yaml.safe_dump(build_spec(api), sort_keys=False, allow_unicode=True).encode()
