"""Users and packages: CRUD, pagination, slashes, variants, limits, ownership."""

import pytest


def test_create_user_returns_201_shape_and_defaults(panel):
    response = panel.create_user("alice")

    assert response.status_code == 201
    assert response.json() == {
        "success": True,
        "message": "User created successfully",
        "username": "alice",
        "package": "default",
    }


def test_get_user_shows_limits_copied_from_package(panel):
    panel.create_user("alice", package="basic")

    user = panel.get("/api/v1/users/alice").json()

    assert user["package"] == "basic"
    assert user["max_domains"] == 1
    assert user["status"] == "active"
    assert user["creator"] == "admin"
    assert user["role"] == "user"


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/users/"])
def test_collection_root_answers_with_and_without_slash(panel, path):
    response = panel.get(path)

    assert response.status_code == 200
    assert isinstance(response.json(), list)


def test_create_accepts_path_without_trailing_slash(panel):
    response = panel.post(
        "/api/v1/users",
        json={"username": "alice", "email": "a@example.com", "password": "pw"},
    )

    assert response.status_code == 201


def test_list_is_a_plain_array_without_pagination_params(panel):
    panel.create_user("alice")

    users = panel.get("/api/v1/users/").json()

    assert {u["username"] for u in users} == {"admin", "alice"}


def test_pagination_is_opt_in_with_meta(panel):
    for name in ("alice", "bob", "carol"):
        panel.create_user(name)

    page = panel.get("/api/v1/users/", params={"per_page": 2, "page": 2}).json()

    assert page["success"] is True
    assert page["meta"] == {
        "total": 4,
        "per_page": 2,
        "current_page": 2,
        "last_page": 2,
    }
    assert len(page["data"]) == 2


def test_pagination_clamps_per_page_and_pages_past_the_end_are_empty(panel):
    page = panel.get("/api/v1/users/", params={"per_page": 500, "page": 9}).json()

    assert page["meta"]["per_page"] == 100
    assert page["meta"]["last_page"] == 1
    assert page["data"] == []


def test_invalid_pagination_is_a_validation_error(panel):
    assert panel.get("/api/v1/users/", params={"page": 0}).status_code == 400


def test_missing_fields_is_400_with_documented_text(panel):
    response = panel.post("/api/v1/users/", json={"username": "alice"})

    assert response.status_code == 400
    assert response.json()["error"] == "Username, email, and password are required"


@pytest.mark.parametrize("username", ["a", "Alice", "1alice", "alice_x", "a" * 17])
def test_invalid_usernames_are_rejected(panel, username):
    assert panel.create_user(username).status_code == 400


def test_unknown_package_is_400_package_not_found(panel):
    response = panel.create_user("alice", package="platinum")

    assert response.status_code == 400
    assert response.json()["error"] == "Package not found"


def test_duplicate_user_is_409_already_exists(panel):
    panel.create_user("alice")

    response = panel.create_user("alice")

    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"
    assert response.json()["error"] == "User already exists"


def test_validation_status_can_be_422(panel):
    panel.configure(validation_status=422)

    response = panel.post("/api/v1/users/", json={})

    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_nested_envelope_carries_field_details(panel):
    panel.configure(envelope="nested")

    response = panel.create_user("Bad!")

    assert response.json() == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": response.json()["error"]["message"],
            "details": {"username": [response.json()["error"]["message"]]},
        }
    }


def test_lean_envelope(panel):
    panel.configure(envelope="lean")

    response = panel.get("/api/v1/users/nobody")

    assert response.json() == {
        "success": False,
        "error": "User not found",
        "code": "NOT_FOUND",
    }


def test_delete_missing_user_is_404(panel):
    response = panel.delete("/api/v1/users/nobody")

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert response.json()["error"] == "User not found"


def test_delete_removes_user_and_its_domains(panel):
    panel.create_user("alice")
    panel.post(
        "/api/v1/domains/", json={"domain": "alice.example", "username": "alice"}
    )

    response = panel.delete("/api/v1/users/alice")

    assert response.json() == {"success": True, "message": "User deleted"}
    assert panel.get("/api/v1/users/alice").status_code == 404
    assert panel.get("/api/v1/domains/alice.example").status_code == 404


