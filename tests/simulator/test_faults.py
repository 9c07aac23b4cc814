"""Fault injection: errors, drop and stall after apply, latency, storms, fail-next."""

import httpx
import pytest

ALICE = {"username": "alice", "email": "alice@example.com", "password": "pw"}


def test_error_rate_answers_500_without_applying(panel):
    panel.faults(error_rate=1)

    response = panel.post("/api/v1/users/", json=ALICE)

    assert response.status_code == 500
    assert response.json()["code"] == "INTERNAL_ERROR"
    assert panel.ledger()["user"] == {}


def test_error_rate_spares_reads(panel):
    panel.faults(error_rate=1)

    assert panel.get("/api/v1/users/").status_code == 200


def test_drop_after_apply_closes_connection_but_applies(panel):
    panel.faults(drop_after_apply_rate=1)

    with pytest.raises(httpx.RemoteProtocolError):
        panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert panel.ledger()["user"] == {"alice": 1}
    assert panel.requests()[-1]["fault"] == "drop"


def test_retry_after_drop_gets_the_stored_response(panel):
    panel.faults(drop_after_apply_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        panel.post("/api/v1/users/", json=ALICE, key="k-1")
    panel.control("POST", "faults/clear")

    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert panel.ledger()["user"] == {"alice": 1}


def test_stall_after_apply_times_the_client_out_but_applies(panel):
    panel.faults(stall_after_apply_rate=1, stall_seconds=2)

    with pytest.raises(httpx.ReadTimeout):
        panel.post("/api/v1/users/", json=ALICE, key="k-1", timeout=0.3)
    panel.control("POST", "faults/clear")
    retry = panel.post("/api/v1/users/", json=ALICE, key="k-1")

    assert panel.ledger()["user"] == {"alice": 1}
    assert retry.headers["Idempotent-Replayed"] == "true"


def test_storm_answers_429_to_everything_until_clock_passes_it(panel):
    panel.faults(storm_seconds=120)

    read = panel.get("/api/v1/auth/me")
    write = panel.post("/api/v1/users/", json=ALICE)
    login = panel.login(panel.creds.username, panel.creds.password)
    panel.advance(121)
    after = panel.get("/api/v1/auth/me")

    assert [read.status_code, write.status_code, login.status_code] == [429] * 3
    assert read.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(read.headers["Retry-After"]) <= 120
    assert after.status_code == 200
    assert panel.ledger()["user"] == {}


def test_fail_next_forces_status_for_n_requests_without_applying(panel):
    panel.control("POST", "fail-next", {"count": 2, "status": 503})

    first = panel.post("/api/v1/users/", json=ALICE)
    second = panel.get("/api/v1/users/")
    third = panel.post("/api/v1/users/", json=ALICE)

    assert (first.status_code, second.status_code) == (503, 503)
    assert first.json()["code"] == "INTERNAL_ERROR"
    assert third.status_code == 201
    assert panel.ledger()["user"] == {"alice": 1}


def test_fail_next_uses_the_envelope_code_of_the_status(panel):
    panel.control("POST", "fail-next", {"count": 1, "status": 404})

    assert panel.get("/api/v1/auth/me").json()["code"] == "NOT_FOUND"


def test_latency_delays_but_still_answers(panel):
    panel.faults(latency_ms=50)

    assert panel.post("/api/v1/users/", json=ALICE).status_code == 201


def test_ssl_failure_rate_makes_issuance_fail(panel):
    panel.post("/api/v1/domains/", json={"domain": "alice.example"})
    panel.faults(ssl_failure_rate=1)
    panel.post("/api/v1/ssl/alice.example/issue")
    panel.advance(5)

    cert = panel.get("/api/v1/ssl/alice.example").json()

    assert cert["status"] == "failed"
    assert cert["error"] == "Domain does not resolve to this server"


def test_fault_update_keeps_omitted_fields_and_clear_resets(panel):
    panel.faults(error_rate=0.5, latency_ms=10)
    updated = panel.faults(stall_seconds=3)

    cleared = panel.control("POST", "faults/clear")

    assert (updated["error_rate"], updated["latency_ms"]) == (0.5, 10)
    assert updated["stall_seconds"] == 3
    assert cleared["error_rate"] == 0
    assert cleared["latency_ms"] == 0


def test_invalid_fault_is_400(panel):
    response = panel.raw("POST", "/_sim/faults", json={"error_rate": 2})
    unknown = panel.raw("POST", "/_sim/faults", json={"explode": 1})

    assert response.status_code == 400
    assert unknown.status_code == 400
    assert "error" in unknown.json()


def test_fault_rates_between_0_and_1_are_applied_per_call(panel):
    panel.configure(seed=7)
    panel.faults(error_rate=0.5)

    statuses = {
        panel.post("/api/v1/packages/", json={"name": f"p{i}"}).status_code
        for i in range(30)
    }

    assert statuses == {201, 500}
