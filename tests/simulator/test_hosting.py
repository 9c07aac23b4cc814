"""Domains, SSL certificates and email accounts."""

from typing import Any


def add_domain(panel: Any, name: str = "alice.example", **fields: Any) -> Any:
    return panel.post("/api/v1/domains/", json={"domain": name} | fields)


def test_admin_creates_domain_for_a_user(panel):
    panel.create_user("alice")

    response = add_domain(panel, username="alice", php_version="8.3")
    body = response.json()

    assert response.status_code == 201
    assert body["owner"] == "alice"
    assert body["php_version"] == "8.3"
    assert body["document_root"] == "/home/alice/domains/alice.example/public_html"
    assert body["ssl_enabled"] is False


def test_missing_domain_is_400_domain_is_required(panel):
    response = panel.post("/api/v1/domains/", json={})

    assert response.status_code == 400
    assert response.json()["error"] == "Domain is required"


def test_invalid_hostname_is_rejected(panel):
    assert add_domain(panel, "not a domain").status_code == 400


def test_domains_are_globally_unique(panel):
    key = panel.user_with_key("alice")
    add_domain(panel)

    response = panel.post(
        "/api/v1/domains/", json={"domain": "alice.example"}, token=key
    )

    assert response.status_code == 409
    assert response.json()["error"] == "Domain already exists"


def test_owner_max_domains_is_403_quota_exceeded(panel):
    panel.create_user("alice", package="basic")
    add_domain(panel, "one.example", username="alice")

    response = add_domain(panel, "two.example", username="alice")

    assert response.status_code == 403
    assert response.json()["code"] == "QUOTA_EXCEEDED"


def test_license_max_domains_is_403_license_limit(panel):
    panel.configure(license_max_domains=1)
    add_domain(panel, "one.example")

    response = add_domain(panel, "two.example")

    assert response.status_code == 403
    assert response.json()["code"] == "LICENSE_LIMIT"


def test_user_cannot_create_domain_for_someone_else(panel):
    key = panel.user_with_key("alice")
    panel.create_user("bob")

    response = panel.post(
        "/api/v1/domains/", json={"domain": "b.example", "username": "bob"}, token=key
    )

    assert response.status_code == 403


def test_domain_owned_by_someone_else_is_403(panel):
    key = panel.user_with_key("alice")
    panel.create_user("bob")
    add_domain(panel, "bob.example", username="bob")

    assert panel.get("/api/v1/domains/bob.example", token=key).status_code == 403
    assert panel.delete("/api/v1/domains/bob.example", token=key).status_code == 403


def test_domain_list_filters_by_owner_and_paginates(panel):
    panel.create_user("alice")
    add_domain(panel, "a.example", username="alice")
    add_domain(panel, "b.example")

    mine = panel.get("/api/v1/domains", params={"username": "alice"}).json()
    paged = panel.get("/api/v1/domains/", params={"page": 1}).json()

    assert [d["domain"] for d in mine] == ["a.example"]
    assert paged["meta"]["total"] == 2


def test_update_and_delete_domain(panel):
    add_domain(panel)

    updated = panel.put("/api/v1/domains/alice.example", json={"php_version": "8.1"})
    deleted = panel.delete("/api/v1/domains/alice.example")

    assert updated.json()["php_version"] == "8.1"
    assert deleted.json() == {"success": True, "message": "Domain deleted"}
    assert panel.get("/api/v1/domains/alice.example").status_code == 404


def test_ssl_status_is_none_before_issue(panel):
    add_domain(panel)

    assert panel.get("/api/v1/ssl/alice.example").json()["status"] == "none"


def test_ssl_issue_is_pending_then_active_after_the_delay(panel):
    add_domain(panel)

    issued = panel.post("/api/v1/ssl/alice.example/issue", json={"include_www": True})
    panel.advance(4)
    still_pending = panel.get("/api/v1/ssl/alice.example").json()
    panel.advance(1.5)
    active = panel.get("/api/v1/ssl/alice.example").json()

    assert issued.status_code == 200
    assert issued.json()["status"] == "pending"
    assert still_pending["status"] == "pending"
    assert active["status"] == "active"
    assert active["san"] == ["alice.example", "www.alice.example"]
    assert panel.get("/api/v1/domains/alice.example").json()["ssl_enabled"] is True


def test_ssl_delay_is_configurable(panel):
    panel.configure(ssl_delay_s=0)
    add_domain(panel)

    issued = panel.post("/api/v1/ssl/alice.example/issue")

    assert issued.json()["status"] == "active"


def test_ssl_renew_is_not_a_creation(panel):
    add_domain(panel)
    panel.post("/api/v1/ssl/alice.example/issue")
    panel.advance(10)

    renewed = panel.post("/api/v1/ssl/alice.example/renew")

    assert renewed.json()["status"] == "pending"
    assert panel.ledger()["certificate"] == {"alice.example": 1}


def test_reissuing_an_active_certificate_is_a_new_issuance(panel):
    add_domain(panel)
    panel.post("/api/v1/ssl/alice.example/issue")
    panel.advance(6)  # past ssl_delay_s (5 s)
    assert panel.get("/api/v1/ssl/alice.example").json()["status"] == "active"

    again = panel.post("/api/v1/ssl/alice.example/issue")

    # The documented contract: SSL is not keyed, and nothing says an issue of an
    # active certificate is a no-op: a new (real, rate-limited) issuance starts.
    assert again.json()["status"] == "pending"
    assert panel.ledger()["certificate"] == {"alice.example": 2}


