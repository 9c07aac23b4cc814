"""POST /v1/services/{id}/sso over real HTTP: a single-use link, never logged or
stored; clear 404/409/422/502/503 answers that change nothing."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from bridge.container import Services
from bridge.db.models import AuditEntry, Server, Service
from bridge.domain.model import AuthMode
from bridge.domain.states import OrderStatus, ServiceStatus
from bridge.fleet import ServerSpec, save_server
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.cli_runner import as_json, bridge
from tests.factories import drive, submit
from tests.ops_support import small_create
from tests.signing import encode, signed_headers
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


def sso(
    api: httpx.Client, clock: FakeClock, service_id: str, body: Any = None
) -> httpx.Response:
    target = f"/v1/services/{service_id}/sso"
    raw = b"" if body is None else encode(body)
    headers = signed_headers("POST", target, raw, timestamp=int(clock().timestamp()))
    return api.post(target, content=raw, headers=headers)


@pytest.fixture
def active_service(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> str:
    order = drive(services, submit(services, small_create()), clock, sim)
    assert order.status is OrderStatus.COMPLETED
    return order.service_id


def sso_audit(services: Services) -> list[AuditEntry]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.startswith("sso_"))
                .order_by(AuditEntry.id)
            )
        )


def the_refusal(services: Services, service_id: str) -> dict[str, Any]:
    """The one audit entry a refused mint leaves: which service, who, why."""
    (entry,) = sso_audit(services)
    assert (entry.action, entry.service_id, entry.actor) == (
        "sso_refused",
        service_id,
        "billing",
    )
    return entry.detail


def mint_requests(sim: SimControl) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["path"].endswith("/sso/mint")]


def test_sso_link_logs_the_customer_in_once(
    api: httpx.Client, clock: FakeClock, active_service: str
) -> None:
    response = sso(api, clock, active_service, {"target_path": "/files"})

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    first = httpx.get(body["url"])
    second = httpx.get(body["url"])
    assert first.status_code == 302
    assert first.headers["location"] == "/files"
    assert second.status_code == 410


def test_sso_is_audited_but_the_link_is_never_logged_or_stored(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    sim: SimControl,
) -> None:
    with capture_logs() as logs:
        url = sso(api, clock, active_service).json()["url"]

    nonce = url.rsplit("/", 1)[-1]
    assert nonce not in repr(logs)
    assert any(e["event"] == "sso_minted" for e in logs)
    entries = sso_audit(services)
    assert [(e.action, e.service_id, e.actor) for e in entries] == [
        ("sso_minted", active_service, "billing")
    ]
    assert entries[0].detail["server"] == "sim"
    assert nonce not in repr([e.detail for e in entries])
    requests = mint_requests(sim)
    assert len(requests) == 1
    assert requests[0]["status"] == 200


def test_sso_link_expiry_follows_the_request(
    api: httpx.Client, clock: FakeClock, active_service: str
) -> None:
    body = sso(api, clock, active_service, {"expires_in": 60}).json()

    expires = datetime.fromisoformat(body["expires_at"])
    assert (expires - clock()).total_seconds() == 60


def test_sso_unknown_service_is_404(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    server: Server,
    sim: SimControl,
) -> None:
    response = sso(api, clock, "svc-nope")

    assert response.status_code == 404
    assert mint_requests(sim) == []
    assert the_refusal(services, "svc-nope") == {
        "server": None,
        "refusal": "not_found",
        "reason": "service 'svc-nope' not found",
    }


def test_sso_for_a_suspended_service_is_409_and_calls_no_panel(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    sim: SimControl,
) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Service)
            .where(Service.service_id == active_service)
            .values(status=ServiceStatus.SUSPENDED)
        )

    response = sso(api, clock, active_service)

    assert response.status_code == 409
    assert "suspended" in response.json()["detail"]
    assert mint_requests(sim) == []


def test_sso_on_a_login_mode_server_is_409_asking_for_an_api_key(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    simulator: SimulatorServer,
    sim: SimControl,
) -> None:
    creds = simulator.credentials()
    with services.sessions.begin() as session:
        login_server = save_server(
            session,
            services.box,
            ServerSpec(
                name="jwt",
                base_url=simulator.base_url,
                auth_mode=AuthMode.LOGIN,
                username=creds.username,
                password=creds.password,
            ),
        )
        session.add(
            Service(
                service_id="svc-jwt",
                server=login_server,
                username="someone",
                status=ServiceStatus.ACTIVE,
                order_seq=0,
            )
        )

    response = sso(api, clock, "svc-jwt")

    assert response.status_code == 409
    assert "API key" in response.json()["detail"]
    assert mint_requests(sim) == []
    assert the_refusal(services, "svc-jwt") == {
        "server": "jwt",
        "refusal": "conflict",
        "reason": response.json()["detail"],
    }


def test_sso_while_the_panel_throttles_is_503_with_retry_after(
    api: httpx.Client, clock: FakeClock, active_service: str, sim: SimControl
) -> None:
    sim.faults(storm_seconds=30)

    response = sso(api, clock, active_service)

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "url" not in response.json()


def test_sso_while_the_panel_is_down_is_503(
    api: httpx.Client, clock: FakeClock, active_service: str, sim: SimControl
) -> None:
    sim.fail_next(1, 502)

    response = sso(api, clock, active_service)

    assert response.status_code == 503


def test_sso_on_a_panel_without_the_endpoint_is_502(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    server: Server,
) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == server.id)
            .values(route_overrides={"sso_mint": {"path": "/api/v1/auth/sso/missing"}})
        )

    response = sso(api, clock, active_service)

    assert response.status_code == 502
    assert "404" in response.json()["detail"]
    assert [e.action for e in sso_audit(services)] == ["sso_refused"]


def test_sso_when_the_panel_refuses_the_account_is_409(
    api: httpx.Client,
    clock: FakeClock,
    active_service: str,
    simulator: SimulatorServer,
) -> None:
    # Suspended on the panel behind the bridge's back: the panel's 403 is shown.
    httpx.post(
        simulator.base_url + "/api/v1/users/user1/suspend",
        json={},
        headers={
            "Authorization": f"Bearer {simulator.credentials().api_key}",
            "Idempotency-Key": "suspend-behind-the-back",
        },
    ).raise_for_status()

    response = sso(api, clock, active_service)

    assert response.status_code == 409
    assert "Cannot mint SSO for suspended accounts" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"target_path": "https://evil.example/"},
        {"target_path": "//evil.example/"},
        {"expires_in": 5},
        {"link": "x"},
    ],
)
def test_sso_bad_body_is_422_naming_the_field(
    api: httpx.Client, clock: FakeClock, active_service: str, sim: SimControl, body: Any
) -> None:
    response = sso(api, clock, active_service, body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert mint_requests(sim) == []


def test_sso_without_a_signature_is_401(api: httpx.Client, active_service: str) -> None:
    response = api.post(f"/v1/services/{active_service}/sso")

    assert response.status_code == 401


def test_sso_out_of_budget_answers_503_without_calling_the_panel(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    server: Server,
    sim: SimControl,
) -> None:
    # One request a minute, just spent by queued work: the wait is ~60 s, far
    # beyond BRIDGE_SSO_MAX_WAIT_SECONDS, so nobody is kept waiting that long.
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(rate_limit_per_min=1)
        )
        row = session.get(Server, server.id)
        assert row is not None
        key = services.panels.client_for(row).bucket_key
    assert services.limiter.acquire(key, 1).allowed

    response = sso(api, clock, active_service)

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > services.settings.sso_max_wait_seconds
    assert mint_requests(sim) == []
    detail = the_refusal(services, active_service)
    assert (detail["server"], detail["refusal"]) == ("sim", "unavailable")
    assert detail["reason"].startswith("panel busy")


def test_sso_waits_for_the_next_slot_when_queued_work_holds_the_budget(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    server: Server,
    sim: SimControl,
) -> None:
    # 60 a minute: the slot after one just taken is ~1 s away, within the wait.
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(rate_limit_per_min=60)
        )
        row = session.get(Server, server.id)
        assert row is not None
        key = services.panels.client_for(row).bucket_key
    assert services.limiter.acquire(key, 60).allowed

    response = sso(api, clock, active_service)

    assert response.status_code == 200, response.text
    assert len(mint_requests(sim)) == 1


def test_sso_when_the_panel_rejects_the_key_is_503(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    server: Server,
) -> None:
    with services.sessions.begin() as session:
        row = session.get(Server, server.id)
        assert row is not None
        row.credentials = services.box.encrypt_json({"api_key": "wsp_" + "0" * 48})

    response = sso(api, clock, active_service)

    assert response.status_code == 503
    assert "credentials" in response.json()["detail"]
    assert the_refusal(services, active_service)["reason"] == (
        "panel credentials rejected"
    )


def test_sso_while_the_circuit_is_open_is_503_without_calling_the_panel(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    server: Server,
    sim: SimControl,
) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == server.id)
            .values(circuit_open_until=clock() + timedelta(seconds=40))
        )

    response = sso(api, clock, active_service)

    assert response.status_code == 503
    assert 30 < int(response.headers["retry-after"]) <= 40
    assert mint_requests(sim) == []
    assert the_refusal(services, active_service)["refusal"] == "unavailable"


def test_sso_for_a_service_still_being_created_is_409(
    api: httpx.Client, clock: FakeClock, services: Services, server: Server
) -> None:
    submit(services, small_create(7))  # queued, never run: the service is pending

    response = sso(api, clock, "svc-7")

    assert response.status_code == 409
    assert "pending" in response.json()["detail"]


def test_sso_answer_without_a_link_is_503_not_a_broken_url(
    api: httpx.Client,
    clock: FakeClock,
    services: Services,
    active_service: str,
    server: Server,
) -> None:
    # A panel release answering 200 with some other body (here: logout's).
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == server.id)
            .values(route_overrides={"sso_mint": {"path": "/api/v1/auth/logout"}})
        )

    response = sso(api, clock, active_service)

    assert response.status_code == 503
    assert "no usable link" in response.json()["detail"]
    assert the_refusal(services, active_service)["reason"] == (
        "the panel's answer held no usable link"
    )


# --- `bridge services sso` (operators) ---


def test_cli_services_sso_prints_a_single_use_link_audited_as_the_operator(
    settings: Settings, services: Services, active_service: str
) -> None:
    result = bridge(
        settings, "services", "sso", active_service, "--target-path", "/files"
    )

    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("http")
    assert "expires at" in result.stderr
    assert url not in result.stderr
    first = httpx.get(url)
    assert first.status_code == 302
    assert first.headers["location"] == "/files"
    (entry,) = sso_audit(services)
    assert entry.action == "sso_minted"
    assert entry.actor.startswith("ops:")
    assert entry.service_id == active_service
    assert url not in str(entry.detail)


def test_cli_services_sso_json(
    settings: Settings, services: Services, active_service: str
) -> None:
    body = as_json(
        bridge(
            settings, "services", "sso", active_service, "--expires-in", "60", "--json"
        )
    )

    assert set(body) == {"url", "expires_at"}
    assert datetime.fromisoformat(body["expires_at"])


@pytest.mark.parametrize(
    ("args", "code", "complaint"),
    [
        (["svc-nope"], 1, "not found"),
        (["svc-1", "--target-path", "https://evil.example/"], 2, "--target-path"),
        (["svc-1", "--expires-in", "5"], 2, "--expires-in"),
    ],
)
def test_cli_services_sso_bad_input_is_a_clear_error(
    settings: Settings,
    active_service: str,
    sim: SimControl,
    args: list[str],
    code: int,
    complaint: str,
) -> None:
    result = bridge(settings, "services", "sso", *args)

    assert result.returncode == code
    assert complaint in result.stderr
    assert mint_requests(sim) == []
