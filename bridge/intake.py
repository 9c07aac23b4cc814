"""`accept_order()`: validate against the DB, persist order + whole plan in one
transaction, replay duplicates, and enqueue after commit.

Creates of services the bridge has never seen take a fast path, and those that
arrive together share one transaction (`bridge.group_commit`); everything else,
and any create the fast path cannot settle, takes the careful path."""

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge.callbacks import is_allowed_callback_url
from bridge.container import Services
from bridge.db.base import utcnow
from bridge.db.models import AuditEntry, IntakeRequest, Order, Server, Service
from bridge.db.servers import Placement
from bridge.db.services import find_username_holder
from bridge.domain.model import (
    ACTION_PRIORITY,
    AccountSpec,
    Action,
    OrderSpec,
    ServerState,
)
from bridge.domain.planner import plan
from bridge.domain.states import OrderStatus, ServiceStatus
from bridge.errors import (
    ConfigurationError,
    IdempotencyConflictError,
    InvalidOrderError,
)
from bridge.intake_rows import PlannedRows, new_order, new_step, write_rows
from bridge.metrics import INTAKE_BATCH_SIZE
from bridge.packages import check_order_package, valid_package_names
from bridge.queue import RUN_ORDER_TASK, enqueue_after_commit
from bridge.settings import Settings
from bridge.views import order_view

log = structlog.get_logger(__name__)

_CONCURRENT_TWIN_RETRIES = 3
# A create may (re-)provision a service only from these states.
_CREATABLE = (ServiceStatus.FAILED, ServiceStatus.TERMINATED)


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
        fast = _accept_new_service(services, spec, keys=keys, digest=digest)
        if fast is not None:
            return fast
    for _ in range(_CONCURRENT_TWIN_RETRIES):
        try:
            with services.sessions.begin() as session:
                # Lock the service row before looking for a replay: a twin that
                # committed while we waited for the lock is then visible below
                # (each statement sees the latest commits under READ COMMITTED).
                # A twin that committed after this select is caught by the
                # unique keys at our commit (IntegrityError -> replay below).
                existing = _select_service(session, spec.service_id)
                replay = _find_replay(session, keys, digest)
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
        log.info("order_received", order_id=spec.order_id, action=spec.action.value)
        return IntakeResult(response, created=True)
    with services.sessions() as session:
        taken = session.scalar(select(Order.id).where(Order.order_id == spec.order_id))
    if taken is not None:
        # Its duplicate-check record has expired (and been purged): the first
        # answer cannot be replayed, and the order_id is not free again.
        msg = "order_id: already used by an earlier order; post a new order_id"
        raise IdempotencyConflictError(msg)
    msg = "order_id: concurrent duplicates did not settle"
    raise IdempotencyConflictError(msg)


