"""The intake API over HTTP: signatures, validation, duplicates, reads."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bridge.container import Services
from bridge.db.models import IntakeRequest, Order, Server, Step
from bridge.domain.states import ServiceStatus
from tests.signing import create_body, encode, signed_headers

pytestmark = pytest.mark.integration


def post(api: httpx.Client, body: dict[str, Any], **headers: str) -> Any:
    raw = encode(body)
    return api.post(
        "/v1/orders",
        content=raw,
        headers={**signed_headers("POST", "/v1/orders", raw), **headers},
    )


def order_count(services: Services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def test_accepted_order_is_persisted_with_its_plan(
    api: httpx.Client, services: Services, server: Server
) -> None:
    response = post(api, create_body())
    assert response.status_code == 202
    order = response.json()["order"]
    assert order["status"] == "queued"
    assert order["server"] == "sim"
    assert [s["kind"] for s in order["steps"]] == [
        "create_user",
        "create_domain",
        "issue_ssl",
        "create_mailbox",
    ]
    assert "correct-horse-battery" not in response.text
    with services.sessions() as session:
        steps = session.scalars(select(Step)).all()
        assert len({s.idempotency_key for s in steps}) == 4
        stored = json.dumps([s.request_body for s in steps]) + str(
            [s.secret_body for s in steps]
        )
        assert "correct-horse-battery" not in stored
        assert steps[0].secret_body is not None


def test_duplicate_post_replays_first_answer_with_200(
    api: httpx.Client, services: Services, server: Server
) -> None:
    first = post(api, create_body())
    second = post(api, create_body())
    assert second.status_code == 200
    assert second.json() == first.json()
    assert order_count(services) == 1


def test_same_order_id_with_different_body_is_409(
    api: httpx.Client, services: Services, server: Server
) -> None:
    post(api, create_body())
    response = post(api, create_body(domain="other.example"))
    assert response.status_code == 409
    assert order_count(services) == 1


def test_unsigned_idempotency_key_header_changes_nothing(
    api: httpx.Client, services: Services, server: Server
) -> None:
    # The header is not covered by the signature, so it must not decide what is
    # stored: duplicates are found by the signed body's order_id alone.
    first = post(api, create_body(1), **{"Idempotency-Key": "k-1"})
    again = post(api, create_body(1), **{"Idempotency-Key": "k-2"})
    other = post(api, create_body(2), **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 202)
    assert again.json() == first.json()
    assert order_count(services) == 2
    with services.sessions() as session:
        keys = set(session.scalars(select(IntakeRequest.key)))
    assert keys == {"order:ord-1", "order:ord-2"}


def test_twenty_concurrent_duplicates_create_one_order(
    api: httpx.Client, services: Services, server: Server
) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = sorted(
            pool.map(lambda _: post(api, create_body()).status_code, range(20))
        )
    assert codes.count(202) == 1
    assert codes.count(200) == 19
    assert order_count(services) == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: {**h, "X-Bridge-Signature": "sha256=" + "0" * 64}, "bad signature"),
        (
            lambda h: {k: v for k, v in h.items() if k != "X-Bridge-Signature"},
            "missing",
        ),
        (
            lambda h: signed_headers(
                "POST",
                "/v1/orders",
                encode(create_body()),
                timestamp=int(time.time()) - 301,
            ),
            "timestamp",
        ),
        (
            lambda h: signed_headers(
                "POST", "/v1/orders", encode(create_body()), secret="wrong"
            ),
            "bad signature",
        ),
    ],
    ids=["bad-signature", "missing-header", "stale-timestamp", "wrong-secret"],
)
def test_unsigned_or_stale_requests_are_401_and_store_nothing(
    api: httpx.Client, services: Services, server: Server, mutate: Any, reason: str
) -> None:
    raw = encode(create_body())
    headers = mutate(signed_headers("POST", "/v1/orders", raw))
    response = api.post("/v1/orders", content=raw, headers=headers)
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    assert order_count(services) == 0


def test_invalid_order_is_422_field_level_without_echoing_secrets(
    api: httpx.Client, services: Services, server: Server
) -> None:
    body = create_body()
    body["account"] = {**body["account"], "username": "Bad Name", "password": "pw7tiny"}
    response = post(api, body)
    assert response.status_code == 422
    fields = {tuple(e["loc"][-2:]) for e in response.json()["detail"]}
    assert ("account", "username") in fields
    assert ("account", "password") in fields
    assert "pw7tiny" not in response.text
    assert order_count(services) == 0


def test_body_over_64_kib_is_413(
    api: httpx.Client, services: Services, server: Server
) -> None:
    body = create_body(domain="x" * 70_000)
    response = post(api, body)
    assert response.status_code == 413
    assert order_count(services) == 0


def test_callback_to_unlisted_origin_is_refused(
    api: httpx.Client, services: Services, server: Server
) -> None:
    response = post(api, create_body(callback_url="http://169.254.169.254/latest"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "callback_url"]


def test_reads_are_signed_and_show_status(
    api: httpx.Client, services: Services, server: Server
) -> None:
    order = post(api, create_body()).json()["order"]
    target = f"/v1/orders/{order['id']}"
    assert api.get(target).status_code == 401
    by_id = api.get(target, headers=signed_headers("GET", target))
    assert by_id.status_code == 200
    assert by_id.json()["order"]["order_id"] == "ord-1"
    query = "/v1/orders?order_id=ord-1"
    listed = api.get(query, headers=signed_headers("GET", query))
    assert [o["id"] for o in listed.json()["orders"]] == [order["id"]]
    svc = "/v1/services/svc-1"
    service = api.get(svc, headers=signed_headers("GET", svc)).json()["service"]
    assert service == {
        "service_id": "svc-1",
        "status": "pending",
        "server": "sim",
        "username": "user1",
        "domain": "site1.example",
        "package": "default",
        "paid_until": None,
        "suspension_reason": None,
    }
    missing = "/v1/services/nope"
    assert api.get(missing, headers=signed_headers("GET", missing)).status_code == 404


def test_health_and_readiness(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_openapi_describes_the_intake(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {
        "/v1/orders",
        "/v1/orders/{order_uuid}",
        "/v1/services/{service_id}",
    } <= set(paths)


def test_the_202_answer_is_the_stored_order_as_a_read_shows_it(
    api: httpx.Client, server: Server
) -> None:
    # Intake builds its answer from the rows it INSERTs, not from a re-read:
    # the answer must be what a later read of the same order shows.
    answer = post(api, create_body()).json()["order"]
    path = f"/v1/orders/{answer['id']}"
    read = api.get(path, headers=signed_headers("GET", path, b""))
    assert read.status_code == 200
    assert read.json()["order"] == answer


def test_recreate_after_a_failed_create_takes_the_careful_path(
    api: httpx.Client, services: Services, server: Server
) -> None:
    first = post(api, create_body(order_id="ord-first")).json()["order"]
    with services.sessions.begin() as session:
        order = session.get(Order, first["id"])
        assert order is not None
        order.service.status = ServiceStatus.FAILED
    again = post(api, create_body(order_id="ord-again"))
    assert again.status_code == 202
    with services.sessions() as session:
        seqs = session.scalars(
            select(Order.service_seq).order_by(Order.service_seq)
        ).all()
    assert seqs == [1, 2]


def test_every_answer_carries_a_request_id(api: httpx.Client) -> None:
    echoed = api.get("/healthz", headers={"X-Request-Id": "billing-req-7"})
    assert echoed.headers["X-Request-Id"] == "billing-req-7"
    first = api.get("/healthz").headers["X-Request-Id"]
    second = api.get("/healthz").headers["X-Request-Id"]
    assert len(first) == 32
    assert first != second
