"""Server queries and the per-server circuit breaker (counters in the DB). No commits.

After `threshold` consecutive not-sent / 5xx answers the circuit opens: orders on
that server wait (reason panel_unavailable) and one probe per interval tests it.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bridge.db.models import Server, Service
from bridge.domain.model import ServerState
from bridge.domain.states import ServiceStatus
from bridge.errors import NotFoundError
from bridge.settings import PlacementPolicy


def get_server_by_name(session: Session, name: str) -> Server:
    server = find_server_by_name(session, name)
    if server is None:
        msg = f"server {name!r} not found"
        raise NotFoundError(msg)
    return server


def find_server_by_name(session: Session, name: str) -> Server | None:
    return session.scalars(select(Server).where(Server.name == name)).one_or_none()


# Services that occupy an account slot on their server.
_OCCUPYING = (ServiceStatus.PENDING, ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED)


def slots(server: Server) -> int | None:
    """Accounts the server may hold: the tighter of capacity and license max_users."""
    limits = [
        n
        for n in (server.capacity, server.license_max_users)
        if n is not None and n >= 0
    ]
    return min(limits) if limits else None


class Placement:
    """Places new accounts within one transaction, reading each group once.

    When a candidate has a slot limit, locks the group's active server rows first,
    so concurrent intakes placing into the same group serialise and never
    oversubscribe the last slot. With no limit anywhere nothing can be
    oversubscribed and the fill is 0 everywhere: no lock and no count, so intakes
    into an unlimited group run in parallel (the lock is held until commit).
    Accounts placed through this object count at once (they are not flushed
    yet): a batch of creates fills slots as a sequence of single creates would.
    """

    def __init__(self, session: Session, policy: PlacementPolicy) -> None:
        self._session = session
        self._policy = policy
        self._groups: dict[str | None, _Group] = {}
        self._named: dict[str, Server | None] = {}

    def place(self, group: str | None) -> Server | None:
        loaded = self._load(group)
        chosen = self._choose(loaded)
        if chosen is not None and loaded.counts is not None:
            loaded.counts[chosen.id] = loaded.counts.get(chosen.id, 0) + 1
        return chosen

    def unplace(self, server: Server, group: str | None) -> None:
        """Give back a slot `place(group)` counted for an account not created."""
        loaded = self._groups.get(group)
        if loaded is not None and loaded.counts and loaded.counts.get(server.id, 0):
            loaded.counts[server.id] -= 1

    def named(self, name: str) -> Server | None:
        """The server called `name` (read once per Placement)."""
        if name not in self._named:
            self._named[name] = find_server_by_name(self._session, name)
        return self._named[name]

    def _load(self, group: str | None) -> "_Group":
        if group in self._groups:
            return self._groups[group]
        stmt = select(Server).where(Server.state == ServerState.ACTIVE)
        if group is not None:
            stmt = stmt.where(Server.group_name == group)
        stmt = stmt.order_by(Server.name)
        candidates = list(self._session.scalars(stmt))
        limited = any(slots(s) is not None for s in candidates)
        counts: dict[uuid.UUID | None, int] | None = None
        if limited:
            # A limit may have been set since the unlocked read: decide on
            # locked rows.
            locked = stmt.with_for_update().execution_options(populate_existing=True)
            candidates = list(self._session.scalars(locked))
            counts = _accounts(self._session, candidates)
        elif self._policy is PlacementPolicy.LEAST_FULL and len(candidates) > 1:
            # No limits: "least full" is the fewest accounts (ties: name order).
            counts = _accounts(self._session, candidates)
        loaded = _Group(candidates, counts, limited)
        self._groups[group] = loaded
        return loaded

    def _choose(self, loaded: "_Group") -> Server | None:
        if not loaded.candidates:
            return None
        if loaded.counts is None:  # no limits, and name order decides
            return loaded.candidates[0]
        best: Server | None = None
        best_fill = float("inf")
        for server in loaded.candidates:  # ties: name order (strict <)
            used = loaded.counts.get(server.id, 0)
            cap = slots(server)
            if cap is not None and used >= cap:
                continue
            if self._policy is PlacementPolicy.FILL_IN_ORDER:
                return server
            # With limits: the share used (an unlimited server counts as empty);
            # without: "least full" is the fewest accounts.
            share = 0.0 if cap is None else used / cap
            fill = share if loaded.limited else float(used)
            if fill < best_fill:
                best, best_fill = server, fill
        return best


@dataclass(slots=True)
class _Group:
    """A group's candidates as read once, and their accounts (None: not needed)."""

    candidates: list[Server]
    counts: dict[uuid.UUID | None, int] | None
    limited: bool  # some candidate has a slot limit (rows locked, counts read)


def _accounts(session: Session, servers: list[Server]) -> dict[uuid.UUID | None, int]:
    """Accounts each server holds (services that occupy a slot)."""
    rows = session.execute(
        select(Service.server_id, func.count().label("n"))
        .where(
            Service.server_id.in_([s.id for s in servers]),
            Service.status.in_(_OCCUPYING),
        )
        .group_by(Service.server_id)
    )
    return {row.server_id: row.n for row in rows}


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
