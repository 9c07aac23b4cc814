"""Helpers shared by the operations tests: failed orders, registered panels, audit."""

import uuid
from typing import Any

from sqlalchemy import select

from bridge.container import Services
from bridge.db.models import AuditEntry, Order, Server
from bridge.domain.model import AuthMode
from bridge.domain.states import OrderStatus
from bridge.fleet import ServerSpec, save_server
from bridge.simulator import SimulatorServer
from tests.factories import create_spec, drive, submit
from tests.simctl import FakeClock, SimControl


def register_sim(
    services: Services, simulator: SimulatorServer, name: str = "sim"
) -> Server:
    """The default simulator panel as server `name` (api_key mode)."""
    with services.sessions.begin() as session:
        return save_server(
            session,
            services.box,
            ServerSpec(
                name=name,
                base_url=simulator.base_url,
                auth_mode=AuthMode.API_KEY,
                api_key=simulator.credentials().api_key,
                rate_limit_per_min=6000,
            ),
        )


def small_create(n: int = 1, **overrides: Any) -> Any:
    """A create order with only the user step (fast to drive)."""
    values: dict[str, Any] = {"ssl": False, "mailboxes": (), "domain": None}
    values.update(overrides)
    return create_spec(n, **values)


def failed_create(
    services: Services, sim: SimControl, clock: FakeClock, n: int = 1
) -> Order:
    """A create whose user step the panel refused with 400 (not stored by key)."""
    sim.fail_next(1, 400)
    order = drive(services, submit(services, small_create(n)), clock, sim)
    assert order.status is OrderStatus.FAILED, order.status
    assert order.steps[0].panel_status == 400
    return order


def audit_rows(services: Services, order_uuid: uuid.UUID | None = None) -> list[Any]:
    """Operators' audit entries (CLI `ops:*` and API `admin:*`), oldest first."""
    with services.sessions() as session:
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.actor.not_in(("billing", "sweep")))
            .order_by(AuditEntry.id)
        )
        if order_uuid is not None:
            stmt = stmt.where(AuditEntry.order_uuid == order_uuid)
        return list(session.scalars(stmt))


def user_posts(sim: SimControl) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.requests()
        if r["method"] == "POST" and r["path"].rstrip("/") == "/api/v1/users"
    ]
