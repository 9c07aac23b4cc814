"""Usage: collection from the panel (bulk, per-account fallback, usage lane), the
run lock, GET /v1/services/{id}/usage and GET /v1/usage over real HTTP, the CLI."""

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from bridge.container import Services
from bridge.db.models import Server, ServiceUsage
from bridge.domain.model import AuthMode
from bridge.domain.states import OrderStatus
from bridge.errors import ConfigurationError, NotFoundError
from bridge.fleet import ServerSpec, save_server
from bridge.lanes import usage_lane
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from bridge.usage import (
    UsageCollectionError,
    UsageRunBusyError,
    begin_run,
    collect_step,
    end_run,
    start_usage_runs,
    sync_server,
)
from tests.cli_runner import as_json, bridge
from tests.factories import drive, submit
from tests.ops_support import register_sim, small_create
from tests.signing import signed_headers
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

FIGURES = {"user1": (120, 3400), "user2": (5, 0)}


def get(api: httpx.Client, target: str) -> httpx.Response:
    return api.get(target, headers=signed_headers("GET", target))


def set_usage(simulator: SimulatorServer, username: str, disk: int, bw: int) -> None:
    httpx.post(
        simulator.base_url + "/_sim/usage",
        json={"username": username, "disk_used_mb": disk, "bandwidth_used_mb": bw},
    ).raise_for_status()


@pytest.fixture
def accounts(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    simulator: SimulatorServer,
) -> list[str]:
    ids = []
    for n in (1, 2):
        order = drive(services, submit(services, small_create(n)), clock, sim)
        assert order.status is OrderStatus.COMPLETED
        ids.append(order.service_id)
    for username, (disk, bw) in FIGURES.items():
        set_usage(simulator, username, disk, bw)
    return ids


def stored(services: Services) -> dict[str, tuple[int, int]]:
    with services.sessions() as session:
        return {
            r.service_id: (r.disk_used_mb, r.bandwidth_used_mb)
            for r in session.scalars(select(ServiceUsage))
        }


def usage_calls(sim: SimControl) -> list[str]:
    return [r["path"] for r in sim.requests() if "usage" in r["path"]]


def override(services: Services, server: Server, routes: dict[str, Any]) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(route_overrides=routes)
        )


def test_sync_reads_the_bulk_endpoint_and_stores_figures_per_service(
    services: Services, accounts: list[str], sim: SimControl
) -> None:
    count = sync_server(services, "sim", sleep=time.sleep)

    assert count == 2
    assert stored(services) == {"svc-1": (120, 3400), "svc-2": (5, 0)}
    assert usage_calls(sim) == ["/api/v1/usage/"]


def test_sync_falls_back_to_one_call_per_account_without_a_bulk_endpoint(
    services: Services, accounts: list[str], sim: SimControl, server: Server
) -> None:
    override(services, server, {"list_usage": {"path": "/api/v1/no-bulk-usage/"}})

    sync_server(services, "sim", sleep=time.sleep)

    assert stored(services) == {"svc-1": (120, 3400), "svc-2": (5, 0)}
    assert usage_calls(sim) == [
        "/api/v1/no-bulk-usage/",
        "/api/v1/users/user1/usage",
        "/api/v1/users/user2/usage",
    ]


NO_USAGE_ROUTES = {
    "list_usage": {"path": "/api/v1/no-bulk-usage/"},
    "get_user_usage": {"path": "/api/v1/no-usage/{username}"},
}


def test_a_panel_without_any_usage_endpoint_is_a_clear_error(
    services: Services, accounts: list[str], server: Server, sim: SimControl
) -> None:
    override(services, server, NO_USAGE_ROUTES)

    with capture_logs() as logs, pytest.raises(UsageCollectionError) as raised:
        sync_server(services, "sim", sleep=time.sleep)

    message = str(raised.value)
    assert message.startswith("server sim: the panel has no usage endpoint")
    assert "/api/v1/no-usage/{username}" in message
    assert stored(services) == {}
    # Every account was asked once; the run says it once, at warning.
    assert len(usage_calls(sim)) == 3
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warnings == ["usage_endpoint_missing"]
    assert begin_run(services, "sim") is not None  # the run ended


def test_an_account_missing_on_the_panel_is_not_a_missing_endpoint(
    services: Services,
    accounts: list[str],
    server: Server,
    simulator: SimulatorServer,
) -> None:
    override(services, server, {"list_usage": {"path": "/api/v1/no-bulk-usage/"}})
    httpx.delete(
        simulator.base_url + "/api/v1/users/user1",
        headers={
            "Authorization": f"Bearer {simulator.credentials().api_key}",
            "Idempotency-Key": "gone-behind-our-back",
        },
    ).raise_for_status()

    assert sync_server(services, "sim", sleep=time.sleep) == 1
    assert stored(services) == {"svc-2": (5, 0)}


