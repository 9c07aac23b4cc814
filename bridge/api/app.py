"""`create_app(services)`: the FastAPI app, its middleware and exception handlers."""

import uuid

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge import __version__
from bridge.api import (
    admin_routes,
    admin_services_routes,
    intake_routes,
    metrics_routes,
    packages_routes,
    panel_events_routes,
    payments_routes,
    sso_routes,
    usage_routes,
)
from bridge.api.edge import EdgeRoute, RejectBadTarget, method_not_allowed
from bridge.container import Services
from bridge.errors import (
    IdempotencyConflictError,
    InvalidOrderError,
    InvalidTransitionError,
    NotFoundError,
    RateLimiterUnavailableError,
)

log = structlog.get_logger(__name__)

# What a 503 for an unreachable database tells the client to wait (seconds).
_DATABASE_RETRY_AFTER_S = 5


def create_app(services: Services) -> FastAPI:
    """Build the API around already-built services (tests pass their own)."""
    app = FastAPI(title="wispanel-bridge", version=__version__)
    # Routes declared on the app itself (health) pass the same edge as the rest.
    app.router.route_class = EdgeRoute
    app.state.services = services
    app.add_middleware(RejectBadTarget)
    app.add_middleware(BindRequestId)

    app.include_router(intake_routes.router)
    app.include_router(metrics_routes.router)
    app.include_router(payments_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(sso_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(packages_routes.router)
    app.include_router(admin_services_routes.router)
    app.include_router(panel_events_routes.router)
    _install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        responses={503: {"description": "The database or Redis is not answering"}},
    )
    def readyz() -> JSONResponse:
        """Readiness: the database and Redis answer."""
        checks = {"database": _check_db(services), "redis": _check_redis(services)}
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    return app


class BindRequestId:
    """ASGI middleware: a request id in every log line of the request and its answer.

    Plain ASGI rather than `@app.middleware("http")`: Starlette's
    BaseHTTPMiddleware runs the app in a second task with memory streams, which
    cost about a tenth of the API's CPU per intake request (bench/intake.py).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")


def _install_error_handlers(app: FastAPI) -> None:
    """Map use-case errors to HTTP in one place."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:  # noqa: PLR2004 - Method Not Allowed
            return method_not_allowed(app, request)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes each bad `input`: that could be a password.
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(InvalidOrderError)
    async def invalid(_: Request, exc: InvalidOrderError) -> JSONResponse:
        detail = [{"loc": ["body", exc.field], "msg": exc.reason, "type": "invalid"}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(InvalidTransitionError)
    async def transition(_: Request, exc: InvalidTransitionError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(IdempotencyConflictError)
    async def conflict(_: Request, exc: IdempotencyConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(RateLimiterUnavailableError)
    async def unavailable(_: Request, exc: RateLimiterUnavailableError) -> JSONResponse:
        return JSONResponse({"detail": "temporarily unavailable"}, status_code=503)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)  # a connection closed under us
    @app.exception_handler(PoolTimeoutError)
    async def database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # The database is down, restarting, locked or out of connections: a
        # retry later will do (a repeated order replays), so 503, not a bare 500.
        # Only the error's class is logged and nothing is echoed: the driver's
        # text quotes the statement, its parameters and the server's address.
        cause = getattr(exc, "orig", None) or exc
        log.warning("database_unavailable", error=type(cause).__name__)
        return JSONResponse(
            {"detail": "database unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": str(_DATABASE_RETRY_AFTER_S)},
        )


def _check_db(services: Services) -> str:
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness_check_failed", component="database", error=str(exc))
        return "unavailable"
    return "ok"


def _check_redis(services: Services) -> str:
    try:
        services.redis.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness_check_failed", component="redis", error=str(exc))
        return "unavailable"
    return "ok"
