"""Start `bridge run` as a real process tree on free ports, as a user would."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningBridge:
    """A `bridge run` supervisor and what a second terminal needs to reach it."""

    proc: subprocess.Popen[bytes]
    var_dir: Path
    log: Path
    api_port: int
    demo_port: int
    env: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def second_terminal_env(self) -> dict[str, str]:
        """No BRIDGE_* variable but the var directory: nothing else is told."""
        return {**self.env, "BRIDGE_VAR_DIR": str(self.var_dir)}

    def ctrl_c(self) -> int:
        """SIGINT to the supervisor's process group, as a terminal's Ctrl-C."""
        if self.exit_code is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.exit_code = self.proc.wait(timeout=60)
        return self.exit_code


def _wait_ready(bridge: RunningBridge) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if bridge.proc.poll() is not None:
            pytest.fail(f"bridge run exited early:\n{bridge.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{bridge.api_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"bridge run never became ready:\n{bridge.log.read_text()[-3000:]}")


@contextmanager
def bridge_run(
    tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[RunningBridge]:
    """`bridge run` on a private var directory; Ctrl-C'd at exit if still up.

    `extra_env` goes to the supervisor only (e.g. a callback URL), never to the
    second terminal.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    var_dir = tmp_path / "var"
    api_port, demo_port = free_port(), free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge",
                "run",
                "--concurrency",
                "1",
                "--demo-port",
                str(demo_port),
            ],
            env={
                **env,
                "BRIDGE_VAR_DIR": str(var_dir),
                "BRIDGE_API_PORT": str(api_port),
                # The demo panel issues in 3 s; poll sooner than the 15 s default.
                "BRIDGE_SSL_POLL_SECONDS": "0.5",
                **(extra_env or {}),
            },
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    bridge = RunningBridge(proc, var_dir, log, api_port, demo_port, env)
    try:
        _wait_ready(bridge)
        yield bridge
    finally:
        bridge.ctrl_c()
