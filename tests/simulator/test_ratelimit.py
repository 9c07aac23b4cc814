"""Per-credential rate limiting: headers, 429s and both window algorithms."""

import httpx
import pytest


def limits(response: httpx.Response) -> tuple[int, int, int]:
    return (
        int(response.headers["X-RateLimit-Limit"]),
        int(response.headers["X-RateLimit-Remaining"]),
        int(response.headers["X-RateLimit-Reset"]),
    )


def test_headers_on_success_with_default_limit_of_60(panel):
    response = panel.get("/api/v1/auth/me")

    limit, remaining, reset = limits(response)
    assert (limit, remaining) == (60, 59)
    assert reset == pytest.approx(panel.now() + 60, abs=2)


def test_headers_on_client_errors_too(panel):
    response = panel.get("/api/v1/users/nobody")

    assert response.status_code == 404
    assert limits(response)[1] == 59


def test_401_is_neither_counted_nor_given_headers(panel):
    rejected = panel.get("/api/v1/auth/me", token="wsp_" + "0" * 48)

    counted = panel.get("/api/v1/auth/me")

    assert "X-RateLimit-Limit" not in rejected.headers
    assert limits(counted)[1] == 59


def test_fixed_window_429_past_limit_with_retry_after_to_window_end(panel):
    panel.configure(limit=3, window="fixed")
    start = panel.now()
    first = panel.get("/api/v1/auth/me")
    panel.advance(20)
    for _ in range(2):
        panel.get("/api/v1/auth/me")

    limited = panel.get("/api/v1/auth/me")

    window_end = limits(first)[2]
    assert 60 <= window_end - start <= 61
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMITED"
    assert limited.json()["error"] == "Too many requests"
    assert limits(limited)[1:] == (0, window_end)
    assert 38 <= int(limited.headers["Retry-After"]) <= 41


def test_fixed_window_reopens_at_its_end(panel):
    panel.configure(limit=2, window="fixed")
    for _ in range(2):
        panel.get("/api/v1/auth/me")
    assert panel.get("/api/v1/auth/me").status_code == 429

    panel.advance(60)
    reopened = panel.get("/api/v1/auth/me")

    assert reopened.status_code == 200
    assert limits(reopened)[1] == 1


def test_sliding_window_reset_is_when_oldest_request_leaves(panel):
    panel.configure(limit=2, window="sliding")
    oldest = panel.get("/api/v1/auth/me")
    panel.advance(30)
    panel.get("/api/v1/auth/me")

    limited = panel.get("/api/v1/auth/me")

    assert limited.status_code == 429
    assert limits(limited)[2] == limits(oldest)[2]
    assert 29 <= int(limited.headers["Retry-After"]) <= 31


def test_sliding_window_frees_one_slot_as_the_oldest_leaves(panel):
    panel.configure(limit=2, window="sliding")
    panel.get("/api/v1/auth/me")
    panel.advance(30)
    panel.get("/api/v1/auth/me")
    panel.advance(31)

    freed = panel.get("/api/v1/auth/me")
    still_full = panel.get("/api/v1/auth/me")

    assert freed.status_code == 200
    assert limits(freed)[1] == 0
    assert still_full.status_code == 429


def test_fixed_window_allows_a_burst_right_after_its_end(panel):
    # The contrast between the two modes: fixed forgets everything at the end.
    panel.configure(limit=2, window="fixed")
    panel.get("/api/v1/auth/me")
    panel.advance(59)
    panel.get("/api/v1/auth/me")
    panel.advance(2)

    statuses = [panel.get("/api/v1/auth/me").status_code for _ in range(2)]

    assert statuses == [200, 200]


def test_credentials_share_nothing(panel):
    other_key = panel.create_key("admin")
    panel.configure(limit=1)
    panel.get("/api/v1/auth/me")

    assert panel.get("/api/v1/auth/me").status_code == 429
    assert panel.get("/api/v1/auth/me", token=other_key).status_code == 200


def test_jwt_budget_belongs_to_the_user(panel):
    first = panel.admin_token()
    second = panel.admin_token()
    panel.configure(limit=1)
    panel.get("/api/v1/auth/me", token=first)

    assert panel.get("/api/v1/auth/me", token=second).status_code == 429


def test_retry_after_can_be_switched_off(panel):
    panel.configure(limit=1, retry_after="off")
    panel.get("/api/v1/auth/me")

    limited = panel.get("/api/v1/auth/me")

    assert limited.status_code == 429
    assert "Retry-After" not in limited.headers
    assert "X-RateLimit-Reset" in limited.headers


def test_429_uses_the_selected_envelope(panel):
    panel.configure(limit=1, envelope="nested")
    panel.get("/api/v1/auth/me")

    limited = panel.get("/api/v1/auth/me")

    assert limited.json() == {
        "error": {"code": "RATE_LIMITED", "message": "Too many requests", "details": {}}
    }


def test_mutations_are_not_applied_when_rate_limited(panel):
    panel.configure(limit=1)
    panel.get("/api/v1/auth/me")

    limited = panel.create_user("alice")

    assert limited.status_code == 429
    assert panel.ledger()["user"] == {}
