"""The operator CLI run in the test process: `bridge.cli.run`, the entry point's
own code (exit codes included), against the test database, Redis and simulator.

Why not a process per command: on a slow 2-vCPU machine each `python -m bridge`
spends 3-4 s of CPU importing the stack under coverage, and the operator tests
run about seventy commands, a third of the suite's CPU. The installed entry
point itself stays tested as a process (tests/integration/test_cli.py,
tests/e2e/test_run.py, tests/e2e/test_readme.py).

A command changes process-wide state that a separate process would have kept to
itself: the environment (its settings come from it), stdout and stderr, the
logging configuration (`configure_logging` puts a handler on the root logger)
and structlog's, including the loggers structlog caches on first use (a module's
`log` bound under one configuration keeps it, which would send the command's
lines to the test's stream, or the test's later lines, and `capture_logs`, past
the command's). Each run gets exactly the environment a child process would have
had, starts with no cached logger, and everything is put back afterwards.
"""

import contextlib
import gc
import io
import json
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

import structlog
from structlog._config import BoundLoggerLazyProxy

from bridge.cli import run
from bridge.logging import QUIET_LOGGERS
from bridge.settings import Settings
from tests.e2e.conftest import settings_env


def bridge(
    settings: Settings, *args: str, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    """`bridge ARGS` with `settings`, as a finished process would report it."""
    env = {**settings_env(settings), "COLUMNS": str(columns)}
    out, err = io.StringIO(), io.StringIO()
    with (
        _process_state_restored(env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = run(list(args))
        except SystemExit as exc:
            code = _exit_status(exc.code)
            if isinstance(exc.code, str):
                err.write(f"{exc.code}\n")
    return subprocess.CompletedProcess(
        ["bridge", *args], code, stdout=out.getvalue(), stderr=err.getvalue()
    )


def _exit_status(code: object) -> int:
    """What a process exiting with SystemExit(code) reports."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1  # SystemExit("message"): printed, status 1


@contextlib.contextmanager
def _process_state_restored(env: Mapping[str, str]) -> Iterator[None]:
    saved_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with logging_restored():
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Undo what `configure_logging` does to this process, on the way out.

    Its root handler writes to the stderr of the moment (a command's captured
    stream, or a test's capsys) that is closed afterwards; later log lines would
    then fail to write.
    """
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    _forget_cached_loggers()
    try:
        yield
    finally:
        structlog.configure(**saved_structlog)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        _forget_cached_loggers()


def _forget_cached_loggers() -> None:
    """Put every lazy structlog logger back to unbound, as in a fresh process.

    A proxy caches its first bound logger by setting `bind` on the instance;
    dropping that attribute makes the next use bind with the configuration of
    the moment.
    """
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance reads __class__, which makes
        # other lazy proxies (Celery's pending tasks) evaluate themselves.
        if type(obj) is BoundLoggerLazyProxy:
            obj.__dict__.pop("bind", None)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    """A successful command's JSON output."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
