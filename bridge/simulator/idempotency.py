"""Idempotency-Key records of one panel: in-progress markers and stored responses.

Scope is (credential, method, path, key). Completed responses with status < 500
(and not 429) are kept for the panel's window (24 h by its clock), then forgotten.
"""

import hashlib
import json
from dataclasses import dataclass
from enum import Enum

MAX_KEY_LENGTH = 255


class Outcome(Enum):
    """What to do with a request carrying an Idempotency-Key."""

    PROCEED = "proceed"
    REPLAY = "replay"
    IN_PROGRESS = "in_progress"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class StoredResponse:
    """A completed response, replayed byte for byte."""

    status: int
    body: bytes
    content_type: str


@dataclass
class _Record:
    body_hash: str
    completed_at: float | None = None
    response: StoredResponse | None = None

    def expired(self, now: float, window_s: float) -> bool:
        return self.completed_at is not None and now >= self.completed_at + window_s


Slot = tuple[str, str, str, str]
"""(credential, method, path, key): the scope of one key."""


def is_valid_key(key: str) -> bool:
    """Return whether ``key`` is 1-255 printable ASCII characters."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all(" " <= c <= "~" for c in key)


def is_storable(status: int) -> bool:
    """Return whether a response with ``status`` is kept for replay."""
    return status < 500 and status != 429  # noqa: PLR2004 - the contract's rule


def body_hash(body: bytes) -> str:
    """Hash a request body; JSON bodies are canonicalised first."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return hashlib.sha256(body).hexdigest()
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    """The records of one panel, evaluated against its clock."""

    def __init__(self) -> None:
        self._records: dict[Slot, _Record] = {}

    def clear(self) -> None:
        """Forget every key."""
        self._records.clear()

    def begin(
        self, scope: Slot, digest: str, now: float, window_s: float
    ) -> tuple[Outcome, StoredResponse | None]:
        """Look up ``scope``; on PROCEED the key is marked in progress."""
        record = self._records.get(scope)
        if record is not None and record.expired(now, window_s):
            record = None
        if record is None:
            self._records[scope] = _Record(body_hash=digest)
            return Outcome.PROCEED, None
        if record.body_hash != digest:
            return Outcome.MISMATCH, None
        if record.response is None:
            return Outcome.IN_PROGRESS, None
        return Outcome.REPLAY, record.response

    def complete(self, scope: Slot, response: StoredResponse, now: float) -> None:
        """Store the response of the request that holds ``scope``."""
        self._records[scope] = _Record(
            body_hash=self._records[scope].body_hash,
            completed_at=now,
            response=response,
        )

    def abandon(self, scope: Slot) -> None:
        """Drop the in-progress marker of a request whose outcome is not stored."""
        record = self._records.get(scope)
        if record is not None and record.response is None:
            del self._records[scope]

    def count(self) -> int:
        """Return how many keys are held (in progress or stored)."""
        return len(self._records)
