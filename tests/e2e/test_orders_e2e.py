"""API -> real Celery worker process -> simulator -> DB, including crashes."""

from typing import Any

import httpx
import pytest

from bridge.container import Services
from bridge.db.models import Server
from tests.e2e.conftest import WorkerProcess, wait_until
from tests.signing import create_body, encode, signed_headers
from tests.simctl import SimControl

pytestmark = pytest.mark.e2e

EXPECTED = {
    "user": {"user1": 1},
    "domain": {"site1.example": 1},
    "certificate": {"site1.example": 1},
    "mailbox": {"info@site1.example": 1},
}


def post_order(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    raw = encode(body)
    response = api.post(
        "/v1/orders", content=raw, headers=signed_headers("POST", "/v1/orders", raw)
    )
    assert response.status_code == 202, response.text
    order: dict[str, Any] = response.json()["order"]
    return order


def get_order(api: httpx.Client, order_uuid: str) -> dict[str, Any]:
    target = f"/v1/orders/{order_uuid}"
    order: dict[str, Any] = api.get(
        target, headers=signed_headers("GET", target)
    ).json()["order"]
    return order


def finished(api: httpx.Client, order_uuid: str) -> bool:
    return get_order(api, order_uuid)["status"] in {"completed", "failed", "cancelled"}


@pytest.mark.smoke
def test_order_completes_through_a_real_worker(
    api: httpx.Client, server: Server, sim: SimControl, worker: WorkerProcess
) -> None:
    order = post_order(api, create_body())
    wait_until(lambda: finished(api, order["id"]), 60, "order to finish")
    final = get_order(api, order["id"])
    assert final["status"] == "completed", (final, worker.log_tail())
    assert sim.ledger() == EXPECTED
    svc = "/v1/services/svc-1"
    service = api.get(svc, headers=signed_headers("GET", svc)).json()["service"]
    assert service["status"] == "active"


def test_worker_killed_mid_order_completes_after_restart_without_duplicates(
    api: httpx.Client,
    server: Server,
    sim: SimControl,
    worker: WorkerProcess,
    services: Services,
) -> None:
    sim.faults(latency_ms=600)  # each call takes a while: room to kill mid-order
    order = post_order(api, create_body())

    def some_step_done() -> bool:
        steps = get_order(api, order["id"])["steps"]
        return any(s["status"] == "succeeded" for s in steps)

    wait_until(some_step_done, 60, "the first step")
    worker.kill()
    assert get_order(api, order["id"])["status"] in {"running", "waiting", "queued"}
    worker.start()
    wait_until(lambda: finished(api, order["id"]), 90, "order to finish after restart")
    assert get_order(api, order["id"])["status"] == "completed", worker.log_tail()
    assert sim.ledger() == EXPECTED


def test_redis_flushed_mid_run_loses_no_order(
    api: httpx.Client,
    server: Server,
    sim: SimControl,
    worker: WorkerProcess,
    services: Services,
) -> None:
    sim.faults(latency_ms=400)
    orders = [post_order(api, create_body(n)) for n in (1, 2, 3)]
    wait_until(
        lambda: any(
            s["status"] == "succeeded" for s in get_order(api, orders[0]["id"])["steps"]
        ),
        60,
        "progress",
    )
    services.redis.flushdb()  # broker queue, buckets and cached logins: gone
    for order in orders:
        wait_until(lambda o=order: finished(api, o["id"]), 120, "orders to finish")
        assert get_order(api, order["id"])["status"] == "completed", worker.log_tail()
    ledger = sim.ledger()
    assert ledger["user"] == {"user1": 1, "user2": 1, "user3": 1}
    assert all(count == 1 for kind in ledger.values() for count in kind.values())
