"""POST /v1/services/{id}/payments over real HTTP: paid_until, unsuspend, replays."""

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bridge.container import Services
from bridge.db import orders as orders_db
from bridge.db.models import AuditEntry, Order, Server, Service
from bridge.domain.model import Action, OrderSpec, RequestedBy, SuspendReason
from bridge.domain.states import OrderStatus, ServiceStatus, WaitReason
from bridge.engine import run_order
from bridge.sweeps import run_sweep
from tests.factories import create_spec, drive, load, submit
from tests.signing import encode, signed_headers
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


def pay(
    api: httpx.Client, clock: FakeClock, service_id: str, body: Any
) -> httpx.Response:
    target = f"/v1/services/{service_id}/payments"
    raw = encode(body) if isinstance(body, dict) else body
    # Signed at the bridge's (injected) time: tests move its clock by days.
    headers = signed_headers("POST", target, raw, timestamp=int(clock().timestamp()))
    return api.post(target, content=raw, headers=headers)


def today_of(clock: FakeClock) -> date:
    day: date = clock().date()
    return day


@pytest.fixture
def active_service(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> str:
    spec = create_spec(ssl=False, mailboxes=(), paid_until=today_of(clock))
    order = drive(services, submit(services, spec), clock, sim)
    assert order.status is OrderStatus.COMPLETED
    return order.service_id


def suspend(
    services: Services,
    clock: FakeClock,
    sim: SimControl,
    service_id: str,
    reason: SuspendReason,
) -> None:
    spec = OrderSpec(f"suspend-{reason}", service_id, Action.SUSPEND, reason=reason)
    assert drive(services, submit(services, spec), clock, sim).service.status is (
        ServiceStatus.SUSPENDED
    )


def set_paid_until(services: Services, service_id: str, day: date) -> None:
    with services.sessions.begin() as session:
        session.get_one(Service, service_id).paid_until = day


def service_row(services: Services, service_id: str) -> Service:
    with services.sessions() as session:
        return session.get_one(Service, service_id)


def unsuspend_orders(services: Services) -> list[Order]:
    with services.sessions() as session:
        return list(
            session.scalars(select(Order).where(Order.action == Action.UNSUSPEND))
        )


@pytest.mark.smoke
def test_payment_moves_paid_until_and_needs_no_order_for_an_active_service(
    api: httpx.Client, services: Services, active_service: str, clock: FakeClock
) -> None:
    paid = today_of(clock) + timedelta(days=30)
    response = pay(api, clock, active_service, {"paid_until": paid.isoformat()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"]["paid_until"] == paid.isoformat()
    assert body["service"]["status"] == "active"
    assert (body["order"], body["cancelled"]) == (None, [])
    with services.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "payment_recorded")
        ).one()
    assert (entry.actor, entry.service_id) == ("billing", active_service)


@pytest.mark.smoke
def test_payment_unsuspends_a_service_suspended_for_non_payment(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    suspend(services, clock, sim, active_service, SuspendReason.NON_PAYMENT)
    paid = today_of(clock) + timedelta(days=30)
    response = pay(api, clock, active_service, {"paid_until": paid.isoformat()})
    assert response.status_code == 200, response.text
    order = response.json()["order"]
    assert order["order_id"] == f"payment:unsuspend:{active_service}:{paid}"
    assert (order["action"], order["status"]) == ("unsuspend", "queued")
    done = drive(services, uuid.UUID(order["id"]), clock, sim)
    assert done.status is OrderStatus.COMPLETED
    assert done.service.status is ServiceStatus.ACTIVE
    assert sim.state()["users"]["user1"]["status"] == "active"


@pytest.mark.parametrize("reason", [SuspendReason.ABUSE, SuspendReason.OTHER])
def test_payment_never_lifts_a_suspension_for_another_reason(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
    reason: SuspendReason,
) -> None:
    suspend(services, clock, sim, active_service, reason)
    paid = today_of(clock) + timedelta(days=30)
    response = pay(api, clock, active_service, {"paid_until": paid.isoformat()})
    assert response.status_code == 200
    assert response.json()["order"] is None
    assert response.json()["service"]["status"] == "suspended"
    assert unsuspend_orders(services) == []


def test_the_same_payment_twice_gives_one_unsuspend_order(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    suspend(services, clock, sim, active_service, SuspendReason.NON_PAYMENT)
    body = {"paid_until": (today_of(clock) + timedelta(days=30)).isoformat()}
    first = pay(api, clock, active_service, body).json()["order"]
    second = pay(api, clock, active_service, body).json()["order"]
    assert second["id"] == first["id"]
    (order,) = unsuspend_orders(services)
    drive(services, order.id, clock, sim)
    # After it ran, a late repeat of the notice still answers with that order.
    third = pay(api, clock, active_service, body).json()["order"]
    assert (third["id"], third["status"]) == (first["id"], "completed")
    assert len(unsuspend_orders(services)) == 1


def test_an_older_payment_never_moves_paid_until_back(
    api: httpx.Client, services: Services, active_service: str, clock: FakeClock
) -> None:
    later = today_of(clock) + timedelta(days=60)
    earlier = today_of(clock) + timedelta(days=30)
    pay(api, clock, active_service, {"paid_until": later.isoformat()})
    response = pay(api, clock, active_service, {"paid_until": earlier.isoformat()})
    assert response.status_code == 200
    assert response.json()["service"]["paid_until"] == later.isoformat()
    assert service_row(services, active_service).paid_until == later


def test_a_payment_that_leaves_the_service_overdue_does_not_unsuspend(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    suspend(services, clock, sim, active_service, SuspendReason.NON_PAYMENT)
    set_paid_until(services, active_service, today_of(clock) - timedelta(days=40))
    grace = services.settings.suspend_after_days
    still_due = today_of(clock) - timedelta(days=grace + 1)
    response = pay(api, clock, active_service, {"paid_until": still_due.isoformat()})
    assert response.json()["order"] is None
    # Within the grace period it is no longer overdue: unsuspend.
    within = today_of(clock) - timedelta(days=grace)
    response = pay(api, clock, active_service, {"paid_until": within.isoformat()})
    assert response.json()["order"]["action"] == "unsuspend"


def test_payment_cancels_the_sweeps_queued_suspension(
    api: httpx.Client, services: Services, active_service: str, clock: FakeClock
) -> None:
    set_paid_until(services, active_service, today_of(clock) - timedelta(days=10))
    assert run_sweep(services, "suspend").orders_created == 1
    paid = today_of(clock) + timedelta(days=30)
    body = pay(api, clock, active_service, {"paid_until": paid.isoformat()}).json()
    (cancelled,) = body["cancelled"]
    assert cancelled.startswith(f"sweep:suspend:{active_service}:")
    assert body["order"] is None  # never suspended: nothing to lift
    with services.sessions() as session:
        order = orders_db.find_order_by_billing_id(session, cancelled)
        assert order is not None
        assert order.status is OrderStatus.CANCELLED


def test_payment_cancels_a_queued_termination_and_unsuspends(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    suspend(services, clock, sim, active_service, SuspendReason.NON_PAYMENT)
    clock.advance((services.settings.terminate_after_days + 1) * 86400)
    assert run_sweep(services, "terminate").orders_created == 1
    paid = today_of(clock) + timedelta(days=30)
    body = pay(api, clock, active_service, {"paid_until": paid.isoformat()}).json()
    assert body["cancelled"][0].startswith("sweep:terminate:")
    done = drive(services, uuid.UUID(body["order"]["id"]), clock, sim)
    assert done.status is OrderStatus.COMPLETED
    assert sim.state()["users"]["user1"]["status"] == "active"


def test_an_unsuspend_follows_a_sweep_suspension_already_running(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    set_paid_until(services, active_service, today_of(clock) - timedelta(days=10))
    run_sweep(services, "suspend")
    (suspend_order,) = (o for o in _all_orders(services) if o.action is Action.SUSPEND)
    with services.sessions.begin() as session:
        # A worker holds it: too late to cancel.
        assert orders_db.acquire_lease(
            session, suspend_order.id, "another-worker", clock(), 5
        )
    paid = today_of(clock) + timedelta(days=30)
    body = pay(api, clock, active_service, {"paid_until": paid.isoformat()}).json()
    assert body["cancelled"] == []
    assert body["order"]["action"] == "unsuspend"
    clock.advance(6)  # the other worker's lease lapses; we finish its order
    assert drive(services, suspend_order.id, clock, sim).service.status is (
        ServiceStatus.SUSPENDED
    )
    final = drive(services, uuid.UUID(body["order"]["id"]), clock, sim)
    assert final.service.status is ServiceStatus.ACTIVE
    assert load(services, suspend_order.id).status is OrderStatus.COMPLETED


def _sweep_order(services: Services, action: Action) -> Order:
    (order,) = (
        o
        for o in _all_orders(services)
        if o.requested_by is RequestedBy.SWEEP and o.action is action
    )
    return order


def _run_once_with_the_answer_lost(
    services: Services, sim: SimControl, order: Order
) -> Order:
    """One run: the panel applies the step, then the connection drops."""
    sim.faults(drop_after_apply_rate=1.0)
    run_order(services, order.id)
    sim.clear_faults()
    after = load(services, order.id)
    assert (after.status, after.wait_reason) == (
        OrderStatus.WAITING,
        WaitReason.RETRY_BACKOFF,
    )
    assert after.steps[0].first_sent_at is not None  # outcome unknown
    return after


def test_payment_does_not_cancel_a_waiting_sweep_suspension_the_panel_applied(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    set_paid_until(services, active_service, today_of(clock) - timedelta(days=30))
    assert run_sweep(services, "suspend").orders_created == 1
    sweep = _run_once_with_the_answer_lost(
        services, sim, _sweep_order(services, Action.SUSPEND)
    )
    assert sim.state()["users"]["user1"]["status"] == "suspended"
    paid = today_of(clock) + timedelta(days=30)
    body = pay(api, clock, active_service, {"paid_until": paid.isoformat()}).json()
    # The suspend may have acted: it goes on, and an unsuspend follows it.
    assert body["cancelled"] == []
    assert body["order"]["action"] == "unsuspend"
    assert load(services, sweep.id).status is OrderStatus.WAITING
    finished = drive(services, sweep.id, clock, sim)
    assert finished.status is OrderStatus.COMPLETED
    assert finished.service.status is ServiceStatus.SUSPENDED
    final = drive(services, uuid.UUID(body["order"]["id"]), clock, sim)
    assert final.status is OrderStatus.COMPLETED
    assert final.service.status is ServiceStatus.ACTIVE
    assert final.service.suspension_reason is None
    assert sim.state()["users"]["user1"]["status"] == "active"


def test_payment_cancels_a_waiting_sweep_suspension_never_sent(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    set_paid_until(services, active_service, today_of(clock) - timedelta(days=30))
    assert run_sweep(services, "suspend").orders_created == 1
    sweep = _sweep_order(services, Action.SUSPEND)
    sim.fail_next(1, 429)  # refused before it ran: nothing executed
    run_order(services, sweep.id)
    waiting = load(services, sweep.id)
    assert waiting.status is OrderStatus.WAITING
    assert waiting.steps[0].first_sent_at is None
    paid = today_of(clock) + timedelta(days=30)
    body = pay(api, clock, active_service, {"paid_until": paid.isoformat()}).json()
    assert body["cancelled"] == [sweep.order_id]
    assert body["order"] is None
    assert load(services, sweep.id).status is OrderStatus.CANCELLED
    assert sim.state()["users"]["user1"]["status"] == "active"


def test_payment_lets_a_sweep_termination_that_may_have_run_finish(
    api: httpx.Client,
    services: Services,
    active_service: str,
    clock: FakeClock,
    sim: SimControl,
) -> None:
    suspend(services, clock, sim, active_service, SuspendReason.NON_PAYMENT)
    clock.advance((services.settings.terminate_after_days + 1) * 86400)
    assert run_sweep(services, "terminate").orders_created == 1
    sweep = _run_once_with_the_answer_lost(
        services, sim, _sweep_order(services, Action.TERMINATE)
    )
    assert "user1" not in sim.state()["users"]  # the DELETE ran
    paid = today_of(clock) + timedelta(days=30)
    body = pay(api, clock, active_service, {"paid_until": paid.isoformat()}).json()
    # Not cancelled: the bridge would believe in an account the panel deleted.
    assert body["cancelled"] == []
    assert body["order"]["action"] == "unsuspend"
    finished = drive(services, sweep.id, clock, sim)
    assert finished.status is OrderStatus.COMPLETED
    assert finished.service.status is ServiceStatus.TERMINATED
    # What billing hears next: the terminate completed, the unsuspend failed.
    unsuspend = drive(services, uuid.UUID(body["order"]["id"]), clock, sim)
    assert unsuspend.status is OrderStatus.FAILED
    assert "terminated" in (unsuspend.last_error or "")


def _all_orders(services: Services) -> list[Order]:
    with services.sessions() as session:
        return list(session.scalars(select(Order)))


def test_unknown_service_is_404(
    api: httpx.Client, services: Services, clock: FakeClock
) -> None:
    response = pay(api, clock, "nope", {"paid_until": "2030-01-01"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"paid_until": "2030-13-01"},
        {"paid_until": 1893456000},
        {"paid_until": "next week"},
        {"paid_until": "2030-01-01", "amount": 10},
        {},
    ],
    ids=["bad-month", "number", "text", "extra-field", "missing"],
)
def test_bad_payment_body_is_422(
    api: httpx.Client, active_service: str, clock: FakeClock, body: dict[str, Any]
) -> None:
    assert pay(api, clock, active_service, body).status_code == 422


def test_unsigned_payment_is_401(api: httpx.Client, active_service: str) -> None:
    response = api.post(
        f"/v1/services/{active_service}/payments", json={"paid_until": "2030-01-01"}
    )
    assert response.status_code == 401
