"""API-key authentication, scopes and key lifecycle over real HTTP."""


def test_missing_authorization_is_401_in_flat_envelope(panel):
    response = panel.raw("GET", "/api/v1/users/")

    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "code": "UNAUTHORIZED",
        "error": "Missing authorization",
        "message": "Missing authorization",
        "status": 401,
    }


def test_unknown_key_is_401_invalid_api_key(panel):
    response = panel.get("/api/v1/auth/me", token="wsp_" + "0" * 48)

    assert response.status_code == 401
    assert response.json()["error"] == "Invalid API key"


def test_admin_key_reads_its_user_object(panel):
    body = panel.get("/api/v1/auth/me").json()

    assert body["username"] == "admin"
    assert body["role"] == "admin"
    assert body["max_domains"] == -1


def test_issued_key_is_wsp_48_hex_and_secret_is_shown_once(panel):
    response = panel.post(
        "/api/v1/users/admin/api-keys", json={"name": "WHMCS", "permissions": ["all"]}
    )
    body = response.json()
    listed = panel.get("/api/v1/users/admin/api-keys").json()

    assert response.status_code == 201
    assert body["api_key"] == body["secret_key"]
    assert body["api_key"].startswith("wsp_")
    assert len(body["api_key"]) == 52
    assert body["key"]["key_prefix"] == body["api_key"][:12]
    assert len(body["key"]["id"]) == 16
    assert body["key"]["expires_at"] == "0001-01-01T00:00:00Z"
    assert all("secret" not in k and "api_key" not in k for k in listed)


def test_read_scope_allows_get_but_not_post(panel):
    key = panel.create_key("admin", permissions=["read"])

    read = panel.get("/api/v1/users/", token=key)
    write = panel.create_user("alice", token=key)

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json()["error"] == (
        "API key is not scoped for 'users' on this request"
    )


def test_resource_scope_allows_every_method_on_that_resource(panel):
    key = panel.create_key("admin", permissions=["users"])

    assert panel.create_user("alice", token=key).status_code == 201
    assert panel.post("/api/v1/domains/", token=key, json={}).status_code == 403


def test_auth_me_is_allowed_for_any_scope(panel):
    key = panel.create_key("admin", permissions=["domains"])

    assert panel.get("/api/v1/auth/me", token=key).status_code == 200


def test_key_expires_on_the_panel_clock(panel):
    key = panel.create_key("admin", expires_in=1)
    assert panel.get("/api/v1/auth/me", token=key).status_code == 200

    panel.advance(86400)
    response = panel.get("/api/v1/auth/me", token=key)

    assert response.status_code == 401
    assert response.json()["error"] == "API key expired"


def test_ip_whitelist_refuses_other_addresses(panel):
    key = panel.create_key("admin", ip_whitelist=["10.0.0.0/8"])

    response = panel.get("/api/v1/auth/me", token=key)

    assert response.status_code == 403
    assert response.json()["error"] == "IP address not allowed for this API key"


def test_revoked_key_is_invalid(panel):
    created = panel.post("/api/v1/users/admin/api-keys", json={"name": "x"}).json()
    key_id, secret = created["key"]["id"], created["api_key"]

    deleted = panel.delete(f"/api/v1/users/admin/api-keys/{key_id}")

    assert deleted.json() == {"success": True}
    assert panel.get("/api/v1/auth/me", token=secret).status_code == 401


def test_suspended_users_keys_are_refused(panel):
    key = panel.user_with_key("alice")
    panel.post("/api/v1/users/alice/suspend", json={"reason": "unpaid"})

    response = panel.get("/api/v1/auth/me", token=key)

    assert response.status_code == 401
    assert response.json()["error"] == "Account suspended"


def test_user_key_cannot_do_admin_things(panel):
    key = panel.user_with_key("alice")

    assert panel.create_user("bob", token=key).status_code == 403
    assert panel.get("/api/v1/license/", token=key).status_code == 403


def test_reseller_cannot_mint_keys_for_its_users(panel):
    reseller_key = panel.user_with_key("resel", role="reseller")
    assert panel.create_user("client", token=reseller_key).status_code == 201

    response = panel.post(
        "/api/v1/users/client/api-keys", token=reseller_key, json={"name": "x"}
    )

    assert response.status_code == 403


def test_user_mints_its_own_key(panel):
    key = panel.user_with_key("alice")

    response = panel.post(
        "/api/v1/users/alice/api-keys", token=key, json={"name": "mine"}
    )

    assert response.status_code == 201
    assert response.json()["key"]["permissions"] == ["read"]


def test_garbled_bearer_token_is_invalid_token(panel):
    response = panel.get("/api/v1/auth/me", token="not-a-jwt")

    assert response.status_code == 401
    assert response.json()["error"] == "Invalid token"


def test_basic_auth_scheme_counts_as_missing_authorization(panel):
    response = panel.raw(
        "GET", "/api/v1/auth/me", headers={"Authorization": "Basic YWRtaW46eA=="}
    )

    assert response.status_code == 401
    assert response.json()["error"] == "Missing authorization"
