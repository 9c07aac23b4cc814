"""`run_order()`: lease an order, run its pending steps in order, persist each outcome.

Each step's outcome is committed before the next panel call. Waits go to the DB
(`next_attempt_at`), never to sleep; a worker killed anywhere leaves a lease that
expires and a step whose same-key retry is safe.
"""

import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from bridge import metrics
from bridge.callbacks import schedule_callback
from bridge.container import Services
from bridge.db import orders as orders_db
from bridge.db import servers as servers_db
from bridge.db.models import Order, Server, Step
from bridge.domain.model import StepKind
from bridge.domain.retry_policy import RetryPolicy
from bridge.domain.states import (
    OrderStatus,
    StepStatus,
    WaitReason,
    next_order_status,
)
from bridge.effects import apply_service_effect
from bridge.errors import StaleOrderError
from bridge.steps import StepCall, StepOutcome, Verdict, execute

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Running:
    """The step in flight, by ids (the session that loaded it is closed)."""

    order_uuid: uuid.UUID
    step_id: uuid.UUID
    server_id: uuid.UUID
    owner: str


@dataclass(frozen=True, slots=True)
class _Wait:
    delay: float
    reason: WaitReason


def lease_owner_id(services: Services) -> str:
    thread = threading.get_ident()
    return f"{services.host_id}:{os.getpid()}:{thread}:{uuid.uuid4().hex[:8]}"


def retry_policy(services: Services) -> RetryPolicy:
    s = services.settings
    return RetryPolicy(
        base=s.backoff_base_seconds,
        cap=s.backoff_cap_seconds,
        max_attempts=s.max_attempts,
        max_age_seconds=s.max_step_age,
    )


def run_order(services: Services, order_uuid: uuid.UUID) -> None:
    """Run `order_uuid` if it is due and nobody else holds it; else do nothing."""
    owner = lease_owner_id(services)
    ttl = services.settings.lease_seconds
    with services.sessions.begin() as session:
        if not orders_db.acquire_lease(
            session, order_uuid, owner, services.clock(), ttl
        ):
            log.debug("order_not_leased", order=str(order_uuid))
            return
    structlog.contextvars.bind_contextvars(order=str(order_uuid))
    try:
        while _run_next_step(services, order_uuid, owner):
            pass
    except StaleOrderError:
        log.warning("order_lease_lost")
    finally:
        structlog.contextvars.unbind_contextvars("order")


def _run_next_step(services: Services, order_uuid: uuid.UUID, owner: str) -> bool:
    """Run one step; True when the next step should follow right away."""
    settings = services.settings
    with services.sessions.begin() as session:
        now = services.clock()
        order = orders_db.get_order(session, order_uuid)
        if order.lease_owner != owner or order.status is not OrderStatus.RUNNING:
            raise StaleOrderError(str(order_uuid))
        pending = orders_db.pending_steps(order)
        if not pending:
            _finish(services, session, order, OrderStatus.COMPLETED, None)
            return False
        step = pending[0]
        server = order.server
        if server is None:
            _finish(services, session, order, OrderStatus.FAILED, "no server assigned")
            return False
        reopen = servers_db.claim_probe(
            session, server, now, settings.circuit_probe_seconds
        )
        if reopen is not None:
            wait = _Wait((reopen - now).total_seconds(), WaitReason.PANEL_UNAVAILABLE)
            _release_waiting(session, order, now, wait)
            return False
        if not orders_db.renew_lease(
            session, order_uuid, owner, now, settings.lease_seconds
        ):
            raise StaleOrderError(str(order_uuid))
        call = _prepare_call(services, step, now)
        client = services.panels.client_for(server)
        running = _Running(order_uuid, step.id, server.id, owner)
        server_name = server.name
    log.info("step_started", step=step.kind.value, position=step.position)
    started = time.perf_counter()
    outcome = execute(client, call)
    _observe(server_name, call, outcome, time.perf_counter() - started)
    with services.sessions.begin() as session:
        return _apply(services, session, running, outcome)


