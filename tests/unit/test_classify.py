"""classify(): the outcome table of design.md §2, one case per row and envelope.

The only tests allowed to construct httpx responses by hand (STYLE.md §2.6).
"""

from email.utils import formatdate
from typing import Any

import httpx
import pytest

from bridge.panel.errors import (
    PanelAlreadyExistsError,
    PanelAlreadyInStateError,
    PanelAuthError,
    PanelBusyError,
    PanelError,
    PanelKeyMismatchError,
    PanelNotFoundError,
    PanelNotSentError,
    PanelOutcomeUnknownError,
    PanelPermanentError,
    PanelRejectedError,
    PanelRetryableError,
    PanelThrottledError,
    classify,
)

NOW = 1_800_000_000.0


def flat(status: int, code: str, text: str) -> dict[str, Any]:
    return {
        "success": False,
        "code": code,
        "error": text,
        "message": text,
        "status": status,
    }


def nested(code: str, text: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": text, "details": {"f": [text]}}}


def lean(code: str, text: str) -> dict[str, Any]:
    return {"success": False, "error": text, "code": code}


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


IN_PROGRESS = "A request with this Idempotency-Key is still in progress"
MISMATCH = "Idempotency-Key reused with a different request body"

# (row of design.md §2, outcome, operation, method, expected class or None)
TABLE: list[tuple[str, Any, str, str, type[PanelError] | None]] = [
    # 2xx (or replayed 2xx) -> store, advance
    ("200", response(200, {"username": "u1"}), "get_user", "GET", None),
    ("201 created", response(201, {"success": True}), "create_user", "POST", None),
    (
        "replayed 201",
        response(201, {"success": True}, {"Idempotent-Replayed": "true"}),
        "create_user",
        "POST",
        None,
    ),
    ("204 empty", httpx.Response(204), "delete_user", "DELETE", None),
    # 429 -> throttled, whatever the method
    (
        "429 flat",
        response(429, flat(429, "RATE_LIMITED", "Too many requests")),
        "create_user",
        "POST",
        PanelThrottledError,
    ),
    (
        "429 on read",
        response(429, nested("RATE_LIMITED", "Too many requests")),
        "get_user",
        "GET",
        PanelThrottledError,
    ),
    # connect error / connect timeout -> not sent
    (
        "connect error",
        httpx.ConnectError("refused"),
        "create_user",
        "POST",
        PanelNotSentError,
    ),
    (
        "connect timeout",
        httpx.ConnectTimeout("slow"),
        "create_user",
        "POST",
        PanelNotSentError,
    ),
    (
        "pool timeout",
        httpx.PoolTimeout("full"),
        "delete_user",
        "DELETE",
        PanelNotSentError,
    ),
    (
        "connect error read",
        httpx.ConnectError("refused"),
        "get_user",
        "GET",
        PanelNotSentError,
    ),
    # read timeout, reset after send, any 5xx on a write -> outcome unknown
    (
        "read timeout",
        httpx.ReadTimeout("slow"),
        "create_user",
        "POST",
        PanelOutcomeUnknownError,
    ),
    (
        "write timeout",
        httpx.WriteTimeout("slow"),
        "change_package",
        "PUT",
        PanelOutcomeUnknownError,
    ),
    (
        "reset after send",
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        "create_user",
        "POST",
        PanelOutcomeUnknownError,
    ),
    (
        "read error",
        httpx.ReadError("reset"),
        "delete_user",
        "DELETE",
        PanelOutcomeUnknownError,
    ),
    (
        "500 on write",
        response(500, flat(500, "INTERNAL_ERROR", "boom")),
        "create_user",
        "POST",
        PanelOutcomeUnknownError,
    ),
    (
        "502 html on write",
        response(502, "<html>bad gateway</html>"),
        "suspend_user",
        "POST",
        PanelOutcomeUnknownError,
    ),
    (
        "503 on delete",
        response(503, None),
        "delete_user",
        "DELETE",
        PanelOutcomeUnknownError,
    ),
    # 5xx or timeout on a read -> not sent
    (
        "500 on read",
        response(500, flat(500, "INTERNAL_ERROR", "boom")),
        "get_user",
        "GET",
        PanelNotSentError,
    ),
    (
        "read timeout on read",
        httpx.ReadTimeout("slow"),
        "get_user",
        "GET",
        PanelNotSentError,
    ),
    (
        "reset on read",
        httpx.RemoteProtocolError("eof"),
        "list_users",
        "GET",
        PanelNotSentError,
    ),
    # 409 "request with this key in progress" -> busy
    (
        "409 in progress flat",
        response(409, flat(409, "CONFLICT", IN_PROGRESS)),
        "create_user",
        "POST",
        PanelBusyError,
    ),
    (
        "409 in progress nested",
        response(409, nested("CONFLICT", IN_PROGRESS)),
        "create_user",
        "POST",
        PanelBusyError,
    ),
    (
        "409 in progress lean",
        response(409, lean("CONFLICT", IN_PROGRESS)),
        "create_domain",
        "POST",
        PanelBusyError,
    ),
    # 409 "already exists" on a create -> reconcile
    (
        "409 exists flat",
        response(409, flat(409, "CONFLICT", "User already exists")),
        "create_user",
        "POST",
        PanelAlreadyExistsError,
    ),
    (
        "409 exists nested",
        response(409, nested("CONFLICT", "Domain already exists")),
        "create_domain",
        "POST",
        PanelAlreadyExistsError,
    ),
    (
        "409 exists lean",
        response(409, lean("CONFLICT", "Email account already exists")),
        "create_mailbox",
        "POST",
        PanelAlreadyExistsError,
    ),
    # 409/422 "key reused with a different body" -> our bug
    (
        "409 mismatch",
        response(409, flat(409, "CONFLICT", MISMATCH)),
        "create_user",
        "POST",
        PanelKeyMismatchError,
    ),
    (
        "422 mismatch",
        response(422, nested("CONFLICT", MISMATCH)),
        "create_user",
        "POST",
        PanelKeyMismatchError,
    ),
    (
        "422 mismatch lean",
        response(422, lean("CONFLICT", MISMATCH)),
        "create_user",
        "POST",
        PanelKeyMismatchError,
    ),
    # 400 / 422 validation; 403 quota, license, scope, ownership -> rejected
    (
        "400 validation flat",
        response(
            400,
            flat(400, "VALIDATION_ERROR", "Username, email, and password are required"),
        ),
        "create_user",
        "POST",
        PanelRejectedError,
    ),
    (
        "422 validation nested",
        response(422, nested("VALIDATION_ERROR", "The domain field is required.")),
        "create_domain",
        "POST",
        PanelRejectedError,
    ),
    (
        "400 validation lean",
        response(400, lean("VALIDATION_ERROR", "Domain is required")),
        "create_mailbox",
        "POST",
        PanelRejectedError,
    ),
    (
        "403 quota",
        response(403, flat(403, "QUOTA_EXCEEDED", "Domain limit reached")),
        "create_domain",
        "POST",
        PanelRejectedError,
    ),
    (
        "403 license",
        response(
            403, flat(403, "LICENSE_LIMIT", "License limit reached: max_users (30)")
        ),
        "create_user",
        "POST",
        PanelRejectedError,
    ),
    (
        "403 scope",
        response(
            403, lean("FORBIDDEN", "API key is not scoped for 'users' on this request")
        ),
        "create_user",
        "POST",
        PanelRejectedError,
    ),
    (
        "403 ownership",
        response(403, nested("FORBIDDEN", "Not your user")),
        "suspend_user",
        "POST",
        PanelRejectedError,
    ),
    (
        "403 on read",
        response(403, flat(403, "FORBIDDEN", "forbidden")),
        "license",
        "GET",
        PanelRejectedError,
    ),
    # 401 -> auth
    (
        "401 flat",
        response(401, flat(401, "UNAUTHORIZED", "Token revoked")),
        "get_user",
        "GET",
        PanelAuthError,
    ),
    (
        "401 write",
        response(401, nested("UNAUTHORIZED", "Invalid API key")),
        "create_user",
        "POST",
        PanelAuthError,
    ),
    ("401 non-json", response(401, "nope"), "create_user", "POST", PanelAuthError),
    # 404 on delete; already suspended / already active: typed here, and
    # bridge.outcomes calls them "desired state reached"
    (
        "404 on delete",
        response(404, flat(404, "NOT_FOUND", "User not found")),
        "delete_user",
        "DELETE",
        PanelNotFoundError,
    ),
    (
        "already suspended",
        response(409, flat(409, "CONFLICT", "User is already suspended")),
        "suspend_user",
        "POST",
        PanelAlreadyInStateError,
    ),
    (
        "already active",
        response(400, lean("VALIDATION_ERROR", "User is already active")),
        "unsuspend_user",
        "POST",
        PanelAlreadyInStateError,
    ),
    # any other 404 -> not found
    (
        "404 read",
        response(404, flat(404, "NOT_FOUND", "User not found")),
        "get_user",
        "GET",
        PanelNotFoundError,
    ),
    (
        "404 write",
        response(404, nested("NOT_FOUND", "Domain not found")),
        "issue_ssl",
        "POST",
        PanelNotFoundError,
    ),
    # beyond the table: explicit choices
    (
        "409 unexplained",
        response(409, flat(409, "CONFLICT", "Conflict")),
        "create_user",
        "POST",
        PanelRejectedError,
    ),
    ("408 declined", response(408, None), "create_user", "POST", PanelNotSentError),
    (
        "redirect",
        response(302, None, {"Location": "/login"}),
        "create_user",
        "POST",
        PanelRejectedError,
    ),
]


@pytest.mark.parametrize(
    ("outcome", "operation", "method", "expected"),
    [pytest.param(o, op, m, e, id=row) for row, o, op, m, e in TABLE],
)
def test_outcome_table_row_maps_to_its_class(
    outcome: Any, operation: str, method: str, expected: type[PanelError] | None
) -> None:
    error = classify(outcome, operation=operation, method=method, now=NOW)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error.operation == operation


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "17"}, 17.0),
        ({"Retry-After": "17", "X-RateLimit-Reset": str(int(NOW) + 40)}, 17.0),
        ({"X-RateLimit-Reset": str(int(NOW) + 40)}, 40.0),
        ({"Retry-After": formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({}, 60.0),
        ({"Retry-After": "soon"}, 60.0),
    ],
    ids=["retry-after", "retry-after-wins", "reset", "http-date", "default", "garbage"],
)
def test_throttled_retry_after_prefers_retry_after_then_reset_then_60s(
    headers: dict[str, str], expected: float
) -> None:
    error = classify(
        response(429, flat(429, "RATE_LIMITED", "Too many requests"), headers),
        operation="get_user",
        method="GET",
        now=NOW,
    )
    assert isinstance(error, PanelThrottledError)
    assert error.retry_after == pytest.approx(expected)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            flat(400, "VALIDATION_ERROR", "Domain is required"),
            "VALIDATION_ERROR",
            "Domain is required",
        ),
        (
            nested("VALIDATION_ERROR", "The domain field is required."),
            "VALIDATION_ERROR",
            "The domain field is required.",
        ),
        (
            lean("VALIDATION_ERROR", "URL is required"),
            "VALIDATION_ERROR",
            "URL is required",
        ),
        (
            "<html><body>Bad Request</body></html>",
            None,
            "HTTP 400 Bad Request (non-JSON body)",
        ),
        (["unexpected", "list"], None, "HTTP 400 Bad Request"),
    ],
    ids=["flat", "nested", "lean", "non-json", "json-not-object"],
)
def test_every_envelope_yields_code_and_message(
    body: Any, code: str | None, message: str
) -> None:
    error = classify(response(400, body), operation="create_domain", method="POST")
    assert isinstance(error, PanelRejectedError)
    assert error.status == 400
    assert error.panel_code == code
    assert error.message == message


def test_retryable_and_permanent_branches_follow_the_tree() -> None:
    retryable = [
        PanelNotSentError,
        PanelThrottledError,
        PanelBusyError,
        PanelOutcomeUnknownError,
    ]
    permanent = [
        PanelRejectedError,
        PanelAuthError,
        PanelNotFoundError,
        PanelAlreadyExistsError,
        PanelKeyMismatchError,
    ]
    assert all(issubclass(c, PanelRetryableError) for c in retryable)
    assert all(issubclass(c, PanelPermanentError) for c in permanent)


def test_error_text_is_short_and_scrubbed_of_secrets() -> None:
    body = flat(
        400, "VALIDATION_ERROR", "bad token Bearer wsp_0123456789abcdef" + "x" * 500
    )
    error = classify(response(400, body), operation="create_user", method="POST")
    assert error is not None
    assert "wsp_0123456789abcdef" not in str(error)
    assert str(error).startswith("create_user 400 VALIDATION_ERROR: ")
    assert len(str(error)) < 400


def test_transport_error_message_names_the_exception() -> None:
    error = classify(httpx.ConnectError("refused"), operation="get_user", method="GET")
    assert error.status is None
    assert error.panel_code is None
    assert str(error) == "get_user: ConnectError: refused"
