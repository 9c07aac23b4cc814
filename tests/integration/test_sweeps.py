"""Suspension and termination sweeps: due tests, batching, concurrency, the guard."""

import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import structlog
from sqlalchemy import func, select, update

from bridge.container import Services, build_services
from bridge.db.models import AuditEntry, Order, Server, Service, SweepRun
from bridge.domain.model import Action, OrderSpec, RequestedBy, StepKind, SuspendReason
from bridge.domain.states import OrderStatus, ServiceStatus
from bridge.settings import Settings
from bridge.sweeps import SWEEP_KINDS, SweepReport, run_sweep
from tests.factories import create_spec, drive, submit
from tests.seeding import seed
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

MakeServices = Callable[..., Services]


@pytest.fixture
def make_services(
    settings: Settings, services: Services, clock: FakeClock
) -> Iterator[MakeServices]:
    """Services on the same database and clock with some settings changed."""
    built: list[Services] = []

    def make(**overrides: Any) -> Services:
        svc = build_services(settings.model_copy(update=overrides), clock=clock)
        built.append(svc)
        return svc

    yield make
    for svc in built:
        svc.close()


def today_of(clock: FakeClock) -> date:
    now: datetime = clock()
    return now.date()


def sweep_orders(services: Services) -> list[Order]:
    with services.sessions() as session:
        orders = session.scalars(
            select(Order)
            .where(Order.requested_by == RequestedBy.SWEEP)
            .order_by(Order.service_id)
        ).all()
        for order in orders:
            _ = order.steps, order.service
        return list(orders)


def runs(services: Services) -> list[SweepRun]:
    with services.sessions() as session:
        return list(session.scalars(select(SweepRun).order_by(SweepRun.id)))


@pytest.mark.smoke
def test_suspension_is_due_the_day_after_the_grace_period(
    services: Services, server: Server, clock: FakeClock
) -> None:
    today = today_of(clock)
    grace = services.settings.suspend_after_days
    seed(services, server, 1, prefix="ontime", paid_until=today - timedelta(grace))
    seed(services, server, 1, prefix="late", paid_until=today - timedelta(grace + 1))
    report = run_sweep(services, "suspend")
    assert (report.candidates, report.orders_created) == (1, 1)
    (order,) = sweep_orders(services)
    assert order.order_id == f"sweep:suspend:late-000:{today.isoformat()}"
    assert order.action is Action.SUSPEND
    assert order.payload["reason"] == "non_payment"
    assert [s.kind for s in order.steps] == [StepKind.SUSPEND_USER]
    assert order.steps[0].params == {"username": "lateuser0"}


@pytest.mark.smoke
def test_termination_only_for_non_payment_and_after_the_delay(
    services: Services, server: Server, clock: FakeClock
) -> None:
    today = today_of(clock)
    delay = services.settings.terminate_after_days
    start = datetime.combine(today, datetime.min.time(), tzinfo=clock().tzinfo)
    on_day = start - timedelta(days=delay) + timedelta(hours=23)
    late = start - timedelta(days=delay + 1) + timedelta(hours=23)
    cases = [
        ("inside", SuspendReason.NON_PAYMENT, on_day),
        ("due", SuspendReason.NON_PAYMENT, late),
        ("abuse", SuspendReason.ABUSE, late - timedelta(days=300)),
        ("other", SuspendReason.OTHER, late),
    ]
    for prefix, reason, at in cases:
        seed(
            services,
            server,
            1,
            prefix=prefix,
            status=ServiceStatus.SUSPENDED,
            reason=reason,
            suspended_at=at,
        )
    report = run_sweep(services, "terminate")
    assert report.orders_created == 1
    (order,) = sweep_orders(services)
    assert order.order_id == f"sweep:terminate:due-000:{today.isoformat()}"
    assert [s.kind for s in order.steps] == [StepKind.DELETE_USER]


