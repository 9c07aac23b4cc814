"""`bridge sweep …` as an operator runs it (the CLI's entry point in-process,
tests/cli_runner.py) on the test database."""

import json
import subprocess
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bridge.container import Services
from bridge.db.models import AuditEntry, Order, Server
from bridge.settings import Settings
from tests.cli_runner import bridge as run_bridge
from tests.seeding import seed

pytestmark = pytest.mark.integration

TODAY = date(2030, 6, 15)


def bridge(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_bridge(settings, "sweep", *args)


def order_count(services: Services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@pytest.mark.smoke
def test_dry_run_prints_service_server_reason_and_due_date_without_acting(
    settings: Settings, services: Services, server: Server
) -> None:
    seed(services, server, 2, paid_until=TODAY - timedelta(days=10))
    result = bridge(settings, "suspend", "--dry-run", "--today", TODAY.isoformat())
    assert result.returncode == 0, result.stderr
    due = (TODAY - timedelta(days=10) + timedelta(days=4)).isoformat()
    for service_id in ("svc-000", "svc-001"):
        line = next(x for x in result.stdout.splitlines() if service_id in x)
        assert "sim" in line
        assert "non_payment" in line
        assert due in line
    assert "2 due of 2 services; nothing done (dry run)" in result.stdout
    assert order_count(services) == 0


def test_guard_trip_exits_non_zero_until_confirmed_and_status_shows_it(
    settings: Settings, services: Services, server: Server
) -> None:
    seed(services, server, 26, prefix="paid", paid_until=TODAY)
    seed(services, server, 4, prefix="late", paid_until=TODAY - timedelta(days=9))
    day = ("--today", TODAY.isoformat())
    refused = bridge(settings, "suspend", *day, "--json")
    assert refused.returncode == 1
    assert "blast-radius guard" in refused.stderr
    assert as_json(refused)["tripped"] is True
    assert order_count(services) == 0
    confirmed = bridge(
        settings, "suspend", *day, "--confirm", "--operator", "alice", "--json"
    )
    assert confirmed.returncode == 0, confirmed.stderr
    assert as_json(confirmed)["orders_created"] == 4
    assert order_count(services) == 4
    with services.sessions() as session:
        actors = set(session.scalars(select(AuditEntry.actor)))
    assert actors == {"ops:alice"}
    status = bridge(settings, "status", "--json")
    newest, oldest = as_json(status)
    assert (oldest["tripped"], oldest["orders_created"]) == (True, 0)
    assert (newest["confirmed_by"], newest["orders_created"]) == ("ops:alice", 4)
    table = bridge(settings, "status")
    assert "TRIPPED" in table.stdout
    assert "confirmed by ops:alice" in table.stdout


def test_dry_run_and_confirm_together_is_a_usage_error(
    settings: Settings, services: Services
) -> None:
    result = bridge(settings, "terminate", "--dry-run", "--confirm")
    assert result.returncode == 2
    assert "at most one of --dry-run and --confirm" in result.stderr
