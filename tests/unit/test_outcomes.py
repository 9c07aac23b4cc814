"""design.md §2 row by row: error class -> answer -> the engine's action."""

from datetime import UTC, datetime, timedelta

import pytest

from bridge.domain.model import StepKind
from bridge.domain.states import WaitReason
from bridge.errors import RateLimitedError, RateLimiterUnavailableError
from bridge.outcomes import (
    RULES,
    Answer,
    Verdict,
    answer_of,
    must_read_first,
    rule,
    ssl_poll_delay,
)
from bridge.panel import (
    DEFAULT_ROUTES,
    PanelAlreadyExistsError,
    PanelAlreadyInStateError,
    PanelAuthError,
    PanelBusyError,
    PanelKeyMismatchError,
    PanelNotFoundError,
    PanelNotSentError,
    PanelOutcomeUnknownError,
    PanelRejectedError,
    PanelThrottledError,
)
from bridge.steps import READABLE_KINDS, STEP_OPERATIONS

OP = "create_user"


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (PanelThrottledError(OP, retry_after=7, status=429), Answer.THROTTLED),
        (PanelNotSentError(OP), Answer.NOT_SENT),
        (PanelOutcomeUnknownError(OP, status=502), Answer.UNKNOWN),
        (PanelBusyError(OP, status=409), Answer.BUSY),
        (PanelKeyMismatchError(OP, status=409), Answer.KEY_MISMATCH),
        (PanelRejectedError(OP, status=400, message="bad"), Answer.REJECTED),
        (PanelAuthError(OP, status=401), Answer.AUTH),
        (PanelNotFoundError(OP, status=404), Answer.NOT_FOUND),
        (PanelAlreadyExistsError(OP, status=409), Answer.CONFLICT),
        (PanelAlreadyInStateError("suspend_user", status=409), Answer.IN_STATE),
        (RateLimitedError(1.5), Answer.NO_TOKEN),
        (RateLimiterUnavailableError(), Answer.LIMITER_DOWN),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_each_error_class_names_one_answer(error: Exception, answer: Answer) -> None:
    assert answer_of(StepKind.CREATE_USER, error) is answer


# (answer, verdict, counts an attempt, wait reason, circuit breaker)
TABLE = [
    (Answer.DONE, Verdict.ADVANCE, True, None, False),
    (Answer.IN_STATE, Verdict.ADVANCE, True, None, False),
    (Answer.NO_TOKEN, Verdict.WAIT, False, WaitReason.RATE_LIMITED, False),
    (Answer.LIMITER_DOWN, Verdict.WAIT, False, WaitReason.RETRY_BACKOFF, False),
    (Answer.THROTTLED, Verdict.WAIT, False, WaitReason.RATE_LIMITED, False),
    (Answer.BUSY, Verdict.WAIT, False, WaitReason.PANEL_BUSY, False),
    (Answer.NOT_SENT, Verdict.WAIT, True, WaitReason.RETRY_BACKOFF, True),
    (Answer.UNKNOWN, Verdict.WAIT, True, WaitReason.RETRY_BACKOFF, True),
    (Answer.CONFLICT, Verdict.FAIL, True, None, False),
    (Answer.KEY_MISMATCH, Verdict.FAIL, True, None, False),
    (Answer.REJECTED, Verdict.FAIL, True, None, False),
    (Answer.AUTH, Verdict.WAIT, False, WaitReason.PANEL_AUTH, False),
    (Answer.NOT_FOUND, Verdict.FAIL, True, None, False),
    (Answer.SSL_PENDING, Verdict.WAIT, False, WaitReason.SSL_PENDING, False),
    (Answer.SSL_FAILED, Verdict.FAIL, True, None, False),
    (Answer.SSL_TIMEOUT, Verdict.FAIL, False, None, False),
    (Answer.INTERNAL, Verdict.WAIT, True, WaitReason.RETRY_BACKOFF, False),
]


@pytest.mark.parametrize(
    ("answer", "verdict", "counts", "wait", "circuit"), TABLE, ids=str
)
def test_outcome_table_row(
    answer: Answer,
    verdict: Verdict,
    counts: bool,
    wait: WaitReason | None,
    circuit: bool,
) -> None:
    row = rule(answer, keyed=True)
    assert (row.verdict, row.counts_attempt, row.wait, row.server_fault) == (
        verdict,
        counts,
        wait,
        circuit,
    )