def test_one_order_per_service_and_due_date_even_after_it_failed(
    services: Services, server: Server, clock: FakeClock
) -> None:
    seed(services, server, 2, paid_until=today_of(clock) - timedelta(days=30))
    assert run_sweep(services, "suspend").orders_created == 2
    assert run_sweep(services, "suspend").orders_created == 0
    with services.sessions.begin() as session:
        session.execute(update(Order).values(status=OrderStatus.FAILED))
    # Still active and overdue, nothing live: the same due date gives no new order.
    report = run_sweep(services, "suspend")
    assert (report.candidates, report.orders_created) == (2, 0)
    assert len(sweep_orders(services)) == 2


def test_services_with_an_unfinished_order_are_left_for_the_next_run(
    services: Services, server: Server, clock: FakeClock, sim: SimControl
) -> None:
    drive(services, submit(services, create_spec(ssl=False, mailboxes=())), clock, sim)
    with services.sessions.begin() as session:
        session.get_one(Service, "svc-1").paid_until = today_of(clock) - timedelta(9)
    submit(services, OrderSpec("pkg-1", "svc-1", Action.CHANGE_PACKAGE, package="pro"))
    assert run_sweep(services, "suspend").candidates == 0
    with services.sessions.begin() as session:
        session.execute(update(Order).values(status=OrderStatus.COMPLETED))
    assert run_sweep(services, "suspend").orders_created == 1
    (order,) = sweep_orders(services)
    # Numbered after the create and the package change, like an intake order.
    assert order.service_seq == 3
    assert order.service.order_seq == 3


def test_orders_are_created_in_batches_with_audit_entries(
    make_services: MakeServices, server: Server, clock: FakeClock
) -> None:
    services = make_services(
        sweep_batch=3, billing_callback_url="http://billing.example/cb"
    )
    seed(services, server, 10, paid_until=today_of(clock) - timedelta(days=5),
         order_seq=4)  # fmt: skip
    report = run_sweep(services, "suspend", confirm=True, actor="ops:alice")
    assert report.orders_created == 10
    orders = sweep_orders(services)
    assert {o.service_id for o in orders} == {f"svc-{i:03d}" for i in range(10)}
    assert all(o.service_seq == 5 and o.service.order_seq == 5 for o in orders)
    assert all(o.status is OrderStatus.QUEUED and o.enqueued_at is None for o in orders)
    assert all(o.callback_url == "http://billing.example/cb" for o in orders)
    with services.sessions() as session:
        entries = session.scalars(select(AuditEntry)).all()
    assert len(entries) == 10
    assert {e.actor for e in entries} == {"ops:alice"}
    assert {e.detail["sweep_run"] for e in entries} == {report.run_id}
    assert {e.order_uuid for e in entries} == {o.id for o in orders}


