"""E2E fixtures: a real Celery worker process (with embedded beat) on real Redis."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.container import Services
from bridge.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            text = value.get_secret_value()
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        env[f"BRIDGE_{name.upper()}"] = text
    return env


class WorkerProcess:
    """`celery worker -B` as a child process, startable again after a kill."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self._env = settings_env(settings)
        self._tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tmp / "worker.log"

    def start(self) -> None:
        args = [
            sys.executable, "-m", "celery", "-A", "workers.celery_app:app",
            "worker", "-B", "-Q", "bridge", "--pool", "threads", "-c", "4",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-s", str(self._tmp / "beat-schedule"), "--loglevel", "INFO",
        ]  # fmt: skip
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=self._env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, leases left behind."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-4000:]


@pytest.fixture
def worker(
    settings: Settings, tmp_path: Path, services: Services
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path)
    process.start()
    yield process
    process.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
