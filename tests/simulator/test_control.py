"""The /_sim control API, the OpenAPI document and state persistence."""

import httpx
import pytest
import yaml
from fastapi.routing import APIRoute

from bridge.simulator import SimulatorConfig, SimulatorServer


def test_config_accepts_every_documented_switch(panel):
    config = panel.configure(
        limit=10,
        window="sliding",
        token_lifetime_s=600,
        ssl_delay_s=1,
        envelope="lean",
        validation_status=422,
        key_mismatch_status=422,
        empty_accounts="[]",
        retry_after="off",
        ip_binding=False,
        single_session=True,
    )

    assert config["window"] == "sliding"
    assert config["empty_accounts"] == []
    assert config["retry_after"] is False


@pytest.mark.parametrize(
    "changes",
    [
        {"window": "rolling"},
        {"envelope": "xml"},
        {"validation_status": 418},
        {"limit": "many"},
        {"unknown": 1},
        {"state_file": "elsewhere.json"},
    ],
)
def test_invalid_config_is_400_and_changes_nothing(panel, changes):
    response = panel.raw("POST", "/_sim/config", json=changes)

    assert response.status_code == 400
    assert panel.control("GET", "config")["limit"] == 60


def test_reset_restores_config_state_clock_and_logs(panel):
    panel.configure(limit=5)
    panel.create_user("alice")
    panel.advance(999)

    panel.control("POST", "reset")

    assert panel.control("GET", "config")["limit"] == 60
    assert panel.control("GET", "clock")["offset_seconds"] == 0
    assert panel.requests() == []
    assert panel.ledger() == {
        "user": {},
        "domain": {},
        "certificate": {},
        "mailbox": {},
    }
    assert "alice" not in panel.state()["users"]


def test_reset_invalidates_old_jwts_but_keeps_credentials(panel):
    token = panel.admin_token()

    panel.control("POST", "reset")

    assert panel.get("/api/v1/auth/me", token=token).status_code == 401
    assert panel.get("/api/v1/auth/me").status_code == 200


def test_state_shows_resources_without_secrets(panel):
    panel.create_user("alice")
    panel.create_key("alice")

    state = panel.state()

    assert state["users"]["alice"]["token_version"] == 1
    assert {k["owner"] for k in state["api_keys"]} == {"admin", "alice"}
    assert all("secret" not in k for k in state["api_keys"])
    assert "password" not in state["users"]["alice"]


def test_request_log_entries_have_documented_fields(panel):
    panel.create_user("alice")

    entry = panel.requests()[0]

    assert set(entry) == {
        "method",
        "path",
        "idempotency_key",
        "status",
        "at",
        "replayed",
        "fault",
    }
    assert (entry["method"], entry["path"], entry["status"]) == (
        "POST",
        "/api/v1/users/",
        201,
    )


def test_request_log_path_excludes_panel_prefix(other_panel):
    other_panel.get("/api/v1/auth/me")

    assert other_panel.requests()[0]["path"] == "/api/v1/auth/me"


def test_clock_rejects_non_numbers(panel):
    response = panel.raw("POST", "/_sim/clock", json={"advance_seconds": "soon"})

    assert response.status_code == 400


def test_revoke_one_user_only(panel):
    panel.create_user("alice")
    alice = panel.login("alice", "alice-pw").json()["token"]
    admin = panel.admin_token()

    panel.control("POST", "revoke", {"username": "alice"})

    assert panel.get("/api/v1/auth/me", token=alice).status_code == 401
    assert panel.get("/api/v1/auth/me", token=admin).status_code == 200


def test_config_can_change_admin_password(panel):
    panel.configure(password="rotated-pw")

    assert panel.login("admin", "rotated-pw").status_code == 200


def test_openapi_yaml_is_served_without_auth_and_lists_every_route(sim_server, panel):
    response = panel.raw("GET", "/openapi.yaml")
    spec = yaml.safe_load(response.text)
    served = {
        (route.path, method.lower())
        for route in sim_server.app.api.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    described = {(path, m) for path, ops in spec["paths"].items() for m in ops}

    assert response.status_code == 200
    assert spec["openapi"].startswith("3.0")
    assert described == served
    assert ("/api/v1/users/", "post") in described
    assert ("/api/v1/ssl/{domain}/issue", "post") in described
    assert spec["paths"]["/api/v1/auth/login"]["post"]["security"] == []


def test_state_survives_restart_with_a_state_file(tmp_path):
    path = tmp_path / "panel.json"
    config = SimulatorConfig(state_file=str(path), api_key="wsp_" + "a" * 48)
    body = {"username": "alice", "email": "a@example.com", "password": "pw"}
    headers = {"Authorization": "Bearer wsp_" + "a" * 48}
    with SimulatorServer(config) as first:
        httpx.post(first.base_url + "/api/v1/users/", json=body, headers=headers)

    with SimulatorServer(config) as second:
        response = httpx.get(second.base_url + "/api/v1/users/alice", headers=headers)
        ledger = httpx.get(second.base_url + "/_sim/ledger").json()

    assert response.status_code == 200
    assert ledger["user"] == {"alice": 1}


def test_configured_credentials_are_served(tmp_path):
    config = SimulatorConfig(
        api_key="wsp_" + "b" * 48, username="root", password="s3cret"
    )

    with SimulatorServer(config) as server:
        creds = server.credentials()
        login = httpx.post(
            server.base_url + "/api/v1/auth/login",
            json={"username": "root", "password": "s3cret"},
        )

    assert (creds.api_key, creds.username, creds.password) == (
        "wsp_" + "b" * 48,
        "root",
        "s3cret",
    )
    assert login.status_code == 200
    assert tmp_path.exists()


def test_config_rejects_bad_values_at_construction():
    with pytest.raises(ValueError, match="window"):
        SimulatorConfig(window="rolling")  # type: ignore[arg-type]