def test_two_concurrent_sweeps_create_exactly_one_order_per_service(
    make_services: MakeServices, server: Server, clock: FakeClock
) -> None:
    # Two beats = two processes: separate Services, sessions and connections.
    beats = [make_services(sweep_batch=4, sweep_guard_floor=1000) for _ in range(2)]
    ids = seed(beats[0], server, 40, paid_until=today_of(clock) - timedelta(days=9))
    start = threading.Barrier(2)
    reports: list[SweepReport] = []

    def beat(services: Services) -> None:
        start.wait()
        reports.append(run_sweep(services, "suspend"))

    threads = [threading.Thread(target=beat, args=(b,)) for b in beats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(reports) == 2
    orders = sweep_orders(beats[0])
    assert sorted(o.service_id for o in orders) == ids
    assert all(o.service.order_seq == 1 for o in orders)
    assert sum(r.orders_created for r in reports) == 40
    assert len(runs(beats[0])) == 2


def test_guard_trips_above_the_share_until_an_operator_confirms(
    services: Services, server: Server, clock: FakeClock
) -> None:
    # 30 services, floor 20, share 10 %: 4 overdue is too many.
    seed(services, server, 26, prefix="paid", paid_until=today_of(clock))
    seed(services, server, 4, prefix="late", paid_until=today_of(clock) - timedelta(9))
    with structlog.testing.capture_logs() as logs:
        report = run_sweep(services, "suspend")
    assert report.tripped
    assert (report.candidates, report.fleet, report.orders_created) == (4, 30, 0)
    assert sweep_orders(services) == []
    assert [e["log_level"] for e in logs if e["event"] == "sweep_guard_tripped"] == [
        "error"
    ]
    confirmed = run_sweep(services, "suspend", confirm=True, actor="ops:alice")
    assert not confirmed.tripped
    assert confirmed.orders_created == 4
    first, second = runs(services)
    assert (first.tripped, first.orders_created, first.confirmed_by) == (True, 0, None)
    assert (second.tripped, second.orders_created) == (False, 4)
    assert second.confirmed_by == "ops:alice"


def test_guard_lets_a_normal_share_and_a_small_fleet_through(
    services: Services, server: Server, clock: FakeClock
) -> None:
    today = today_of(clock)
    seed(services, server, 27, prefix="paid", paid_until=today)
    seed(services, server, 3, prefix="late", paid_until=today - timedelta(days=9))
    assert run_sweep(services, "suspend").orders_created == 3  # exactly 10 %
    # A fleet at the floor is never blocked, even when everything is overdue.
    small = seed(services, server, 20, prefix="small", paid_until=today)
    with services.sessions.begin() as session:
        session.execute(
            update(Service)
            .where(Service.service_id.not_in(small))
            .values(status=ServiceStatus.TERMINATED)
        )
        session.execute(update(Service).values(paid_until=today - timedelta(days=9)))
    report = run_sweep(services, "suspend")
    assert (report.fleet, report.tripped, report.orders_created) == (20, False, 20)


def test_disabled_sweep_does_nothing(
    make_services: MakeServices, server: Server, clock: FakeClock
) -> None:
    services = make_services(suspend_sweep_enabled=False, terminate_sweep_enabled=False)
    seed(services, server, 3, paid_until=today_of(clock) - timedelta(days=9))
    for kind in SWEEP_KINDS:
        report = run_sweep(services, kind)
        assert not report.enabled
    assert sweep_orders(services) == []
    assert runs(services) == []


@pytest.mark.smoke
def test_dry_run_lists_what_would_happen_and_creates_nothing(
    services: Services, server: Server, clock: FakeClock
) -> None:
    today = today_of(clock)
    seed(services, server, 3, paid_until=today - timedelta(days=9))
    report = run_sweep(services, "suspend", dry_run=True)
    assert report.dry_run
    assert report.candidates == 3
    assert [(d.service_id, d.server, d.due_date) for d in report.preview] == [
        (f"svc-{i:03d}", "sim", today - timedelta(days=5)) for i in range(3)
    ]
    assert sweep_orders(services) == []
    (run,) = runs(services)
    assert (run.dry_run, run.candidates, run.orders_created) == (True, 3, 0)
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_sweep_orders_run_through_the_engine_to_suspension_then_termination(
    services: Services, server: Server, clock: FakeClock, sim: SimControl
) -> None:
    created = drive(
        services, submit(services, create_spec(ssl=False, mailboxes=())), clock, sim
    )
    assert created.status is OrderStatus.COMPLETED
    with services.sessions.begin() as session:
        session.get_one(Service, "svc-1").paid_until = today_of(clock) - timedelta(4)
    run_sweep(services, "suspend")
    (suspend,) = sweep_orders(services)
    order = drive(services, suspend.id, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    assert order.service.status is ServiceStatus.SUSPENDED
    assert order.service.suspension_reason is SuspendReason.NON_PAYMENT
    assert sim.state()["users"]["user1"]["status"] == "suspended"
    # Not yet: the termination delay counts from the suspension.
    assert run_sweep(services, "terminate").orders_created == 0
    clock.advance((services.settings.terminate_after_days + 1) * 86400)
    assert run_sweep(services, "terminate").orders_created == 1
    terminate = next(o for o in sweep_orders(services) if o.action is Action.TERMINATE)
    order = drive(services, terminate.id, clock, sim)
    assert order.service.status is ServiceStatus.TERMINATED
    assert "user1" not in sim.state()["users"]
