"""Long-running process commands: `api`, `worker`, `beat`, `simulator`, `run`.

`worker` and `beat` exec Celery on `workers.celery_app` (bridge never imports workers);
`run` supervises all of them on the embedded defaults (see bridge.cli.embedded).
"""

import os
import sys

import click
import uvicorn

from bridge.cli.context import CliContext


@click.command()
@click.option("--host", default=None, help="Bind address (default BRIDGE_API_HOST).")
@click.option("--port", type=int, default=None, help="Port (default BRIDGE_API_PORT).")
@click.pass_obj
def api(obj: CliContext, host: str | None, port: int | None) -> None:
    """Serve the intake and admin HTTP API."""
    from bridge.api.app import create_app

    settings = obj.settings
    app = create_app(obj.services)
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
        access_log=False,
    )


def _exec_celery(args: list[str]) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "workers.celery_app:app", *args]
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process by design


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", "-c", type=int, default=None, help="Worker processes.")
@click.option("--pool", default="prefork", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def worker(
    obj: CliContext, concurrency: int | None, pool: str, celery_args: tuple[str, ...]
) -> None:
    """Run a Celery worker on the bridge queue (extra args go to Celery)."""
    _ = obj.settings  # fail fast, one clear line, before exec
    args = ["worker", "-Q", "bridge", "--pool", pool, "--without-gossip"]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    _exec_celery([*args, *celery_args])


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def beat(obj: CliContext, celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: the dispatcher tick and the sweeps."""
    _ = obj.settings
    schedule = obj.settings.var_dir / "celerybeat-schedule"
    obj.settings.var_dir.mkdir(parents=True, exist_ok=True)
    _exec_celery(["beat", "--schedule", str(schedule), *celery_args])


COMMANDS = [api, worker, beat]