def test_cli_usage_sync_names_a_panel_without_usage_and_obeys_route_overrides(
    settings: Settings, services: Services, accounts: list[str], sim: SimControl
) -> None:
    missing = [
        "--route-override",
        "list_usage=GET:/api/v1/no-bulk-usage/",
        "--route-override",
        "get_user_usage=GET:/api/v1/no-usage/{username}",
    ]
    edited = bridge(settings, "servers", "edit", "sim", *missing)
    assert edited.returncode == 0, edited.stderr

    failed = bridge(settings, "usage", "sync", "--server", "sim")

    assert failed.returncode == 1
    assert "error: server sim: the panel has no usage endpoint" in failed.stderr
    assert "usage stored" not in failed.stdout
    assert usage_calls(sim)[0] == "/api/v1/no-bulk-usage/"

    # Pointing the bulk operation back at the panel's real path is used at once.
    fixed = bridge(
        settings,
        "servers",
        "edit",
        "sim",
        "--route-override",
        "list_usage=GET:/api/v1/usage/",
    )
    assert fixed.returncode == 0, fixed.stderr
    synced = bridge(settings, "usage", "sync", "--server", "sim", "--json")
    assert synced.returncode == 0, synced.stderr
    assert as_json(synced) == {"servers": {"sim": 2}}
    assert usage_calls(sim)[-1] == "/api/v1/usage/"


def test_collection_spends_only_the_usage_share_of_the_budget(
    services: Services, accounts: list[str], server: Server, sim: SimControl
) -> None:
    # 60 a minute, 20 % for usage: after one call the lane waits ~5 s, longer
    # than the ~1 s the main bucket alone would ask.
    override(services, server, {"list_usage": {"path": "/api/v1/no-bulk-usage/"}})
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(rate_limit_per_min=60)
        )
    run_id = begin_run(services, "sim")
    assert run_id is not None

    progress = collect_step(services, "sim", "", run_id)

    assert not progress.done
    assert len(usage_calls(sim)) == 1
    assert progress.retry_after is not None
    assert progress.retry_after > 60 / 60
    assert usage_lane(services).lane_limit(60) == 12


def test_one_run_per_server_at_a_time(
    services: Services, accounts: list[str], sim: SimControl
) -> None:
    run_id = begin_run(services, "sim")
    assert run_id is not None

    with pytest.raises(UsageRunBusyError):
        sync_server(services, "sim", sleep=time.sleep)
    assert begin_run(services, "sim") is None
    end_run(services, "sim", run_id)
    assert begin_run(services, "sim") is not None


def test_a_superseded_run_stops_without_calling_the_panel(
    services: Services, accounts: list[str], sim: SimControl
) -> None:
    progress = collect_step(services, "sim", "", "not-the-current-run")

    assert progress.done
    assert usage_calls(sim) == []


def test_sync_of_an_unknown_server_is_not_found(services: Services) -> None:
    with pytest.raises(NotFoundError):
        sync_server(services, "nope", sleep=time.sleep)


def test_get_service_usage_over_http(
    api: httpx.Client, services: Services, accounts: list[str]
) -> None:
    before = get(api, "/v1/services/svc-1/usage").json()
    sync_server(services, "sim", sleep=time.sleep)

    after = get(api, "/v1/services/svc-1/usage").json()

    assert before == {"service_id": "svc-1", "usage": None}
    usage = after["usage"]
    assert (usage["disk_used_mb"], usage["bandwidth_used_mb"]) == (120, 3400)
    assert usage["server"] == "sim"
    assert usage["username"] == "user1"
    assert usage["measured_at"]
    assert usage["collected_at"]
    assert get(api, "/v1/services/svc-nope/usage").status_code == 404


def test_bulk_usage_is_paginated_and_filtered_by_since(
    api: httpx.Client, services: Services, accounts: list[str], clock: FakeClock
) -> None:
    sync_server(services, "sim", sleep=time.sleep)
    later = quote((clock() + timedelta(seconds=1)).isoformat())
    earlier = quote((clock() - timedelta(seconds=1)).isoformat())

    first = get(api, f"/v1/usage?server=sim&since={earlier}&per_page=1").json()
    second = get(api, f"/v1/usage?server=sim&since={earlier}&per_page=1&page=2")
    none = get(api, f"/v1/usage?since={later}").json()

    assert first["meta"] == {"total": 2, "page": 1, "per_page": 1, "last_page": 2}
    ids = [first["usage"][0]["service_id"], second.json()["usage"][0]["service_id"]]
    assert sorted(ids) == ["svc-1", "svc-2"]
    assert none["usage"] == []
    assert none["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/v1/usage?server=nope", 404),
        ("/v1/usage?since=2026-01-01T00:00:00", 422),  # no timezone
        ("/v1/usage?since=yesterday", 422),
        ("/v1/usage?per_page=501", 422),
        ("/v1/usage?page=0", 422),
    ],
)
def test_bulk_usage_bad_query_is_a_clear_4xx(
    api: httpx.Client, server: Server, target: str, status: int
) -> None:
    response = get(api, target)

    assert response.status_code == status
    assert response.json()["detail"]


def test_usage_api_needs_a_signature(api: httpx.Client, server: Server) -> None:
    assert api.get("/v1/usage").status_code == 401


