"""design.md §2 as one table: (step kind, panel answer) -> what the engine does.

The panel client only turns transport and HTTP into typed errors
(`bridge.panel.errors`); `answer_of()` names the answer and `rule()` says, for that
answer and that step, the verdict, whether it counts as an attempt, what the order
waits for and whether the next try must read the resource before any re-send. The
engine consults this module and decides nothing of its own.

Whether a step's endpoint honours Idempotency-Key (`Route.honours_key`) is the one
input that separates keyed steps (a re-send replays) from non-keyed ones (SSL,
email: a re-send may execute twice, so an unknown outcome is settled by a read).
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bridge.domain.model import StepKind
from bridge.domain.states import WaitReason
from bridge.errors import RateLimitedError, RateLimiterUnavailableError
from bridge.panel import (
    PanelAlreadyExistsError,
    PanelAlreadyInStateError,
    PanelAuthError,
    PanelBusyError,
    PanelError,
    PanelKeyMismatchError,
    PanelNotFoundError,
    PanelNotSentError,
    PanelOutcomeUnknownError,
    PanelThrottledError,
)


class Answer(StrEnum):
    """What happened to one step run, in the words of the outcome table."""

    DONE = "done"  # 2xx (or a replayed 2xx), or an adopted resource
    IN_STATE = "in_state"  # desired state already holds (404 on delete, ...)
    NO_TOKEN = "no_token"  # noqa: S105 - our shared budget said no: nothing was sent
    LIMITER_DOWN = "limiter_down"  # Redis unreachable: fail closed, nothing sent
    THROTTLED = "throttled"  # 429: not executed
    BUSY = "busy"  # 409 "request with this key in progress"
    NOT_SENT = "not_sent"  # connect error, or a read that failed
    UNKNOWN = "unknown"  # timeout/reset after send, 5xx on a write, killed mid-call
    CONFLICT = "conflict"  # exists on the panel and is not provably ours
    KEY_MISMATCH = "key_mismatch"  # same key, different body: our bug
    REJECTED = "rejected"  # 400/422 validation, 403 quota/license/scope/ownership
    AUTH = "auth"  # 401 after the one re-login: the server's credentials
    NOT_FOUND = "not_found"  # 404 on something that should exist
    SSL_PENDING = "ssl_pending"  # certificate issued, not ready yet: poll
    SSL_FAILED = "ssl_failed"  # the panel reports the certificate failed
    SSL_TIMEOUT = "ssl_timeout"  # still pending after BRIDGE_SSL_TIMEOUT_SECONDS
    INTERNAL = "internal"  # an unexpected exception in the bridge itself


class Verdict(StrEnum):
    ADVANCE = "advance"  # the step is done: run the next one
    WAIT = "wait"  # back to the database with next_attempt_at
    FAIL = "fail"  # the step and its order fail; an operator decides


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the outcome table."""

    verdict: Verdict
    wait: WaitReason | None = None
    counts_attempt: bool = False  # consumes one of BRIDGE_MAX_ATTEMPTS
    server_fault: bool = False  # counts towards the server's circuit breaker
    backoff: bool = False  # the delay comes from the retry policy
    read_first: bool = False  # the next try reads the resource before re-sending
    flags_server: bool = False  # the server's credentials are rejected


_WAIT = Verdict.WAIT
_W = WaitReason

# Unknown outcomes of keyed steps retry with the same key (the panel replays);
# `rule()` turns on read_first for non-keyed steps.
RULES: dict[Answer, Rule] = {
    Answer.DONE: Rule(Verdict.ADVANCE, counts_attempt=True),
    Answer.IN_STATE: Rule(Verdict.ADVANCE, counts_attempt=True),
    Answer.NO_TOKEN: Rule(_WAIT, _W.RATE_LIMITED),
    Answer.LIMITER_DOWN: Rule(_WAIT, _W.RETRY_BACKOFF, backoff=True),
    Answer.THROTTLED: Rule(_WAIT, _W.RATE_LIMITED),
    Answer.BUSY: Rule(_WAIT, _W.PANEL_BUSY),
    Answer.NOT_SENT: Rule(
        _WAIT, _W.RETRY_BACKOFF, counts_attempt=True, server_fault=True, backoff=True
    ),
    Answer.UNKNOWN: Rule(
        _WAIT, _W.RETRY_BACKOFF, counts_attempt=True, server_fault=True, backoff=True
    ),
    Answer.CONFLICT: Rule(Verdict.FAIL, counts_attempt=True),
    Answer.KEY_MISMATCH: Rule(Verdict.FAIL, counts_attempt=True),
    Answer.REJECTED: Rule(Verdict.FAIL, counts_attempt=True),
    Answer.AUTH: Rule(_WAIT, _W.PANEL_AUTH, flags_server=True),
    Answer.NOT_FOUND: Rule(Verdict.FAIL, counts_attempt=True),
    # Polls of a pending certificate cost no attempt: SSL_TIMEOUT bounds them.
    Answer.SSL_PENDING: Rule(_WAIT, _W.SSL_PENDING),
    Answer.SSL_FAILED: Rule(Verdict.FAIL, counts_attempt=True),
    Answer.SSL_TIMEOUT: Rule(Verdict.FAIL),
    Answer.INTERNAL: Rule(_WAIT, _W.RETRY_BACKOFF, counts_attempt=True, backoff=True),
}

