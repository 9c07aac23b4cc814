"""Beat -> sweep task -> dispatcher -> worker -> simulator, then a payment lifts it."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.container import Services
from bridge.db.models import Server, Service
from bridge.domain.model import SuspendReason
from bridge.settings import Settings
from tests.e2e.conftest import WorkerProcess, wait_until
from tests.infra import make_test_settings
from tests.signing import create_body, encode, signed_headers
from tests.simctl import SimControl

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # The worker's embedded beat ticks the sweeps every second.
    return make_test_settings(
        tmp_path / "var", database_url=database_url, sweep_interval_seconds=1
    )


def post(api: httpx.Client, target: str, body: dict[str, Any]) -> Any:
    raw = encode(body)
    response = api.post(
        target, content=raw, headers=signed_headers("POST", target, raw)
    )
    assert response.status_code in (200, 202), response.text
    return response.json()


def service(services: Services) -> Service:
    with services.sessions() as session:
        return session.get_one(Service, "svc-1")


def test_beat_suspends_an_overdue_service_and_a_payment_lifts_it(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    worker: WorkerProcess,
) -> None:
    post(api, "/v1/orders", create_body(ssl=False, mailboxes=[]))
    wait_until(lambda: service(services).status == "active", 60, "the create")
    today = datetime.now(UTC).date()
    with services.sessions.begin() as session:
        session.get_one(Service, "svc-1").paid_until = today - timedelta(days=10)
    wait_until(
        lambda: service(services).status == "suspended", 60, "the sweep's suspension"
    )
    assert service(services).suspension_reason is SuspendReason.NON_PAYMENT
    assert sim.state()["users"]["user1"]["status"] == "suspended"
    paid = (today + timedelta(days=30)).isoformat()
    answer = post(api, "/v1/services/svc-1/payments", {"paid_until": paid})
    assert answer["order"]["order_id"] == f"payment:unsuspend:svc-1:{paid}"
    wait_until(lambda: service(services).status == "active", 60, "the unsuspend")
    assert sim.state()["users"]["user1"]["status"] == "active", worker.log_tail()
