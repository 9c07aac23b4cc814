"""Thin task wrappers with stable wire names; each calls one use case.

Arguments are ids only. No autoretry: the engine writes retries into the DB and the
dispatcher re-enqueues; a crash leaves a lease that expires.
"""

import uuid
from collections.abc import Callable

from celery import Celery

from bridge.callbacks import deliver_callback
from bridge.container import Services
from bridge.dispatcher import dispatch_due_orders
from bridge.engine import run_order
from bridge.ops.retention import run_retention
from bridge.queue import DELIVER_CALLBACK_TASK, RUN_ORDER_TASK
from bridge.sweeps import run_sweep

DISPATCH_TASK = "bridge.dispatch"
SWEEP_SUSPEND_TASK = "bridge.sweep_suspend"
SWEEP_TERMINATE_TASK = "bridge.sweep_terminate"
RETENTION_TASK = "bridge.retention"


def register_tasks(app: Celery, services: Callable[[], Services]) -> None:
    """Register the bridge's tasks on `app` under their stable names."""

    @app.task(name=RUN_ORDER_TASK, max_retries=None)
    def run_order_task(order_uuid: str) -> None:
        run_order(services(), uuid.UUID(order_uuid))

    @app.task(name=DISPATCH_TASK, max_retries=None, expires=30)
    def dispatch_task() -> None:
        dispatch_due_orders(services())

    @app.task(name=DELIVER_CALLBACK_TASK, max_retries=None)
    def deliver_callback_task(order_uuid: str) -> None:
        s = services()
        deliver_callback(s.settings, s.sessions, s.http, s.clock, uuid.UUID(order_uuid))

    # Sweeps: no retry on failure; the next beat tick runs the sweep again.
    @app.task(name=SWEEP_SUSPEND_TASK, max_retries=None)
    def sweep_suspend_task() -> None:
        run_sweep(services(), "suspend")

    @app.task(name=SWEEP_TERMINATE_TASK, max_retries=None)
    def sweep_terminate_task() -> None:
        run_sweep(services(), "terminate")

    @app.task(name=RETENTION_TASK, max_retries=None)
    def retention_task() -> None:
        run_retention(services())
