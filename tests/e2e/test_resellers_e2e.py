"""Reseller terminate through a real Celery worker at the default budget (issue 13.5):
the users check is made once and the DELETE goes on the next token."""

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from bridge.container import Services
from bridge.db.models import Server
from tests.e2e.conftest import WorkerProcess, wait_until
from tests.e2e.test_orders_e2e import finished, get_order, post_order
from tests.factories import load
from tests.panel_api import PanelApi
from tests.signing import create_body
from tests.simctl import SimControl

pytestmark = pytest.mark.e2e


def _reseller_body(n: int) -> dict[str, Any]:
    body = create_body(n, ssl=False, mailboxes=[], domain=None)
    body["account"] |= {"role": "reseller", "limits": {"max_users": 5}}
    return body


def _terminate_body(n: int) -> dict[str, Any]:
    return {"order_id": f"term-{n}", "service_id": f"svc-{n}", "action": "terminate"}


def _run(api: httpx.Client, body: dict[str, Any]) -> str:
    order = post_order(api, body)
    wait_until(lambda: finished(api, order["id"]), 60, f"{body['order_id']} to finish")
    return str(order["id"])


def test_unforced_terminate_of_a_reseller_completes_through_a_real_worker(
    api: httpx.Client,
    server: Server,
    sim: SimControl,
    worker: WorkerProcess,
    services: Services,
    panel_api: PanelApi,
) -> None:
    # The default 60 a minute, on the panel and in the bridge: no two calls in a
    # row, so the check and the DELETE go on two tries of the step.
    sim.config(limit=60)
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(rate_limit_per_min=60)
        )
    created = _run(api, _reseller_body(1))
    assert get_order(api, created)["status"] == "completed", worker.log_tail()

    terminated = _run(api, _terminate_body(1))
    final = get_order(api, terminated)
    assert final["status"] == "completed", (final, worker.log_tail())
    calls = [
        (r["method"], r["path"])
        for r in sim.requests()
        if r["path"] in ("/api/v1/resellers/user1", "/api/v1/resellers/user1/users")
    ]
    assert calls == [
        ("GET", "/api/v1/resellers/user1/users"),
        ("DELETE", "/api/v1/resellers/user1"),
    ]
    assert panel_api.call("GET", "/api/v1/users/user1").status_code == 404

    # A reseller with a user: refused with the 422 that names the user.
    second = _run(api, _reseller_body(2))
    assert get_order(api, second)["status"] == "completed", worker.log_tail()
    panel_api.create_user("client2", token=panel_api.create_key("user2"))
    refused_id = _run(api, _terminate_body(2))
    refused = get_order(api, refused_id)
    assert refused["status"] == "failed"
    assert "client2" in (refused["last_error"] or "")
    step = load(services, uuid.UUID(refused_id)).steps[0]
    assert (step.error_code, step.panel_status) == ("reseller_has_users", 422)
    assert panel_api.get_user("client2")["creator"] == "user2"  # nothing deleted
