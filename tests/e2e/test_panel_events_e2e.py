"""ssl.issued through a real worker: with polling set to ten minutes, the order
still completes as soon as the panel reports the certificate."""

import dataclasses
from pathlib import Path

import httpx
import pytest

from bridge.container import Services
from bridge.db.models import Server
from bridge.ops import ServerChanges, edit_server
from bridge.settings import Settings
from tests.e2e.conftest import WorkerProcess, wait_until
from tests.e2e.test_orders_e2e import finished, get_order, post_order
from tests.infra import make_test_settings
from tests.signing import create_body
from tests.simctl import SimControl

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_test_settings(
        tmp_path / "var",
        database_url=database_url,
        ssl_poll_first_seconds=600,
        ssl_poll_seconds=600,
    )


def test_ssl_issued_completes_the_order_without_waiting_for_the_poll(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    worker: WorkerProcess,
) -> None:
    public = services.settings.model_copy(update={"public_url": str(api.base_url)})
    hooked = dataclasses.replace(services, settings=public)
    view = edit_server(hooked, "sim", ServerChanges(webhooks=True), "ops:tester")
    assert view["webhook"]["subscribed"], view["webhook"]
    sim.config(ssl_delay_s=1.0, webhook_ssl_tick_s=0.05)
    # The certificate is pending at issue time: the order then waits (600 s poll).
    order = post_order(api, create_body(mailboxes=[]))

    wait_until(lambda: finished(api, order["id"]), 45, "the order (poll is 600 s)")
    final = get_order(api, order["id"])
    assert final["status"] == "completed", (final, worker.log_tail())
    assert sim.ledger()["certificate"] == {"site1.example": 1}
