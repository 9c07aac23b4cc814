"""var/run.json: how CLI commands find a running `bridge run`."""

import os
import subprocess
import sys
from pathlib import Path

from bridge.cli.runtime import (
    RUNTIME_FILE,
    RunInfo,
    live_run_info,
    remove_run_info,
    write_run_info,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_supervisor_is_found(tmp_path: Path) -> None:
    info = RunInfo(os.getpid(), "http://127.0.0.1:8000", "unix:///x/redis.sock?db=0")
    write_run_info(tmp_path, info)
    assert live_run_info(tmp_path) == info


def test_a_file_left_by_a_killed_supervisor_is_ignored(tmp_path: Path) -> None:
    write_run_info(tmp_path, RunInfo(_dead_pid(), "http://127.0.0.1:8000", None))
    assert live_run_info(tmp_path) is None


def test_a_damaged_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / RUNTIME_FILE).write_text('{"pid": "x"')
    assert live_run_info(tmp_path) is None


def test_only_the_writer_removes_the_file(tmp_path: Path) -> None:
    write_run_info(tmp_path, RunInfo(os.getpid(), "http://127.0.0.1:8000", None))
    remove_run_info(tmp_path, os.getpid() + 1)
    assert (tmp_path / RUNTIME_FILE).exists()
    remove_run_info(tmp_path, os.getpid())
    assert not (tmp_path / RUNTIME_FILE).exists()
