"""Server queries and the per-server circuit breaker (counters in the DB). No commits.

After `threshold` consecutive not-sent / 5xx answers the circuit opens: orders on
that server wait (reason panel_unavailable) and one probe per interval tests it.
"""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bridge.db.models import Server
from bridge.domain.model import ServerState
from bridge.errors import NotFoundError


def get_server_by_name(session: Session, name: str) -> Server:
    server = find_server_by_name(session, name)
    if server is None:
        msg = f"server {name!r} not found"
        raise NotFoundError(msg)
    return server


def find_server_by_name(session: Session, name: str) -> Server | None:
    return session.scalars(select(Server).where(Server.name == name)).one_or_none()


def first_active_server(session: Session, group: str | None) -> Server | None:
    """The first active server (by name), within `group` when one is given."""
    stmt = select(Server).where(Server.state == ServerState.ACTIVE)
    if group is not None:
        stmt = stmt.where(Server.group_name == group)
    return session.scalars(stmt.order_by(Server.name).limit(1)).first()


def record_failure(
    session: Session,
    server_id: uuid.UUID,
    now: datetime,
    *,
    threshold: int,
    probe_seconds: float,
) -> datetime | None:
    """Count a not-sent/5xx answer; return when the circuit reopens if it is open."""
    count = session.execute(
        update(Server)
        .where(Server.id == server_id)
        .values(consecutive_failures=Server.consecutive_failures + 1)
        .returning(Server.consecutive_failures)
    ).scalar_one()
    if count < threshold:
        return None
    until = now + timedelta(seconds=probe_seconds)
    session.execute(
        update(Server).where(Server.id == server_id).values(circuit_open_until=until)
    )
    return until


def record_success(session: Session, server_id: uuid.UUID) -> None:
    """Close the circuit; writes only when there is something to reset."""
    session.execute(
        update(Server)
        .where(
            Server.id == server_id,
            or_(
                Server.consecutive_failures > 0, Server.circuit_open_until.is_not(None)
            ),
        )
        .values(consecutive_failures=0, circuit_open_until=None)
    )


def claim_probe(
    session: Session, server: Server, now: datetime, probe_seconds: float
) -> datetime | None:
    """Decide whether this run may call a server whose circuit is open.

    Returns None when the call may go ahead (circuit closed, or we won the probe
    slot); otherwise when to look again.
    """
    until = server.circuit_open_until
    if until is None:
        return None
    if until > now:
        return until
    new_until = now + timedelta(seconds=probe_seconds)
    won = session.execute(
        update(Server)
        .where(Server.id == server.id, Server.circuit_open_until == until)
        .values(circuit_open_until=new_until)
    ).rowcount  # type: ignore[attr-defined]
    return None if won == 1 else new_until


def flag_auth_error(session: Session, server_id: uuid.UUID, message: str) -> None:
    session.execute(
        update(Server).where(Server.id == server_id).values(auth_error=message)
    )
