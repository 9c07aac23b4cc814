"""The bridge's error taxonomy (the panel branch lives in `bridge.panel.errors`).

BridgeError                          root; never raised bare
├── ConfigurationError               bad/missing settings -> exit non-zero at start
├── IntakeError                      caller's fault -> HTTP 4xx, never retried
│   ├── InvalidOrderError            422
│   └── IdempotencyConflictError     409: same order_id / key, different body
├── NotFoundError                    a looked-up row does not exist -> 404
├── InvalidTransitionError           a status change the table does not allow
├── StaleOrderError                  compare-and-set lost -> re-read, no attempt used
├── RateLimitedError(retry_after)    our bucket said no -> next_attempt_at
├── RateLimiterUnavailableError      Redis down -> retryable (fail closed)
└── CryptoError                      a stored secret cannot be decrypted
"""


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose."""


class ConfigurationError(BridgeError):
    """A setting is missing or invalid; the process must not start."""


class IntakeError(BridgeError):
    """The caller sent something we refuse; maps to an HTTP 4xx."""


class InvalidOrderError(IntakeError):
    """The order is well-formed JSON but cannot be accepted (422)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class IdempotencyConflictError(IntakeError):
    """The same order_id or Idempotency-Key arrived with a different body (409)."""


class NotFoundError(BridgeError):
    """A row that was looked up by id does not exist."""


class InvalidTransitionError(BridgeError):
    """A status change that design.md §3 does not allow."""

    def __init__(self, entity: str, current: str, target: str) -> None:
        super().__init__(f"{entity}: {current} -> {target} is not allowed")
        self.entity = entity
        self.current = current
        self.target = target


class StaleOrderError(BridgeError):
    """A compare-and-set on an order changed no row: someone else moved it first."""


class RateLimitedError(BridgeError):
    """The shared bucket has no token for this credential yet; nothing was sent."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after:.3f}s")
        self.retry_after = retry_after


class RateLimiterUnavailableError(BridgeError):
    """Redis could not be asked for a token; we fail closed and send nothing."""


class CryptoError(BridgeError):
    """A stored secret could not be decrypted with any configured key."""
