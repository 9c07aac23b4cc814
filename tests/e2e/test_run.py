"""The `make run` path: `bridge run` on embedded defaults, a second terminal, Ctrl-C."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.running import REPO, bridge_run

# Not in the SQLite smoke set: `bridge run` ignores the suite's database and runs
# on its embedded defaults, SQLite included, in the full run already.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _bridge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bridge_run_serves_a_second_terminal_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    with bridge_run(tmp_path) as bridge:
        var = bridge.var_dir
        run_info = json.loads((var / "run.json").read_text())
        assert run_info["pid"] == bridge.proc.pid
        assert run_info["redis_url"] == f"unix://{var / 'redis.sock'}?db=0"
        # No BRIDGE_REDIS_URL and no API port: the commands find the running bridge.
        env = bridge.second_terminal_env()
        submit = _bridge(env, "orders", "submit", "--example", "--timeout", "90")
        assert submit.returncode == 0, submit.stdout + submit.stderr
        assert '"status": "completed"' in submit.stdout
        order_id = json.loads(submit.stdout[submit.stdout.index("{") :])["order"]["id"]
        show = _bridge(env, "orders", "show", order_id, "--json")
        listing = _bridge(env, "orders", "list", "--json")
        servers = _bridge(env, "servers", "list", "--json")
        for done in (show, listing, servers):
            assert done.returncode == 0, done.stderr
            # The secrets were created (and announced) by `bridge run`, not again.
            assert "development_secret_generated" not in done.stderr
        assert json.loads(show.stdout)["order"]["status"] == "completed"
        demo = httpx.get(
            f"http://127.0.0.1:{bridge.demo_port}/_sim/credentials", timeout=10
        ).json()
        assert [o["id"] for o in json.loads(listing.stdout)["data"]] == [order_id]
        # Nor on any command line, which every local user can read (`ps`).
        assert [c for c in _command_lines() if demo["api_key"] in c] == []
        second = _bridge(env, "run")
        assert second.returncode != 0
        assert "already serving" in second.stderr
        assert (var / "bridge.db").exists()
    assert bridge.exit_code == 0, bridge.log.read_text()[-3000:]
    log = bridge.log.read_text()
    assert log.count("development_secret_generated") == 4  # once per secret
    # The simulator prints its credentials only when run by hand (`bridge
    # simulator`); the demo panel's stay out of `bridge run`'s console.
    assert demo["api_key"].startswith("wsp_")
    for secret in (demo["api_key"], demo["password"]):
        assert secret not in log
    stopping = log[log.index("stopping") :]
    assert "stopped" in stopping
    # Redis stops after the worker: the worker never loses its broker.
    assert "Cannot connect" not in stopping
    assert "Connection to broker lost" not in stopping
    assert not (var / "run.json").exists()
    assert not (var / "redis.sock").exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""


def test_without_a_running_bridge_the_error_names_the_variable(
    tmp_path: Path,
) -> None:
    env = {"PATH": "/usr/bin:/bin", "BRIDGE_VAR_DIR": str(tmp_path / "var")}
    done = _bridge(env, "orders", "retry", "nothing")
    assert done.returncode == 2
    assert "BRIDGE_REDIS_URL: not set, and no `bridge run` is running" in done.stderr


def test_bridge_run_on_a_port_in_use_says_so_and_starts_nothing(
    tmp_path: Path,
) -> None:
    # It printed "bridge running: API …" before uvicorn failed to bind.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env["BRIDGE_VAR_DIR"] = str(tmp_path / "var")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _bridge(env, "run", "--port", str(port))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"API port {port} on 127.0.0.1 is not available" in done.stderr
    assert "bridge running" not in done.stdout
    assert "embedded Redis" not in done.stdout
    assert not (tmp_path / "var" / "run.json").exists()


def _command_lines() -> list[str]:
    """Every process's command line, as `ps -ef` would show it to any user."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines
