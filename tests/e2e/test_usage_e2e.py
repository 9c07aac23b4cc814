"""Beat -> bridge.collect_usage -> bridge.collect_server_usage steps in a real Celery
worker -> simulator -> service_usage rows, while the usage lane paces the calls."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bridge.container import Services
from bridge.db.models import Server, ServiceUsage
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.e2e.conftest import WorkerProcess, wait_until
from tests.factories import drive, submit
from tests.infra import make_test_settings
from tests.ops_support import small_create
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(tmp_path: Any, database_url: str) -> Settings:
    # Beat starts a run every second; 6000 a minute keeps the lane's pace short.
    return make_test_settings(
        tmp_path / "var",
        database_url=database_url,
        usage_interval_seconds=1,
        usage_lock_seconds=30,
    )


def test_beat_collects_usage_for_every_account_through_a_real_worker(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    simulator: SimulatorServer,
    worker: WorkerProcess,
) -> None:
    # Per-account mode: three paced steps instead of one bulk page.
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == server.id)
            .values(route_overrides={"list_usage": {"path": "/api/v1/no-bulk/"}})
        )
    for n in (1, 2, 3):
        drive(services, submit(services, small_create(n)), clock, sim)
        httpx.post(
            simulator.base_url + "/_sim/usage",
            json={"username": f"user{n}", "disk_used_mb": n * 10},
        ).raise_for_status()

    def collected() -> dict[str, int]:
        with services.sessions() as session:
            rows = session.scalars(select(ServiceUsage))
            return {r.service_id: r.disk_used_mb for r in rows}

    wait_until(lambda: len(collected()) == 3, 60, "usage of three services")

    assert collected() == {"svc-1": 10, "svc-2": 20, "svc-3": 30}, worker.log_tail()
    per_user = [r for r in sim.requests() if r["path"].startswith("/api/v1/users/")]
    assert {r["path"] for r in per_user} >= {
        "/api/v1/users/user1/usage",
        "/api/v1/users/user2/usage",
        "/api/v1/users/user3/usage",
    }
