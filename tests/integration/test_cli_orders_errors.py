"""`bridge orders …` on ordinary mistakes (no API, a bad URL, a file that is not
JSON) answers one clear line, no traceback; with --json, stdout is JSON alone."""

import io
import json
import socket
import sys
from pathlib import Path

import pytest

from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.states import OrderStatus
from bridge.settings import Settings
from tests.cli_runner import as_json, bridge
from tests.factories import drive, submit
from tests.ops_support import small_create
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


@pytest.fixture
def closed_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_submit_without_a_reachable_api_says_so(
    settings: Settings, services: Services, closed_url: str
) -> None:
    result = bridge(
        settings, "orders", "submit", "--example", "--no-wait", "--api-url", closed_url
    )

    assert "Traceback" not in result.stderr
    assert f"cannot reach the intake API at {closed_url}" in result.stderr
    assert "is `bridge run` running?" in result.stderr
    assert result.returncode == 1
    assert result.stdout == ""


def test_submit_to_a_url_without_a_scheme_says_so(
    settings: Settings, services: Services
) -> None:
    result = bridge(settings, "orders", "submit", "--example", "--api-url", "notaurl")

    assert "Traceback" not in result.stderr
    assert "cannot reach the intake API at notaurl" in result.stderr
    assert result.returncode == 1


def test_submit_of_a_file_that_is_not_json_is_a_bad_parameter(
    settings: Settings, services: Services, tmp_path: Path, closed_url: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{bad")

    result = bridge(
        settings, "orders", "submit", "--file", str(bad), "--api-url", closed_url
    )

    assert "Traceback" not in result.stderr
    assert "Invalid value for --file" in result.stderr
    assert "is not valid JSON" in result.stderr
    assert result.returncode == 2


def test_watch_json_prints_only_json_on_stdout(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    order = drive(services, submit(services, small_create(1)), clock, sim)
    assert order.status is OrderStatus.COMPLETED

    watched = bridge(settings, "orders", "watch", str(order.id), "--json")

    assert as_json(watched)["order"]["status"] == "completed"
    assert "completed: create_user=succeeded" in watched.stderr


def test_purge_json_prompts_on_stderr(
    settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))

    purged = bridge(settings, "orders", "purge", "--older-than", "90d", "--json")

    assert json.loads(purged.stdout)["orders"] == 0
    assert "wipe the data of orders finished before" in purged.stderr
    assert purged.returncode == 0
