"""Operator retry: failed orders back in the queue, with the right Idempotency-Keys.

Failed steps go back to pending with a restarted give-up budget. A step the panel
refused (4xx) gets a fresh key; a step with an unknown outcome keeps its key, and
the engine reconciles before re-sending once its first send is past the window.
"""

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge import audit
from bridge.container import Services
from bridge.db.models import Order, Step
from bridge.domain.model import Action, CallbackStatus, StepKind
from bridge.domain.states import OrderStatus, StepStatus, next_step_status
from bridge.errors import InvalidTransitionError, NotFoundError
from bridge.ops.errors import OperationRefusedError
from bridge.ops.queries import failed_order_ids, get_order_by_ref, order_detail
from bridge.ops.transitions import move_order, reopen_failed_create, require_failed
from bridge.queue import RUN_ORDER_TASK, enqueue_after_commit
from bridge.steps import SECRET_KINDS

# The engine's code for a certificate the panel reports as failed (bridge.steps).
_SSL_FAILED = "ssl_failed"
# Later orders of the same service in these states have changed (or are changing)
# the account: replaying an older request after them would undo their effect.
_SUPERSEDING = (OrderStatus.RUNNING, OrderStatus.WAITING, OrderStatus.COMPLETED)


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    """One order of a bulk retry: what happened, and where the batch stands."""

    ref: str
    ok: bool
    error: str | None
    fresh_keys: int
    index: int
    total: int


def needs_fresh_key(step: Step) -> bool:
    """Whether an operator retry must send `step` under a new Idempotency-Key.

    The panel stores every answer below 500 under the key and replays it for 24 h,
    so after a 4xx (400/403/404/409/422, and the engine's own "conflict", which is
    a 409) the old key would only replay the refusal. A 4xx also proves nothing
    ran under that key, so a new one cannot duplicate anything; creates still
    reconcile "already exists" by natural key. A failed certificate is final too:
    it is issued again rather than polled. Steps whose outcome is unknown (5xx,
    timeouts, lost connections) keep their key: it is what makes re-sending safe.
    """
    if step.error_code == _SSL_FAILED:
        return True
    status = step.panel_status
    return status is not None and 400 <= status < 500  # noqa: PLR2004


def _refuse_if_superseded(session: Session, order: Order) -> None:
    later = session.scalars(
        select(Order)
        .where(
            Order.service_id == order.service_id,
            Order.service_seq > order.service_seq,
            Order.status.in_(_SUPERSEDING),
        )
        .order_by(Order.service_seq)
        .limit(1)
    ).first()
    if later is not None:
        msg = (
            f"order {order.order_id} is superseded by {later.order_id} "
            f"({later.action.value}, {later.status.value}) for service "
            f"{order.service_id}: retrying would replay an older request over a "
            "newer one; resolve or cancel it instead"
        )
        raise OperationRefusedError(msg)


def _refuse_if_secrets_gone(order: Order) -> None:
    """A retry cannot re-send a password that retention has wiped."""
    for step in order.steps:
        unfinished = step.status in (StepStatus.FAILED, StepStatus.PENDING)
        # SECRET_KINDS: the kinds whose executor sends a secret (bridge.steps).
        if unfinished and step.kind in SECRET_KINDS and step.secret_body is None:
            msg = (
                f"secrets expired: order {order.order_id} no longer holds the "
                "password it needs; post a new order"
            )
            raise OperationRefusedError(msg)


def _reset_step(step: Step, now: datetime) -> dict[str, Any]:
    fresh = needs_fresh_key(step)
    step.status = next_step_status(step.status, StepStatus.PENDING)
    step.attempts = 0
    step.retry_started_at = now  # the give-up budget restarts from the retry
    if fresh:
        step.idempotency_key = str(uuid.uuid4())
        step.first_sent_at = None
        if step.kind is StepKind.ISSUE_SSL:
            step.response = None  # issue again instead of polling the failed one
    return {"position": step.position, "kind": step.kind.value, "fresh_key": fresh}


def retry_order(
    services: Services, order_ref: str | uuid.UUID, actor: str
) -> dict[str, Any]:
    """Put a failed order back in the queue: failed steps pending, budget restarted.

    The previous `last_error` stays visible until the engine replaces it.
    Raises NotFoundError, InvalidTransitionError (not failed) and
    OperationRefusedError (superseded by a later order, or a lost race).
    """
    view, _ = _retry(services, order_ref, actor)
    return view


def _retry(
    services: Services, order_ref: str | uuid.UUID, actor: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    now = services.clock()
    with services.sessions.begin() as session:
        order = get_order_by_ref(session, order_ref)
        require_failed(order, OrderStatus.QUEUED)
        _refuse_if_superseded(session, order)
        _refuse_if_secrets_gone(order)
        before = move_order(
            session,
            order,
            now,
            status=OrderStatus.QUEUED,
            wait_reason=None,
            next_attempt_at=now,
            finished_at=None,
            lease_owner=None,
            lease_until=None,
            enqueued_at=None,
            # The failure's callback is moot: billing hears the final outcome.
            callback_status=CallbackStatus.NONE,
            callback_attempts=0,
            callback_next_at=None,
            callback_last_error=None,
        )
        steps = [
            _reset_step(s, now) for s in order.steps if s.status is StepStatus.FAILED
        ]
        reopen_failed_create(session, order)
        audit.record(
            session,
            actor=actor,
            action="order_retried",
            order=order,
            before=before.value,
            after=order.status.value,
            detail={"steps": steps, "previous_error": order.last_error},
        )
        enqueue_after_commit(session, RUN_ORDER_TASK, str(order.id))
        return order_detail(order), steps


def retry_orders(
    services: Services, refs: Iterable[str | uuid.UUID], actor: str
) -> Iterator[RetryOutcome]:
    """Retry each order in turn (one transaction each), yielding progress."""
    items = list(refs)
    for index, ref in enumerate(items, 1):
        try:
            view, steps = _retry(services, ref, actor)
        except (NotFoundError, InvalidTransitionError, OperationRefusedError) as exc:
            yield RetryOutcome(str(ref), False, str(exc), 0, index, len(items))
            continue
        fresh = sum(1 for s in steps if s["fresh_key"])
        yield RetryOutcome(view["order_id"], True, None, fresh, index, len(items))


def retry_all_failed(
    services: Services,
    actor: str,
    *,
    server: str | None = None,
    action: Action | None = None,
    since: datetime | None = None,
) -> Iterator[RetryOutcome]:
    """Retry every failed order matching the filters, oldest first per service."""
    with services.sessions() as session:
        ids = failed_order_ids(session, server=server, action=action, since=since)
    return retry_orders(services, ids, actor)
