"""Service queries: who holds a panel username on a server. Never commits."""

import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bridge.db.models import HOLDS_USERNAME, Service


def find_username_holder(
    session: Session, server_id: uuid.UUID, username: str | None, service_id: str
) -> str | None:
    """Another service of `server_id` that holds `username`, if any.

    A live service holds its name, and so does a failed one that owns its panel
    account (its create failed after the user step): a second service must never
    adopt the first one's account, which the first one's terminate would delete.
    The partial unique index `uq_services_live_server_username` is the backstop.
    """
    return session.scalars(
        select(Service.service_id).where(
            Service.server_id == server_id,
            Service.username == username,
            Service.service_id != service_id,
            # The index's own predicate: the query and the backstop cannot drift.
            text(f"({HOLDS_USERNAME})"),
        )
    ).first()
