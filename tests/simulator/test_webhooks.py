"""Webhooks on the simulated panel: CRUD in the lean envelope, signed deliveries
with retries, and the events the bridge subscribes to (user.*, ssl.issued)."""

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from tests.webhook_receiver import Receiver, webhook_receiver

HOOKS = "/api/v1/webhooks/"
NO_EVENTS = "At least one event pattern is required"


@pytest.fixture
def receiver():
    with webhook_receiver() as r:
        yield r


def subscribe(panel: Any, url: str, events: list[str], **kw: Any) -> dict[str, Any]:
    response = panel.post(HOOKS, json={"url": url, "events": events}, **kw)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def wait_for(predicate: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_create_returns_the_secret_once_and_reads_redact_it(panel):
    hook = subscribe(panel, "https://billing.example/hook", ["user.*"])
    assert len(hook["secret"]) == 64
    assert int(hook["secret"], 16) >= 0
    assert hook["owner"] == "admin"
    assert hook["enabled"] is True
    shown = panel.get(HOOKS + hook["id"]).json()
    assert shown == {"success": True, "data": hook | {"secret": "<redacted>"}}
    listed = panel.get(HOOKS).json()
    assert listed["meta"] == {
        "total": 1,
        "per_page": 50,
        "current_page": 1,
        "last_page": 1,
    }
    assert listed["data"][0]["secret"] == "<redacted>"


def test_patch_changes_fields_and_delete_removes(panel):
    hook = subscribe(panel, "https://billing.example/hook", ["user.*"])
    patched = panel.call(
        "PATCH", HOOKS + hook["id"], json={"enabled": False, "events": ["*"]}
    )
    assert patched.status_code == 200
    assert patched.json()["data"]["enabled"] is False
    assert patched.json()["data"]["events"] == ["*"]
    assert panel.delete(HOOKS + hook["id"]).json() == {"success": True}
    gone = panel.get(HOOKS + hook["id"])
    assert gone.status_code == 404
    assert gone.json() == {
        "success": False,
        "error": "Webhook not found",
        "code": "NOT_FOUND",
    }


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"events": ["user.*"]}, "URL is required"),
        ({"url": "ftp://x.example/", "events": ["*"]}, "scheme must be http or https"),
        ({"url": "https://x.example/", "events": []}, NO_EVENTS),
    ],
)
def test_validation_errors_use_the_lean_envelope(panel, body, error):
    response = panel.post(HOOKS, json=body)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": error,
        "code": "VALIDATION_ERROR",
    }
    assert panel.state()["idempotency_keys"] == 0
    assert panel.get(HOOKS).json()["meta"]["total"] == 0


def test_a_key_without_scope_all_is_refused(panel):
    panel.create_user("alice")
    key = panel.create_key("alice", ["webhooks", "read"])
    response = panel.post(
        HOOKS, json={"url": "https://x.example/", "events": ["*"]}, token=key
    )
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"


def test_a_replayed_create_returns_the_same_subscription(panel):
    body = {"url": "https://x.example/", "events": ["ssl.issued"]}
    first = panel.post(HOOKS, json=body, key="k-1")
    again = panel.post(HOOKS, json=body, key="k-1")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert panel.get(HOOKS).json()["meta"]["total"] == 1


def _verify(secret: str, delivery: dict[str, Any]) -> dict[str, Any]:
    expected = hmac.new(secret.encode(), delivery["body"], hashlib.sha256)
    headers = delivery["headers"]
    assert headers["x-wispanel-signature"] == "sha256=" + expected.hexdigest()
    assert headers["user-agent"] == "WisPanel-Webhook/1"
    assert headers["content-type"] == "application/json"
    payload: dict[str, Any] = json.loads(delivery["body"])
    assert headers["x-wispanel-event"] == payload["event"]
    return payload


