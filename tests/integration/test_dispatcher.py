"""The DB is the schedule: due orders by priority, one per service, leases."""

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from sqlalchemy import Engine, update

from bridge.container import Services, build_services
from bridge.db import orders as orders_db
from bridge.db.models import Order, Server
from bridge.dispatcher import dispatch_due_orders
from bridge.domain.model import Action, ServerState
from bridge.domain.states import OrderStatus
from bridge.engine import run_order
from bridge.errors import StaleOrderError
from bridge.fleet import ServerSpec, save_server
from bridge.inflight import InFlightSlots
from bridge.queue import RUN_ORDER_TASK
from bridge.settings import Settings
from tests.e2e.conftest import wait_until
from tests.factories import create_spec, drive, load, submit
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[str, ...]]] = []

    def __call__(self, task_name: str, *args: str) -> bool:
        self.sent.append((task_name, args))
        return True

    def orders(self) -> list[uuid.UUID]:
        return [uuid.UUID(a[0]) for t, a in self.sent if t == RUN_ORDER_TASK]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def recorded(
    settings: Settings,
    committed_db: Engine,
    redis_client: "redis.Redis",
    clock: FakeClock,
    recorder: Recorder,
) -> Iterator[Services]:
    built = build_services(settings, clock=clock, enqueue=recorder)
    yield built
    built.close()


@pytest.fixture
def sim_server(recorded: Services, server: Server) -> Server:
    return server


def test_intake_enqueues_after_commit(
    recorded: Services, sim_server: Server, recorder: Recorder
) -> None:
    order_uuid = submit(recorded, create_spec())
    assert recorder.orders() == [order_uuid]


def test_recently_enqueued_orders_are_not_sent_again_until_grace(
    recorded: Services, sim_server: Server, recorder: Recorder, clock: FakeClock
) -> None:
    order_uuid = submit(recorded, create_spec())
    recorder.sent.clear()
    assert dispatch_due_orders(recorded).orders == 0
    clock.advance(recorded.settings.lease_seconds + 0.1)
    assert dispatch_due_orders(recorded).orders == 1
    assert recorder.orders() == [order_uuid]


def test_priority_order_and_one_runnable_order_per_service(
    recorded: Services, sim_server: Server, recorder: Recorder, clock: FakeClock
) -> None:
    create_a = submit(recorded, create_spec(1))
    create_b = submit(recorded, create_spec(2))
    # A later order of service 1 waits for its create, whatever its priority.
    later_a = submit(
        recorded,
        create_spec(1, order_id="ord-1-pw", action=Action.CHANGE_PASSWORD,
                    password="new-password-1"),
    )  # fmt: skip
    with recorded.sessions.begin() as session:
        session.execute(update(Order).where(Order.id == create_b).values(priority=99))
    recorder.sent.clear()
    clock.advance(recorded.settings.lease_seconds + 0.1)
    dispatch_due_orders(recorded)
    assert recorder.orders() == [create_b, create_a]
    assert later_a not in recorder.orders()


def test_lease_is_exclusive_and_expires(
    recorded: Services, sim_server: Server, clock: FakeClock
) -> None:
    order_uuid = submit(recorded, create_spec())
    ttl = recorded.settings.lease_seconds
    with recorded.sessions.begin() as session:
        first = orders_db.acquire_lease(session, order_uuid, "a", clock(), ttl)
        assert first is not None
    with recorded.sessions.begin() as session:
        assert not orders_db.acquire_lease(session, order_uuid, "b", clock(), ttl)
    clock.advance(ttl + 0.1)
    with recorded.sessions.begin() as session:
        assert orders_db.acquire_lease(session, order_uuid, "b", clock(), ttl)
    with (
        pytest.raises(StaleOrderError),
        recorded.sessions.begin() as session,
    ):
        orders_db.fence(session, first, clock(), ttl)


