"""Thin task wrappers with stable wire names; each calls one use case.

Arguments are ids only. No autoretry: the engine writes retries into the DB and the
dispatcher re-enqueues; a crash leaves a lease that expires.
"""

import functools
import uuid
from collections.abc import Callable

from celery import Celery

from bridge.callbacks import deliver_callback
from bridge.container import Services
from bridge.dispatcher import dispatch_due_orders
from bridge.engine import run_order
from bridge.ops.retention import run_retention
from bridge.packages import refresh_all_packages
from bridge.queue import DELIVER_CALLBACK_TASK, RUN_ORDER_TASK
from bridge.sweeps import run_sweep
from bridge.usage import collect_step, start_usage_runs

DISPATCH_TASK = "bridge.dispatch"
SWEEP_SUSPEND_TASK = "bridge.sweep_suspend"
SWEEP_TERMINATE_TASK = "bridge.sweep_terminate"
RETENTION_TASK = "bridge.retention"
COLLECT_USAGE_TASK = "bridge.collect_usage"
COLLECT_SERVER_USAGE_TASK = "bridge.collect_server_usage"
REFRESH_PACKAGES_TASK = "bridge.refresh_packages"


def register_tasks(app: Celery, services: Callable[[], Services]) -> None:
    """Register the bridge's tasks on `app` under their stable names.

    `shared=False`: Celery's default also registers each task on every app
    created later in the process (a finalize hook per call), so a process that
    builds several apps (tests, the in-process CLI) would register each name
    once per earlier call, which Celery 5.7 refuses as a duplicate task name.
    """
    task = functools.partial(app.task, shared=False, max_retries=None)

    @task(name=RUN_ORDER_TASK)
    def run_order_task(order_uuid: str) -> None:
        run_order(services(), uuid.UUID(order_uuid))

    @task(name=DISPATCH_TASK, expires=30)
    def dispatch_task() -> None:
        dispatch_due_orders(services())

    @task(name=DELIVER_CALLBACK_TASK)
    def deliver_callback_task(order_uuid: str) -> None:
        s = services()
        deliver_callback(s.settings, s.sessions, s.http, s.clock, uuid.UUID(order_uuid))

    # Sweeps: no retry on failure; the next beat tick runs the sweep again.
    @task(name=SWEEP_SUSPEND_TASK)
    def sweep_suspend_task() -> None:
        run_sweep(services(), "suspend")

    @task(name=SWEEP_TERMINATE_TASK)
    def sweep_terminate_task() -> None:
        run_sweep(services(), "terminate")

    @task(name=RETENTION_TASK)
    def retention_task() -> None:
        run_retention(services())

    # Usage: beat starts one run per server; each step spends the usage lane until
    # it says wait, then schedules its own continuation that much later (seconds,
    # far below the broker's visibility timeout). A lost step leaves the run's
    # lock to expire; the next beat tick starts afresh.
    @task(name=COLLECT_USAGE_TASK)
    def collect_usage_task() -> None:
        for server, run_id in start_usage_runs(services()):
            collect_server_usage_task.delay(server, "", run_id)

    @task(name=COLLECT_SERVER_USAGE_TASK)
    def collect_server_usage_task(server: str, cursor: str, run_id: str) -> None:
        progress = collect_step(services(), server, cursor, run_id)
        if not progress.done:
            collect_server_usage_task.apply_async(
                args=(server, progress.cursor, run_id),
                countdown=progress.retry_after or 0,
            )

    @task(name=REFRESH_PACKAGES_TASK)
    def refresh_packages_task() -> None:
        refresh_all_packages(services())
