"""The panel branch of the error tree and `classify()`, design.md §2 in code.

    PanelError(operation, status, panel_code, message)
    ├── PanelRetryableError              the same step may run again later, same key
    │   ├── PanelNotSentError            nothing reached the panel, or a read failed
    │   ├── PanelThrottledError          429 (retry_after: Retry-After/Reset/60 s)
    │   ├── PanelBusyError               409 "request with this key in progress"
    │   └── PanelOutcomeUnknownError     read timeout, reset after send, 5xx on a write
    └── PanelPermanentError              retrying cannot help
        ├── PanelRejectedError           400/422 validation, 403 quota/license/scope
        ├── PanelAuthError               401 (after the one re-login in login mode)
        ├── PanelNotFoundError           404 (on a delete: the engine calls it done)
        ├── PanelAlreadyInStateError     "already suspended" / "already active"
        ├── PanelAlreadyExistsError      409 "already exists": the engine reconciles
        └── PanelKeyMismatchError        same key, different body (409/422): our bug

Classification happens here and nowhere else; what the engine does with each
class (including "desired state reached") is decided in `bridge.outcomes`. A message
is the panel's own text (scrubbed of anything like a secret), never our request body.
"""

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, overload

import httpx

from bridge.errors import BridgeError
from bridge.logging import redact_text

DEFAULT_RETRY_AFTER = 60.0
_ABSOLUTE_RESET_MIN = 1_000_000_000
_MAX_MESSAGE = 300
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MISMATCH_STATUSES = frozenset({HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY})
# The panel declined before running the request (timeout waiting for it, too early).
_DECLINED_STATUSES = frozenset({HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_EARLY})

# The three meanings of a 409 (and the mismatch 422), told apart by the panel's code
# and message text as the contract words them (wispanel-api.md §5, §7).
_IN_PROGRESS = re.compile(r"in progress|IN_PROGRESS", re.IGNORECASE)
_KEY_MISMATCH = re.compile(
    r"different request body|reused|KEY_MISMATCH|KEY_REUSED", re.IGNORECASE
)
_ALREADY_EXISTS = re.compile(r"already exists?|ALREADY_EXISTS|DUPLICATE", re.IGNORECASE)
# Desired state already holds (design.md §2, "404 on delete; already suspended ...").
_ALREADY_IN_STATE = {
    "suspend_user": re.compile(r"already suspended", re.IGNORECASE),
    "unsuspend_user": re.compile(r"already active|not suspended", re.IGNORECASE),
}


class PanelError(BridgeError):
    """A panel call did not succeed; typed data, short text, no secrets."""

    def __init__(
        self,
        operation: str,
        *,
        status: int | None = None,
        panel_code: str | None = None,
        message: str = "",
    ) -> None:
        self.operation = operation
        self.status = status
        self.panel_code = panel_code
        self.message = redact_text(message)[:_MAX_MESSAGE]
        super().__init__(self.operation, self.status, self.panel_code, self.message)

    def __str__(self) -> str:
        parts = [self.operation]
        if self.status is not None:
            parts.append(str(self.status))
        if self.panel_code:
            parts.append(self.panel_code)
        head = " ".join(parts)
        return f"{head}: {self.message}" if self.message else head


class PanelRetryableError(PanelError):
    """The same step may run again later with the same idempotency key."""


class PanelNotSentError(PanelRetryableError):
    """Nothing reached the panel (or a safe read failed): retry with backoff."""


class PanelThrottledError(PanelRetryableError):
    """429: not executed; retry after `retry_after` seconds, no attempt consumed."""

    def __init__(
        self,
        operation: str,
        *,
        retry_after: float,
        status: int | None = 429,
        panel_code: str | None = None,
        message: str = "",
    ) -> None:
        super().__init__(
            operation, status=status, panel_code=panel_code, message=message
        )
        self.retry_after = retry_after


class PanelBusyError(PanelRetryableError):
    """A request with this key is still running on the panel: retry shortly."""


class PanelOutcomeUnknownError(PanelRetryableError):
    """The request may or may not have run: retry with the same key."""


class PanelPermanentError(PanelError):
    """Retrying cannot help: fail the step and surface it to an operator."""


class PanelRejectedError(PanelPermanentError):
    """Validation (400/422) or refusal (403: quota, license, scope, ownership)."""


class PanelAuthError(PanelPermanentError):
    """401 (after the single re-login in login mode): flag the server."""


class PanelNotFoundError(PanelPermanentError):
    """404 on something that should exist."""


class PanelAlreadyInStateError(PanelPermanentError):
    """The panel refused because the desired state already holds (suspend twice)."""


class PanelAlreadyExistsError(PanelPermanentError):
    """409 "already exists" on a create: the engine reads it and adopts if ours."""


class PanelKeyMismatchError(PanelPermanentError):
    """The idempotency key was reused with a different body: our bug, alert."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The panel's error code and message, from whichever envelope it used."""

    code: str | None
    message: str


@overload
def classify(
    outcome: httpx.HTTPError, *, operation: str, method: str, now: float | None = None
) -> PanelError: ...


