"""Idempotency-Key: replay, 24 h window, conflicts, scope and what is stored."""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

ALICE = {"username": "alice", "email": "alice@example.com", "password": "pw"}


def test_retry_replays_the_stored_response_byte_identical(panel):
    first = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert panel.ledger()["user"] == {"alice": 1}


def test_replay_carries_fresh_rate_limit_headers(panel):
    first = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert int(retry.headers["X-RateLimit-Remaining"]) == (
        int(first.headers["X-RateLimit-Remaining"]) - 1
    )


def test_replay_within_24_hours(panel):
    first = panel.post("/api/v1/users/", json=ALICE, key="k-1")
    panel.delete("/api/v1/users/alice")
    panel.advance(23 * 3600)

    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.content == first.content
    assert panel.ledger()["user"] == {"alice": 1}
    assert panel.get("/api/v1/users/alice").status_code == 404


def test_key_is_forgotten_after_24_hours_and_the_call_runs_again(panel):
    panel.post("/api/v1/users/", json=ALICE, key="k-1")
    panel.delete("/api/v1/users/alice")
    panel.advance(25 * 3600)

    again = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert panel.ledger()["user"] == {"alice": 2}


def test_same_key_different_body_is_409(panel):
    panel.post("/api/v1/users/", json=ALICE, key="k-1")

    reused = panel.post("/api/v1/users/", json=ALICE | {"package": "pro"}, key="k-1")

    assert reused.status_code == 409
    assert reused.json()["code"] == "CONFLICT"
    assert reused.json()["error"] == (
        "Idempotency-Key reused with a different request body"
    )


def test_key_mismatch_status_can_be_422(panel):
    panel.configure(key_mismatch_status=422)
    panel.post("/api/v1/users/", json=ALICE, key="k-1")

    reused = panel.post("/api/v1/users/", json=ALICE | {"package": "pro"}, key="k-1")

    assert reused.status_code == 422
    assert reused.json()["error"] == (
        "Idempotency-Key reused with a different request body"
    )


def test_body_comparison_ignores_json_key_order(panel):
    panel.post("/api/v1/users/", json=ALICE, key="k-1")
    reordered = dict(reversed(list(ALICE.items())))

    retry = panel.post("/api/v1/users/", json=reordered, key="k-1")

    assert retry.headers.get("Idempotent-Replayed") == "true"


def test_second_request_while_first_runs_is_409_in_progress(panel):
    panel.faults(latency_ms=800)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(panel.post, "/api/v1/users/", json=ALICE, key="k-1")
        while panel.state()["idempotency_keys"] == 0:
            time.sleep(0.01)
        twin = panel.post("/api/v1/users/", json=ALICE, key="k-1")
        original = first.result()

    assert twin.status_code == 409
    assert twin.json()["code"] == "CONFLICT"
    assert twin.json()["error"] == (
        "A request with this Idempotency-Key is still in progress"
    )
    assert original.status_code == 201
    assert panel.ledger()["user"] == {"alice": 1}


def test_5xx_is_not_stored_so_a_retry_executes(panel):
    panel.faults(error_rate=1)
    failed = panel.post("/api/v1/users/", json=ALICE, key="k-1")
    panel.control("POST", "faults/clear")

    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert failed.status_code == 500
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers


def test_429_is_not_stored(panel):
    panel.configure(limit=1)
    panel.get("/api/v1/auth/me")
    limited = panel.post("/api/v1/users/", json=ALICE, key="k-1")
    panel.advance(60)

    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert limited.status_code == 429
    assert retry.status_code == 201


def test_4xx_is_stored_and_replayed(panel):
    bad = {"username": "Alice!", "email": "a@example.com", "password": "pw"}
    first = panel.post("/api/v1/users/", json=bad, key="k-1")

    retry = panel.post("/api/v1/users/", json=bad, key="k-1")

    assert first.status_code == 400
    assert retry.headers.get("Idempotent-Replayed") == "true"


def test_scope_includes_credential_and_path(panel):
    other_key = panel.create_key("admin")
    panel.post("/api/v1/users/", json=ALICE, key="k-1")

    by_other_credential = panel.post(
        "/api/v1/users/", json=ALICE, key="k-1", token=other_key
    )
    on_other_path = panel.post("/api/v1/packages/", json={"name": "gold"}, key="k-1")

    assert by_other_credential.status_code == 409
    assert by_other_credential.json()["error"] == "User already exists"
    assert on_other_path.status_code == 201


