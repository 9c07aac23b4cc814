"""The admin API over real HTTP: bearer tokens, the failed-jobs queue, servers."""

import httpx
import pytest

from bridge import admin_tokens
from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.roles import Role
from bridge.domain.states import OrderStatus, ServiceStatus
from bridge.errors import InvalidOrderError
from bridge.ops import issue_token, revoke_token
from bridge.simulator import SimulatorServer
from tests.factories import drive, load, submit
from tests.infra import ADMIN_TOKEN
from tests.ops_support import audit_rows, failed_create, small_create
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

BOOTSTRAP = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, bearer("not-a-token")],
    ids=["missing", "not-bearer", "unknown"],
)
def test_requests_without_a_valid_token_are_401(
    api: httpx.Client, services: Services, headers: dict[str, str]
) -> None:
    for method, path in [("GET", "/v1/admin/orders"), ("GET", "/v1/admin/servers")]:
        response = api.request(method, path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    response = api.post("/v1/admin/orders/x/cancel", headers=headers)
    assert response.status_code == 401


def test_bootstrap_and_named_tokens_work_and_revoked_ones_do_not(
    api: httpx.Client, services: Services
) -> None:
    assert api.get("/v1/admin/orders", headers=BOOTSTRAP).status_code == 200
    token = issue_token(services, "alice", "ops:root", role=Role.READ)
    assert token.startswith(admin_tokens.TOKEN_PREFIX)
    assert api.get("/v1/admin/orders", headers=bearer(token)).status_code == 200
    revoke_token(services, "alice", "ops:root")
    response = api.get("/v1/admin/orders", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_tokens_are_stored_hashed_and_names_are_unique(services: Services) -> None:
    token = issue_token(services, "bob", "ops:root", role=Role.OPERATE)
    with services.sessions.begin() as session:
        listed = admin_tokens.list_tokens(session)
        assert [(t["name"], t["role"]) for t in listed] == [("bob", "operate")]
        assert token not in str(listed)
        assert admin_tokens.authenticate(
            session, services.settings, token
        ) == admin_tokens.Operator("bob", Role.OPERATE)
        assert admin_tokens.authenticate(session, services.settings, "") is None
        assert listed[0]["last_used_at"] is None
        assert admin_tokens.list_tokens(session)[0]["last_used_at"] is not None
    with pytest.raises(admin_tokens.TokenNameTakenError):
        issue_token(services, "bob", "ops:root", role=Role.READ)
    with pytest.raises(InvalidOrderError):
        issue_token(services, "bootstrap", "ops:root", role=Role.READ)
    assert revoke_token(services, "bob", "ops:root") is True
    assert revoke_token(services, "bob", "ops:root") is False
    # A revoked name is reusable, with another role.
    again = issue_token(services, "bob", "ops:root", role=Role.ADMIN)
    with services.sessions.begin() as session:
        assert admin_tokens.authenticate(session, services.settings, token) is None
        operator = admin_tokens.authenticate(session, services.settings, again)
        assert operator == admin_tokens.Operator("bob", Role.ADMIN)
    assert [e.action for e in audit_rows(services)] == [
        "admin_token_created",
        "admin_token_revoked",
        "admin_token_created",
    ]


def test_retry_via_api_records_the_operator_and_completes_once(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    order = failed_create(services, sim, clock)
    token = issue_token(services, "carol", "ops:root", role=Role.OPERATE)
    response = api.post(f"/v1/admin/orders/{order.id}/retry", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["order"]["status"] == "queued"
    entry = audit_rows(services, order.id)[-1]
    assert (entry.actor, entry.action) == ("admin:carol", "order_retried")
    assert drive(services, order.id, clock, sim).status is OrderStatus.COMPLETED
    assert sim.ledger()["user"] == {"user1": 1}
    again = api.post(f"/v1/admin/orders/{order.id}/retry", headers=bearer(token))
    assert again.status_code == 409
    assert "completed -> queued" in again.json()["detail"]


def test_order_list_filters_and_pagination_meta(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    failed = failed_create(services, sim, clock, 1)
    for n in range(2, 5):
        submit(services, small_create(n))
    response = api.get(
        "/v1/admin/orders", params={"per_page": 3, "page": 2}, headers=BOOTSTRAP
    )
    body = response.json()
    assert body["meta"] == {
        "total": 4,
        "per_page": 3,
        "current_page": 2,
        "last_page": 2,
    }
    assert len(body["data"]) == 1
    response = api.get(
        "/v1/admin/orders",
        params={"status": "failed", "server": "sim", "action": "create", "since": "1h"},
        headers=BOOTSTRAP,
    )
    (row,) = response.json()["data"]
    assert row["id"] == str(failed.id)
    assert row["panel_status"] == 400
    bad = api.get("/v1/admin/orders", params={"since": "soon"}, headers=BOOTSTRAP)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "since"]
    assert (
        api.get(
            "/v1/admin/orders", params={"status": "nope"}, headers=BOOTSTRAP
        ).status_code
        == 422
    )


def test_order_detail_by_either_id_shows_steps_and_panel_errors(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    order = failed_create(services, sim, clock)
    by_uuid = api.get(f"/v1/admin/orders/{order.id}", headers=BOOTSTRAP).json()
    by_billing = api.get("/v1/admin/orders/ord-1", headers=BOOTSTRAP).json()
    assert by_uuid == by_billing
    step = by_uuid["order"]["steps"][0]
    assert (step["panel_status"], step["error_code"]) == (400, "VALIDATION_ERROR")
    assert step["first_sent_at"] is not None
    assert step["attempts"] == 1
    assert "correct-horse-battery" not in str(by_uuid)
    assert "secret_body" not in str(by_uuid)
    missing = api.get("/v1/admin/orders/nope", headers=BOOTSTRAP)
    assert missing.status_code == 404


def test_cancel_and_resolve_via_api(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    queued = submit(services, small_create(1))
    response = api.post(f"/v1/admin/orders/{queued}/cancel", headers=BOOTSTRAP)
    assert response.json()["order"]["status"] == "cancelled"
    failed = failed_create(services, sim, clock, 2)
    no_note = api.post(
        f"/v1/admin/orders/{failed.id}/resolve", json={}, headers=BOOTSTRAP
    )
    assert no_note.status_code == 422
    resolved = api.post(
        f"/v1/admin/orders/{failed.id}/resolve",
        json={"note": "account made by hand"},
        headers=BOOTSTRAP,
    )
    assert resolved.status_code == 200
    assert load(services, failed.id).service.status is ServiceStatus.ACTIVE
    actions = [(e.actor, e.action) for e in audit_rows(services)]
    assert actions == [
        ("admin:bootstrap", "order_cancelled"),
        ("admin:bootstrap", "order_resolved"),
    ]


def test_cancel_of_a_running_order_is_409(
    api: httpx.Client, services: Services, server: Server, clock: FakeClock
) -> None:
    from bridge.db import orders as orders_db

    order_uuid = submit(services, small_create())
    with services.sessions.begin() as session:
        orders_db.acquire_lease(session, order_uuid, "w", clock(), 60)
    response = api.post(f"/v1/admin/orders/{order_uuid}/cancel", headers=BOOTSTRAP)
    assert response.status_code == 409
    assert "running on a worker" in response.json()["detail"]


def test_audit_endpoint_filters_by_actor(
    api: httpx.Client, services: Services, server: Server
) -> None:
    order_uuid = submit(services, small_create())
    api.post(f"/v1/admin/orders/{order_uuid}/cancel", headers=BOOTSTRAP)
    body = api.get(
        "/v1/admin/audit", params={"actor": "admin"}, headers=BOOTSTRAP
    ).json()
    assert body["meta"]["total"] == 1
    (entry,) = body["data"]
    assert entry["actor"] == "admin:bootstrap"
    assert (entry["before"], entry["after"]) == ("queued", "cancelled")
    by_order = api.get(
        "/v1/admin/audit", params={"order": str(order_uuid)}, headers=BOOTSTRAP
    ).json()
    assert [e["action"] for e in by_order["data"]] == [
        "order_cancelled",
        "order_create",
    ]


def test_server_put_adds_then_edits_only_given_fields_never_returning_secrets(
    api: httpx.Client, services: Services, simulator: SimulatorServer
) -> None:
    key = simulator.credentials().api_key
    created = api.put(
        "/v1/admin/servers/edge",
        json={"url": simulator.base_url, "api_key": key, "limit": 120, "group": "eu"},
        headers=BOOTSTRAP,
    )
    assert created.status_code == 201, created.text
    assert created.json()["server"]["rate_limit_per_min"] == 120
    edited = api.put(
        "/v1/admin/servers/edge",
        json={"state": "draining", "capacity": 10},
        headers=BOOTSTRAP,
    )
    assert edited.status_code == 200
    server = edited.json()["server"]
    assert (server["state"], server["capacity"], server["group"]) == (
        "draining",
        10,
        "eu",
    )
    cleared = api.put(
        "/v1/admin/servers/edge", json={"capacity": None}, headers=BOOTSTRAP
    )
    assert cleared.json()["server"]["capacity"] is None
    listing = api.get("/v1/admin/servers", headers=BOOTSTRAP)
    one = api.get("/v1/admin/servers/edge", headers=BOOTSTRAP)
    for response in (created, edited, listing, one):
        assert key not in response.text
        assert "credentials" not in response.text
    incomplete = api.put("/v1/admin/servers/new", json={"limit": 5}, headers=BOOTSTRAP)
    assert incomplete.status_code == 422
    (entry, *_) = [e for e in audit_rows(services) if e.action == "server_edited"]
    assert entry.detail["changed"]["state"] == ["active", "draining"]
    assert key not in str([e.detail for e in audit_rows(services)])


def test_server_delete_refuses_a_used_server_and_removes_an_unused_one(
    api: httpx.Client,
    services: Services,
    server: Server,
    simulator: SimulatorServer,
) -> None:
    submit(services, small_create())
    refused = api.delete("/v1/admin/servers/sim", headers=BOOTSTRAP)
    assert refused.status_code == 409
    assert "--state disabled" in refused.json()["detail"]
    api.put(
        "/v1/admin/servers/spare",
        json={"url": simulator.base_url, "api_key": "wsp_unused_key_000"},
        headers=BOOTSTRAP,
    )
    assert api.delete("/v1/admin/servers/spare", headers=BOOTSTRAP).status_code == 204
    assert api.get("/v1/admin/servers/spare", headers=BOOTSTRAP).status_code == 404
    drained = api.post("/v1/admin/servers/sim/drain", headers=BOOTSTRAP)
    assert drained.json()["server"]["state"] == "draining"


def test_server_test_reports_version_license_and_rate_limit(
    api: httpx.Client, services: Services, server: Server, sim: SimControl
) -> None:
    response = api.post("/v1/admin/servers/sim/test", headers=BOOTSTRAP)
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert report["ok"] is True
    assert (report["reachable"], report["authenticated"]) == (True, True)
    assert report["version"]
    assert report["license"]["max_users"] == 30
    assert report["rate_limit"]["limit"] is not None
    assert report["tls"] is None  # the simulator speaks plain HTTP
    with services.sessions() as session:
        assert session.get(Server, server.id).license_max_users == 30  # type: ignore[union-attr]


def test_server_test_of_an_unreachable_or_unauthorised_panel(
    api: httpx.Client, services: Services, server: Server, sim: SimControl
) -> None:
    api.put(
        "/v1/admin/servers/gone",
        json={"url": "http://127.0.0.1:9", "api_key": "wsp_nothing_here_0"},
        headers=BOOTSTRAP,
    )
    report = api.post("/v1/admin/servers/gone/test", headers=BOOTSTRAP).json()["report"]
    assert (report["ok"], report["reachable"]) == (False, False)
    assert report["error"]
    api.put(
        "/v1/admin/servers/sim",
        json={"api_key": "wsp_wrong_key_00000"},
        headers=BOOTSTRAP,
    )
    report = api.post("/v1/admin/servers/sim/test", headers=BOOTSTRAP).json()["report"]
    assert (report["reachable"], report["authenticated"]) == (True, False)
    assert "wsp_wrong_key" not in str(report)