def test_user_events_are_delivered_signed(panel, receiver: Receiver):
    hook = subscribe(panel, receiver.url, ["user.*"])
    panel.create_user("alice", package="basic")
    panel.post("/api/v1/users/alice/suspend", json={"reason": "abuse"})
    panel.post("/api/v1/users/alice/suspend", json={})  # no-op: no event
    panel.post("/api/v1/users/alice/unsuspend")
    panel.put("/api/v1/users/alice/package", json={"package": "pro"})
    panel.delete("/api/v1/users/alice")
    wait_for(lambda: len(receiver.deliveries()) == 5, "five deliveries")
    payloads = [_verify(hook["secret"], d) for d in receiver.deliveries()]
    events = sorted(p["event"] for p in payloads)
    assert events == sorted(
        [
            "user.created",
            "user.suspended",
            "user.unsuspended",
            "user.package_changed",
            "user.deleted",
        ]
    )
    created = next(p for p in payloads if p["event"] == "user.created")
    assert created["data"] == {
        "username": "alice",
        "email": "alice@example.com",
        "role": "user",
        "package": "basic",
        "creator": "admin",
    }
    assert abs(created["timestamp"] - panel.now()) < 60


def test_a_failed_delivery_is_retried_with_the_same_id_and_body(panel, receiver):
    panel.configure(webhook_retry_delays_s="0.05,0.05")
    receiver.fail_with = [500, 302]
    subscribe(panel, receiver.url, ["user.created"])
    panel.create_user("alice")
    wait_for(lambda: len(receiver.deliveries()) == 3, "three attempts")
    got = receiver.deliveries()
    assert len({d["headers"]["x-wispanel-delivery"] for d in got}) == 1
    assert len({d["body"] for d in got}) == 1

    # The receiver counts a delivery before it answers; the panel logs the
    # attempt once it has the answer: wait for the log, not the receiver.
    def delivered() -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = panel.control("GET", "webhooks")["deliveries"]
        return log if log and log[0]["state"] == "delivered" else []

    wait_for(lambda: bool(delivered()), "the panel to log the delivery")
    log = delivered()
    assert [a["status"] for a in log[0]["attempts"]] == [500, 302, 200]


def test_a_delivery_failing_every_attempt_counts_a_failure(panel, receiver):
    panel.configure(webhook_retry_delays_s="0.05")
    receiver.fail_with = [500, 503]
    hook = subscribe(panel, receiver.url, ["user.created"])
    panel.create_user("alice")
    wait_for(
        lambda: panel.control("GET", "webhooks")["deliveries"][0]["state"] == "failed",
        "the delivery to fail",
    )
    assert len(receiver.deliveries()) == 2
    assert panel.get(HOOKS + hook["id"]).json()["data"]["failure_count"] == 1


def test_ssl_issued_is_sent_once_when_the_certificate_becomes_active(panel, receiver):
    panel.configure(ssl_delay_s=0.3, webhook_ssl_tick_s=0.05)
    hook = subscribe(panel, receiver.url, ["ssl.issued"])
    panel.create_user("alice")
    panel.post(
        "/api/v1/domains/", json={"domain": "alice.example", "username": "alice"}
    )
    pending = panel.post("/api/v1/ssl/alice.example/issue", json={})
    assert pending.json()["status"] == "pending"
    wait_for(lambda: len(receiver.deliveries()) == 1, "ssl.issued")
    payload = _verify(hook["secret"], receiver.deliveries()[0])
    assert payload["event"] == "ssl.issued"
    assert payload["data"]["domain"] == "alice.example"
    assert payload["data"]["owner"] == "alice"
    assert panel.get("/api/v1/ssl/alice.example").json()["status"] == "active"
    log = panel.control("GET", "webhooks")["deliveries"]
    assert [d["event"] for d in log] == ["ssl.issued"]


def test_a_resellers_hook_hears_only_about_its_own_users(panel, receiver):
    key = panel.user_with_key("partner", role="reseller")
    subscribe(panel, receiver.url, ["user.created"], token=key)
    panel.create_user("stranger")  # made by the admin
    panel.create_user("mine", token=key)
    # Deliveries are logged when the event happens, before they are sent.
    assert len(panel.control("GET", "webhooks")["deliveries"]) == 1
    wait_for(lambda: len(receiver.deliveries()) == 1, "a delivery")
    names = [json.loads(d["body"])["data"]["username"] for d in receiver.deliveries()]
    assert names == ["mine"]