def test_every_answer_has_a_row() -> None:
    assert set(RULES) == set(Answer)
    assert {row[0] for row in TABLE} == set(Answer)


@pytest.mark.parametrize("answer", list(Answer))
def test_only_maybe_executed_answers_owe_a_read_and_only_when_not_keyed(
    answer: Answer,
) -> None:
    maybe_executed = answer in (Answer.UNKNOWN, Answer.INTERNAL)
    assert rule(answer, keyed=False).read_first is maybe_executed
    assert rule(answer, keyed=True).read_first is False


def test_only_rejected_credentials_flag_the_server() -> None:
    assert [a for a in Answer if rule(a, keyed=True).flags_server] == [Answer.AUTH]


def test_404_on_delete_is_the_desired_state() -> None:
    error = PanelNotFoundError("delete_user", status=404)
    assert answer_of(StepKind.DELETE_USER, error) is Answer.IN_STATE
    assert answer_of(StepKind.CHANGE_PACKAGE, error) is Answer.NOT_FOUND


def test_other_errors_are_not_swallowed() -> None:
    with pytest.raises(KeyError):
        answer_of(StepKind.CREATE_USER, KeyError("bug"))


def test_every_step_kind_has_an_operation_and_non_keyed_ones_can_be_read() -> None:
    # A new step kind on a non-keyed endpoint cannot forget its read.
    assert set(STEP_OPERATIONS) == set(StepKind)
    for kind, operation in STEP_OPERATIONS.items():
        if not DEFAULT_ROUTES[operation].honours_key:
            assert kind in READABLE_KINDS, kind


def test_ssl_and_email_are_the_non_keyed_steps_today() -> None:
    non_keyed = {
        kind
        for kind, operation in STEP_OPERATIONS.items()
        if not DEFAULT_ROUTES[operation].honours_key
    }
    assert non_keyed == {StepKind.ISSUE_SSL, StepKind.CREATE_MAILBOX}


NOW = datetime(2026, 11, 29, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("keyed", "flagged", "interrupted", "sent_ago", "expected"),
    [
        (False, False, False, None, False),  # first try sends
        (False, False, True, timedelta(seconds=5), True),  # killed mid-call: read
        (False, True, False, timedelta(seconds=5), True),  # unknown outcome: read
        (True, False, True, timedelta(seconds=5), False),  # keyed: same key again
        (True, True, False, timedelta(seconds=5), True),  # "exists", read owed
        (True, False, False, DAY, True),  # the panel may have forgotten the key
    ],
)
def test_must_read_first(
    keyed: bool,
    flagged: bool,
    interrupted: bool,
    sent_ago: timedelta | None,
    expected: bool,
) -> None:
    assert (
        must_read_first(
            keyed=keyed,
            flagged=flagged,
            interrupted=interrupted,
            first_sent_at=None if sent_ago is None else NOW - sent_ago,
            now=NOW,
            reconcile_after=timedelta(hours=20),
        )
        is expected
    )


def test_ssl_polls_start_short_and_grow_to_the_cap() -> None:
    delays = []
    elapsed = 0.0
    for _ in range(8):
        delay = ssl_poll_delay(elapsed, first=2, cap=15, retry_after=None, timeout=3600)
        delays.append(delay)
        elapsed += delay
    assert delays[0] == 2
    assert delays == sorted(delays)
    assert delays[-1] == 15
    assert elapsed < 60


def test_ssl_poll_honours_retry_after() -> None:
    assert ssl_poll_delay(100, first=2, cap=15, retry_after=3, timeout=3600) == 3
    # The panel knows when the certificate will be ready: beyond the poll cap too.
    assert ssl_poll_delay(100, first=2, cap=15, retry_after=90, timeout=3600) == 90


def test_ssl_poll_never_waits_past_the_timeout() -> None:
    # The look at the timeout is the one that fails the step as ssl_timeout.
    assert ssl_poll_delay(3500, first=2, cap=15, retry_after=900, timeout=3600) == 100
    assert ssl_poll_delay(3590, first=2, cap=15, retry_after=None, timeout=3600) == 10
    assert ssl_poll_delay(3700, first=2, cap=15, retry_after=5, timeout=3600) == 0
