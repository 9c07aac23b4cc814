"""The lanes' clients (SSO, usage) count against the per-server in-flight cap
(BRIDGE_SERVER_MAX_IN_FLIGHT) like the engine's: with every slot of a server held
(through bridge.inflight directly), they call nothing until one is released."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.states import OrderStatus
from bridge.inflight import InFlightSlots
from bridge.settings import Settings
from bridge.usage import begin_run, collect_step, sync_server
from tests.factories import drive, submit
from tests.infra import make_test_settings
from tests.ops_support import small_create
from tests.signing import signed_headers
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

RETRY = 0.1


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # A short SSO wait keeps the "busy" case quick; slot retries every 0.1 s.
    return make_test_settings(
        tmp_path / "var",
        database_url=database_url,
        sso_max_wait_seconds=1.0,
        server_in_flight_retry_seconds=RETRY,
    )


@pytest.fixture
def service_id(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> str:
    order = drive(services, submit(services, small_create()), clock, sim)
    assert order.status is OrderStatus.COMPLETED
    return order.service_id


@pytest.fixture
def slots(services: Services) -> InFlightSlots:
    inflight = services.panels.inflight
    assert inflight is not None
    return inflight


@pytest.fixture
def held(slots: InFlightSlots, service_id: str) -> Iterator[list[str]]:
    """Every in-flight slot of server `sim` taken (released at the end)."""
    taken = [slots.acquire("sim") for _ in range(slots.limit)]
    assert all(taken)
    assert slots.acquire("sim") is None
    held_ids = [slot for slot in taken if slot is not None]
    yield held_ids
    for slot in held_ids:
        slots.release("sim", slot)


def sso(api: httpx.Client, clock: FakeClock, service_id: str) -> httpx.Response:
    target = f"/v1/services/{service_id}/sso"
    headers = signed_headers("POST", target, b"", timestamp=int(clock().timestamp()))
    return api.post(target, content=b"", headers=headers)


def panel_calls(sim: SimControl, fragment: str) -> list[str]:
    return [r["path"] for r in sim.requests() if fragment in r["path"]]


def test_sso_with_every_slot_taken_answers_busy_and_calls_no_panel(
    api: httpx.Client,
    clock: FakeClock,
    service_id: str,
    held: list[str],
    slots: InFlightSlots,
    sim: SimControl,
) -> None:
    busy = sso(api, clock, service_id)

    assert busy.status_code == 503, busy.text
    assert "busy" in busy.json()["detail"]
    assert busy.headers["retry-after"]
    assert panel_calls(sim, "/sso/mint") == []

    for slot in held:
        slots.release("sim", slot)
    held.clear()
    assert sso(api, clock, service_id).status_code == 200
    assert len(panel_calls(sim, "/sso/mint")) == 1


def test_sso_gets_the_slot_released_while_it_waits(
    api: httpx.Client,
    clock: FakeClock,
    service_id: str,
    held: list[str],
    slots: InFlightSlots,
    sim: SimControl,
) -> None:
    slot = held.pop()
    releaser = threading.Timer(0.4, slots.release, args=("sim", slot))
    releaser.start()
    try:
        response = sso(api, clock, service_id)
    finally:
        releaser.join()

    assert response.status_code == 200, response.text
    assert len(panel_calls(sim, "/sso/mint")) == 1


def test_usage_with_every_slot_taken_waits_without_calling_the_panel(
    services: Services,
    service_id: str,
    held: list[str],
    slots: InFlightSlots,
    sim: SimControl,
) -> None:
    run_id = begin_run(services, "sim")
    assert run_id is not None

    progress = collect_step(services, "sim", "", run_id)

    assert not progress.done
    assert progress.retry_after == RETRY
    assert panel_calls(sim, "usage") == []

    for slot in held:
        slots.release("sim", slot)
    held.clear()
    finished = collect_step(services, "sim", progress.cursor, run_id)
    assert finished.done
    assert finished.stored == 1
    assert panel_calls(sim, "usage") == ["/api/v1/usage/"]
    assert sync_server(services, "sim", sleep=time.sleep) == 1
