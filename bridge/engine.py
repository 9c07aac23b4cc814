"""`run_order()`: lease an order, run its pending steps in order, persist each outcome.

Each step's outcome is committed before the next panel call, in a transaction fenced
on the lease (`bridge.db.orders.fence`): a worker whose lease expired or was taken
writes nothing. A heartbeat renews the lease while a step's calls are in flight.
What each panel answer means is `bridge.outcomes`; this module only applies it.
Waits go to the DB (`next_attempt_at`), never to sleep.
"""

import os
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from bridge import metrics
from bridge.callbacks import schedule_callback
from bridge.container import Services
from bridge.contention import room
from bridge.db import orders as orders_db
from bridge.db import servers as servers_db
from bridge.db.models import Order, Server, Step
from bridge.db.orders import Lease
from bridge.db.services import find_username_holder
from bridge.domain.model import Action, StepKind
from bridge.domain.retry_policy import RetryPolicy
from bridge.domain.states import (
    OrderStatus,
    ServiceStatus,
    StepStatus,
    WaitReason,
    next_order_status,
)
from bridge.effects import apply_service_effect, wipe_secrets
from bridge.errors import InvalidTransitionError, StaleOrderError
from bridge.outcomes import Answer, Rule, Verdict, must_read_first, rule, ssl_poll_delay
from bridge.panel import PanelClient
from bridge.queue import RUN_ORDER_TASK, enqueue_after_commit
from bridge.settings import Settings
from bridge.steps import (
    RECHECKED_AFTER_FAILURE,
    StepCall,
    StepDefinitionError,
    StepResult,
    execute,
    is_keyed,
    reads_first,
)

log = structlog.get_logger(__name__)

# step.response of a step whose read is done and whose write is still owed:
# {PROVEN: True, **what the read proved}; the next try only writes. Releases
# before the reseller users check wrote ADOPT_PROVEN (adoption only): still read.
PROVEN = "proven"
ADOPT_PROVEN = "adopt_proven"


@dataclass(frozen=True, slots=True)
class _Prepared:
    """The step about to be sent, by ids (the session that loaded it is closed)."""

    step_id: uuid.UUID
    server_id: uuid.UUID
    server_name: str
    client: PanelClient
    call: StepCall
    keyed: bool


@dataclass(frozen=True, slots=True)
class _Opened:
    """A fresh lease and, when `prepared`, its first step (None: nothing to send)."""

    lease: Lease
    prepared: bool
    step: _Prepared | None


@dataclass(frozen=True, slots=True)
class _Settling:
    """One step result on its way into the database (inside a fenced session)."""

    order: Order
    step: Step
    server_id: uuid.UUID
    result: StepResult
    rule: Rule
    now: datetime


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
    opened = _open(services, order_uuid)
    if opened is None:
        log.debug("order_not_leased", order=str(order_uuid))
        return
    lease = opened.lease
    structlog.contextvars.bind_contextvars(order=str(order_uuid))
    try:
        more = (
            _run_prepared(services, lease, opened.step)
            if opened.prepared
            else _run_next_step(services, lease)
        )
        while more:
            more = _run_next_step(services, lease)
    except StaleOrderError:
        log.warning("order_lease_lost")
    finally:
        structlog.contextvars.unbind_contextvars("order")


def _open(services: Services, order_uuid: uuid.UUID) -> _Opened | None:
    """Lease the order and prepare its first step in the same transaction.

    One commit fewer on every run, which matters most for the runs that only
    find their panel's budget spent (lease, refusal, release). Should preparing
    raise, that transaction rolls back, lease included; the order is then leased
    alone and `_run_next_step`'s guarded prepare meets the error again and records
    it on the step (STYLE.md §2.3 rule 3). None: not leased (not due, or held).
    """
    owner = lease_owner_id(services)
    ttl = services.settings.lease_seconds
    try:
        with services.sessions.begin() as session:
            now = services.clock()
            lease = orders_db.acquire_lease(session, order_uuid, owner, now, ttl)
            if lease is None:
                return None
            first = _prepare_in(services, session, lease, now)
        return _Opened(lease, prepared=True, step=first)
    except Exception as exc:  # noqa: BLE001 - recorded by the guarded path below
        log.info("first_step_prepared_apart", error=type(exc).__name__)
    with services.sessions.begin() as session:
        lease = orders_db.acquire_lease(
            session, order_uuid, owner, services.clock(), ttl
        )
    return None if lease is None else _Opened(lease, prepared=False, step=None)


