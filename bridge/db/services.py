"""Service queries: who holds a panel username on a server. Never commits."""

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.db.models import Service
from bridge.domain.states import LIVE_SERVICE_STATUSES


def find_username_holder(
    session: Session, server_id: uuid.UUID, username: str | None, service_id: str
) -> str | None:
    """Another live service of `server_id` that holds `username`, if any.

    One live service per panel username and server (the partial unique index is
    the backstop): a second service must never adopt the first one's account.
    """
    return session.scalars(
        select(Service.service_id).where(
            Service.server_id == server_id,
            Service.username == username,
            Service.service_id != service_id,
            Service.status.in_(LIVE_SERVICE_STATUSES),
        )
    ).first()