def test_cli_usage_sync_collects_now(
    settings: Settings, services: Services, accounts: list[str]
) -> None:
    synced = bridge(settings, "usage", "sync", "--server", "sim")

    assert synced.returncode == 0, synced.stderr
    assert "sim: usage stored for 2 service(s)" in synced.stdout
    assert stored(services) == {"svc-1": (120, 3400), "svc-2": (5, 0)}


def test_cli_usage_show_prints_the_latest_figures(
    settings: Settings, services: Services, accounts: list[str]
) -> None:
    sync_server(services, "sim", sleep=time.sleep)

    shown = as_json(bridge(settings, "usage", "show", "svc-2", "--json"))
    missing = bridge(settings, "usage", "show", "svc-nope")

    assert shown["usage"]["disk_used_mb"] == 5
    assert shown["usage"]["bandwidth_used_mb"] == 0
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def test_a_panel_error_ends_the_run_and_frees_the_server(
    services: Services, accounts: list[str], sim: SimControl
) -> None:
    run_id = begin_run(services, "sim")
    assert run_id is not None
    sim.fail_next(1, 502)

    progress = collect_step(services, "sim", "", run_id)

    assert progress.done
    assert stored(services) == {}
    assert begin_run(services, "sim") is not None


def test_beat_starts_no_run_on_a_server_with_an_open_circuit(
    services: Services, server: Server, clock: FakeClock, simulator: SimulatorServer
) -> None:
    register_sim(services, simulator, "healthy")
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == server.id)
            .values(circuit_open_until=clock() + timedelta(minutes=5))
        )

    started = start_usage_runs(services)

    assert [name for name, _ in started] == ["healthy"]


def test_a_reseller_key_falls_back_to_its_own_accounts(
    services: Services,
    sim: SimControl,
    clock: FakeClock,
    simulator: SimulatorServer,
) -> None:
    admin = {"Authorization": f"Bearer {simulator.credentials().api_key}"}
    httpx.post(
        simulator.base_url + "/api/v1/users/",
        json={
            "username": "res",
            "email": "res@example.com",
            "password": "reseller-pw",
            "role": "reseller",
        },
        headers={**admin, "Idempotency-Key": "make-reseller"},
    ).raise_for_status()
    key = httpx.post(
        simulator.base_url + "/api/v1/users/res/api-keys",
        json={"name": "bridge", "permissions": ["all"]},
        headers=admin,
    ).json()["api_key"]
    with services.sessions.begin() as session:
        save_server(
            session,
            services.box,
            ServerSpec(
                name="resel",
                base_url=simulator.base_url,
                auth_mode=AuthMode.API_KEY,
                api_key=key,
                rate_limit_per_min=6000,
            ),
        )
    order = drive(services, submit(services, small_create(1, server="resel")), clock)
    assert order.status is OrderStatus.COMPLETED
    set_usage(simulator, "user1", 42, 7)

    sync_server(services, "resel", sleep=time.sleep)

    assert stored(services) == {"svc-1": (42, 7)}
    assert usage_calls(sim) == ["/api/v1/usage/", "/api/v1/users/user1/usage"]


def unusable_ca_bundle(services: Services, server: Server, tmp_path: Path) -> None:
    """Point the server at a file that holds no certificate, bypassing `servers
    edit` (whose save-time checks would refuse it): its client cannot be built."""
    bundle = tmp_path / "not-a-ca.pem"
    bundle.write_text("this is not a certificate\n")
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(ca_bundle=str(bundle))
        )


def test_a_client_that_cannot_be_built_ends_the_run(
    services: Services, server: Server, tmp_path: Path
) -> None:
    unusable_ca_bundle(services, server, tmp_path)

    for _ in range(2):  # the second run is refused the same way, not "busy"
        with pytest.raises(ConfigurationError, match="cannot load ca_bundle"):
            sync_server(services, "sim", sleep=time.sleep)

    assert begin_run(services, "sim") is not None


def test_cli_usage_sync_retried_after_a_configuration_error_reports_it_again(
    settings: Settings, services: Services, server: Server, tmp_path: Path
) -> None:
    unusable_ca_bundle(services, server, tmp_path)

    first = bridge(settings, "usage", "sync", "--server", "sim")
    retried = bridge(settings, "usage", "sync", "--server", "sim")

    for result in (first, retried):
        assert "already running" not in result.stderr
        assert "error: server sim: configuration error: cannot load ca_bundle" in (
            result.stderr
        )
        assert "Traceback" not in result.stderr
        assert result.returncode == 1


def test_cli_usage_sync_json_reports_a_busy_server_after_the_others(
    settings: Settings,
    services: Services,
    accounts: list[str],
    simulator: SimulatorServer,
) -> None:
    register_sim(services, simulator, "healthy")
    assert begin_run(services, "sim") is not None  # a run holds `sim`

    synced = bridge(settings, "usage", "sync", "--json")

    assert synced.returncode == 1
    assert json.loads(synced.stdout) == {
        "servers": {"healthy": 0},
        "errors": {"sim": "a usage collection for sim is already running"},
    }