def _run_next_step(services: Services, lease: Lease) -> bool:
    """Run one step; True when the next step should follow right away.

    The one guard of STYLE.md §2.3 rule 3: anything unexpected (a secret that no
    longer decrypts, a malformed stored body, a bug) is recorded on the step as
    `internal`, counts an attempt and follows the retry policy, so an order can
    never stay running forever or block its service's later orders.
    """
    try:
        prepared = _prepare(services, lease)
    except StaleOrderError:
        raise
    except Exception as exc:  # noqa: BLE001 - the one guard (see docstring)
        return _settle_internal(services, lease, None, exc)
    return _run_prepared(services, lease, prepared)


def _run_prepared(services: Services, lease: Lease, prepared: _Prepared | None) -> bool:
    """Send a prepared step (None: nothing to send) and settle it, guarded likewise."""
    if prepared is None:
        return False
    log.info(
        "step_started", step=prepared.call.kind.value, read=prepared.call.read_first
    )
    started = time.perf_counter()
    with _Heartbeat(services, lease):
        try:
            result = execute(prepared.client, prepared.call)
        except Exception as exc:  # noqa: BLE001 - the one guard (see docstring)
            return _settle_internal(services, lease, prepared, exc)
    _observe(prepared.server_name, prepared.call, result, time.perf_counter() - started)
    try:
        with services.sessions.begin() as session:
            return _settle(services, session, lease, prepared, result)
    except StaleOrderError:
        raise
    except Exception as exc:  # noqa: BLE001 - the one guard (see docstring)
        return _settle_internal(services, lease, prepared, exc)


def _settle_internal(
    services: Services, lease: Lease, prepared: _Prepared | None, exc: Exception
) -> bool:
    """Record an unexpected exception on the step it happened in."""
    log.error(
        "step_internal_error",
        step=prepared.call.kind.value if prepared else None,
        error=type(exc).__name__,
        exc_info=exc,
    )
    message = f"internal error: {type(exc).__name__}"
    if isinstance(exc, StepDefinitionError):
        message += f": {exc}"  # names a kind and a table, never a secret
    result = StepResult(Answer.INTERNAL, error_code="internal", error_message=message)
    with services.sessions.begin() as session:
        now = services.clock()
        orders_db.fence(session, lease, now, services.settings.lease_seconds)
        order = orders_db.get_order(session, lease.order_uuid)
        pending = orders_db.pending_steps(order)
        if prepared is None:
            if not pending:
                # Nothing to record it on (a bug in finishing itself): the order
                # fails for an operator, instead of running forever.
                _finish(
                    services, session, order, OrderStatus.FAILED, result.error_message
                )
                return False
            step = pending[0]
            # Nothing was sent: no read is owed.
            keyed = True
            server_id = order.server_id
        else:
            step = next(s for s in order.steps if s.id == prepared.step_id)
            keyed = prepared.keyed
            server_id = prepared.server_id
        if server_id is None:
            _finish(services, session, order, OrderStatus.FAILED, "no server assigned")
            return False
        row = rule(result.answer, keyed=keyed)
        return _apply(
            services,
            session,
            _Settling(order, step, server_id, result, row, services.clock()),
        )


def _prepare(services: Services, lease: Lease) -> _Prepared | None:
    """Fenced: finish, release or mark the next step in flight and detach its call."""
    with services.sessions.begin() as session:
        now = services.clock()
        orders_db.fence(session, lease, now, services.settings.lease_seconds)
        return _prepare_in(services, session, lease, now)


