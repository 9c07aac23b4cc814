"""The `bridge` CLI as an operator runs it: help everywhere, db commands, errors."""

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bridge.cli import cli
from tests.infra import is_sqlite, recreate_database, suite_database_url

pytestmark = [pytest.mark.integration, pytest.mark.smoke]


def _bridge(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _all_commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    # Through list_commands/get_command: the root group loads its commands lazily,
    # so `group.commands` holds only those already imported.
    found = [prefix]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, (*prefix, name)
        if isinstance(command, click.Group):
            found += _all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize(
    "path", _all_commands(cli), ids=lambda p: " ".join(p) or "bridge"
)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    # In-process: --help never builds settings or services, and a subprocess per
    # command would cost seconds each (the entry point itself is tested below).
    result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_help_through_the_installed_entry_point() -> None:
    result = _bridge("--help")
    assert result.returncode == 0, result.stderr
    assert "servers" in result.stdout


def test_version_via_python_dash_m() -> None:
    from bridge import __version__

    result = _bridge("version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    if is_sqlite(suite_database_url()):
        url = f"sqlite:///{tmp_path}/cli.db"
    else:
        url = suite_database_url() + "_cli"
    recreate_database(url)
    env = {"BRIDGE_DATABASE_URL": url, "BRIDGE_VAR_DIR": str(tmp_path)}
    before = _bridge("db", "current", env=env)
    assert before.stdout.strip() == "(empty)"
    up = _bridge("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    after = _bridge("db", "current", env=env)
    assert after.returncode == 0
    assert after.stdout.strip() not in {"", "(empty)"}


def test_bad_setting_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    result = _bridge(
        "db",
        "current",
        env={"BRIDGE_LEASE_SECONDS": "-1", "BRIDGE_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: BRIDGE_LEASE_SECONDS:")
