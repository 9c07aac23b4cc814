"""API errors of the simulated panel and their three wire envelopes.

ApiError(status, code, message)        # any refusal; rendered per panel config
└── ApiValidationError                 # status comes from config.validation_status
"""

import json
from typing import Any

from starlette.responses import Response

from bridge.simulator.config import SimulatorConfig

_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


def code_for_status(status: int) -> str:
    """Return the panel's error code for an HTTP status (5xx: INTERNAL_ERROR)."""
    if status >= 500:  # noqa: PLR2004 - the 5xx class
        return "INTERNAL_ERROR"
    return _CODES.get(status, "ERROR")


class ApiError(Exception):
    """A refusal the panel answers with an error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or code_for_status(status)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status_for(self, config: SimulatorConfig) -> int:
        """Return the HTTP status to answer with under ``config``."""
        del config
        return self.status


class ApiValidationError(ApiError):
    """Invalid input: 400 or 422 depending on ``validation_status``."""

    def __init__(self, message: str, field: str | None = None) -> None:
        details = {field: [message]} if field else None
        super().__init__(400, message, code="VALIDATION_ERROR", details=details)

    def status_for(self, config: SimulatorConfig) -> int:
        """Return the configured validation status."""
        return config.validation_status


def error_body(
    config: SimulatorConfig,
    status: int,
    code: str,
    message: str,
    details: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Build the error body in the panel's selected envelope."""
    if config.envelope == "nested":
        return {"error": {"code": code, "message": message, "details": details or {}}}
    if config.envelope == "lean":
        return {"success": False, "error": message, "code": code}
    return {
        "success": False,
        "code": code,
        "error": message,
        "message": message,
        "status": status,
    }


def json_bytes(payload: object) -> bytes:
    """Serialise a JSON body the way every simulator response is serialised."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(config: SimulatorConfig, error: ApiError) -> Response:
    """Render ``error`` as an HTTP response under ``config``."""
    status = error.status_for(config)
    body = error_body(config, status, error.code, error.message, error.details)
    return Response(
        json_bytes(body),
        status_code=status,
        media_type="application/json",
        headers=error.headers,
    )
