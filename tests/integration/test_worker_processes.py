"""`bridge worker --processes 2`: two Celery workers under one supervisor.

Both consume the bridge queue and run orders; a stop signal stops both (exit 0);
one that dies takes the other down with a failure status, so the service manager
restarts the set.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.states import OrderStatus
from bridge.settings import Settings
from tests.e2e.conftest import settings_env, wait_until
from tests.factories import create_spec, load, submit
from workers.celery_app import make_app

pytestmark = pytest.mark.integration


def celery_children(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        kids = psutil.Process(proc.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [k for k in kids if "celery" in " ".join(k.cmdline())]


@pytest.fixture
def supervised(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "worker.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "bridge", "worker", "--processes", "2",
            "--concurrency", "4", "--without-mingle", "--without-heartbeat",
        ],
        env=settings_env(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for kid in psutil.process_iter(["cmdline"]):
        # Never leave a worker behind if the supervisor did not take it down.
        if any("bridge1@" in a or "bridge2@" in a for a in kid.info["cmdline"] or ()):
            kid.kill()


@pytest.mark.timeout(180)
def test_two_processes_consume_the_queue_and_stop_together(
    settings: Settings,
    services: Services,
    server: Server,
    supervised: subprocess.Popen[bytes],
) -> None:
    wait_until(lambda: len(celery_children(supervised)) == 2, 60, "two workers")
    names = sorted(
        a for k in celery_children(supervised) for a in k.cmdline() if "@" in a
    )
    assert names == ["bridge1@%h", "bridge2@%h"]
    app = make_app(settings)
    try:
        # Both nodes answer on the broker: both consume from it.
        def both_answer() -> bool:
            replies = app.control.ping(timeout=1.0) or []
            nodes = {name.split("@")[0] for r in replies for name in r}
            return nodes == {"bridge1", "bridge2"}

        wait_until(both_answer, 60, "both nodes to answer a ping")
    finally:
        app.close()
    orders = [
        submit(services, create_spec(n, ssl=False, mailboxes=())) for n in range(1, 7)
    ]
    wait_until(
        lambda: all(load(services, o).status is OrderStatus.COMPLETED for o in orders),
        60,
        "the orders to complete",
    )
    kids = celery_children(supervised)
    supervised.send_signal(signal.SIGTERM)
    assert supervised.wait(timeout=60) == 0
    assert not [k for k in kids if k.is_running() and k.status() != "zombie"]


@pytest.mark.timeout(120)
def test_a_dead_process_takes_the_other_down_with_a_failure_status(
    supervised: subprocess.Popen[bytes],
) -> None:
    wait_until(lambda: len(celery_children(supervised)) == 2, 60, "two workers")
    first, second = celery_children(supervised)
    first.kill()
    assert supervised.wait(timeout=60) != 0
    second.wait(timeout=10)
    assert not second.is_running()
