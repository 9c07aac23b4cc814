"""The `make run` path: `bridge run` on embedded defaults, an example order, Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"bridge run exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"bridge run never became ready:\n{log.read_text()[-3000:]}")


def test_bridge_run_serves_an_example_order_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update({"BRIDGE_VAR_DIR": str(tmp_path / "var"), "BRIDGE_API_PORT": str(port)})
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "bridge", "run", "--concurrency", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", run, log)
        submit = subprocess.run(
            [
                sys.executable,
                "-m",
                "bridge",
                "orders",
                "submit",
                "--example",
                "--timeout",
                "90",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert submit.returncode == 0, (
            submit.stdout + submit.stderr + log.read_text()[-3000:]
        )
        assert '"status": "completed"' in submit.stdout
        assert (tmp_path / "var" / "bridge.db").exists()
        assert (tmp_path / "var" / "redis.sock").exists()
    finally:
        os.killpg(run.pid, signal.SIGINT)
        code = run.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert "stopped" in log.read_text()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == ""