def _prepare_in(
    services: Services, session: Session, lease: Lease, now: datetime
) -> _Prepared | None:
    """`_prepare`'s work inside a transaction that holds the lease."""
    settings = services.settings
    order = orders_db.get_order(session, lease.order_uuid)
    pending = orders_db.pending_steps(order)
    if not pending:
        _finish(services, session, order, OrderStatus.COMPLETED, None)
        return None
    server = order.server
    refusal = _refusal(order, server)
    if refusal is not None or server is None:
        _finish(services, session, order, OrderStatus.FAILED, refusal)
        return None
    wait = _server_wait(session, server, now, settings)
    if wait is not None:
        _release_waiting(order, now, wait)
        return None
    step = pending[0]
    client = services.panels.client_for(server)
    keyed = is_keyed(client, step.kind)
    interrupted = step.status is StepStatus.IN_FLIGHT
    landing = _interrupted_call_may_land_until(services, step, keyed, interrupted)
    if landing is not None and landing > now:
        # A killed worker's non-keyed call may still reach the panel: reading
        # before it has landed or timed out could find it absent and re-send.
        _release_waiting(
            order,
            now,
            _Wait((landing - now).total_seconds(), WaitReason.RETRY_BACKOFF),
        )
        return None
    call = _call_for(
        services,
        session,
        order,
        step,
        keyed=keyed,
        interrupted=interrupted,
        now=now,
    )
    step.status = StepStatus.IN_FLIGHT
    if step.first_sent_at is None:
        step.first_sent_at = now
    step.last_sent_at = now
    return _Prepared(step.id, server.id, server.name, client, call, keyed)


def _refusal(order: Order, server: Server | None) -> str | None:
    """Why this order must not touch the panel at all, if it must not."""
    if server is None:
        return "no server assigned"
    service = order.service
    if order.action is Action.CREATE:
        return None
    if not service.owns_account:
        # Lifecycle orders act only on accounts the bridge provisioned (or adopted
        # as provably its own): never on a stranger's account that a failed
        # create ran into.
        return (
            f"service {order.service_id} has no panel account provisioned by the "
            f"bridge (service status {service.status.value})"
        )
    if order.action is not Action.TERMINATE and service.status not in (
        ServiceStatus.ACTIVE,
        ServiceStatus.SUSPENDED,
    ):
        # A create that failed half-way left an account, but no service to
        # suspend or change: only a terminate (or a new create) applies.
        return (
            f"service {order.service_id} is {service.status.value}: only terminate "
            "or a new create applies"
        )
    return None


def _server_wait(
    session: Session, server: Server, now: datetime, settings: Settings
) -> _Wait | None:
    if server.auth_error is not None:
        return _Wait(settings.circuit_probe_seconds, WaitReason.PANEL_AUTH)
    reopen = servers_db.claim_probe(
        session, server, now, settings.circuit_probe_seconds
    )
    if reopen is not None:
        return _Wait((reopen - now).total_seconds(), WaitReason.PANEL_UNAVAILABLE)
    return None


def _interrupted_call_may_land_until(
    services: Services, step: Step, keyed: bool, interrupted: bool
) -> datetime | None:
    if keyed or not interrupted or step.last_sent_at is None or step.response:
        return None
    return step.last_sent_at + timedelta(seconds=services.settings.panel_call_seconds)


