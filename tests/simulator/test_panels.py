"""Several panels in one process: URLs, credentials and isolation."""

import httpx

from bridge.simulator import SimulatorServer, describe


def test_server_exposes_named_panels_and_their_urls(sim_server):
    assert sim_server.panel_names == ["p1", "p2"]
    assert sim_server.panel_url("p1") == sim_server.base_url + "/p/p1"
    assert sim_server.panel_url() == sim_server.base_url
    assert sim_server.base_url.startswith("http://127.0.0.1:")


def test_each_panel_has_its_own_admin_credentials(sim_server):
    keys = {sim_server.credentials(name).api_key for name in [None, "p1", "p2"]}

    assert len(keys) == 3
    assert all(k.startswith("wsp_") and len(k) == 52 for k in keys)
    assert sim_server.credentials("p1").username == "admin"


def test_keys_are_only_valid_on_their_own_panel(panel, other_panel):
    own = other_panel.get("/api/v1/auth/me")
    foreign = other_panel.get("/api/v1/auth/me", token=panel.creds.api_key)

    assert own.status_code == 200
    assert foreign.status_code == 401


def test_state_ledger_and_logs_are_per_panel(panel, other_panel):
    other_panel.create_user("alice")

    assert other_panel.ledger()["user"] == {"alice": 1}
    assert panel.ledger()["user"] == {}
    assert panel.get("/api/v1/users/alice").status_code == 404
    assert panel.requests()[-1]["path"] == "/api/v1/users/alice"
    assert other_panel.requests()[0]["path"] == "/api/v1/users/"


def test_clock_faults_and_config_are_per_panel(panel, other_panel):
    other_panel.advance(3600)
    other_panel.faults(error_rate=1)
    other_panel.configure(limit=5)

    assert panel.control("GET", "clock")["offset_seconds"] == 0
    assert panel.create_user("alice").status_code == 201
    assert panel.get("/api/v1/auth/me").headers["X-RateLimit-Limit"] == "60"
    assert other_panel.get("/api/v1/auth/me").headers["X-RateLimit-Limit"] == "5"


def test_named_panel_serves_control_and_openapi_under_its_prefix(other_panel):
    assert other_panel.raw("GET", "/openapi.yaml").status_code == 200
    assert other_panel.control("GET", "credentials")["api_key"] == (
        other_panel.creds.api_key
    )


def test_unknown_panel_is_404(sim_server):
    response = httpx.get(sim_server.base_url + "/p/p99/api/v1/auth/me")

    assert response.status_code == 404


def test_panel_list_covers_every_panel(panel):
    listed = panel.control("GET", "panels")

    assert [p["prefix"] for p in listed] == ["", "/p/p1", "/p/p2"]


def test_one_process_hosts_many_panels():
    with SimulatorServer(panels=25) as server:
        creds = server.credentials("p25")
        response = httpx.get(
            server.panel_url("p25") + "/api/v1/auth/me",
            headers={"Authorization": f"Bearer {creds.api_key}"},
        )

    assert len(server.panel_names) == 25
    assert response.status_code == 200


def test_describe_lists_every_panel_with_credentials(sim_server):
    text = describe(sim_server)

    assert sim_server.base_url in text
    assert sim_server.panel_url("p2") in text
    assert sim_server.credentials("p1").api_key in text
    assert sim_server.credentials().password in text
