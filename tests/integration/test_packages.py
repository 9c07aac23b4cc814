"""Package lists: refreshed from the panel (servers test, CLI, schedule), served by
GET /v1/packages over real HTTP, and checked at intake (422 with the valid names)."""

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from bridge.container import Services
from bridge.db.models import Order, PanelPackage, Server, Service
from bridge.errors import NotFoundError
from bridge.ops import probe_server
from bridge.packages import (
    PackagesUnavailableError,
    refresh_all_packages,
    refresh_packages,
)
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.cli_runner import as_json, bridge
from tests.factories import drive, submit
from tests.ops_support import register_sim, small_create
from tests.signing import create_body, encode, signed_headers
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


def get(api: httpx.Client, target: str) -> httpx.Response:
    return api.get(target, headers=signed_headers("GET", target))


def post_order(api: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    raw = encode(body)
    return api.post(
        "/v1/orders", content=raw, headers=signed_headers("POST", "/v1/orders", raw)
    )


def cached_names(services: Services) -> set[str]:
    with services.sessions() as session:
        return set(session.scalars(select(PanelPackage.name)))


def count(services: Services, model: Any) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_servers_test_refreshes_the_package_cache(
    services: Services, server: Server
) -> None:
    report = probe_server(services, "sim", "ops:test", sleep=time.sleep)

    assert report["ok"]
    assert report["packages"] == 3
    assert cached_names(services) == {"default", "basic", "pro"}


def test_get_packages_of_a_server_lists_names_and_limits(
    api: httpx.Client, services: Services, server: Server
) -> None:
    refresh_packages(services, "sim")

    response = get(api, "/v1/packages?server=sim")

    assert response.status_code == 200
    body = response.json()
    assert body["server"] == "sim"
    assert body["group"] == "default"
    assert body["refreshed_at"]
    basic = next(p for p in body["packages"] if p["name"] == "basic")
    assert basic["max_domains"] == 1
    assert basic["disk_quota_mb"] == 1024


def test_get_packages_of_a_group_lists_what_every_known_server_offers(
    api: httpx.Client,
    services: Services,
    server: Server,
    simulator: SimulatorServer,
    sim: SimControl,
) -> None:
    httpx.delete(
        simulator.base_url + "/api/v1/packages/pro",
        headers={"Authorization": f"Bearer {simulator.credentials().api_key}"},
    ).raise_for_status()
    refresh_packages(services, "sim")
    register_sim(services, simulator, "sim2")
    sim.reset()  # sim2 is the same panel, reset: it offers "pro" again
    refresh_packages(services, "sim2")

    body = get(api, "/v1/packages?group=default").json()

    assert body["servers"] == ["sim", "sim2"]
    assert body["known_servers"] == ["sim", "sim2"]
    assert [p["name"] for p in body["packages"]] == ["basic", "default"]


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/v1/packages", 422),
        ("/v1/packages?server=sim&group=default", 422),
        ("/v1/packages?server=nope", 404),
        ("/v1/packages?group=nope", 404),
    ],
)
def test_get_packages_bad_query_is_a_clear_4xx(
    api: httpx.Client, server: Server, target: str, status: int
) -> None:
    response = get(api, target)

    assert response.status_code == status
    assert response.json()["detail"]


def test_get_packages_before_any_refresh_is_an_empty_unknown_list(
    api: httpx.Client, server: Server
) -> None:
    body = get(api, "/v1/packages?server=sim").json()

    assert body["packages"] == []
    assert body["refreshed_at"] is None


def test_refresh_drops_packages_the_panel_no_longer_has(
    services: Services, server: Server, simulator: SimulatorServer
) -> None:
    refresh_packages(services, "sim")
    httpx.delete(
        simulator.base_url + "/api/v1/packages/pro",
        headers={"Authorization": f"Bearer {simulator.credentials().api_key}"},
    ).raise_for_status()

    refresh_packages(services, "sim")

    assert cached_names(services) == {"default", "basic"}


def test_panel_without_a_package_list_is_a_clear_error_and_keeps_the_cache(
    services: Services, server: Server
) -> None:
    refresh_packages(services, "sim")
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == server.id)
            .values(route_overrides={"list_packages": {"path": "/api/v1/plans/"}})
        )

    with pytest.raises(PackagesUnavailableError, match="404"):
        refresh_packages(services, "sim")

    assert cached_names(services) == {"default", "basic", "pro"}


def test_refresh_of_an_unknown_server_is_not_found(services: Services) -> None:
    with pytest.raises(NotFoundError):
        refresh_packages(services, "nope")


def test_scheduled_refresh_covers_every_server_and_reports_failures(
    services: Services, server: Server, simulator: SimulatorServer
) -> None:
    register_sim(services, simulator, "broken")
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.name == "broken")
            .values(route_overrides={"list_packages": {"path": "/api/v1/plans/"}})
        )

    outcome = refresh_all_packages(services)

    assert outcome["sim"] == "ok"
    assert "404" in outcome["broken"]


