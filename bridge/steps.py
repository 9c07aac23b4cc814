"""One panel call per step kind, plus reconcile reads; errors become `StepOutcome`s.

This is the one place that maps panel answers to engine actions (design.md §2).
It does I/O through the PanelClient only; the engine persists the outcome.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bridge.domain.model import StepKind
from bridge.errors import RateLimitedError, RateLimiterUnavailableError
from bridge.logging import redact_value
from bridge.panel import (
    PanelAlreadyExistsError,
    PanelAuthError,
    PanelBusyError,
    PanelClient,
    PanelError,
    PanelKeyMismatchError,
    PanelNotFoundError,
    PanelNotSentError,
    PanelOutcomeUnknownError,
    PanelRejectedError,
    PanelResponse,
    PanelThrottledError,
)

SSL_DONE = "active"
SSL_WAITING = frozenset({"pending", "processing"})
# A certificate in these states does not exist for reconciliation purposes.
SSL_ABSENT = frozenset({"none", "failed", "expired"})


class Verdict(StrEnum):
    SUCCEEDED = "succeeded"  # advance
    POLL = "poll"  # sent fine, result not final yet (SSL pending): look again later
    THROTTLED = "throttled"  # nothing executed; wait retry_after, no attempt used
    BUSY = "busy"  # same key still running on the panel; retry shortly
    UNAVAILABLE = "unavailable"  # not sent / unknown outcome: backoff, same key
    FAILED = "failed"  # permanent: fail the step, surface to ops


@dataclass(frozen=True, slots=True)
class StepCall:
    """Everything needed to run one step, detached from the session."""

    kind: StepKind
    params: Mapping[str, str]
    body: Mapping[str, Any]
    secret: Mapping[str, str]
    idempotency_key: str
    reconcile_first: bool
    polling: bool


@dataclass(frozen=True, slots=True)
class StepOutcome:
    verdict: Verdict
    response: dict[str, Any] | None = None
    retry_after: float | None = None
    sent: bool = True  # whether this counts as an attempt
    server_fault: bool = False  # counts towards the server's circuit breaker
    auth_fault: bool = False
    error_code: str | None = None
    error_message: str | None = None
    panel_status: int | None = None
    adopted: bool = False
    needs_reconcile: bool = False
    window_restarted: bool = False


class ConflictError(Exception):
    """The resource exists on the panel but is not the one we ordered."""


def execute(client: PanelClient, call: StepCall) -> StepOutcome:
    """Run one step and classify what happened (never raises a panel error)."""
    absent = False
    try:
        if call.polling:
            return _poll_ssl(client, call)
        if call.reconcile_first:
            found = _reconcile(client, call)
            if found is not None:
                return _adopted(call, found)
            absent = True
        outcome = _after_send(call, _send(client, call))
    except PanelAlreadyExistsError as exc:
        outcome = _reconcile_conflict(client, call, exc)
    except ConflictError as exc:
        outcome = _failed("conflict", str(exc), 409)
    except (PanelError, RateLimitedError, RateLimiterUnavailableError) as exc:
        outcome = outcome_for_error(call.kind, exc)
    # Read as absent: the old send never took effect and the panel has forgotten
    # its key, so the key's window starts again. The next try must not read
    # first again: read + send back to back would always find the shared budget
    # spent on the read.
    return replace(outcome, window_restarted=True) if absent else outcome


def outcome_for_error(kind: StepKind, exc: Exception) -> StepOutcome:  # noqa: PLR0911
    """design.md §2 as code: each error class -> what the engine does (one return
    per row of the outcome table)."""
    if isinstance(exc, RateLimitedError):
        return StepOutcome(Verdict.THROTTLED, retry_after=exc.retry_after, sent=False)
    if isinstance(exc, RateLimiterUnavailableError):
        return StepOutcome(
            Verdict.UNAVAILABLE, sent=False, error_code="rate_limiter_unavailable"
        )
    if not isinstance(exc, PanelError):
        raise exc
    base = StepOutcome(
        Verdict.FAILED,
        error_code=exc.panel_code or type(exc).__name__,
        error_message=str(exc),
        panel_status=exc.status,
    )
    if isinstance(exc, PanelThrottledError):
        return replace(
            base, verdict=Verdict.THROTTLED, retry_after=exc.retry_after, sent=False
        )
    if isinstance(exc, PanelBusyError):
        return replace(base, verdict=Verdict.BUSY, sent=False)
    if isinstance(exc, PanelNotSentError | PanelOutcomeUnknownError):
        return replace(base, verdict=Verdict.UNAVAILABLE, server_fault=True)
    if isinstance(exc, PanelNotFoundError) and kind is StepKind.DELETE_USER:
        return StepOutcome(Verdict.SUCCEEDED, response={"already": "absent"})
    if isinstance(exc, PanelAuthError):
        return replace(base, auth_fault=True)
    if isinstance(exc, PanelRejectedError) and _already_in_state(kind, exc.message):
        return StepOutcome(Verdict.SUCCEEDED, response={"already": exc.message})
    if isinstance(exc, PanelKeyMismatchError):
        return replace(base, error_code="idempotency_key_mismatch")
    return base


def _already_in_state(kind: StepKind, message: str) -> bool:
    text = message.lower()
    if kind is StepKind.SUSPEND_USER:
        return "already suspended" in text
    if kind is StepKind.UNSUSPEND_USER:
        return "already active" in text or "not suspended" in text
    return False


def _failed(code: str, message: str, status: int | None = None) -> StepOutcome:
    return StepOutcome(
        Verdict.FAILED, error_code=code, error_message=message, panel_status=status
    )


def _send(client: PanelClient, call: StepCall) -> PanelResponse:  # noqa: PLR0911
    key = call.idempotency_key
    body, params, secret = call.body, call.params, call.secret
    match call.kind:
        case StepKind.CREATE_USER:
            return client.create_user(
                body["username"],
                body["email"],
                secret["password"],
                body["package"],
                idempotency_key=key,
            )
        case StepKind.CREATE_DOMAIN:
            return client.create_domain(
                body["domain"], body["username"], idempotency_key=key
            )
        case StepKind.ISSUE_SSL:
            return client.issue_ssl(params["domain"], idempotency_key=key)
        case StepKind.CREATE_MAILBOX:
            return client.create_mailbox(
                body["domain"],
                body["username"],
                secret["password"],
                int(body.get("quota_mb", 0)),
                idempotency_key=key,
            )
        case StepKind.SUSPEND_USER:
            return client.suspend_user(
                params["username"], body.get("reason", "other"), idempotency_key=key
            )
        case StepKind.UNSUSPEND_USER:
            return client.unsuspend_user(params["username"], idempotency_key=key)
        case StepKind.DELETE_USER:
            return client.delete_user(params["username"], idempotency_key=key)
        case StepKind.CHANGE_PACKAGE:
            return client.change_package(
                params["username"], body["package"], idempotency_key=key
            )
        case StepKind.CHANGE_PASSWORD:
            return client.change_password(
                params["username"], secret["password"], idempotency_key=key
            )
    msg = f"no executor for step kind {call.kind}"
    raise ValueError(msg)


def _as_dict(data: Any) -> dict[str, Any]:
    if isinstance(data, dict):
        return dict(redact_value(data))
    return {"data": redact_value(data)}


def _after_send(call: StepCall, response: PanelResponse) -> StepOutcome:
    data = _as_dict(response.data)
    if call.kind is StepKind.ISSUE_SSL:
        return _ssl_state(data)
    return StepOutcome(Verdict.SUCCEEDED, response=data)


def _ssl_state(cert: dict[str, Any]) -> StepOutcome:
    status = str(cert.get("status", "")).lower()
    if status == SSL_DONE:
        return StepOutcome(Verdict.SUCCEEDED, response=cert)
    if status in SSL_WAITING:
        return StepOutcome(Verdict.POLL, response=cert)
    return _failed("ssl_failed", f"certificate status {status or 'unknown'}")


def _poll_ssl(client: PanelClient, call: StepCall) -> StepOutcome:
    return _ssl_state(_as_dict(client.get_ssl(call.params["domain"]).data))


def _adopted(call: StepCall, found: dict[str, Any]) -> StepOutcome:
    if call.kind is StepKind.ISSUE_SSL:
        state = _ssl_state(found)
        return StepOutcome(state.verdict, response=state.response, adopted=True)
    return StepOutcome(
        Verdict.SUCCEEDED, response={"adopted": True, **found}, adopted=True
    )


def _reconcile_conflict(
    client: PanelClient, call: StepCall, exc: PanelAlreadyExistsError
) -> StepOutcome:
    """409 "already exists": read it; adopt if it is ours, else fail as a conflict."""
    try:
        found = _reconcile(client, call)
    except ConflictError as conflict:
        return _failed("conflict", str(conflict), 409)
    except (PanelError, RateLimitedError, RateLimiterUnavailableError) as read_exc:
        # Re-sending the create would only replay the 409 and burn budget: the
        # next try goes straight to the read.
        return replace(outcome_for_error(call.kind, read_exc), needs_reconcile=True)
    if found is None:
        # Said "exists" but reads as absent: treat as unknown and try again later.
        return StepOutcome(
            Verdict.UNAVAILABLE,
            error_code="reconcile_absent",
            error_message=str(exc),
            needs_reconcile=True,
        )
    return _adopted(call, found)


def _reconcile(client: PanelClient, call: StepCall) -> dict[str, Any] | None:
    """Read the step's resource by natural key: ours -> it, absent -> None.

    Raises ConflictError when it exists but does not match the order.
    """
    try:
        match call.kind:
            case StepKind.CREATE_USER:
                return _match_user(client, call.body)
            case StepKind.CREATE_DOMAIN:
                return _match_domain(client, call.body)
            case StepKind.ISSUE_SSL:
                cert = _as_dict(client.get_ssl(call.params["domain"]).data)
                return None if str(cert.get("status")).lower() in SSL_ABSENT else cert
            case StepKind.CREATE_MAILBOX:
                return _match_mailbox(client, call.body)
    except PanelNotFoundError:
        return None
    return None


def _match_user(client: PanelClient, body: Mapping[str, Any]) -> dict[str, Any]:
    user = _as_dict(client.get_user(body["username"]).data)
    same_email = str(user.get("email", "")).lower() == str(body["email"]).lower()
    same_package = user.get("package") == body["package"]
    if not (same_email and same_package):
        msg = f"user {body['username']!r} already exists on the panel and is not ours"
        raise ConflictError(msg)
    return user


def _match_domain(client: PanelClient, body: Mapping[str, Any]) -> dict[str, Any]:
    domain = _as_dict(client.get_domain(body["domain"]).data)
    if domain.get("owner") != body["username"]:
        msg = f"domain {body['domain']!r} already exists and belongs to another owner"
        raise ConflictError(msg)
    return domain


def _match_mailbox(
    client: PanelClient, body: Mapping[str, Any]
) -> dict[str, Any] | None:
    address = f"{body['username']}@{body['domain']}".lower()
    for account in client.list_mailboxes(body["domain"]).items:
        if str(account.get("email", "")).lower() == address:
            return _as_dict(account)
    return None
