"""The Celery app, built from Settings; per-process Services; logging and context.

`celery -A workers.celery_app:app` reads the module attribute `app`, created lazily
from the environment on first access (so importing this module has no side effects).
"""

from typing import Any

import structlog
from celery import Celery, signals

from bridge.container import Services, build_services
from bridge.logging import configure_logging
from bridge.memory import HeapTrimmer
from bridge.queue import QUEUE_NAME, broker_url
from bridge.settings import Settings, load_settings
from workers.schedule import beat_schedule
from workers.tasks import register_tasks

_services: Services | None = None
_settings: Settings | None = None
_app: Celery | None = None
_trimmer: HeapTrimmer | None = None


def make_app(settings: Settings) -> Celery:
    """Configure a Celery app for the bridge (STYLE.md §2.1 Celery rules)."""
    if settings.redis_url is None:
        msg = "BRIDGE_REDIS_URL must be set for workers"
        raise RuntimeError(msg)
    app = Celery("bridge", set_as_current=False)
    app.conf.update(
        broker_url=broker_url(settings.redis_url),
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE_NAME,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        # Above the hard time limit, so a running task is never redelivered; waits
        # live in the DB (next_attempt_at), never in long countdowns.
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout
        },
        beat_schedule=beat_schedule(settings),
        timezone="UTC",
    )
    register_tasks(app, current_services)
    return app


def current_services() -> Services:
    """The Services of this worker process (built at process init)."""
    if _services is None:
        msg = "worker services are not initialised"
        raise RuntimeError(msg)
    return _services


def set_services(services: Services | None) -> None:
    """Install (or clear) this process's Services (tests: in-thread workers)."""
    global _services  # noqa: PLW0603 - the one per-process slot (STYLE.md §2.4)
    _services = services


def _load() -> Settings:
    global _settings
    if _settings is None:
        _settings, _ = load_settings()
    return _settings


def __getattr__(name: str) -> Any:
    global _app  # noqa: PLW0603 - built on first access by `celery -A`
    if name == "app":
        if _app is None:
            _app = make_app(_load())
        return _app
    raise AttributeError(name)


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(_load())


@signals.worker_process_init.connect
def _init_process(**_: Any) -> None:
    # Pools must not be shared across a fork: build Services in each child.
    set_services(build_services(_load()))
    _start_trimmer()


@signals.worker_init.connect
def _init_worker(**kwargs: Any) -> None:
    # Solo and thread pools never fork: build Services in the main process.
    sender = kwargs.get("sender")
    pool = getattr(getattr(sender, "pool_cls", None), "__module__", "")
    if _services is None and not pool.endswith("prefork"):
        set_services(build_services(_load()))
        _start_trimmer()


def _start_trimmer() -> None:
    global _trimmer  # noqa: PLW0603 - one per process, like _services
    if _trimmer is None:
        _trimmer = HeapTrimmer(_load().malloc_trim_seconds)
        _trimmer.start()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _close_services(**_: Any) -> None:
    global _trimmer  # noqa: PLW0603 - one per process, like _services
    if _trimmer is not None:
        _trimmer.stop()
        _trimmer = None
    if _services is not None:
        _services.close()
        set_services(None)


@signals.task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task_name=getattr(task, "name", None)
    )


@signals.task_postrun.connect
def _clear_task_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()