def test_pending_certificate_has_no_retry_after_by_default(panel):
    add_domain(panel)

    issued = panel.post("/api/v1/ssl/alice.example/issue")
    polled = panel.get("/api/v1/ssl/alice.example")

    assert polled.json()["status"] == "pending"
    assert "Retry-After" not in issued.headers
    assert "Retry-After" not in polled.headers


def test_pending_certificate_retry_after_is_opt_in(panel):
    panel.configure(ssl_retry_after=True, ssl_delay_s=30)
    add_domain(panel)

    issued = panel.post("/api/v1/ssl/alice.example/issue")
    panel.advance(10.5)
    polled = panel.get("/api/v1/ssl/alice.example")
    panel.advance(20)
    active = panel.get("/api/v1/ssl/alice.example")

    assert issued.headers["Retry-After"] == "30"
    assert polled.headers["Retry-After"] == "20"  # whole seconds, rounded up
    assert active.json()["status"] == "active"
    assert "Retry-After" not in active.headers


def test_ssl_renew_without_certificate_is_404(panel):
    add_domain(panel)

    assert panel.post("/api/v1/ssl/alice.example/renew").status_code == 404


def test_ssl_on_missing_domain_is_404(panel):
    assert panel.post("/api/v1/ssl/nope.example/issue").status_code == 404


def test_ssl_refused_without_can_use_ssl(panel):
    panel.post("/api/v1/packages/", json={"name": "nossl", "can_use_ssl": False})
    panel.create_user("alice", package="nossl")
    add_domain(panel, username="alice")

    response = panel.post("/api/v1/ssl/alice.example/issue")

    assert response.status_code == 403


def test_email_accounts_null_when_empty(panel):
    response = panel.get("/api/v1/email/accounts")

    assert response.json() == {"accounts": None, "total": 0}


def test_email_accounts_empty_list_variant(panel):
    panel.configure(empty_accounts=[])

    assert panel.get("/api/v1/email/accounts").json() == {"accounts": [], "total": 0}


def test_email_account_create_get_and_filter(panel):
    add_domain(panel)
    add_domain(panel, "other.example")

    created = panel.post(
        "/api/v1/email/accounts",
        json={
            "domain": "alice.example",
            "username": "info",
            "password": "pw",
            "quota_mb": 512,
        },
    )
    panel.post(
        "/api/v1/email/accounts",
        json={"domain": "other.example", "username": "info", "password": "pw"},
    )
    listed = panel.get("/api/v1/email/accounts", params={"domain": "alice.example"})
    fetched = panel.get("/api/v1/email/accounts/info@alice.example")

    assert created.status_code == 201
    assert created.json()["id"] == "info@alice.example"
    assert created.json()["quota_mb"] == 512
    assert listed.json()["total"] == 1
    assert fetched.json()["email"] == "info@alice.example"
    assert panel.ledger()["mailbox"] == {
        "info@alice.example": 1,
        "info@other.example": 1,
    }


def test_email_account_requires_domain(panel):
    response = panel.post("/api/v1/email/accounts", json={})

    assert response.status_code == 400
    assert response.json()["error"] == "Domain is required"


def test_duplicate_email_account_is_409(panel):
    add_domain(panel)
    body = {"domain": "alice.example", "username": "info", "password": "pw"}
    panel.post("/api/v1/email/accounts", json=body)

    response = panel.post("/api/v1/email/accounts", json=body)

    assert response.status_code == 409
    assert response.json()["error"] == "Email account already exists"


def test_email_on_unknown_domain_is_404(panel):
    response = panel.post(
        "/api/v1/email/accounts",
        json={"domain": "nope.example", "username": "info", "password": "pw"},
    )

    assert response.status_code == 404


def test_email_quota_is_403_quota_exceeded(panel):
    panel.post("/api/v1/packages/", json={"name": "tiny", "max_email_accounts": 1})
    panel.create_user("alice", package="tiny")
    add_domain(panel, username="alice")
    body = {"domain": "alice.example", "password": "pw"}
    panel.post("/api/v1/email/accounts", json=body | {"username": "one"})

    response = panel.post("/api/v1/email/accounts", json=body | {"username": "two"})

    assert response.status_code == 403
    assert response.json()["code"] == "QUOTA_EXCEEDED"


def test_email_toggle_update_and_delete(panel):
    add_domain(panel)
    panel.post(
        "/api/v1/email/accounts",
        json={"domain": "alice.example", "username": "info", "password": "pw"},
    )
    path = "/api/v1/email/accounts/info@alice.example"

    toggled = panel.post(path + "/toggle")
    updated = panel.put(path, json={"quota_mb": 5})
    deleted = panel.delete(path)

    assert toggled.json()["enabled"] is False
    assert updated.json()["quota_mb"] == 5
    assert deleted.status_code == 200
    assert panel.get(path).status_code == 404


def test_ledger_counts_each_kind_by_natural_key(panel):
    panel.create_user("alice")
    add_domain(panel, username="alice")
    panel.post("/api/v1/ssl/alice.example/issue")
    panel.post(
        "/api/v1/email/accounts",
        json={"domain": "alice.example", "username": "info", "password": "pw"},
    )

    assert panel.ledger() == {
        "user": {"alice": 1},
        "domain": {"alice.example": 1},
        "certificate": {"alice.example": 1},
        "mailbox": {"info@alice.example": 1},
    }