def test_run_order_does_nothing_while_another_worker_holds_the_lease(
    recorded: Services, sim_server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(recorded, create_spec())
    with recorded.sessions.begin() as session:
        orders_db.acquire_lease(session, order_uuid, "other", clock(), 60)
    run_order(recorded, order_uuid)
    assert sim.requests() == []
    assert load(recorded, order_uuid).lease_owner == "other"


def test_create_without_any_active_server_waits_for_capacity(
    recorded: Services, sim_server: Server, sim: SimControl, clock: FakeClock
) -> None:
    with recorded.sessions.begin() as session:
        session.execute(update(Server).values(state=ServerState.DRAINING))
    order_uuid = submit(recorded, create_spec())
    assert load(recorded, order_uuid).status is OrderStatus.AWAITING_CAPACITY
    assert dispatch_due_orders(recorded).placed == 0
    with recorded.sessions.begin() as session:
        session.execute(update(Server).values(state=ServerState.ACTIVE))
    assert dispatch_due_orders(recorded).placed == 1
    order = drive(recorded, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    assert order.service.server_id == sim_server.id


def test_create_whose_username_is_taken_where_it_would_land_waits_and_says_why(
    recorded: Services, sim_server: Server, sim: SimControl, clock: FakeClock
) -> None:
    with recorded.sessions.begin() as session:
        session.execute(update(Server).values(capacity=0))
    first = submit(recorded, create_spec(1, ssl=False, mailboxes=(), domain=None))
    twin_account = create_spec(1).account
    second = submit(
        recorded,
        create_spec(2, account=twin_account, ssl=False, mailboxes=(), domain=None),
    )
    with recorded.sessions.begin() as session:
        session.execute(update(Server).values(capacity=10))
    assert dispatch_due_orders(recorded).placed == 1
    assert drive(recorded, first, clock, sim).status is OrderStatus.COMPLETED
    dispatch_due_orders(recorded)
    waiting = load(recorded, second)
    assert waiting.status is OrderStatus.AWAITING_CAPACITY
    assert waiting.last_error is not None
    assert "username user1 is held by service svc-1 on server sim" in (
        waiting.last_error
    )
    # svc-1 goes away: the name is free, and the waiting create proceeds.
    gone = submit(
        recorded,
        create_spec(1, order_id="term-1", action=Action.TERMINATE, account=None),
    )
    assert drive(recorded, gone, clock, sim).status is OrderStatus.COMPLETED
    assert dispatch_due_orders(recorded).placed == 1
    order = drive(recorded, second, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert order.last_error is None


def test_save_server_keeps_credentials_encrypted(
    recorded: Services, sim_server: Server
) -> None:
    with recorded.sessions.begin() as session:
        row = save_server(
            session,
            recorded.box,
            ServerSpec(
                name="x",
                base_url="https://x:3082/",
                auth_mode=sim_server.auth_mode,
                api_key="wsp_" + "ab" * 24,
            ),
        )
        assert "wsp_" not in row.credentials
        assert row.base_url == "https://x:3082"


def save_slow_server(services: Services, sim_server: Server) -> uuid.UUID:
    """Server `slow` at 60 calls/min (unreachable: nothing here calls it)."""
    with services.sessions.begin() as session:
        slow = save_server(
            session,
            services.box,
            ServerSpec(
                name="slow",
                base_url="http://slow.invalid:3082",
                auth_mode=sim_server.auth_mode,
                api_key="wsp_" + "ef" * 24,
                rate_limit_per_min=60,
            ),
        )
    return slow.id  # assigned at flush, so read it after the commit


def test_each_server_gets_no_more_orders_per_tick_than_its_budget(
    recorded: Services, sim_server: Server, recorder: Recorder, clock: FakeClock
) -> None:
    # 1 call/s: one token per 0.2 s tick, so at most 1 + 1 spare of its orders
    # compete for its budget at once.
    slow_id = save_slow_server(recorded, sim_server)
    slow_orders = [
        submit(recorded, create_spec(n, server="slow", ssl=False, mailboxes=()))
        for n in range(1, 6)
    ]
    fast_orders = [submit(recorded, create_spec(n)) for n in range(6, 9)]
    recorder.sent.clear()
    clock.advance(recorded.settings.lease_seconds + 0.1)
    dispatch_due_orders(recorded)
    sent = recorder.orders()
    assert len([o for o in sent if o in slow_orders]) == 2
    assert sorted(o for o in sent if o in fast_orders) == sorted(fast_orders)
    # The next tick: the two sent are still on their way to a worker, so the
    # slow server has no room; nothing of it is sent again.
    recorder.sent.clear()
    clock.advance(0.2)
    dispatch_due_orders(recorded)
    assert not [o for o in recorder.orders() if o in slow_orders]
    # An open circuit gets nothing until its wait is over.
    with recorded.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == slow_id)
            .values(circuit_open_until=clock() + timedelta(seconds=30))
        )
    recorder.sent.clear()
    dispatch_due_orders(recorded)
    assert not [o for o in recorder.orders() if o in slow_orders]


def test_orders_inside_a_long_panel_call_leave_room_for_others_to_take_tokens(
    settings: Settings,
    committed_db: Engine,
    sim_server: Server,
    recorder: Recorder,
    clock: FakeClock,
    redis_client: "redis.Redis",
) -> None:
    # A slow panel (seconds per call) needs several calls in flight to spend
    # its budget; an order inside a call longer than a dispatcher tick holds
    # its token already and must not count against the cap of orders
    # competing for the next tokens. Calls shorter than a tick still count.
    # A 1 s tick: long enough that "young" cannot turn "long" mid-test.
    tick = 1.0
    services = build_services(
        settings.model_copy(update={"dispatch_interval": tick}),
        clock=clock,
        enqueue=recorder,
    )
    try:
        save_slow_server(services, sim_server)  # cap: 1 + 1 spare contenders
        slow_orders = [
            submit(services, create_spec(n, server="slow", ssl=False, mailboxes=()))
            for n in range(1, 7)
        ]
        clock.advance(settings.lease_seconds + 0.1)
        with services.sessions.begin() as session:
            for order_uuid in slow_orders[:2]:
                assert orders_db.acquire_lease(
                    session, order_uuid, "w", clock(), settings.lease_seconds
                )

        def dispatched() -> list[uuid.UUID]:
            recorder.sent.clear()
            clock.advance(0.2)
            dispatch_due_orders(services)
            return [o for o in recorder.orders() if o in slow_orders]

        # Two running orders fill the cap while nothing says they are in a call.
        assert dispatched() == []
        # Both are inside a call that has just started: still contenders.
        slots = InFlightSlots(redis_client, limit=4, slot_ttl_seconds=60)
        held = [slots.acquire("slow") for _ in range(2)]
        assert all(held)
        assert dispatched() == []
        # Once their calls have lasted longer than a tick, two others may come
        # for the next tokens (never the two running ones).
        wait_until(
            lambda: (
                services.panels.calls_in_flight(["slow"], older_than=tick)
                == {"slow": 2}
            ),
            10,
            "the calls to last a tick",
        )
        sent = dispatched()
        assert len(sent) == 2
        assert not set(sent) & set(slow_orders[:2])
        assert services.panels.calls_in_flight(["slow", "sim"]) == {
            "slow": 2,
            "sim": 0,
        }
        for slot in held:
            assert slot is not None
            slots.release("slow", slot)
        assert services.panels.calls_in_flight(["slow"]) == {"slow": 0}
    finally:
        services.close()


def test_short_wait_sends_the_order_back_itself_and_the_dispatcher_holds_off(
    recorded: Services,
    sim_server: Server,
    sim: SimControl,
    clock: FakeClock,
    recorder: Recorder,
) -> None:
    sim.faults(storm_seconds=2)  # 429 with Retry-After: a short, known wait
    order_uuid = submit(recorded, create_spec())
    recorder.sent.clear()
    run_order(recorded, order_uuid)
    order = load(recorded, order_uuid)
    assert order.wait_reason is not None
    assert order.wait_reason.value == "rate_limited"
    assert recorder.orders() == [order_uuid]  # requeued by the engine itself
    clock.advance(3)  # due now (within the lease grace): its message is on its way
    assert load(recorded, order_uuid).next_attempt_at <= clock()
    dispatch_due_orders(recorded)
    assert recorder.orders() == [order_uuid]


def test_an_order_refused_a_token_comes_back_itself_only_while_its_server_has_room(
    recorded: Services,
    sim_server: Server,
    sim: SimControl,
    clock: FakeClock,
    recorder: Recorder,
) -> None:
    # 60/min: one token per tick, so at most 1 + 1 spare of the server's orders
    # compete for its budget at once; more would only be refused, over and over.
    with recorded.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == sim_server.id)
            .values(rate_limit_per_min=60)
        )
    sim.faults(storm_seconds=2)  # every call 429s: each order is refused a token
    first, second, _third = (submit(recorded, create_spec(n)) for n in (1, 2, 3))
    recorder.sent.clear()
    # `first` is refused while the other two are on their way to a worker (sent
    # at intake): three contenders, one too many. It waits in the DB.
    run_order(recorded, first)
    held = load(recorded, first)
    assert held.wait_reason is not None
    assert held.wait_reason.value == "rate_limited"
    assert held.enqueued_at is None
    assert recorder.orders() == []
    # `second` is refused with only `third` beside it: it comes back by itself.
    run_order(recorded, second)
    assert recorder.orders() == [second]
    # `first` is due again, but the server's two contenders leave no room.
    clock.advance(3)
    assert load(recorded, first).next_attempt_at <= clock()
    recorder.sent.clear()
    dispatch_due_orders(recorded)
    assert first not in recorder.orders()
    # Once the others' messages count as lost (a lease period), there is room
    # again, and `first` (the oldest) goes out.
    clock.advance(recorded.settings.lease_seconds + 0.1)
    dispatch_due_orders(recorded)
    assert first in recorder.orders()
