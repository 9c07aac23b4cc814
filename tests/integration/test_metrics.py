"""`/metrics`: event counters from the engine and state read at scrape time."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.container import Services
from bridge.db.models import Server
from tests.factories import create_spec, drive, submit
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


def scrape(api: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_state_gauges_follow_the_database(
    api: httpx.Client, services: Services, server: Server, clock: FakeClock
) -> None:
    submit(services, create_spec(1))
    submit(services, create_spec(2))
    samples = scrape(api)
    assert samples[("bridge_orders", (("action", "create"), ("status", "queued")))] == 2
    assert samples[("bridge_queue_depth", ())] == 2
    clock.advance(30)
    assert scrape(api)[("bridge_dispatcher_lag_seconds", ())] >= 25
    assert ("bridge_budget_blocked_seconds", (("server", "sim"),)) in samples


def test_engine_events_are_counted(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    before = scrape(api)
    key_ok = (
        "bridge_panel_responses_total",
        (("server", "sim"), ("status_class", "2xx")),
    )
    key_done = (
        "bridge_orders_finished_total",
        (("action", "create"), ("status", "completed")),
    )
    sim.faults(storm_seconds=1)  # 429 with Retry-After: 1
    drive(services, submit(services, create_spec(ssl=False, mailboxes=())), clock, sim)
    after = scrape(api)
    assert after[key_ok] - before.get(key_ok, 0) >= 2
    assert after[key_done] - before.get(key_done, 0) == 1
    key_429 = ("bridge_panel_429_total", (("server", "sim"),))
    assert after[key_429] - before.get(key_429, 0) >= 1
    assert any(name == "bridge_step_duration_seconds_count" for name, _ in after)
