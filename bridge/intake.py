"""`accept_order()`: validate against the DB, persist order + whole plan in one
transaction, replay duplicates, and enqueue after commit.

Creates of services the bridge has never seen take the fast path
(`bridge.intake_fast`: those arriving together share one transaction);
everything else, and any create the fast path cannot settle, takes the careful
path here. The rows are built and written by `bridge.intake_rows`."""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge.callbacks import is_allowed_callback_url
from bridge.container import Services
from bridge.db.models import IntakeRequest, Order, Server, Service
from bridge.db.servers import Placement
from bridge.db.services import find_username_holder
from bridge.domain.model import (
    Action,
    OrderSpec,
)
from bridge.domain.states import ServiceStatus
from bridge.errors import (
    ConfigurationError,
    IdempotencyConflictError,
    InvalidOrderError,
)
from bridge.intake_fast import accept_new_service
from bridge.intake_rows import enqueue_rows, planned_rows, write_rows
from bridge.intake_target import choose_server, new_service, set_account
from bridge.packages import check_order_package
from bridge.settings import Settings

log = structlog.get_logger(__name__)

_CONCURRENT_TWIN_RETRIES = 3
# A create may (re-)provision a service only from these states.
_CREATABLE = (ServiceStatus.FAILED, ServiceStatus.TERMINATED)
# An order_id whose duplicate-check record has expired, purged or not yet.
_USED_BEFORE = "order_id: already used by an earlier order; post a new order_id"


@dataclass(frozen=True, slots=True)
class IntakeResult:
    response: dict[str, Any]
    created: bool


def body_digest(body: Any) -> str:
    """SHA-256 of the canonical JSON of a parsed body (key order, spacing ignored).

    Never stored as is: `accept_order` keys it (`keyed_digest`) first.
    """
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def keyed_digest(settings: Settings, body_sha256: str) -> str:
    """HMAC(BRIDGE_INTAKE_DIGEST_KEY, body_sha256), the form `intake_requests` keeps.

    The canonical body holds cleartext passwords and every other field of it is
    in `orders.payload`, so a plain hash would let a database reader confirm a
    guessed password offline; the keyed one does not. Keying the SHA-256 (not
    the body) is what lets rows stored before the key existed be migrated.
    """
    key = settings.intake_digest_key
    if key is None:
        msg = "BRIDGE_INTAKE_DIGEST_KEY is not set"
        raise ConfigurationError(msg)
    secret = key.get_secret_value().encode()
    return hmac.new(secret, body_sha256.encode(), hashlib.sha256).hexdigest()


def accept_order(
    services: Services,
    spec: OrderSpec,
    *,
    body_sha256: str,
) -> IntakeResult:
    """Persist `spec` with its plan, or replay the first answer for a duplicate.

    `body_sha256` is `body_digest()` of the request; only its keyed form is stored.
    Duplicates are found by `order_id` alone: it is inside the signed body, while
    an `Idempotency-Key` header is not signed, so the API ignores that header
    (design.md §5: no unsigned header changes what is stored).
    Raises IdempotencyConflictError (same order_id, other body), InvalidOrderError.
    Call it outside any transaction: a create may wait for a batch that another
    thread writes, which must not wait for locks this thread holds.
    """
    digest = keyed_digest(services.settings, body_sha256)
    keys = [f"order:{spec.order_id}"]
    _check_callback_url(services.settings, spec)
    if spec.action is Action.CREATE:
        response = accept_new_service(services, spec, keys=keys, digest=digest)
        if response is not None:
            log.info("order_received", order_id=spec.order_id, action=spec.action.value)
            return IntakeResult(response, created=True)
    for _ in range(_CONCURRENT_TWIN_RETRIES):
        try:
            with services.sessions.begin() as session:
                # Lock the service row before looking for a replay: a twin that
                # committed while we waited for the lock is then visible below
                # (each statement sees the latest commits under READ COMMITTED).
                # A twin that committed after this select is caught by the
                # unique keys at our commit (IntegrityError -> replay below).
                existing = _select_service(session, spec.service_id)
                replay = _find_replay(session, keys, digest, services.clock())
                if replay is not None:
                    return IntakeResult(replay, created=False)
                response = _persist(
                    services,
                    session,
                    spec,
                    keys=keys,
                    digest=digest,
                    existing=existing,
                )
        except IntegrityError:
            # A concurrent twin committed first (same order_id, key or new
            # service): loop to replay its answer or report the conflict.
            log.info("intake_concurrent_duplicate", order_id=spec.order_id)
            continue
        except InvalidOrderError:
            # A repeat of an earlier order whose record is purged is refused as
            # that, not for what the earlier order itself changed (its service
            # now exists): the same 409 as before the purge.
            _refuse_used_order_id(services, spec)
            raise
        log.info("order_received", order_id=spec.order_id, action=spec.action.value)
        return IntakeResult(response, created=True)
    _refuse_used_order_id(services, spec)
    msg = "order_id: concurrent duplicates did not settle"
    raise IdempotencyConflictError(msg)