def _observe(server: str, call: StepCall, outcome: StepOutcome, seconds: float) -> None:
    """Event metrics of one step run (never on the DB path: they cannot fail it)."""
    metrics.STEP_SECONDS.labels(server, call.kind.value).observe(seconds)
    if outcome.sent or outcome.panel_status is not None:
        status = outcome.panel_status
        if status is None and outcome.verdict in (Verdict.SUCCEEDED, Verdict.POLL):
            status = 200
        metrics.PANEL_RESPONSES.labels(server, metrics.status_class(status)).inc()
    if outcome.panel_status == 429:  # noqa: PLR2004
        metrics.PANEL_THROTTLED.labels(server).inc()
    elif outcome.verdict is Verdict.THROTTLED and outcome.retry_after:
        metrics.BUDGET_WAIT_SECONDS.labels(server).inc(outcome.retry_after)


def _prepare_call(services: Services, step: Step, now: datetime) -> StepCall:
    """Mark the step in flight (first send stamped) and detach what the call needs."""
    age_limit = timedelta(seconds=services.settings.reconcile_after_seconds)
    polling = step.kind is StepKind.ISSUE_SSL and step.response is not None
    reconcile = step.needs_reconcile or (
        step.first_sent_at is not None and now - step.first_sent_at >= age_limit
    )
    step.status = StepStatus.IN_FLIGHT
    if step.first_sent_at is None:
        step.first_sent_at = now
    step.last_sent_at = now
    secret = services.box.decrypt_json(step.secret_body) if step.secret_body else {}
    return StepCall(
        kind=step.kind,
        params=dict(step.params),
        body=dict(step.request_body),
        secret=secret,
        idempotency_key=step.idempotency_key,
        reconcile_first=reconcile and not polling,
        polling=polling,
    )


def _apply(
    services: Services, session: Session, running: _Running, outcome: StepOutcome
) -> bool:
    """Persist a step's outcome; True when the order should run its next step."""
    now = services.clock()
    order = orders_db.get_order(session, running.order_uuid)
    if order.lease_owner != running.owner:
        raise StaleOrderError(str(running.order_uuid))
    step = next(s for s in order.steps if s.id == running.step_id)
    step.needs_reconcile = outcome.needs_reconcile
    if outcome.window_restarted:
        step.first_sent_at = now
    _count(
        services,
        session,
        order=order,
        step=step,
        server_id=running.server_id,
        outcome=outcome,
        now=now,
    )
    if outcome.verdict is Verdict.SUCCEEDED:
        _step_succeeded(step, outcome)
        log.info("step_completed", step=step.kind.value, adopted=outcome.adopted)
        return True
    if outcome.verdict is Verdict.FAILED:
        if outcome.auth_fault:
            servers_db.flag_auth_error(
                session, running.server_id, outcome.error_message or "unauthorized"
            )
        return _step_failed(services, session, order, step, outcome)
    step.status = StepStatus.PENDING
    wait = _wait_for(
        services,
        session,
        step=step,
        server_id=running.server_id,
        outcome=outcome,
        now=now,
    )
    if wait is None:
        return _step_failed(services, session, order, step, outcome)
    log.info(
        "step_retry_scheduled",
        step=step.kind.value,
        reason=wait.reason.value,
        delay=round(wait.delay, 3),
    )
    _release_waiting(session, order, now, wait)
    return False


def _count(
    services: Services,
    session: Session,
    *,
    order: Order,
    step: Step,
    server_id: uuid.UUID,
    outcome: StepOutcome,
    now: datetime,
) -> None:
    """Attempts and the circuit counters.

    An attempt is consumed only by a call that reached a panel believed healthy:
    once the circuit is open, failures are the outage's, not the order's.
    """
    settings = services.settings
    circuit_open = False
    if outcome.server_fault:
        circuit_open = (
            servers_db.record_failure(
                session,
                server_id,
                now,
                threshold=settings.circuit_failure_threshold,
                probe_seconds=settings.circuit_probe_seconds,
            )
            is not None
        )
    elif outcome.sent and outcome.verdict is not Verdict.UNAVAILABLE:
        servers_db.record_success(session, server_id)
    if outcome.sent and not circuit_open:
        step.attempts += 1
        order.attempts += 1