def test_trailing_slash_does_not_change_the_scope(panel):
    panel.post("/api/v1/users", json=ALICE, key="k-1")

    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert retry.headers.get("Idempotent-Replayed") == "true"


def test_without_key_there_is_no_deduplication(panel):
    panel.post("/api/v1/users/", json=ALICE)

    second = panel.post("/api/v1/users/", json=ALICE)

    assert second.status_code == 409
    assert second.json()["error"] == "User already exists"


def test_key_longer_than_255_chars_is_a_validation_error(panel):
    response = panel.post("/api/v1/users/", json=ALICE, key="k" * 256)

    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert panel.ledger()["user"] == {}


def test_key_of_255_chars_is_accepted(panel):
    assert panel.post("/api/v1/users/", json=ALICE, key="k" * 255).status_code == 201


def test_request_log_records_key_and_replay(panel):
    panel.post("/api/v1/users/", json=ALICE, key="k-1")
    panel.post("/api/v1/users/", json=ALICE, key="k-1")

    log = panel.requests()

    assert [(e["idempotency_key"], e["replayed"]) for e in log] == [
        ("k-1", False),
        ("k-1", True),
    ]


# Only the documented folders de-duplicate (wispanel-api.md §5, keyed_folders).


def _domain_for_alice(panel):
    panel.post("/api/v1/users/", json=ALICE, key="k-user")
    body = {"domain": "alice.example", "username": "alice"}
    assert panel.post("/api/v1/domains/", json=body, key="k-dom").status_code == 201


def test_ssl_issue_resent_with_the_same_key_issues_again(panel):
    _domain_for_alice(panel)

    first = panel.post("/api/v1/ssl/alice.example/issue", json={}, key="k-ssl")
    again = panel.post("/api/v1/ssl/alice.example/issue", json={}, key="k-ssl")

    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in again.headers
    assert panel.ledger()["certificate"] == {"alice.example": 2}


def test_mailbox_resent_with_the_same_key_is_not_replayed(panel):
    _domain_for_alice(panel)
    box = {"domain": "alice.example", "username": "info", "password": "pw"}

    first = panel.post("/api/v1/email/accounts", json=box, key="k-box")
    again = panel.post("/api/v1/email/accounts", json=box, key="k-box")

    assert first.status_code == 201
    assert again.status_code == 409
    assert "Idempotent-Replayed" not in again.headers


def test_domains_folder_honours_the_key(panel):
    _domain_for_alice(panel)
    body = {"domain": "alice.example", "username": "alice"}

    again = panel.post("/api/v1/domains/", json=body, key="k-dom")

    assert again.headers.get("Idempotent-Replayed") == "true"
    assert panel.ledger()["domain"] == {"alice.example": 1}


def test_keyed_folders_all_replays_every_folder(panel):
    panel.configure(keyed_folders="all")
    _domain_for_alice(panel)

    panel.post("/api/v1/ssl/alice.example/issue", json={}, key="k-ssl")
    again = panel.post("/api/v1/ssl/alice.example/issue", json={}, key="k-ssl")

    assert again.headers.get("Idempotent-Replayed") == "true"
    assert panel.ledger()["certificate"] == {"alice.example": 1}


def test_keyed_folders_rejects_a_malformed_list(panel):
    response = panel.raw("POST", "/_sim/config", json={"keyed_folders": "ssl;rm"})

    assert response.status_code == 400


def test_a_request_cut_off_mid_body_is_never_applied(panel):
    """A client killed while writing its request: the panel gets no request.

    An HTTP server hands the application only complete requests, so the key stays
    free and the same request sent again in full is applied once, not refused as
    a key reused with a different body.
    """
    url = httpx.URL(panel.base_url)
    body = json.dumps(ALICE).encode()
    head = (
        f"POST /api/v1/users/ HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Authorization: Bearer {panel.creds.api_key}\r\n"
        "Content-Type: application/json\r\nIdempotency-Key: k-cut\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(head + body[: len(body) // 2])
    # Give the simulator time to see the connection end before the full request
    # (were it served first, the test could not tell a panel that applies
    # truncated requests from one that does not; it cannot fail wrongly).
    time.sleep(0.2)

    again = panel.post("/api/v1/users/", json=ALICE, key="k-cut")

    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert panel.ledger()["user"] == {"alice": 1}
