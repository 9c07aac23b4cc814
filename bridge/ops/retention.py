"""Retention: wipe what finished orders carried, keep that they happened.

`purge_orders` empties the payload, the steps' request bodies, panel responses and
encrypted secrets of completed and cancelled orders older than a cutoff. Rows,
statuses, timestamps, errors and the audit log stay. Failed orders are never
purged: they are still the operators' to retry, and a retry needs its bodies;
resolve or cancel one and the next purge takes it.

The same run deletes intake duplicate-check rows past their `expires_at`
(BRIDGE_INTAKE_IDEMPOTENCY_TTL_SECONDS after the order was accepted), whatever
the cutoff: they exist only to replay billing's retries within that window.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, null, select, update
from sqlalchemy.orm import Session

from bridge import audit
from bridge.container import Services
from bridge.db.models import IntakeRequest, Order, Step
from bridge.domain.states import OrderStatus, StepStatus

PURGEABLE_STATUSES = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)
_BATCH = 500


@dataclass(frozen=True, slots=True)
class PurgeResult:
    cutoff: datetime
    orders: int
    steps: int
    intake_requests: int = 0


def _batches(
    services: Services, cutoff: datetime, batch: int
) -> Iterator[list[uuid.UUID]]:
    """Ids of purgeable orders in id order (keyset), one batch at a time."""
    last: uuid.UUID | None = None
    while True:
        stmt = select(Order.id).where(
            Order.status.in_(PURGEABLE_STATUSES), Order.finished_at < cutoff
        )
        if last is not None:
            stmt = stmt.where(Order.id > last)
        with services.sessions() as session:
            ids = list(session.scalars(stmt.order_by(Order.id).limit(batch)))
        if not ids:
            return
        yield ids
        last = ids[-1]


def _wipe(session: Session, ids: list[uuid.UUID]) -> int:
    session.execute(
        update(Order)
        .where(Order.id.in_(ids), Order.status.in_(PURGEABLE_STATUSES))
        .values(payload={})
        .execution_options(synchronize_session=False)
    )
    steps = session.execute(
        update(Step)
        .where(Step.order_uuid.in_(ids))
        # null(): SQL NULL, not the JSON literal `null` a Python None would store.
        .values(request_body={}, response=null(), secret_body=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(steps)


def purge_orders(
    services: Services, older_than: datetime, actor: str, *, batch: int = _BATCH
) -> PurgeResult:
    """Wipe payloads, bodies, responses and secrets of finished orders before
    `older_than`, in short transactions (a big table is never locked for long).

    Idempotent: a second run over the same range changes nothing that matters.
    """
    orders = steps = 0
    for ids in _batches(services, older_than, batch):
        with services.sessions.begin() as session:
            steps += _wipe(session, ids)
        orders += len(ids)
    intake = purge_expired_intake(services, batch=batch)
    with services.sessions.begin() as session:
        audit.record(
            session,
            actor=actor,
            action="orders_purged",
            detail={
                "older_than": older_than.isoformat(),
                "orders": orders,
                "steps": steps,
                "intake_requests": intake,
            },
        )
    return PurgeResult(
        cutoff=older_than, orders=orders, steps=steps, intake_requests=intake
    )


def purge_expired_intake(services: Services, *, batch: int = _BATCH) -> int:
    """Delete intake duplicate-check rows past `expires_at`, a batch per transaction."""
    now = services.clock()
    deleted = 0
    while True:
        with services.sessions.begin() as session:
            keys = list(
                session.scalars(
                    select(IntakeRequest.key)
                    .where(IntakeRequest.expires_at < now)
                    .limit(batch)
                )
            )
            if not keys:
                return deleted
            result = session.execute(
                delete(IntakeRequest)
                .where(IntakeRequest.key.in_(keys), IntakeRequest.expires_at < now)
                .execution_options(synchronize_session=False)
            )
        deleted += int(result.rowcount)  # type: ignore[attr-defined]


def wipe_expired_secrets(services: Services, now: datetime) -> int:
    """Wipe the stored passwords of orders failed longer than the retention.

    A failed order keeps its secrets so an operator can retry it; after
    BRIDGE_SECRET_RETENTION_DAYS they go, and a retry answers "secrets expired".
    Returns how many steps lost a secret.
    """
    cutoff = now - timedelta(days=services.settings.secret_retention_days)
    expired = (
        select(Order.id)
        .where(Order.status == OrderStatus.FAILED, Order.finished_at < cutoff)
        .scalar_subquery()
    )
    with services.sessions.begin() as session:
        wiped = session.execute(
            update(Step)
            .where(
                Step.order_uuid.in_(expired),
                Step.secret_body.is_not(None),
                Step.status != StepStatus.SUCCEEDED,
            )
            .values(secret_body=None)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
    return int(wiped)


def run_retention(services: Services, actor: str = "retention") -> dict[str, int]:
    """The beat's daily job: expire failed orders' secrets, purge old orders."""
    now = services.clock()
    report = {"secrets_wiped": wipe_expired_secrets(services, now)}
    days = services.settings.retention_days
    if days > 0:
        result = purge_orders(services, now - timedelta(days=days), actor)
        report |= {
            "orders_purged": result.orders,
            "steps_purged": result.steps,
            "intake_purged": result.intake_requests,
        }
    else:
        # Intake duplicate-check rows expire on their own clock, purge or not.
        report["intake_purged"] = purge_expired_intake(services)
    return report