def test_create_with_an_unknown_package_is_422_naming_the_valid_ones(
    api: httpx.Client, services: Services, server: Server
) -> None:
    refresh_packages(services, "sim")
    body = create_body(1, server="sim")
    body["account"]["package"] = "gold"

    response = post_order(api, body)

    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "account.package"]
    assert "'gold'" in detail["msg"]
    assert "basic, default, pro" in detail["msg"]
    assert count(services, Order) == 0
    assert count(services, Service) == 0


def test_create_with_a_known_package_is_accepted(
    api: httpx.Client, services: Services, server: Server
) -> None:
    refresh_packages(services, "sim")
    body = create_body(1)
    body["account"]["package"] = "pro"

    assert post_order(api, body).status_code == 202


def test_create_is_not_checked_while_the_list_is_unknown(
    api: httpx.Client, server: Server
) -> None:
    body = create_body(1)
    body["account"]["package"] = "gold"

    assert post_order(api, body).status_code == 202


def test_change_package_to_an_unknown_package_is_422_and_changes_nothing(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    assert drive(services, submit(services, small_create()), clock, sim).status
    refresh_packages(services, "sim")
    before = count(services, Order)

    response = post_order(
        api,
        {
            "order_id": "chg-1",
            "service_id": "svc-1",
            "action": "change_package",
            "package": "platinum",
        },
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "package"]
    assert count(services, Order) == before


def test_cli_servers_packages_refreshes_on_demand(
    settings: Settings, services: Services, server: Server
) -> None:
    listed = as_json(
        bridge(settings, "servers", "packages", "sim", "--refresh", "--json")
    )

    assert listed["server"] == "sim"
    assert {p["name"] for p in listed["packages"]} == {"default", "basic", "pro"}
    assert cached_names(services) == {"default", "basic", "pro"}


def test_cli_servers_packages_says_when_nothing_is_cached_or_known(
    settings: Settings, server: Server
) -> None:
    empty = bridge(settings, "servers", "packages", "sim")
    missing = bridge(settings, "servers", "packages", "nope")

    assert empty.returncode == 0, empty.stderr
    assert "no cached packages" in empty.stdout
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def _gold_group(
    services: Services,
    simulator: SimulatorServer,
    sim: SimControl,
    capacity: int | None = None,
) -> None:
    """Group "gold": sim without "pro", sim2 (the same panel, reset) with it."""
    httpx.delete(
        simulator.base_url + "/api/v1/packages/pro",
        headers={"Authorization": f"Bearer {simulator.credentials().api_key}"},
    ).raise_for_status()
    refresh_packages(services, "sim")
    register_sim(services, simulator, "sim2")
    sim.reset()
    refresh_packages(services, "sim2")
    with services.sessions.begin() as session:
        session.execute(update(Server).values(group_name="gold", capacity=capacity))


def test_create_for_a_full_group_is_checked_against_what_every_server_offers(
    api: httpx.Client,
    services: Services,
    server: Server,
    simulator: SimulatorServer,
    sim: SimControl,
) -> None:
    # Group "gold": sim without "pro", sim2 with it, both full. With no server to
    # place the account on yet (it waits for capacity), whichever frees up first
    # takes it: only the packages both offer are valid. (A create that is placed
    # at once is checked against the chosen server's own list.)
    _gold_group(services, simulator, sim, capacity=0)
    body = create_body(1, server_group="gold", ssl=False, mailboxes=[])
    body["account"]["package"] = "pro"

    refused = post_order(api, body)

    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"][0]
    assert detail["loc"] == ["body", "account.package"]
    assert "unknown package 'pro' on group gold; valid: basic, default" in detail["msg"]
    assert count(services, Order) == 0
    body["account"]["package"] = "basic"
    accepted = post_order(api, body)
    assert accepted.status_code == 202, accepted.text
    with services.sessions() as session:
        assert list(session.scalars(select(Order.server_id))) == [None]  # waits


def test_create_placed_in_a_group_is_checked_against_the_group_not_its_server(
    api: httpx.Client,
    services: Services,
    server: Server,
    simulator: SimulatorServer,
    sim: SimControl,
) -> None:
    # Group "gold": sim without "pro", sim2 with it, both with room. Placement
    # picks one of them; the answer must not depend on which.
    _gold_group(services, simulator, sim)
    refusals = []
    for n in (1, 2):
        body = create_body(n, server_group="gold", ssl=False, mailboxes=[])
        body["account"]["package"] = "pro"
        refused = post_order(api, body)
        assert refused.status_code == 422, refused.text
        refusals.append(refused.json()["detail"][0]["msg"])
    assert (
        refusals == ["unknown package 'pro' on group gold; valid: basic, default"] * 2
    )
    assert count(services, Order) == 0
    body = create_body(1, server_group="gold", ssl=False, mailboxes=[])
    body["account"]["package"] = "basic"
    assert post_order(api, body).status_code == 202
    with services.sessions() as session:
        assert session.scalar(select(Order.server_id)) is not None  # placed
