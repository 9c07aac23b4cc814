"""SSO mint/consume and usage endpoints of the simulator, with the harsher readings."""

import pytest

MINT = "/api/v1/auth/sso/mint"


def mint(panel, username="alice", token=None, **fields):
    return panel.post(MINT, json={"username": username} | fields, token=token)


def test_mint_returns_single_use_consume_url_without_token(panel):
    panel.create_user("alice")

    response = mint(panel, target_path="/dashboard")

    assert response.status_code == 200
    body = response.json()
    assert len(body["nonce"]) == 43
    assert body["consume_url"].endswith(f"/sso/consume/{body['nonce']}")
    assert body["expires_in"] == 300
    assert body["target_path"] == "/dashboard"
    assert panel.creds.api_key not in body["consume_url"]


def test_consume_redeems_once_then_410(panel):
    panel.create_user("alice")
    url = mint(panel, target_path="/files").json()["consume_url"]

    first = panel.http.get(url)
    second = panel.http.get(url)

    assert first.status_code == 302
    assert first.headers["location"] == "/files"
    assert second.status_code == 410


def test_consume_after_expiry_is_410_and_unknown_is_404(panel):
    panel.create_user("alice")
    url = mint(panel, expires_in=5).json()["consume_url"]  # clamped up to 30 s
    panel.advance(31)

    assert panel.http.get(url).status_code == 410
    assert panel.raw("GET", "/sso/consume/nope").status_code == 404


@pytest.mark.parametrize(("asked", "granted"), [(1, 30), (5000, 900), (120, 120)])
def test_expires_in_is_clamped(panel, asked, granted):
    panel.create_user("alice")

    assert mint(panel, expires_in=asked).json()["expires_in"] == granted


def test_mint_refuses_jwt_caller(panel):
    panel.create_user("alice")

    response = mint(panel, token=panel.admin_token())

    assert response.status_code == 403


def test_mint_refuses_admin_suspended_and_unknown_targets(panel):
    panel.create_user("alice")
    panel.post("/api/v1/users/alice/suspend", json={})

    admin = mint(panel, username=panel.creds.username)
    suspended = mint(panel, username="alice")
    unknown = mint(panel, username="ghost")

    assert admin.status_code == 403
    assert admin.json()["error"] == "Cannot mint SSO for admin accounts"
    assert suspended.status_code == 403
    assert unknown.status_code == 404


def test_mint_refuses_user_caller_and_foreign_reseller(panel):
    user_key = panel.user_with_key("bob")
    reseller_key = panel.user_with_key("res", role="reseller")
    panel.create_user("alice")

    assert mint(panel, token=user_key).status_code == 403
    assert mint(panel, token=reseller_key).status_code == 403


def test_mint_rejects_absolute_target_path(panel):
    panel.create_user("alice")

    response = mint(panel, target_path="https://evil.example/")

    assert response.status_code == 400


def test_user_usage_reads_figures_set_by_control(panel):
    panel.create_user("alice")
    figures = {"username": "alice", "disk_used_mb": 5, "bandwidth_used_mb": 7}
    panel.control("POST", "usage", figures)

    body = panel.get("/api/v1/users/alice/usage").json()

    assert body["username"] == "alice"
    assert (body["disk_used_mb"], body["bandwidth_used_mb"]) == (5, 7)
    assert body["period_start"]
    assert body["measured_at"]


def test_bulk_usage_is_admin_only_and_paginates(panel):
    for name in ("alice", "bob", "carol"):
        panel.create_user(name)
    user_key = panel.user_with_key("dave")

    page = panel.get("/api/v1/usage/", params={"per_page": 2}).json()
    plain = panel.get("/api/v1/usage/").json()

    assert page["meta"]["total"] == 4
    assert len(page["data"]) == 2
    assert {row["username"] for row in plain} == {"alice", "bob", "carol", "dave"}
    assert panel.get("/api/v1/usage/", token=user_key).status_code == 403
    assert panel.get("/api/v1/users/alice/usage", token=user_key).status_code == 403


def test_control_usage_rejects_unknown_user(panel):
    response = panel.raw("POST", "/_sim/usage", json={"username": "ghost"})

    assert response.status_code == 400