def _wait_for(
    services: Services,
    session: Session,
    *,
    step: Step,
    server_id: uuid.UUID,
    outcome: StepOutcome,
    now: datetime,
) -> _Wait | None:
    """How long a retryable outcome waits; None when the step must give up."""
    settings = services.settings
    match outcome.verdict:
        case Verdict.POLL:
            step.response = outcome.response
            return _Wait(settings.ssl_poll_seconds, WaitReason.SSL_PENDING)
        case Verdict.THROTTLED:
            if step.attempts == 0:
                step.first_sent_at = None  # nothing was executed yet
            return _Wait(outcome.retry_after or 1.0, WaitReason.RATE_LIMITED)
        case Verdict.BUSY:
            return _Wait(settings.busy_retry_seconds, WaitReason.PANEL_BUSY)
    _record_error(step, outcome)
    return _unavailable_wait(services, session, step, server_id, now)


def _unavailable_wait(
    services: Services,
    session: Session,
    step: Step,
    server_id: uuid.UUID,
    now: datetime,
) -> _Wait | None:
    """Backoff for not-sent/unknown outcomes; an open circuit waits without limit."""
    server = session.get(Server, server_id)
    if (
        server is not None
        and server.circuit_open_until
        and server.circuit_open_until > now
    ):
        delay = (server.circuit_open_until - now).total_seconds()
        return _Wait(delay, WaitReason.PANEL_UNAVAILABLE)
    backoff = retry_policy(services).next_delay(
        step.attempts, now=now, started_at=step.retry_started_at or step.first_sent_at
    )
    return None if backoff is None else _Wait(backoff, WaitReason.RETRY_BACKOFF)


def _record_error(step: Step, outcome: StepOutcome) -> None:
    step.error_code = outcome.error_code
    step.error_message = outcome.error_message
    step.panel_status = outcome.panel_status


def _step_succeeded(step: Step, outcome: StepOutcome) -> None:
    step.status = StepStatus.SUCCEEDED
    step.response = outcome.response
    step.secret_body = None  # the password has done its job: wipe it
    step.error_code = None
    step.error_message = None
    step.panel_status = None


def _step_failed(
    services: Services,
    session: Session,
    order: Order,
    step: Step,
    outcome: StepOutcome,
) -> bool:
    step.status = StepStatus.FAILED
    _record_error(step, outcome)
    message = f"{step.kind.value}: {outcome.error_message or outcome.error_code}"
    log.error(
        "order_failed", step=step.kind.value, error=message, code=outcome.error_code
    )
    _finish(services, session, order, OrderStatus.FAILED, message)
    return False


def _release_waiting(
    session: Session, order: Order, now: datetime, wait: _Wait
) -> None:
    order.status = next_order_status(order.status, OrderStatus.WAITING)
    order.wait_reason = wait.reason
    order.next_attempt_at = now + timedelta(seconds=max(wait.delay, 0.0))
    order.lease_owner = None
    order.lease_until = None
    order.enqueued_at = None


def _finish(
    services: Services,
    session: Session,
    order: Order,
    status: OrderStatus,
    error: str | None,
) -> None:
    """Final status for the order, the service's new state, the callback."""
    now = services.clock()
    order.status = next_order_status(order.status, status)
    order.wait_reason = None
    order.next_attempt_at = None
    order.lease_owner = None
    order.lease_until = None
    order.finished_at = now
    order.last_error = error
    apply_service_effect(order, status, now)
    metrics.ORDERS_FINISHED.labels(order.action.value, status.value).inc()
    schedule_callback(services.settings, session, order, now)
    log.info("order_finished", status=status.value, action=order.action.value)
