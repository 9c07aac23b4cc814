"""Placement of creates without a server: policies, capacity, draining, races."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import Engine, func, select

from bridge.container import Services, build_services
from bridge.db.models import Order, Server
from bridge.domain.model import AuthMode, ServerState
from bridge.domain.states import OrderStatus
from bridge.fleet import ServerSpec, save_server
from bridge.settings import PlacementPolicy, Settings
from tests.factories import create_spec, load, submit
from tests.simctl import FakeClock

pytestmark = pytest.mark.integration


def _add(services: Services, name: str, **overrides: object) -> None:
    values: dict[str, object] = {
        "name": name,
        "base_url": f"http://{name}.invalid:3082",
        "auth_mode": AuthMode.API_KEY,
        "api_key": "wsp_" + "cd" * 24,
        "group": "shared",
        "capacity": 10,
    }
    values.update(overrides)
    with services.sessions.begin() as session:
        save_server(session, services.box, ServerSpec(**values))  # type: ignore[arg-type]


def _small(n: int) -> object:
    return create_spec(n, domain=None, ssl=False, mailboxes=(), server_group="shared")


def _server_of(services: Services, n: int) -> str | None:
    order = load(services, submit(services, _small(n)))  # type: ignore[arg-type]
    return order.server.name if order.server else None


@pytest.fixture
def fill_in_order(
    settings: Settings,
    committed_db: Engine,
    redis_client: "redis.Redis",
    clock: FakeClock,
) -> Iterator[Services]:
    built = build_services(
        settings.model_copy(update={"placement_policy": PlacementPolicy.FILL_IN_ORDER}),
        clock=clock,
    )
    yield built
    built.close()


def test_least_full_spreads_by_fill_ratio(services: Services) -> None:
    _add(services, "a", capacity=2)
    _add(services, "b", capacity=10)
    placed = [_server_of(services, n) for n in range(1, 5)]
    # Empty tie -> a (by name); then a is 1/2 full and b at 0/10, 1/10, 2/10
    # stays the emptier one.
    assert placed == ["a", "b", "b", "b"]


def test_least_full_without_limits_spreads_by_account_count(
    services: Services,
) -> None:
    _add(services, "a", capacity=None)
    _add(services, "b", capacity=None)
    placed = [_server_of(services, n) for n in range(1, 5)]
    assert placed == ["a", "b", "a", "b"]


def test_fill_in_order_fills_the_first_server_first(fill_in_order: Services) -> None:
    _add(fill_in_order, "a", capacity=2)
    _add(fill_in_order, "b", capacity=10)
    placed = [_server_of(fill_in_order, n) for n in range(1, 5)]
    assert placed == ["a", "a", "b", "b"]


def test_license_max_users_caps_a_server(services: Services) -> None:
    _add(services, "a", capacity=100)
    with services.sessions.begin() as session:
        row = session.scalars(select(Server).where(Server.name == "a")).one()
        row.license_max_users = 1
    assert _server_of(services, 1) == "a"
    assert _server_of(services, 2) is None


def test_draining_and_disabled_servers_are_never_chosen(services: Services) -> None:
    _add(services, "a", state=ServerState.DRAINING)
    _add(services, "b", state=ServerState.DISABLED)
    _add(services, "c", group="other")
    order = load(services, submit(services, _small(1)))  # type: ignore[arg-type]
    assert order.server is None
    assert order.status is OrderStatus.AWAITING_CAPACITY


def test_twenty_concurrent_creates_into_three_free_slots_place_exactly_three(
    services: Services,
) -> None:
    _add(services, "a", capacity=2)
    _add(services, "b", capacity=1)
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda n: submit(services, _small(n)), range(1, 21)))  # type: ignore[arg-type]
    with services.sessions() as session:
        by_status = dict(
            session.execute(
                select(Order.status, func.count()).group_by(Order.status)
            ).all()
        )
        per_server = dict(
            session.execute(
                select(Server.name, func.count(Order.id))
                .join(Order, Order.server_id == Server.id)
                .group_by(Server.name)
            ).all()
        )
    assert by_status == {OrderStatus.QUEUED: 3, OrderStatus.AWAITING_CAPACITY: 17}
    assert per_server == {"a": 2, "b": 1}
