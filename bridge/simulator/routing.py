"""Route registration for the panel API, with the metadata openapi.yaml is built from.

Collection roots are served with and without the trailing slash (no redirect);
the form registered first (the documented one) is the only one in the spec.
"""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

Endpoint = Callable[..., Any]


def obj(
    required: dict[str, str] | None = None, optional: dict[str, str] | None = None
) -> dict[str, Any]:
    """Return a JSON-object schema from ``{field: type}`` maps (``x[]``: array of x)."""
    props = (required or {}) | (optional or {})
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: _type(kind) for name, kind in props.items()},
    }
    if required:
        schema["required"] = sorted(required)
    return schema


def _type(kind: str) -> dict[str, Any]:
    if kind.endswith("[]"):
        return {"type": "array", "items": {"type": kind[:-2]}}
    return {"type": kind}


def add_route(
    router: APIRouter,
    method: str,
    path: str,
    endpoint: Endpoint,
    *,
    summary: str,
    body: dict[str, Any] | None = None,
    status: int = 200,
    query: dict[str, str] | None = None,
) -> None:
    """Register ``endpoint``; a path not ending in a parameter is also served with
    the trailing slash toggled (outside the spec)."""
    extra: dict[str, Any] = {
        "responses": {
            str(status): {"description": summary},
            "default": {"$ref": "#/components/responses/Error"},
        }
    }
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    if query:
        extra["parameters"] = [
            {"name": name, "in": "query", "required": False, "schema": _type(kind)}
            for name, kind in query.items()
        ]
    tag = path.removeprefix("/api/v1/").split("/", 1)[0]
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        summary=summary,
        tags=[tag],
        openapi_extra=extra,
        response_class=Response,
    )
    if "{" not in path.rsplit("/", 1)[-1] or path.endswith("/"):
        twin = path.rstrip("/") if path.endswith("/") else path + "/"
        router.add_api_route(
            twin,
            endpoint,
            methods=[method],
            include_in_schema=False,
            response_class=Response,
        )
