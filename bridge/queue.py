"""The Enqueuer: sends tasks by name to the broker (ids only; duplicates are harmless).

`bridge` never imports `workers`, so the producer side holds its own minimal Celery
client (no tasks registered) bound to the broker URL. Sending is best-effort: the
database is the schedule and the dispatcher re-enqueues anything a lost message missed.
After a commit, messages go out from a background thread (`send_later`): an intake
request answers as soon as its transaction is durable, without waiting on the broker.
"""

import os
import queue
import threading
from collections.abc import Callable
from typing import Protocol

import structlog
from celery import Celery
from kombu.exceptions import OperationalError
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

RUN_ORDER_TASK = "bridge.run_order"
DELIVER_CALLBACK_TASK = "bridge.deliver_callback"
QUEUE_NAME = "bridge"

_PENDING_KEY = "bridge.enqueue_after_commit"
_Message = tuple[str, tuple[str, ...], float | None]
# Messages waiting for the background sender; past this the broker is clearly away
# (or far behind) and further messages are dropped: the dispatcher re-sends them.
MAX_PENDING = 10_000
_CLOSE_TIMEOUT = 5.0

log = structlog.get_logger(__name__)


class Enqueuer(Protocol):
    def __call__(self, task_name: str, *args: str) -> bool: ...


class CeleryEnqueuer:
    """Send `task_name(*args)` to the bridge queue; False if the broker is away."""

    def __init__(self, broker_url: str) -> None:
        self._client = Celery(
            "bridge-producer", broker=broker_url, set_as_current=False
        )
        self._client.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_retry_on_startup=False,
            broker_transport_options={"max_retries": 1},
        )
        self._lock = threading.Lock()
        self._background: _BackgroundSender | None = None

    def __call__(self, task_name: str, *args: str) -> bool:
        return self.send(task_name, args, None)

    def send_later(
        self, task_name: str, *args: str, countdown: float | None = None
    ) -> bool:
        """Queue the message for the background sender; False if it is full.

        With `countdown`, the broker delivers it that many seconds later (keep it
        far below the visibility timeout: an ETA message is held unacked by a
        worker until then).
        """
        return self._sender().submit(task_name, args, countdown)

    def send(
        self, task_name: str, args: tuple[str, ...], countdown: float | None
    ) -> bool:
        """Send now (the caller's thread); False if the broker is away."""
        try:
            self._client.send_task(
                task_name,
                args=list(args),
                queue=QUEUE_NAME,
                retry=False,
                countdown=countdown,
            )
        except (OperationalError, OSError) as exc:
            # Not fatal: the order is committed; the dispatcher picks it up.
            log.warning("enqueue_failed", task=task_name, error=str(exc))
            return False
        return True

    def _sender(self) -> "_BackgroundSender":
        with self._lock:
            # Rebuilt after a fork: the parent's thread does not exist in a child.
            if self._background is None or self._background.pid != os.getpid():
                self._background = _BackgroundSender(self)
            return self._background

    def close(self) -> None:
        with self._lock:
            background, self._background = self._background, None
        if background is not None and background.pid == os.getpid():
            background.close()
        self._client.close()


class _BackgroundSender:
    """One daemon thread sending queued messages in order through `send`."""

    def __init__(self, enqueuer: CeleryEnqueuer) -> None:
        self.pid = os.getpid()
        self._enqueuer = enqueuer
        self._queue: queue.Queue[_Message | None] = queue.Queue(MAX_PENDING)
        self._thread = threading.Thread(
            target=self._run, name="bridge-enqueue", daemon=True
        )
        self._thread.start()

    def submit(
        self, task_name: str, args: tuple[str, ...], countdown: float | None
    ) -> bool:
        try:
            self._queue.put_nowait((task_name, args, countdown))
        except queue.Full:
            log.warning("enqueue_dropped", task=task_name, reason="sender backlog")
            return False
        return True

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._enqueuer.send(*item)

    def close(self) -> None:
        """Send what is queued (up to a few seconds), then stop the thread."""
        try:
            self._queue.put(None, timeout=_CLOSE_TIMEOUT)
        except queue.Full:
            return
        self._thread.join(_CLOSE_TIMEOUT)


def broker_url(redis_url: str) -> str:
    """Translate a redis-py URL into kombu's form (unix sockets differ)."""
    if redis_url.startswith("unix://"):
        path, _, query = redis_url.removeprefix("unix://").partition("?")
        db = "0"
        for part in query.split("&"):
            if part.startswith("db="):
                db = part.removeprefix("db=")
        return f"redis+socket://{path}?virtual_host={db}"
    return redis_url


def enqueue_after_commit(
    session: Session, task_name: str, *args: str, countdown: float | None = None
) -> None:
    """Send `task_name(*args)` once the session's transaction has committed.

    Never before: a worker must not see a message for a row it cannot read yet.
    `countdown` delays delivery (a short wait, e.g. until a panel's next token);
    an enqueuer without delayed delivery sends at once instead.
    """
    session.info.setdefault(_PENDING_KEY, []).append((task_name, args, countdown))


def install_after_commit_hook(
    sessions: sessionmaker[Session], enqueue: Enqueuer
) -> None:
    """Flush messages recorded with enqueue_after_commit on commit; drop on rollback.

    An enqueuer with `send_later` (CeleryEnqueuer) sends them from its background
    thread, so the committing caller does not wait for the broker.
    """
    later: Callable[..., bool] | None = getattr(enqueue, "send_later", None)

    def _after_commit(session: Session) -> None:
        for task_name, args, countdown in session.info.pop(_PENDING_KEY, []):
            if later is not None:
                later(task_name, *args, countdown=countdown)
            else:
                enqueue(task_name, *args)

    def _after_rollback(session: Session, _previous_transaction: object) -> None:
        session.info.pop(_PENDING_KEY, None)

    event.listen(sessions, "after_commit", _after_commit)
    event.listen(sessions, "after_soft_rollback", _after_rollback)