# Answers after which a re-send of a non-keyed step might execute it twice.
_MAYBE_EXECUTED = frozenset({Answer.UNKNOWN, Answer.INTERNAL})

# Step kinds whose desired state is "absent": a 404 means done.
_DELETES = frozenset({StepKind.DELETE_USER, StepKind.DELETE_RESELLER})


def rule(answer: Answer, *, keyed: bool) -> Rule:
    """The row for `answer` on a step whose endpoint does (not) honour keys."""
    row = RULES[answer]
    if not keyed and answer in _MAYBE_EXECUTED:
        return replace(row, read_first=True)
    return row


def answer_of(kind: StepKind, exc: Exception) -> Answer:
    """Name the answer an error stands for (a table of error classes).

    Raises `exc` itself when it is not a panel or budget error.
    """
    if isinstance(exc, RateLimitedError):
        return Answer.NO_TOKEN
    if isinstance(exc, RateLimiterUnavailableError):
        return Answer.LIMITER_DOWN
    if not isinstance(exc, PanelError):
        raise exc
    table: tuple[tuple[type[PanelError], Answer], ...] = (
        (PanelThrottledError, Answer.THROTTLED),
        (PanelBusyError, Answer.BUSY),
        (PanelNotSentError, Answer.NOT_SENT),
        (PanelOutcomeUnknownError, Answer.UNKNOWN),
        (PanelAlreadyInStateError, Answer.IN_STATE),
        (PanelKeyMismatchError, Answer.KEY_MISMATCH),
        (PanelAuthError, Answer.AUTH),
        (PanelAlreadyExistsError, Answer.CONFLICT),
    )
    if isinstance(exc, PanelNotFoundError):
        return Answer.IN_STATE if kind in _DELETES else Answer.NOT_FOUND
    for cls, answer in table:
        if isinstance(exc, cls):
            return answer
    return Answer.REJECTED


def must_read_first(
    *,
    keyed: bool,
    flagged: bool,
    interrupted: bool,
    first_sent_at: datetime | None,
    now: datetime,
    reconcile_after: timedelta,
) -> bool:
    """Whether this try reads the resource before sending anything.

    `flagged`: an earlier try left an unknown outcome (or an "already exists" it
    could not read). `interrupted`: the step was found in flight, i.e. a worker
    died or lost its lease mid-call. A keyed step re-sends with its key until the
    panel may have forgotten it (`reconcile_after` after the first send).
    """
    if flagged:
        return True
    if not keyed:
        return interrupted
    return first_sent_at is not None and now - first_sent_at >= reconcile_after


def ssl_poll_delay(
    pending_for: float,
    *,
    first: float,
    cap: float,
    retry_after: float | None,
    timeout: float,
) -> float:
    """Next look at a pending certificate: short at first, growing to `cap`.

    Half the time it has been pending (so ~1.5x per poll), at least `first`.
    The panel's Retry-After wins when it sends one, even beyond `cap`: it knows
    when the certificate will be ready. Never beyond `timeout`
    (BRIDGE_SSL_TIMEOUT_SECONDS) though: the look at that moment is the one that
    fails a certificate still pending as `ssl_timeout`.
    """
    if retry_after is not None:
        delay = max(retry_after, 0.0)
    else:
        delay = min(cap, max(first, pending_for / 2))
    return min(delay, max(timeout - pending_for, 0.0))
