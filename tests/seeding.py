"""Services written straight into the DB, as if created long ago (sweep tests)."""

from datetime import date, datetime

from bridge.container import Services
from bridge.db.models import Server, Service
from bridge.domain.model import SuspendReason
from bridge.domain.states import ServiceStatus


def seed(
    services: Services,
    server: Server,
    count: int,
    *,
    prefix: str = "svc",
    status: ServiceStatus = ServiceStatus.ACTIVE,
    paid_until: date | None = None,
    reason: SuspendReason | None = None,
    suspended_at: datetime | None = None,
    order_seq: int = 0,
) -> list[str]:
    """Services straight into the DB (as if created long ago) on `server`."""
    ids = [f"{prefix}-{i:03d}" for i in range(count)]
    with services.sessions.begin() as session:
        for n, service_id in enumerate(ids):
            session.add(
                Service(
                    service_id=service_id,
                    server_id=server.id,
                    username=f"{prefix}user{n}",
                    status=status,
                    paid_until=paid_until,
                    suspension_reason=reason,
                    suspended_at=suspended_at,
                    order_seq=order_seq,
                )
            )
    return ids
