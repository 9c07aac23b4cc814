"""Long-running process commands: `api`, `worker`, `beat`, `simulator`, `run`.

`worker` and `beat` exec Celery on `workers.celery_app` (bridge never imports workers);
`run` supervises all of them on the embedded defaults (see bridge.cli.embedded).
"""

import os
import shutil
import sys
from typing import TYPE_CHECKING

import click

from bridge.cli.context import CliContext
from bridge.cli.supervise import supervise, worker_processes
from bridge.logging import configure_logging
from bridge.settings import Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

# The default pool of `bridge worker` (and `bridge run`): threads. A worker spends
# nearly all of a task waiting on a panel (or the DB), so a slow panel must hold a
# cheap thread, not one of a few processes every other panel needs; the GIL costs
# little when the work is I/O. docs/benchmarks.md has the prefork/threads figures.
DEFAULT_POOL = "threads"
DEFAULT_THREADS = 16
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve_app() -> "FastAPI":
    """uvicorn factory for `bridge api --workers N`: each process builds its own."""
    from bridge.api.app import create_app
    from bridge.container import build_services

    settings, _ = load_settings()
    configure_logging(settings)
    services = build_services(settings)
    app = create_app(services)
    app.router.on_shutdown.append(services.close)
    return app


def _metrics_dir(settings: Settings) -> None:
    """Several API processes: counters must be merged across them at scrape time.

    With no PROMETHEUS_MULTIPROC_DIR set, use a private one under var_dir, emptied
    first (stale files of a previous run would be counted again).
    """
    if os.environ.get(MULTIPROC_ENV):
        return
    path = (settings.var_dir / "metrics-api").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


@click.command()
@click.option("--host", default=None, help="Bind address (default BRIDGE_API_HOST).")
@click.option("--port", type=int, default=None, help="Port (default BRIDGE_API_PORT).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="API processes (metrics are merged across them).",
)
@click.pass_obj
def api(obj: CliContext, host: str | None, port: int | None, workers: int) -> None:
    """Serve the intake and admin HTTP API."""
    import uvicorn  # only this command serves HTTP

    settings = obj.settings
    target: FastAPI | str
    if workers == 1:
        from bridge.api.app import create_app

        target = create_app(obj.services)
    else:
        _metrics_dir(settings)
        target = "bridge.cli.processes:serve_app"
    uvicorn.run(
        target,
        host=host or settings.api_host,
        port=port or settings.api_port,
        factory=workers > 1,
        workers=workers,
        log_config=None,
        access_log=False,
    )


def _celery_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app:app", *args]


def _exec_celery(args: list[str]) -> None:
    argv = _celery_argv(args)
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process by design


def _names_a_node(celery_args: tuple[str, ...]) -> bool:
    return any(
        a in ("-n", "--hostname") or a.startswith(("-n", "--hostname="))
        for a in celery_args
    )


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--concurrency",
    "-c",
    type=int,
    default=None,
    help=f"Pool size (default {DEFAULT_THREADS} threads; CPUs for prefork).",
)
@click.option(
    "--pool",
    type=click.Choice(["threads", "prefork", "solo"]),
    default=DEFAULT_POOL,
    show_default=True,
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes, each with its own pool (default "
    "BRIDGE_WORKER_PROCESSES, else for threads one per CPU, at most 4; else 1).",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def worker(
    obj: CliContext,
    concurrency: int | None,
    pool: str,
    processes: int | None,
    celery_args: tuple[str, ...],
) -> None:
    """Run Celery workers on the bridge queue (extra args go to Celery)."""
    settings = obj.settings  # fail fast, one clear line, before exec
    args = ["worker", "-Q", "bridge", "--pool", pool, "--without-gossip"]
    if concurrency is None and pool == "threads":
        concurrency = DEFAULT_THREADS
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    count = worker_processes(processes or settings.worker_processes, pool)
    if count == 1:
        _exec_celery([*args, *celery_args])
        return
    if _names_a_node(celery_args):
        msg = "with several processes, bridge worker names them (bridge1@%h, ...)"
        raise click.UsageError(msg)
    # One process per core: a process's Python runs under one GIL, and a fleet's
    # worth of orders saturates it (see bridge.cli.supervise).
    commands = [
        _celery_argv([*args, "-n", f"bridge{i}@%h", *celery_args])
        for i in range(1, count + 1)
    ]
    sys.exit(supervise(commands))


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def beat(obj: CliContext, celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: the dispatcher tick and the sweeps."""
    _ = obj.settings
    schedule = obj.settings.var_dir / "celerybeat-schedule"
    obj.settings.var_dir.mkdir(parents=True, exist_ok=True)
    _exec_celery(["beat", "--schedule", str(schedule), *celery_args])
