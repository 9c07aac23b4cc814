"""Linking an imported service to billing's id: rename `service_id` everywhere.

Orders reference services.service_id by foreign key (ON DELETE RESTRICT, no ON
UPDATE CASCADE), so a rename is: insert the new row, re-point every referencing
column, delete the old row - in one transaction, under the old row's lock.
"""

from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from bridge import audit
from bridge.container import Services
from bridge.db.base import metadata
from bridge.db.models import AuditEntry, Order, Service
from bridge.db.orders import BLOCKING_STATUSES
from bridge.errors import InvalidOrderError, NotFoundError
from bridge.ops.errors import OperationRefusedError
from bridge.views import service_view

PLACEHOLDER_PREFIX = "import:"
_COPIED = (
    "server_id",
    "domain",
    "package",
    "status",
    "suspension_reason",
    "suspended_at",
    "paid_until",
    "owns_account",
    "order_seq",
    "created_at",
)


def placeholder_id(server_name: str, username: str) -> str:
    """The service id of an imported account billing has not named yet."""
    return f"{PLACEHOLDER_PREFIX}{server_name}:{username}"


def _check_new_id(new_id: str) -> None:
    if not 1 <= len(new_id) <= 128 or any(not 0x21 <= ord(c) <= 0x7E for c in new_id):  # noqa: PLR2004
        raise InvalidOrderError("service_id", "1-128 printable characters, no spaces")
    if new_id.startswith(PLACEHOLDER_PREFIX):
        raise InvalidOrderError(
            "service_id", f"'{PLACEHOLDER_PREFIX}' ids are reserved for imports"
        )


def link_service(
    services: Services, service_id: str, new_id: str, actor: str
) -> dict[str, Any]:
    """Give imported service `service_id` billing's id `new_id` (audited).

    Raises InvalidOrderError (bad new id), NotFoundError (unknown service) and
    OperationRefusedError (not a placeholder, target exists, orders in flight).
    """
    _check_new_id(new_id)
    with services.sessions.begin() as session:
        service = session.scalars(
            select(Service).where(Service.service_id == service_id).with_for_update()
        ).one_or_none()
        if service is None:
            msg = f"service {service_id} not found"
            raise NotFoundError(msg)
        if not service.service_id.startswith(PLACEHOLDER_PREFIX):
            msg = (
                f"service {service_id} already carries billing's id; only imported "
                f"'{PLACEHOLDER_PREFIX}…' services are linked"
            )
            raise OperationRefusedError(msg)
        renamed = rename_service(session, service, new_id, actor)
        return service_view(renamed)


def rename_service(
    session: Session, service: Service, new_id: str, actor: str
) -> Service:
    """Move `service` (row-locked by the caller) to `new_id` in this transaction.

    Raises OperationRefusedError when `new_id` exists or an order is in flight.
    """
    old_id = service.service_id
    if session.get(Service, new_id) is not None:
        msg = f"service id {new_id} already exists; nothing was changed"
        raise OperationRefusedError(msg)
    busy = session.scalar(
        select(func.count(Order.id)).where(
            Order.service_id == old_id, Order.status.in_(BLOCKING_STATUSES)
        )
    )
    if busy:
        # A worker holding such an order would write its outcome to the old id.
        msg = f"service {old_id} has {busy} unfinished order(s); link it once they end"
        raise OperationRefusedError(msg)
    username = service.username
    # The copy starts without its username: the one-live-service-per-username
    # index would otherwise see two live rows until the old one is gone.
    moved = Service(service_id=new_id, username=None)
    for name in _COPIED:
        setattr(moved, name, getattr(service, name))
    session.add(moved)
    session.flush()
    for table, column in _referencing_columns():
        session.execute(
            update(table).where(table.c[column] == old_id).values({column: new_id})
        )
    session.execute(
        update(AuditEntry)
        .where(AuditEntry.service_id == old_id)
        .values(service_id=new_id)
        .execution_options(synchronize_session=False)
    )
    session.delete(service)
    session.flush()
    moved.username = username
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="service_linked",
        service_id=new_id,
        before=moved.status.value,
        after=moved.status.value,
        detail={"from": old_id, "to": new_id},
    )
    return moved


def _referencing_columns() -> list[tuple[Table, str]]:
    """Every (table, column) with a foreign key to services.service_id.

    Read from the metadata so a table added later (usage, ...) is re-pointed too.
    """
    found = []
    for table in metadata.sorted_tables:
        for fk in table.foreign_keys:
            target = fk.column
            if target.table.name == "services" and target.name == "service_id":
                found.append((table, fk.parent.name))
    return found
