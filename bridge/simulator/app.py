"""The simulator's ASGI app: routes each request to its panel (root or ``/p/<name>``),
then to the API pipeline, the ``/_sim`` control API or ``/openapi.yaml``.
"""

import dataclasses
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bridge.simulator import (
    routes_auth,
    routes_domains,
    routes_email,
    routes_keys,
    routes_packages,
    routes_resellers,
    routes_ssl,
    routes_sso,
    routes_system,
    routes_usage,
    routes_users,
    routes_webhooks,
)
from bridge.simulator.config import SimulatorConfig
from bridge.simulator.context import PANEL_KEY, panel_of
from bridge.simulator.control import build_control_app
from bridge.simulator.errors import ApiError, error_response, json_bytes
from bridge.simulator.openapi import render_yaml
from bridge.simulator.panel import Panel
from bridge.simulator.pipeline import ApiPipeline


def build_api_app() -> FastAPI:
    """Return the panel API routes as one FastAPI app shared by all panels."""
    app = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    for module in (
        routes_auth,
        routes_users,
        routes_resellers,
        routes_keys,
        routes_packages,
        routes_domains,
        routes_ssl,
        routes_email,
        routes_system,
        routes_sso,
        routes_usage,
        routes_webhooks,
    ):
        module.register(app.router)

    async def api_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, ApiError):
            raise exc
        return error_response(panel_of(request).config, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        text = {404: "Not found", 405: "Method not allowed"}.get(status, "Error")
        return error_response(panel_of(request).config, ApiError(status, text))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    return app


def _named_config(config: SimulatorConfig, name: str) -> SimulatorConfig:
    """Give a named panel its own generated key and password (and state file)."""
    state_file = None
    if config.state_file:
        path = Path(config.state_file)
        state_file = str(path.with_name(f"{path.stem}.{name}{path.suffix}"))
    return dataclasses.replace(
        config, api_key=None, password=None, state_file=state_file
    )


class SimulatorApp:
    """ASGI app hosting the root panel and ``panels`` named ones (p1..pN)."""

    def __init__(self, config: SimulatorConfig | None = None, panels: int = 0) -> None:
        base = config or SimulatorConfig()
        self.root = Panel(None, base)
        self.panels = {
            f"p{i}": Panel(f"p{i}", _named_config(base, f"p{i}"))
            for i in range(1, panels + 1)
        }
        self.api = build_api_app()
        self.pipeline = ApiPipeline(self.api)
        self.control = build_control_app(self.describe_panels)
        self._openapi: bytes | None = None

    def panel(self, name: str | None) -> Panel:
        """Return the root panel (``None``) or a named one.

        Raises:
            KeyError: no panel has that name.
        """
        return self.root if name is None else self.panels[name]

    def describe_panels(self) -> list[dict[str, Any]]:
        """Return the name and path prefix of every panel."""
        everyone = [self.root, *self.panels.values()]
        return [{"name": p.name, "prefix": p.prefix} for p in everyone]

    def openapi_yaml(self) -> bytes:
        """Return the (cached) OpenAPI document."""
        if self._openapi is None:
            self._openapi = render_yaml(self.api)
        return self._openapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        panel, path = self._resolve(scope["path"])
        if panel is None:
            await _plain(send, 404, {"error": "Unknown panel"})
            return
        inner = dict(scope)
        inner["path"] = path
        inner["raw_path"] = path.encode()
        inner[PANEL_KEY] = panel
        if path == "/openapi.yaml":
            await _send(send, 200, self.openapi_yaml(), "application/yaml")
        elif path == "/_sim" or path.startswith("/_sim/"):
            await self.control(inner, receive, send)
        elif path.startswith("/api/"):
            await self.pipeline(panel, inner, receive, send)
        elif path.startswith(routes_sso.CONSUME_PREFIX) and scope["method"] == "GET":
            status, body, headers = routes_sso.consume(
                panel, path.removeprefix(routes_sso.CONSUME_PREFIX)
            )
            await _send(send, status, body, "application/json", headers)
        else:
            await _plain(send, 404, {"error": "Not found"})

    def _resolve(self, path: str) -> tuple[Panel | None, str]:
        if not path.startswith("/p/"):
            return self.root, path
        name, _, rest = path[3:].partition("/")
        panel = self.panels.get(name)
        return panel, "/" + rest


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _plain(send: Send, status: int, payload: object) -> None:
    await _send(send, status, json_bytes(payload), "application/json")


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: dict[str, str] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
