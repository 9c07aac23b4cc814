"""`GroupCommit`: concurrent callers share one transaction (leader/follower).

Intake is bound by its per-transaction costs (a pooled connection and its ping,
the placement and package reads, one statement per table, the commit and its
WAL flush), not by the rows themselves. When several requests arrive together,
the first becomes the leader: it takes every item waiting (up to `max_batch`,
itself included), hands them to the handler as one batch, gives each caller its
own result and wakes them; if more arrived meanwhile, it promotes the oldest of
them to lead the next batch and returns. A lone caller is a batch of one and
waits for nobody: there is no timer, no added latency.

The handler runs in the leader's thread and must return one result per item
(None: not done). If it raises, every item of that batch gets None (the caller
then does the work alone, where the error surfaces to whoever it belongs to).
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")
# A batch's items -> one result per item (None: that item was not done).
_Handler = Callable[[Sequence[T]], Sequence[R | None]]


@dataclass(slots=True)
class _Waiter(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: R | None = None


class GroupCommit(Generic[T, R]):
    """Batches concurrent `submit` calls into one handler call per batch."""

    def __init__(self, *, max_batch: int) -> None:
        if max_batch < 1:
            msg = "max_batch must be at least 1"
            raise ValueError(msg)
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Waiter[T, R]] = []
        self._leading = False

    def waiting(self) -> int:
        """Items queued behind the batch being handled (tests read it)."""
        with self._lock:
            return len(self._waiting)

    def submit(self, item: T, handler: _Handler[T, R]) -> R | None:
        """Handle `item` in the next batch; its result (None: not done)."""
        me: _Waiter[T, R] = _Waiter(item)
        with self._lock:
            self._waiting.append(me)
            if not self._leading:
                self._leading = me.lead = True
        if not me.lead:
            me.done.wait()
        if me.lead:  # first in, or promoted by the previous leader
            self._lead(handler)
        return me.result

    def _lead(self, handler: _Handler[T, R]) -> None:
        with self._lock:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
        try:
            results: Sequence[R | None] = handler([w.item for w in batch])
            if len(results) != len(batch):
                msg = f"handler returned {len(results)} results for {len(batch)}"
                raise RuntimeError(msg)
        except Exception as exc:  # noqa: BLE001 - every caller falls back, see above
            # The callers redo their own work alone, where the error surfaces
            # to each through its own handling. Only the error's class here: a
            # database error's text can quote the statement's parameters.
            log.warning(
                "group_commit_batch_failed", size=len(batch), error=type(exc).__name__
            )
            results = [None] * len(batch)
        with self._lock:
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
            successor = self._waiting[0] if self._waiting else None
            if successor is None:
                self._leading = False
            else:
                successor.lead = True
        for waiter in batch:
            waiter.done.set()
        if successor is not None:
            successor.done.set()