def _call_for(
    services: Services,
    session: Session,
    order: Order,
    step: Step,
    *,
    keyed: bool,
    interrupted: bool,
    now: datetime,
) -> StepCall:
    settings = services.settings
    polling = step.kind is StepKind.ISSUE_SSL and step.response is not None
    # Raises StepDefinitionError (recorded as `internal`) for a kind that owes a
    # read but has none and whose re-send is not safe: never a silent re-send.
    read_first = reads_first(
        step.kind,
        owed=must_read_first(
            keyed=keyed,
            flagged=step.needs_reconcile,
            interrupted=interrupted,
            first_sent_at=step.first_sent_at,
            now=now,
            reconcile_after=timedelta(seconds=settings.reconcile_after_seconds),
        ),
    )
    secret = services.box.decrypt_json(step.secret_body) if step.secret_body else {}
    proven = None
    if step.response and (step.response.get(PROVEN) or step.response.get(ADOPT_PROVEN)):
        marks = (PROVEN, ADOPT_PROVEN)
        proven = {k: v for k, v in step.response.items() if k not in marks}
    held_by = None
    if (
        step.kind in (StepKind.CREATE_USER, StepKind.CREATE_RESELLER)
        and order.server_id is not None
    ):
        held_by = find_username_holder(
            session,
            order.server_id,
            str(step.request_body["username"]),
            order.service_id,
        )
    return StepCall(
        kind=step.kind,
        params=dict(step.params),
        body=dict(step.request_body),
        secret=secret,
        idempotency_key=step.idempotency_key,
        read_first=read_first and not polling and proven is None,
        polling=polling,
        username_held_by=held_by,
        proven=proven,
    )


def _observe(server: str, call: StepCall, result: StepResult, seconds: float) -> None:
    """Event metrics of one step run (never on the DB path: they cannot fail it)."""
    metrics.STEP_SECONDS.labels(server, call.kind.value).observe(seconds)
    if result.panel_status is not None:
        metrics.PANEL_RESPONSES.labels(
            server, metrics.status_class(result.panel_status)
        ).inc()
    elif result.answer in (Answer.DONE, Answer.IN_STATE, Answer.SSL_PENDING):
        metrics.PANEL_RESPONSES.labels(server, metrics.status_class(200)).inc()
    if result.answer is Answer.THROTTLED:
        metrics.PANEL_THROTTLED.labels(server).inc()
    elif result.answer is Answer.NO_TOKEN and result.retry_after:
        metrics.BUDGET_WAIT_SECONDS.labels(server).inc(result.retry_after)


def _settle(
    services: Services,
    session: Session,
    lease: Lease,
    prepared: _Prepared,
    result: StepResult,
) -> bool:
    """Fenced: persist a step's result per its rule; True to run the next step."""
    now = services.clock()
    settings = services.settings
    orders_db.fence(session, lease, now, settings.lease_seconds)
    order = orders_db.get_order(session, lease.order_uuid)
    step = next(s for s in order.steps if s.id == prepared.step_id)
    if result.answer is Answer.SSL_PENDING and step.first_sent_at is not None:
        pending_for = (now - step.first_sent_at).total_seconds()
        if pending_for >= settings.ssl_timeout_seconds:
            result = replace(
                result,
                answer=Answer.SSL_TIMEOUT,
                error_code="ssl_timeout",
                error_message=f"certificate still pending after {pending_for:.0f} s",
            )
    if result.read_absent and prepared.keyed:
        # Read as absent: the old send never took effect and the panel may have
        # forgotten its key, so the key's window starts again.
        step.first_sent_at = now
    row = rule(result.answer, keyed=prepared.keyed)
    return _apply(
        services, session, _Settling(order, step, prepared.server_id, result, row, now)
    )


def _apply(services: Services, session: Session, it: "_Settling") -> bool:
    """Persist one step result per its row of the outcome table."""
    order, step, result, row = it.order, it.step, it.result, it.rule
    step.needs_reconcile = row.read_first or result.read_next
    if result.proven is not None and row.verdict is Verdict.WAIT:
        # Read done, write owed: the next try only writes (the adopted account's
        # ordered password; the DELETE of a reseller found without users).
        step.response = {PROVEN: True, **result.proven}
    _count(services, session, it)
    if row.flags_server:
        servers_db.flag_auth_error(
            session, it.server_id, result.error_message or "credentials rejected"
        )
        log.error("server_credentials_rejected", server_id=str(it.server_id))
    if row.verdict is Verdict.ADVANCE:
        _step_succeeded(order, step, result)
        log.info("step_completed", step=step.kind.value, adopted=result.adopted)
        return True
    if row.verdict is Verdict.FAIL:
        return _step_failed(services, session, order, step, result)
    step.status = StepStatus.PENDING
    wait = _wait_for(services, session, it)
    if wait is None:
        return _step_failed(services, session, order, step, result)
    log.info(
        "step_retry_scheduled",
        step=step.kind.value,
        reason=wait.reason.value,
        delay=round(wait.delay, 3),
    )
    _release_waiting(order, it.now, wait)
    _requeue_when_due(services, session, order, it.now, wait)
    return False


