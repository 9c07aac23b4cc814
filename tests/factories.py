"""Typed builders for tests: order specs and the helper that drives an order."""

import time
import uuid
from typing import Any

from bridge.container import Services
from bridge.db import orders as orders_db
from bridge.db.models import Order
from bridge.domain.model import AccountSpec, Action, MailboxSpec, OrderSpec
from bridge.domain.states import FINAL_ORDER_STATUSES, WaitReason
from bridge.engine import run_order
from bridge.intake import IntakeResult, accept_order, body_digest
from tests.simctl import FakeClock, SimControl


def create_spec(n: int = 1, **overrides: Any) -> OrderSpec:
    values: dict[str, Any] = {
        "order_id": f"ord-{n}",
        "service_id": f"svc-{n}",
        "action": Action.CREATE,
        "account": AccountSpec(
            username=f"user{n}",
            email=f"user{n}@example.com",
            password="correct-horse-battery",
            package="default",
        ),
        "domain": f"site{n}.example",
        "ssl": True,
        "mailboxes": (
            MailboxSpec("info", "mailbox-password-1", 100),
            MailboxSpec("sales", "mailbox-password-2", 0),
        ),
    }
    values.update(overrides)
    return OrderSpec(**values)


def submit(services: Services, spec: OrderSpec) -> uuid.UUID:
    result: IntakeResult = accept_order(
        services, spec, body_sha256=body_digest(repr(spec))
    )
    return uuid.UUID(result.response["order"]["id"])


def load(services: Services, order_uuid: uuid.UUID) -> Order:
    with services.sessions() as session:
        order = orders_db.get_order(session, order_uuid)
        _ = order.service, order.server  # load while the session is open
        return order


def drive(
    services: Services,
    order_uuid: uuid.UUID,
    clock: FakeClock,
    sim: SimControl | None = None,
    *,
    rounds: int = 60,
) -> Order:
    """Run the order like worker + dispatcher would, jumping clocks over waits."""
    for _ in range(rounds):
        run_order(services, order_uuid)
        order = load(services, order_uuid)
        if order.status in FINAL_ORDER_STATUSES:
            return order
        if order.next_attempt_at is not None and order.next_attempt_at > clock():
            wait = (order.next_attempt_at - clock()).total_seconds()
            if order.wait_reason is WaitReason.RATE_LIMITED:
                # The shared bucket runs on Redis TIME, which no test clock moves.
                time.sleep(min(wait, 2.0))
            clock.advance(wait + 0.001)
            if sim is not None:
                sim.advance(wait + 0.001)
    return load(services, order_uuid)


def set_server_key(services: Services, base_url: str, api_key: str) -> None:
    """Re-register server `sim` with another API key (`servers edit` does this)."""
    from bridge.domain.model import AuthMode
    from bridge.fleet import ServerSpec, save_server

    with services.sessions.begin() as session:
        save_server(
            session,
            services.box,
            ServerSpec(
                name="sim",
                base_url=base_url,
                auth_mode=AuthMode.API_KEY,
                api_key=api_key,
                rate_limit_per_min=6000,
            ),
        )
