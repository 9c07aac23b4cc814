"""`bridge usage show|sync`: a service's latest disk/bandwidth figures, and a
collection run now (waiting for the usage share of each server's budget)."""

import time

import click
from sqlalchemy import select

from bridge.cli.context import CliContext
from bridge.cli.operator import cell
from bridge.cli.output import emit_json, emit_table
from bridge.db.models import Server
from bridge.domain.model import ServerState
from bridge.errors import BridgeError, ConfigurationError, NotFoundError
from bridge.usage import (
    UsageCollectionError,
    UsageProgress,
    UsageRunBusyError,
    service_usage,
    sync_server,
)

_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group()
def usage() -> None:
    """Disk and bandwidth usage collected from the panels."""


@usage.command("show")
@click.argument("service_id")
@_JSON
@click.pass_obj
def show(obj: CliContext, service_id: str, as_json: bool) -> None:
    """The latest figures of SERVICE_ID."""
    with obj.services.sessions() as session:
        view = service_usage(session, service_id)
    if as_json:
        emit_json(view)
        return
    row = view["usage"]
    if row is None:
        click.echo(f"no usage collected yet for {service_id}")
        return
    fields = [
        "server",
        "username",
        "disk_used_mb",
        "bandwidth_used_mb",
        "period_start",
        "measured_at",
        "collected_at",
    ]
    emit_table(
        f"usage of {service_id}",
        ["field", "value"],
        [[f, cell(row[f])] for f in fields],
    )


@usage.command("sync")
@click.option("--server", "server_name", default=None, help="Only this server.")
@_JSON
@click.pass_obj
def sync(obj: CliContext, server_name: str | None, as_json: bool) -> None:
    """Collect usage now from one server (or every server not disabled).

    Exits 1 when a server's collection failed (e.g. its panel has no usage
    endpoint, a run already holds it, its client cannot be built), after trying
    the others; --json still prints what was collected, with the errors.
    """
    services = obj.services
    if server_name is None:
        with services.sessions() as session:
            names = list(
                session.scalars(
                    select(Server.name)
                    .where(Server.state != ServerState.DISABLED)
                    .order_by(Server.name)
                )
            )
    else:
        names = [server_name]

    def progress(step: UsageProgress) -> None:
        if not as_json and step.stored:
            click.echo(f"{step.server}: {step.stored} more service(s) stored", err=True)

    results: dict[str, int] = {}
    errors: dict[str, str] = {}
    for name in names:
        # One server's failure (no usage endpoint, panel down, a run already
        # holding it, a client that cannot be built) does not stop the others;
        # the command still exits 1 naming it.
        try:
            results[name] = sync_server(
                services, name, sleep=time.sleep, on_step=progress
            )
        except (UsageCollectionError, UsageRunBusyError, NotFoundError) as exc:
            errors[name] = str(exc)  # these name the server already
        except ConfigurationError as exc:
            errors[name] = f"server {name}: configuration error: {exc}"
        except BridgeError as exc:
            errors[name] = f"server {name}: {exc}"
    if as_json:
        emit_json({"servers": results} | ({"errors": errors} if errors else {}))
    else:
        for name, stored in results.items():
            click.echo(f"{name}: usage stored for {stored} service(s)")
        for error in errors.values():
            click.echo(f"error: {error}", err=True)
    if errors:
        raise SystemExit(1)
