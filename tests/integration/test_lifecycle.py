"""Lifecycle actions through the same intake and engine as create."""

from typing import Any

import pytest

from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.model import Action, OrderSpec, SuspendReason
from bridge.domain.states import OrderStatus, ServiceStatus
from tests.factories import create_spec, drive, load, submit
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


def _user(sim: SimControl, username: str) -> dict[str, Any] | None:
    users = sim.state()["users"]
    if isinstance(users, dict):
        found: dict[str, Any] | None = users.get(username)
        return found
    return next((u for u in users if u["username"] == username), None)


@pytest.fixture
def active_service(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> str:
    order = drive(
        services, submit(services, create_spec(ssl=False, mailboxes=())), clock, sim
    )
    assert order.status is OrderStatus.COMPLETED
    return order.service_id


def _run(services: Services, clock: FakeClock, sim: SimControl, spec: OrderSpec) -> Any:
    return drive(services, submit(services, spec), clock, sim)


def test_suspend_then_unsuspend(
    services: Services, active_service: str, sim: SimControl, clock: FakeClock
) -> None:
    spec = OrderSpec(
        "s-1", active_service, Action.SUSPEND, reason=SuspendReason.NON_PAYMENT
    )
    order = _run(services, clock, sim, spec)
    assert order.status is OrderStatus.COMPLETED
    assert order.service.status is ServiceStatus.SUSPENDED
    assert order.service.suspension_reason is SuspendReason.NON_PAYMENT
    assert _user(sim, "user1")["status"] == "suspended"  # type: ignore[index]
    order = _run(
        services, clock, sim, OrderSpec("u-1", active_service, Action.UNSUSPEND)
    )
    assert order.service.status is ServiceStatus.ACTIVE
    assert order.service.suspension_reason is None
    assert _user(sim, "user1")["status"] == "active"  # type: ignore[index]


def test_suspending_an_already_suspended_account_is_success(
    services: Services, active_service: str, sim: SimControl, clock: FakeClock
) -> None:
    for n in (1, 2):
        spec = OrderSpec(
            f"s-{n}", active_service, Action.SUSPEND, reason=SuspendReason.ABUSE
        )
        assert _run(services, clock, sim, spec).status is OrderStatus.COMPLETED


def test_unsuspending_an_account_that_is_not_suspended_is_success(
    services: Services, active_service: str, sim: SimControl, clock: FakeClock
) -> None:
    order = _run(
        services, clock, sim, OrderSpec("u-1", active_service, Action.UNSUSPEND)
    )
    assert order.status is OrderStatus.COMPLETED
    assert order.service.status is ServiceStatus.ACTIVE
    assert _user(sim, "user1")["status"] == "active"  # type: ignore[index]


def test_change_package_and_password(
    services: Services, active_service: str, sim: SimControl, clock: FakeClock
) -> None:
    order = _run(
        services,
        clock,
        sim,
        OrderSpec("p-1", active_service, Action.CHANGE_PACKAGE, package="pro"),
    )
    assert order.status is OrderStatus.COMPLETED
    assert order.service.package == "pro"
    assert _user(sim, "user1")["package"] == "pro"  # type: ignore[index]
    order = _run(
        services,
        clock,
        sim,
        OrderSpec(
            "pw-1", active_service, Action.CHANGE_PASSWORD, password="brand-new-pass"
        ),
    )
    assert order.status is OrderStatus.COMPLETED
    assert order.steps[0].secret_body is None


def test_terminate_removes_the_account_and_404_is_success(
    services: Services, active_service: str, sim: SimControl, clock: FakeClock
) -> None:
    order = _run(
        services, clock, sim, OrderSpec("t-1", active_service, Action.TERMINATE)
    )
    assert order.status is OrderStatus.COMPLETED
    assert order.service.status is ServiceStatus.TERMINATED
    assert _user(sim, "user1") is None


def test_terminate_posted_during_create_runs_after_it(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    create = submit(services, create_spec(ssl=False, mailboxes=()))
    terminate = submit(services, OrderSpec("t-1", "svc-1", Action.TERMINATE))
    # The terminate is due but must not run while the create is unfinished.
    from bridge.engine import run_order

    run_order(services, terminate)
    assert load(services, terminate).status is OrderStatus.QUEUED
    assert sim.requests() == []
    assert drive(services, create, clock, sim).status is OrderStatus.COMPLETED
    assert drive(services, terminate, clock, sim).status is OrderStatus.COMPLETED
    methods = [
        r["method"] for r in sim.requests() if r["path"].startswith("/api/v1/users")
    ]
    assert methods == ["POST", "DELETE"]
