"""The Enqueuer: sends tasks by name to the broker (ids only; duplicates are harmless).

`bridge` never imports `workers`, so the producer side holds its own minimal Celery
client (no tasks registered) bound to the broker URL. Sending is best-effort: the
database is the schedule and the dispatcher re-enqueues anything a lost message missed.
"""

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

    def __call__(self, task_name: str, *args: str) -> bool:
        try:
            self._client.send_task(
                task_name, args=list(args), queue=QUEUE_NAME, retry=False
            )
        except (OperationalError, OSError) as exc:
            # Not fatal: the order is committed; the dispatcher picks it up.
            log.warning("enqueue_failed", task=task_name, error=str(exc))
            return False
        return True

    def close(self) -> None:
        self._client.close()


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


def enqueue_after_commit(session: Session, task_name: str, *args: str) -> None:
    """Send `task_name(*args)` once the session's transaction has committed.

    Never before: a worker must not see a message for a row it cannot read yet.
    """
    session.info.setdefault(_PENDING_KEY, []).append((task_name, args))


def install_after_commit_hook(
    sessions: sessionmaker[Session], enqueue: Enqueuer
) -> None:
    """Flush messages recorded with enqueue_after_commit on commit; drop on rollback."""

    def _after_commit(session: Session) -> None:
        for task_name, args in session.info.pop(_PENDING_KEY, []):
            enqueue(task_name, *args)

    def _after_rollback(session: Session, _previous_transaction: object) -> None:
        session.info.pop(_PENDING_KEY, None)

    event.listen(sessions, "after_commit", _after_commit)
    event.listen(sessions, "after_soft_rollback", _after_rollback)
