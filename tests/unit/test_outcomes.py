"""design.md §2 row by row: each error class -> the engine's action."""

import pytest

from bridge.domain.model import StepKind
from bridge.errors import RateLimitedError, RateLimiterUnavailableError
from bridge.panel import (
    PanelAlreadyExistsError,
    PanelAuthError,
    PanelBusyError,
    PanelKeyMismatchError,
    PanelNotFoundError,
    PanelNotSentError,
    PanelOutcomeUnknownError,
    PanelRejectedError,
    PanelThrottledError,
)
from bridge.steps import Verdict, outcome_for_error

OP = "create_user"


@pytest.mark.parametrize(
    ("error", "verdict", "sent", "server_fault"),
    [
        (
            PanelThrottledError(OP, retry_after=7, status=429),
            Verdict.THROTTLED,
            False,
            False,
        ),
        (PanelNotSentError(OP), Verdict.UNAVAILABLE, True, True),
        (PanelOutcomeUnknownError(OP, status=502), Verdict.UNAVAILABLE, True, True),
        (PanelBusyError(OP, status=409), Verdict.BUSY, False, False),
        (PanelKeyMismatchError(OP, status=409), Verdict.FAILED, True, False),
        (
            PanelRejectedError(OP, status=400, message="bad"),
            Verdict.FAILED,
            True,
            False,
        ),
        (PanelAuthError(OP, status=401), Verdict.FAILED, True, False),
        (PanelNotFoundError(OP, status=404), Verdict.FAILED, True, False),
        (PanelAlreadyExistsError(OP, status=409), Verdict.FAILED, True, False),
        (RateLimitedError(1.5), Verdict.THROTTLED, False, False),
        (RateLimiterUnavailableError(), Verdict.UNAVAILABLE, False, False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_outcome_table(
    error: Exception, verdict: Verdict, sent: bool, server_fault: bool
) -> None:
    outcome = outcome_for_error(StepKind.CREATE_USER, error)
    assert (outcome.verdict, outcome.sent, outcome.server_fault) == (
        verdict,
        sent,
        server_fault,
    )


def test_throttle_carries_its_retry_after() -> None:
    outcome = outcome_for_error(
        StepKind.CREATE_USER, PanelThrottledError(OP, retry_after=7, status=429)
    )
    assert outcome.retry_after == 7


def test_key_mismatch_is_flagged_as_our_bug() -> None:
    outcome = outcome_for_error(
        StepKind.CREATE_USER, PanelKeyMismatchError(OP, status=409)
    )
    assert outcome.error_code == "idempotency_key_mismatch"


def test_auth_error_flags_the_server() -> None:
    assert outcome_for_error(
        StepKind.CREATE_USER, PanelAuthError(OP, status=401)
    ).auth_fault


def test_404_on_delete_is_the_desired_state() -> None:
    outcome = outcome_for_error(
        StepKind.DELETE_USER, PanelNotFoundError(OP, status=404)
    )
    assert outcome.verdict is Verdict.SUCCEEDED


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (StepKind.SUSPEND_USER, "User is already suspended"),
        (StepKind.UNSUSPEND_USER, "User is already active"),
    ],
)
def test_already_in_desired_state_is_success(kind: StepKind, message: str) -> None:
    outcome = outcome_for_error(
        kind, PanelRejectedError(OP, status=409, message=message)
    )
    assert outcome.verdict is Verdict.SUCCEEDED


def test_other_errors_are_not_swallowed() -> None:
    with pytest.raises(KeyError):
        outcome_for_error(StepKind.CREATE_USER, KeyError("bug"))