def _requeue_when_due(
    services: Services, session: Session, order: Order, now: datetime, wait: _Wait
) -> None:
    """Send the order back to a worker the moment its wait ends (short waits).

    Without this a short wait (the panel's next token, a certificate poll) would
    last until the next dispatcher tick plus queueing, and every late start is
    panel budget lost (GCRA banks no unused time). The dispatcher leaves the order
    alone for a lease period; if this message is lost it re-sends it after that.
    The countdown stays far below the broker's visibility timeout (STYLE.md §2.1).
    """
    if wait.reason is WaitReason.PANEL_AUTH:
        return  # nothing goes until an operator fixes the credentials
    if wait.delay > services.settings.requeue_within_seconds:
        return
    # Stamped before counting: this order then counts itself once as a contender
    # (a message on its way), whether or not its release has been flushed yet.
    order.enqueued_at = now
    if wait.reason in orders_db.BUDGET_WAITS and _too_many_contenders(
        services, session, order, now
    ):
        # Enough of this server's orders are already coming back for its next
        # tokens: this one waits in the DB until the dispatcher has room.
        order.enqueued_at = None
        return
    # A hair late rather than early: a message that arrives before
    # next_attempt_at finds the order not due and does nothing.
    enqueue_after_commit(
        session, RUN_ORDER_TASK, str(order.id), countdown=max(wait.delay, 0.0) + 0.05
    )


def _too_many_contenders(
    services: Services, session: Session, order: Order, now: datetime
) -> bool:
    """Would this order, coming back for a token, exceed its server's cap?"""
    server = order.server
    if server is None:
        return False
    grace = timedelta(seconds=services.settings.lease_seconds)
    return room(services, session, now, [server], grace=grace)[server.id] < 0


def _count(services: Services, session: Session, it: "_Settling") -> None:
    """Attempts and the circuit counters.

    An attempt is consumed only by a call that reached a panel believed healthy:
    once the circuit is open, failures are the outage's, not the order's.
    """
    settings = services.settings
    circuit_open = False
    if it.rule.server_fault:
        circuit_open = (
            servers_db.record_failure(
                session,
                it.server_id,
                it.now,
                threshold=settings.circuit_failure_threshold,
                probe_seconds=settings.circuit_probe_seconds,
            )
            is not None
        )
    elif it.result.panel_status is not None or it.result.answer in (
        Answer.DONE,
        Answer.SSL_PENDING,
    ):
        servers_db.record_success(session, it.server_id)
    if it.rule.counts_attempt and not circuit_open:
        it.step.attempts += 1
        it.order.attempts += 1


def _wait_for(services: Services, session: Session, it: "_Settling") -> _Wait | None:
    """How long a WAIT verdict waits; None when the step must give up."""
    settings = services.settings
    step, result, now = it.step, it.result, it.now
    reason = it.rule.wait or WaitReason.RETRY_BACKOFF
    if not it.rule.backoff:
        match reason:
            case WaitReason.SSL_PENDING:
                step.response = result.response
                pending_for = (now - (step.first_sent_at or now)).total_seconds()
                delay = ssl_poll_delay(
                    pending_for,
                    first=settings.ssl_poll_first_seconds,
                    cap=settings.ssl_poll_seconds,
                    retry_after=result.retry_after,
                    timeout=settings.ssl_timeout_seconds,
                )
                return _Wait(delay, reason)
            case WaitReason.RATE_LIMITED:
                # Nothing was executed yet: unless the step already has an answer
                # (a pending certificate, whose polls count no attempt, dates its
                # timeout from first_sent_at; a proof read before the write owed).
                if (
                    step.attempts == 0
                    and not step.needs_reconcile
                    and step.response is None
                ):
                    step.first_sent_at = None
                return _Wait(result.retry_after or 1.0, reason)
            case WaitReason.PANEL_BUSY:
                return _Wait(settings.busy_retry_seconds, reason)
            case _:
                _record_error(step, result)
                return _Wait(settings.circuit_probe_seconds, reason)
    _record_error(step, result)
    server = session.get(Server, it.server_id)
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