def test_suspend_and_unsuspend_are_idempotent_noops(panel):
    panel.create_user("alice")

    first = panel.post("/api/v1/users/alice/suspend", json={"reason": "unpaid"})
    second = panel.post("/api/v1/users/alice/suspend")
    user = panel.get("/api/v1/users/alice").json()
    active = panel.post("/api/v1/users/alice/unsuspend")
    again = panel.post("/api/v1/users/alice/unsuspend")

    assert first.status_code == second.status_code == 200
    assert second.json() == {
        "success": True,
        "message": "User suspended",
        "status": "suspended",
    }
    assert (user["status"], user["suspended_reason"]) == ("suspended", "unpaid")
    assert active.json()["status"] == again.json()["status"] == "active"


def test_change_package_copies_new_limits(panel):
    panel.create_user("alice", package="basic")

    response = panel.put("/api/v1/users/alice/package", json={"package": "pro"})

    assert response.status_code == 200
    assert response.json()["package"] == "pro"
    assert response.json()["max_domains"] == 10


def test_change_password(panel):
    panel.create_user("alice")

    response = panel.put("/api/v1/users/alice/password", json={"password": "n3w"})

    assert response.json() == {"success": True, "message": "Password updated"}
    assert panel.login("alice", "n3w").status_code == 200


def test_update_user_limits(panel):
    panel.create_user("alice")

    response = panel.put("/api/v1/users/alice", json={"max_domains": 3})

    assert response.json()["max_domains"] == 3


def test_admin_accounts_cannot_be_suspended(panel):
    assert panel.post("/api/v1/users/admin/suspend").status_code == 403


def test_license_max_users_is_403_license_limit(panel):
    panel.configure(license_max_users=1)
    panel.create_user("alice")

    response = panel.create_user("bob")

    assert response.status_code == 403
    assert response.json()["code"] == "LICENSE_LIMIT"
    assert response.json()["error"] == "License limit reached: max_users (1)"


def test_license_shows_limits_and_usage(panel):
    panel.create_user("alice")

    body = panel.get("/api/v1/license/").json()

    assert body["license"]["max_users"] == 30
    assert body["usage"]["accounts"] == 1


def test_reseller_sees_and_manages_only_its_users(panel):
    reseller = panel.user_with_key("resel", role="reseller")
    panel.create_user("mine", token=reseller)
    panel.create_user("theirs")

    listed = {u["username"] for u in panel.get("/api/v1/users/", token=reseller).json()}
    foreign = panel.post("/api/v1/users/theirs/suspend", token=reseller)
    own = panel.post("/api/v1/users/mine/suspend", token=reseller)

    assert listed == {"mine"}
    assert foreign.status_code == 403
    assert own.status_code == 200


def test_reseller_max_users_is_403_quota_exceeded(panel):
    reseller = panel.user_with_key("resel", role="reseller")
    panel.put("/api/v1/users/resel", json={"max_users": 1})
    panel.create_user("first", token=reseller)

    response = panel.create_user("second", token=reseller)

    assert response.status_code == 403
    assert response.json()["code"] == "QUOTA_EXCEEDED"


def test_user_sees_only_itself(panel):
    key = panel.user_with_key("alice")
    panel.create_user("bob")

    assert panel.get("/api/v1/users/alice", token=key).status_code == 200
    assert panel.get("/api/v1/users/bob", token=key).status_code == 403


def test_packages_are_seeded_and_default_cannot_be_deleted(panel):
    names = {p["name"] for p in panel.get("/api/v1/packages/").json()}

    refused = panel.delete("/api/v1/packages/default")

    assert {"default", "basic", "pro"} <= names
    assert refused.status_code == 403


def test_admin_creates_and_reads_a_package(panel):
    created = panel.post("/api/v1/packages/", json={"name": "gold", "max_domains": 5})

    fetched = panel.get("/api/v1/packages/gold").json()

    assert created.status_code == 201
    assert fetched["max_domains"] == 5
    assert panel.create_user("alice", package="gold").status_code == 201


def test_unknown_route_is_404_in_envelope(panel):
    response = panel.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
