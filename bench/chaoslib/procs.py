"""Child processes of a chaos run: simulator, bridge API, Celery workers and beat.

Each runs in its own session (process group) with its log in the run directory, so
a SIGKILL takes the whole worker down with nothing cleaned up, like a lost host.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.chaoslib.config import ChaosConfig


def free_port() -> int:
    """Return a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """One child process (group), startable again after it was killed."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path):
        self.name, self.args, self.env, self.log = name, args, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole group: no cleanup, no ack, leases left behind."""
        if self.popen is not None:
            _signal_group(self.popen, signal.SIGKILL)
            self.popen.wait()
            self.popen = None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.popen is None:
            return
        _signal_group(self.popen, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.popen, signal.SIGKILL)
            self.popen.wait()
        self.popen = None


def _signal_group(popen: "subprocess.Popen[bytes]", sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(popen.pid, sig)


def bridge_cli(cfg: ChaosConfig, *args: str) -> str:
    """Run one ``bridge`` CLI command to completion; return its stdout.

    Raises:
        RuntimeError: the command failed (its output is in the message).
    """
    done = subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env=cfg.bridge_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        msg = f"bridge {args[0]} {args[1]} failed: {done.stdout}{done.stderr}"
        raise RuntimeError(msg)
    return done.stdout


def simulator(cfg: ChaosConfig, port: int) -> Proc:
    args = [sys.executable, "-m", "bridge", "simulator", "--panels", "3"]
    args += ["--port", str(port), "--limit", str(cfg.panel_limit)]
    args += ["--ssl-delay", str(cfg.ssl_delay)]
    return Proc("simulator", args, cfg.bridge_env(), cfg.workdir / "simulator.log")


def api(cfg: ChaosConfig, port: int) -> Proc:
    args = [sys.executable, "-m", "bridge", "api", "--port", str(port)]
    return Proc("api", args, cfg.bridge_env(), cfg.workdir / "api.log")


def worker(cfg: ChaosConfig, index: int) -> Proc:
    args = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app:app", "worker",
        "-Q", "bridge", "--pool", "threads", "-c", str(cfg.worker_threads),
        "-n", f"chaos{index}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    log = cfg.workdir / f"worker{index}.log"
    return Proc(f"worker{index}", args, cfg.bridge_env(), log)


def beat(cfg: ChaosConfig) -> Proc:
    args = [
        sys.executable, "-m", "celery", "-A", "workers.celery_app:app", "beat",
        "-s", str(cfg.workdir / "beat-schedule"), "--loglevel", "INFO",
    ]  # fmt: skip
    return Proc("beat", args, cfg.bridge_env(), cfg.workdir / "beat.log")


def wait_http(url: str, proc: Proc, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200.

    Raises:
        RuntimeError: the process died or did not answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            msg = f"{proc.name} exited; see {proc.log}"
            raise RuntimeError(msg)
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    msg = f"{proc.name} did not answer {url} within {timeout}s; see {proc.log}"
    raise RuntimeError(msg)