def _record_error(step: Step, result: StepResult) -> None:
    step.error_code = result.error_code
    step.error_message = result.error_message
    step.panel_status = result.panel_status


def _step_succeeded(order: Order, step: Step, result: StepResult) -> None:
    step.status = StepStatus.SUCCEEDED
    step.response = result.response
    step.secret_body = None  # the password has done its job: wipe it
    step.error_code = None
    step.error_message = None
    step.panel_status = None
    if step.kind in (StepKind.CREATE_USER, StepKind.CREATE_RESELLER):
        # From here on the account is the bridge's: lifecycle orders may act on it.
        order.service.owns_account = True


def _step_failed(
    services: Services,
    session: Session,
    order: Order,
    step: Step,
    result: StepResult,
) -> bool:
    step.status = StepStatus.FAILED
    _record_error(step, result)
    message = f"{step.kind.value}: {result.error_message or result.error_code}"
    log.error(
        "order_failed", step=step.kind.value, error=message, code=result.error_code
    )
    _finish(services, session, order, OrderStatus.FAILED, message)
    return False


def _release_waiting(order: Order, now: datetime, wait: _Wait) -> None:
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
    if status is OrderStatus.FAILED:
        _forget_stale_proofs(order)
    order.status = next_order_status(order.status, status)
    order.wait_reason = None
    order.next_attempt_at = None
    order.lease_owner = None
    order.lease_until = None
    order.finished_at = now
    order.last_error = error
    try:
        apply_service_effect(order, status, now)
    except InvalidTransitionError as exc:
        # The panel did what the order asked, but the service's recorded state
        # does not allow it (a race we did not model): an operator decides.
        log.error("service_transition_refused", error=str(exc))
        order.status = OrderStatus.FAILED
        order.last_error = f"internal error: {exc}"
        status = OrderStatus.FAILED
    if status is OrderStatus.COMPLETED:
        wipe_secrets(order)
    metrics.ORDERS_FINISHED.labels(order.action.value, status.value).inc()
    schedule_callback(services.settings, session, order, now)
    log.info("order_finished", status=status.value, action=order.action.value)


def _forget_stale_proofs(order: Order) -> None:
    """A failed order's retry, however much later, checks again (a reseller's users)."""
    for step in order.steps:
        unfinished = step.status is not StepStatus.SUCCEEDED
        if unfinished and step.kind in RECHECKED_AFTER_FAILURE:
            step.response = None


class _Heartbeat:
    """Renews a lease (fenced) every third of its TTL while a step's calls run.

    A renewal that fails on the database is tried again at the next beat; one that
    finds the lease taken stops the beat (the step's outcome will be refused).
    """

    def __init__(self, services: Services, lease: Lease) -> None:
        self._services = services
        self._lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{lease.order_uuid}", daemon=True
        )

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        ttl = self._services.settings.lease_seconds
        while not self._stop.wait(ttl / 3):
            try:
                with self._services.sessions.begin() as session:
                    orders_db.fence(session, self._lease, self._services.clock(), ttl)
            except StaleOrderError:
                log.warning("lease_renewal_refused", order=str(self._lease.order_uuid))
                return
            except Exception as exc:  # noqa: BLE001 - try again at the next beat
                log.warning("lease_renewal_failed", error=type(exc).__name__)