def _refuse_used_order_id(services: Services, spec: OrderSpec) -> None:
    """Raise IdempotencyConflictError if an order already has `spec.order_id`.

    Called only once the duplicate-check record was not found: it has expired
    and been purged, so the first answer cannot be replayed, and the order_id
    is not free again.
    """
    with services.sessions() as session:
        taken = session.scalar(select(Order.id).where(Order.order_id == spec.order_id))
    if taken is not None:
        raise IdempotencyConflictError(_USED_BEFORE)


def _find_replay(
    session: Session, keys: list[str], digest: str, now: datetime
) -> dict[str, Any] | None:
    """The first answer to replay for a duplicate, or None for a new order_id.

    Raises IdempotencyConflictError for another body, and for a record past its
    `expires_at` (one the purge may delete, `bridge.ops.retention`): whether the
    purge has run yet must not decide between a replay and the 409 that a purged
    record's order_id gets.
    """
    rows = session.scalars(select(IntakeRequest).where(IntakeRequest.key.in_(keys)))
    for row in rows:
        if row.expires_at < now:
            raise IdempotencyConflictError(_USED_BEFORE)
        if not hmac.compare_digest(row.body_digest, digest):
            msg = "order_id already used with a different body"
            raise IdempotencyConflictError(msg)
        return row.response
    return None


def _persist(
    services: Services,
    session: Session,
    spec: OrderSpec,
    *,
    keys: list[str],
    digest: str,
    existing: Service | None,
) -> dict[str, Any]:
    """The careful path: the service row is locked (or new), usernames checked."""
    service = _prepare_service(session, spec, existing)
    # No autoflush while placing: a new service would be INSERTed before the
    # placement query and UPDATEd with its server after it (one round trip more).
    with session.no_autoflush:
        server = choose_server(
            spec, service, Placement(session, services.settings.placement_policy)
        )
    check_order_package(session, spec, server)
    service.order_seq += 1
    if server is not None and spec.action is Action.CREATE:
        _refuse_taken_username(session, server, service)
        service.server = server  # placement is decided once, here
    # paid_until only moves forward: a late or replayed notice never un-pays.
    if spec.paid_until is not None and (
        service.paid_until is None or spec.paid_until > service.paid_until
    ):
        service.paid_until = spec.paid_until
    return _save(services, session, spec, service, server, keys=keys, digest=digest)


def _save(
    services: Services,
    session: Session,
    spec: OrderSpec,
    service: Service,
    server: Server | None,
    *,
    keys: list[str],
    digest: str,
) -> dict[str, Any]:
    """Write the order's rows (the service is in the session and flushes
    first), enqueue it; the 202 body."""
    rows = planned_rows(services, spec, service, server, keys=keys, digest=digest)
    write_rows(session, [rows])
    enqueue_rows(session, rows)
    return rows.response


def _check_callback_url(settings: Settings, spec: OrderSpec) -> None:
    callback_url = spec.callback_url or settings.billing_callback_url
    if callback_url and not is_allowed_callback_url(settings, callback_url):
        raise InvalidOrderError("callback_url", "origin not in the allowed origins")


def _refuse_taken_username(session: Session, server: Server, service: Service) -> None:
    holder = find_username_holder(
        session, server.id, service.username, service.service_id
    )
    if holder is not None:
        raise InvalidOrderError(
            "account.username",
            f"already used on server {server.name} by service {holder}",
        )


def _select_service(session: Session, service_id: str) -> Service | None:
    """The service row, locked for the rest of the transaction (None if new)."""
    return session.scalars(
        select(Service).where(Service.service_id == service_id).with_for_update()
    ).one_or_none()


def _prepare_service(
    session: Session, spec: OrderSpec, service: Service | None
) -> Service:
    """Check the (already locked) service can take the order; create it if new.

    Never re-read here: a row committed by a concurrent twin since our select must
    make our insert fail (and be replayed), not look like a prior service.
    """
    if spec.action is Action.CREATE:
        account = spec.account
        if account is None:
            raise InvalidOrderError("account", "required for create")
        if service is None:
            service = new_service(spec)
            session.add(service)
            return service
        if service.status not in _CREATABLE:
            raise InvalidOrderError(
                "service_id", f"service already exists ({service.status.value})"
            )
        set_account(service, spec, account)
        service.suspension_reason = None
        service.suspended_at = None
        return service
    if service is None or service.status is ServiceStatus.TERMINATED:
        raise InvalidOrderError("service_id", "unknown or terminated service")
    if not service.username:
        raise InvalidOrderError("service_id", "service has no panel account")
    if not service.owns_account and service.status is not ServiceStatus.PENDING:
        # Lifecycle orders act only on accounts the bridge provisioned: a create
        # that failed (e.g. on a stranger's username) leaves nothing to act on.
        raise InvalidOrderError(
            "service_id", "the bridge has not provisioned a panel account for it"
        )
    if service.status is ServiceStatus.FAILED and spec.action is not Action.TERMINATE:
        raise InvalidOrderError(
            "service_id", "its create failed: only terminate or a new create applies"
        )
    return service