def _find_replay(
    session: Session, keys: list[str], digest: str
) -> dict[str, Any] | None:
    rows = session.scalars(select(IntakeRequest).where(IntakeRequest.key.in_(keys)))
    for row in rows:
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
        server = _choose_server(
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


@dataclass(frozen=True, slots=True)
class _NewCreate:
    """One caller's create of a new service, waiting for a shared transaction."""

    spec: OrderSpec
    keys: list[str]
    digest: str


def _accept_new_service(
    services: Services, spec: OrderSpec, *, keys: list[str], digest: str
) -> IntakeResult | None:
    """The create of a service the bridge has never seen: no read of it at all.

    A billing burst (a sale, a migration) is mostly these. Nothing is locked or
    looked up first: the new rows' unique keys (service id, order_id, intake
    key, one live service per panel username and server) refuse whatever the
    careful path would have found, and then it runs instead to replay, explain
    or re-create. Creates arriving together share one transaction
    (`Services.intake_commits`). None: take the careful path.
    """
    result: IntakeResult | None = services.intake_commits.submit(
        _NewCreate(spec, keys, digest), partial(_accept_new_services, services)
    )
    if result is not None:
        log.info("order_received", order_id=spec.order_id, action=spec.action.value)
    return result


def _accept_new_services(
    services: Services, batch: Sequence[_NewCreate]
) -> list[IntakeResult | None]:
    """Persist a batch of new-service creates in one transaction.

    Each order still gets its whole plan in the transaction that answers it
    (design.md §1.1); the batch only shares the reads, statements and commit.
    An order the checks refuse is left out (None: its caller takes the careful
    path, which gives the refusal). A unique key refusing any row rolls the
    whole batch back and every caller takes the careful path.
    """
    INTAKE_BATCH_SIZE.observe(len(batch))
    results: list[IntakeResult | None] = [None] * len(batch)
    accepted: list[tuple[int, PlannedRows]] = []
    try:
        with services.sessions.begin() as session:
            placement = Placement(session, services.settings.placement_policy)
            packages = _PackageLists()
            for index, entry in enumerate(batch):
                rows = _plan_new_service(services, session, entry, placement, packages)
                if rows is not None:
                    accepted.append((index, rows))
            write_rows(session, [rows for _, rows in accepted])
            for _, rows in accepted:
                _enqueue(session, rows)
    except IntegrityError:
        return results
    for index, rows in accepted:
        results[index] = IntakeResult(rows.response, created=True)
    return results


def _plan_new_service(
    services: Services,
    session: Session,
    entry: _NewCreate,
    placement: Placement,
    packages: "_PackageLists",
) -> PlannedRows | None:
    """A new service and its order's rows; None if a check refuses it."""
    spec = entry.spec
    server: Server | None = None
    try:
        service = _new_service(spec)
        server = _choose_server(spec, service, placement)
        check_order_package(session, spec, server, lookup=packages.lookup)
        service.order_seq = 1
        service.server_id = server.id if server is not None else None
        if spec.paid_until is not None:
            service.paid_until = spec.paid_until
        rows = _planned_rows(
            services, spec, service, server, keys=entry.keys, digest=entry.digest
        )
    except InvalidOrderError:
        if server is not None and not spec.server:
            placement.unplace(server, spec.server_group)  # its slot stays free
        return None
    rows.new_service = service
    return rows


class _PackageLists:
    """`valid_package_names`, read once per target within one transaction."""

    def __init__(self) -> None:
        self._known: dict[
            tuple[uuid.UUID | None, str | None], tuple[str, set[str]] | None
        ] = {}

    def lookup(
        self, session: Session, server: Server | None, group: str | None
    ) -> tuple[str, set[str]] | None:
        key = (server.id if server is not None else None, group)
        if key not in self._known:
            self._known[key] = valid_package_names(session, server, group)
        return self._known[key]


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
    rows = _planned_rows(services, spec, service, server, keys=keys, digest=digest)
    write_rows(session, [rows])
    _enqueue(session, rows)
    return rows.response


def _enqueue(session: Session, rows: PlannedRows) -> None:
    if rows.order.server_id is not None:
        enqueue_after_commit(session, RUN_ORDER_TASK, str(rows.order.id))


def _planned_rows(
    services: Services,
    spec: OrderSpec,
    service: Service,
    server: Server | None,
    *,
    keys: list[str],
    digest: str,
) -> PlannedRows:
    """The order, its whole plan, its audit entry and duplicate-check records."""
    settings = services.settings
    now = services.clock()
    order = new_order(
        now,
        order_id=spec.order_id,
        service_id=service.service_id,
        service_seq=service.order_seq,
        action=spec.action,
        payload=_public_payload(spec),
        status=OrderStatus.QUEUED if server else OrderStatus.AWAITING_CAPACITY,
        priority=ACTION_PRIORITY[spec.action],
        requested_by=spec.requested_by,
        server=server,  # for the view; a transient object's FK is not synced
        server_id=server.id if server is not None else None,
        server_group=spec.server_group,
        callback_url=spec.callback_url or settings.billing_callback_url,
    )
    for position, planned in enumerate(
        plan(spec, username=service.username, role=service.account_role)
    ):
        new_step(
            order,
            position,
            kind=planned.kind,
            params=planned.params,
            request_body=planned.body,
            secret_body=(
                services.box.encrypt_json(planned.secret) if planned.secret else None
            ),
            idempotency_key=str(uuid.uuid4()),
        )
    audit = AuditEntry(
        actor=spec.requested_by.value,
        action=f"order_{spec.action.value}",
        order_uuid=order.id,
        service_id=service.service_id,
        before_status=None,
        after_status=order.status.value,
        detail={"order_id": spec.order_id},
        at=order.created_at,
    )
    response = {"order": order_view(order)}
    expires = now + timedelta(seconds=settings.intake_idempotency_ttl_seconds)
    intake = [
        IntakeRequest(
            key=key,
            body_digest=digest,
            order_uuid=order.id,
            response=response,
            created_at=order.created_at,
            expires_at=expires,
        )
        for key in keys
    ]
    return PlannedRows(order=order, audit=audit, response=response, intake=intake)


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
            service = _new_service(spec)
            session.add(service)
            return service
        if service.status not in _CREATABLE:
            raise InvalidOrderError(
                "service_id", f"service already exists ({service.status.value})"
            )
        _set_account(service, spec, account)
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


def _new_service(spec: OrderSpec) -> Service:
    """A transient service row for a create (every defaulted column set)."""
    if spec.account is None:
        raise InvalidOrderError("account", "required for create")
    created = utcnow()
    service = Service(
        service_id=spec.service_id,
        order_seq=0,
        owns_account=False,
        suspension_reason=None,
        suspended_at=None,
        paid_until=None,
        created_at=created,
        updated_at=created,
    )
    _set_account(service, spec, spec.account)
    return service


def _set_account(service: Service, spec: OrderSpec, account: AccountSpec) -> None:
    service.status = ServiceStatus.PENDING
    service.username = account.username
    service.account_role = account.role
    service.domain = spec.domain
    service.package = account.package


def _choose_server(
    spec: OrderSpec, service: Service, placement: Placement
) -> Server | None:
    """The order's server: the service's, the named one, or placed in its group."""
    if spec.action is not Action.CREATE:
        if service.server is None:
            raise InvalidOrderError("service_id", "service has no server")
        return service.server
    if spec.server:
        server = placement.named(spec.server)
        if server is None:
            raise InvalidOrderError("server", "unknown server")
        if server.state is not ServerState.ACTIVE:
            raise InvalidOrderError("server", f"server is {server.state.value}")
        # An explicitly named server is the operator's call: capacity is not
        # enforced here, only for placement.
        return server
    return placement.place(spec.server_group)


def _public_payload(spec: OrderSpec) -> dict[str, Any]:
    """What billing sent, minus every secret."""
    payload: dict[str, Any] = {
        "domain": spec.domain,
        "ssl": spec.ssl,
        "server": spec.server,
        "server_group": spec.server_group,
        "paid_until": spec.paid_until.isoformat() if spec.paid_until else None,
        "reason": spec.reason.value if spec.reason else None,
        "package": spec.package,
        "force": spec.force,
    }
    if spec.account is not None:
        payload["account"] = {
            "username": spec.account.username,
            "email": spec.account.email,
            "package": spec.account.package,
            "role": spec.account.role.value,
        }
        if spec.account.limits:
            payload["account"]["limits"] = dict(spec.account.limits)
    if spec.mailboxes:
        payload["mailboxes"] = [
            {"local_part": m.local_part, "quota_mb": m.quota_mb} for m in spec.mailboxes
        ]
    return {k: v for k, v in payload.items() if v not in (None, False, [])}