@overload
def classify(
    outcome: httpx.Response, *, operation: str, method: str, now: float | None = None
) -> PanelError | None: ...


def classify(
    outcome: httpx.Response | httpx.HTTPError,
    *,
    operation: str,
    method: str,
    now: float | None = None,
) -> PanelError | None:
    """Map a panel response or transport error to design.md §2; None = success.

    `now` (Unix seconds) only matters for a 429 that carries X-RateLimit-Reset but
    no Retry-After; it defaults to the local clock.
    """
    method = method.upper()
    if isinstance(outcome, httpx.HTTPError):
        return _classify_exception(
            outcome, operation=operation, is_read=method in _READ_METHODS
        )
    return _classify_response(outcome, operation=operation, method=method, now=now)


def _classify_exception(
    exc: httpx.HTTPError, *, operation: str, is_read: bool
) -> PanelError:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # Raised before a byte of the request left: the panel cannot have run it.
    if isinstance(
        exc,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | httpx.ProxyError
        | httpx.UnsupportedProtocol
        | httpx.LocalProtocolError,
    ):
        return PanelNotSentError(operation, message=detail)
    if is_read:
        # Reads change nothing, so a failed one is simply not done.
        return PanelNotSentError(operation, message=detail)
    return PanelOutcomeUnknownError(operation, message=detail)


def _classify_response(  # noqa: PLR0911 - one return per row of the outcome table
    response: httpx.Response, *, operation: str, method: str, now: float | None
) -> PanelError | None:
    status = response.status_code
    if response.is_success:
        return None
    env = read_envelope(response)
    kw: dict[str, Any] = {"status": status, "panel_code": env.code}
    text = f"{env.code or ''} {env.message}"
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        wait = retry_after_seconds(response.headers, now=now)
        return PanelThrottledError(
            operation, retry_after=wait, message=env.message, **kw
        )
    if response.is_server_error:
        cls = PanelNotSentError if method in _READ_METHODS else PanelOutcomeUnknownError
        return cls(operation, message=env.message, **kw)
    if status == HTTPStatus.UNAUTHORIZED:
        return PanelAuthError(operation, message=env.message, **kw)
    in_state = _ALREADY_IN_STATE.get(operation)
    if in_state is not None and in_state.search(text):
        return PanelAlreadyInStateError(operation, message=env.message, **kw)
    if status == HTTPStatus.NOT_FOUND:
        return PanelNotFoundError(operation, message=env.message, **kw)
    if status in _MISMATCH_STATUSES and _KEY_MISMATCH.search(text):
        return PanelKeyMismatchError(operation, message=env.message, **kw)
    if status == HTTPStatus.CONFLICT:
        return _classify_conflict(operation, env, text, kw)
    if status in _DECLINED_STATUSES:
        return PanelNotSentError(operation, message=env.message, **kw)
    # 400/422 validation, 403 refusals and anything else a retry cannot fix
    # (other 4xx, an unexpected redirect: we never follow them).
    return PanelRejectedError(operation, message=env.message, **kw)


def _classify_conflict(
    operation: str, env: Envelope, text: str, kw: dict[str, Any]
) -> PanelError:
    if _IN_PROGRESS.search(text):
        return PanelBusyError(operation, message=env.message, **kw)
    if _ALREADY_EXISTS.search(text):
        return PanelAlreadyExistsError(operation, message=env.message, **kw)
    # An unexplained conflict: guessing "already exists" would make the engine adopt
    # something that may not be ours, so an operator looks at it.
    return PanelRejectedError(operation, message=env.message, **kw)


def read_envelope(response: httpx.Response) -> Envelope:
    """Extract (code, message) from the flat, nested or lean envelope, or plain text."""
    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    try:
        body = response.json()
    except ValueError:
        # Not JSON (a proxy's HTML page): its text is not the panel's word, and may
        # echo anything, so only the status line is kept.
        return Envelope(code=None, message=f"{reason} (non-JSON body)")
    if not isinstance(body, Mapping):
        return Envelope(code=None, message=reason)
    error = body.get("error")
    if isinstance(error, Mapping):  # nested: {"error": {"code", "message", "details"}}
        return Envelope(
            code=_text(error.get("code")),
            message=_text(error.get("message")) or reason,
        )
    code = _text(body.get("code"))
    message = _text(body.get("message")) or _text(error) or reason
    if code is None and body.get("existing_session") is True:
        code = "EXISTING_SESSION"
    return Envelope(code=code, message=message)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None) -> float:
    """Seconds to wait after a 429: Retry-After, else Reset - now, else 60."""
    value = headers.get("retry-after")
    if value is not None:
        parsed = _parse_retry_after(value, now)
        if parsed is not None:
            return parsed
    reset = headers.get("x-ratelimit-reset")
    if reset is not None:
        try:
            at = float(reset)
        except ValueError:
            at = math.nan
        if math.isfinite(at):
            if (
                at < _ABSOLUTE_RESET_MIN
            ):  # a delta, defensively; the contract says epoch
                return max(at, 0.0)
            current = time.time() if now is None else now
            return max(at - current, 0.0)
    return DEFAULT_RETRY_AFTER


def _parse_retry_after(value: str, now: float | None) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    return text or None
