"""The audit log: who (billing, a sweep, an operator) did what to which order, when.

Entries are append-only and survive `orders purge`. Details pass through the log
redactor before they are stored: an audit row must never hold a secret.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from bridge.db.models import AuditEntry, Order
from bridge.logging import redact_value


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    order: Order | None = None,
    service_id: str | None = None,
    before: str | None = None,
    after: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the session's transaction (committed with the change).

    `at` defaults to the wall clock, like every other writer of the log, so
    entries from intake, sweeps and operators sort together.
    """
    entry = AuditEntry(
        actor=actor,
        action=action,
        order_uuid=order.id if order is not None else None,
        service_id=service_id or (order.service_id if order is not None else None),
        before_status=before,
        after_status=after,
        detail=redact_value(detail or {}),
    )
    if at is not None:
        entry.at = at
    session.add(entry)
    return entry


def _filters(
    since: datetime | None, actor: str | None, order_uuid: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if since is not None:
        clauses.append(AuditEntry.at >= since)
    if actor:
        # "ops" lists every CLI operator ("ops:alice", "ops:bob"); "ops:alice" one.
        clauses.append(
            or_(
                AuditEntry.actor == actor,
                AuditEntry.actor.startswith(f"{actor}:", autoescape=True),
            )
        )
    if order_uuid is not None:
        clauses.append(AuditEntry.order_uuid == order_uuid)
    return clauses


def list_entries(
    session: Session,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    order_uuid: uuid.UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Entries matching the filters, newest first, as JSON-ready dicts."""
    stmt = (
        select(AuditEntry)
        .where(*_filters(since, actor, order_uuid))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [entry_view(e) for e in session.scalars(stmt)]


def count_entries(
    session: Session,
    *,
    since: datetime | None = None,
    actor: str | None = None,
    order_uuid: uuid.UUID | None = None,
) -> int:
    stmt = (
        select(func.count())
        .select_from(AuditEntry)
        .where(*_filters(since, actor, order_uuid))
    )
    return session.scalar(stmt) or 0


def entry_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "order": str(entry.order_uuid) if entry.order_uuid else None,
        "service_id": entry.service_id,
        "before": entry.before_status,
        "after": entry.after_status,
        "detail": entry.detail,
    }
