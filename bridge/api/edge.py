"""The API's edge: what every request passes before a route's code sees it.

- `reject_nul_in_target`: a NUL (or invalid Unicode) in the path or query is a 422
  before routing; PostgreSQL text cannot hold NUL, so such a value must never
  reach a query.
- `EdgeRoute`, the base route class of every router: body size cap (413), the
  route class's `authorize` hook (signature, bearer token) BEFORE the body is
  parsed, then the same NUL/Unicode check over every string of a JSON body (422).
  It also documents the statuses it produces, so a new route is guarded and
  documented by default (a test asserts every route is an `EdgeRoute`).
- `method_not_allowed`: 405 and OPTIONS answers with the path's full `Allow`.
"""

import json
import re
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.container import Services

_JSON_CONTENT = re.compile(r"^application/([\w.+-]+\+)?json\b", re.IGNORECASE)


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[FieldError]


def field_errors(loc: Sequence[str | int], msg: str, kind: str) -> dict[str, Any]:
    """The 422 body shape every validation failure uses (FastAPI's, minus `input`)."""
    return {"detail": [{"loc": list(loc), "msg": msg, "type": kind}]}


def _bad_text(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "NUL characters are not allowed"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid Unicode (lone surrogate)"
    return None


def _strings(document: Any) -> Iterator[tuple[list[str | int], str]]:
    """Every string (keys too) of a parsed JSON document with its location.

    Iterative: a document json.loads accepted may be nested deeper than the
    remaining Python stack.
    """
    stack: list[tuple[list[str | int], Any]] = [([], document)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            yield loc, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield [*loc, key], key
                stack.append(([*loc, key], item))
        elif isinstance(value, list):
            stack.extend(([*loc, i], item) for i, item in enumerate(value))


def check_target(scope: Scope) -> dict[str, Any] | None:
    """The 422 body for a NUL/invalid character in the path or query, else None."""
    reason = _bad_text(scope.get("path", ""))
    if reason:
        return field_errors(["path"], reason, "value_error")
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        reason = _bad_text(name) or _bad_text(value)
        if reason:
            return field_errors(
                ["query", name.replace("\x00", "")], reason, "value_error"
            )
    return None


class RejectBadTarget:
    """ASGI middleware: 422 for a NUL/invalid character in the path or query."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = check_target(scope)
            if problem is not None:
                response = JSONResponse(problem, status_code=422)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def check_json_body(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The 422 body for a NUL/invalid string in a JSON body, else None.

    A body that is not JSON is left to the route's own parsing (its 400/422).
    """
    if not body or (content_type and not _JSON_CONTENT.match(content_type)):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    for loc, value in _strings(document):
        reason = _bad_text(value)
        if reason:
            return field_errors(["body", *loc], reason, "value_error")
    return None


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


_BASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorOut, "description": "Invalid parameter or body"},
}
_BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Body is not parseable"},
    413: {"model": ErrorOut, "description": "Body over the size limit"},
}


class EdgeRoute(APIRoute):
    """Every route's guard: size cap, `authorize` before parsing, string checks.

    Subclasses set `auth_responses` and override `authorize`.
    """

    auth_responses: ClassVar[dict[int | str, dict[str, Any]]] = {}

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        responses = dict(kwargs.pop("responses", None) or {})
        defaults = {**_BASE_RESPONSES, **self.auth_responses}
        if any(m in {"POST", "PUT", "PATCH"} for m in kwargs.get("methods") or ()):
            defaults.update(_BODY_RESPONSES)
        super().__init__(path, endpoint, responses={**defaults, **responses}, **kwargs)

    async def authorize(self, request: Request, body: bytes) -> None:
        """Raise HTTPException unless the request may proceed (public: always)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            body = await _capped_body(request)
            await self.authorize(request, body)
            problem = check_json_body(body, request.headers.get("content-type", ""))
            if problem is not None:
                return JSONResponse(problem, status_code=422)
            return await handler(request)

        return guarded


async def _capped_body(request: Request) -> bytes:
    """The raw body, or 413 past BRIDGE_INTAKE_MAX_BODY_BYTES (checked before
    reading when Content-Length says so)."""
    limit = services_of(request).settings.intake_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail="body too large")
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, detail="body too large"
            )
        chunks.append(chunk)
    body = b"".join(chunks)
    # Starlette's body cache: the route's own parser reads it from here.
    request._body = body
    return body


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at the request's path, plus OPTIONS."""
    methods: set[str] = {"OPTIONS"}
    # Included routers nest (FastAPI >= 0.165): walk the effective routes.
    for route in iter_route_contexts(app.routes):
        match, _ = route.matches({**scope, "method": "OPTIONS"})
        if match is not Match.NONE:
            methods.update(route.methods or ())
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=lambda m: order.index(m) if m in order else len(order))


def method_not_allowed(app: FastAPI, request: Request) -> Response:
    """OPTIONS: 204 with `Allow`; any other unserved method: 405 with `Allow`.

    Starlette's own 405 lists only the first matching route's methods, but GET,
    PUT and DELETE of one path are separate routes here.
    """
    allow = ", ".join(allowed_methods(app, request.scope))
    if request.method == "OPTIONS":
        return Response(
            status_code=status.HTTP_204_NO_CONTENT, headers={"Allow": allow}
        )
    return JSONResponse(
        {"detail": "method not allowed"},
        status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
        headers={"Allow": allow},
    )
