"""`bridge orders list|retry|cancel|resolve|purge`: the failed-jobs queue.

Mounted on the `orders` group by `bridge.cli.orders`. Each command parses its
options, calls one `bridge.ops` use case with the operator as actor, and prints.
"""

from collections.abc import Iterator
from datetime import datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bridge.cli.context import CliContext
from bridge.cli.operator import cell, cli_actor, styled
from bridge.cli.output import emit_json, emit_table
from bridge.domain.model import Action
from bridge.domain.states import OrderStatus
from bridge.errors import InvalidOrderError
from bridge.ops import (
    RetryOutcome,
    cancel_order,
    list_orders,
    parse_moment,
    purge_orders,
    resolve_order,
    retry_all_failed,
    retry_orders,
)
from bridge.ops.queries import MAX_PER_PAGE

_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def moment(obj: CliContext, text: str, option: str) -> datetime:
    """Parse an ISO date/datetime or a duration (90d, 12h) into a moment."""
    try:
        return parse_moment(text, obj.services.clock(), field=option)
    except InvalidOrderError as exc:
        raise click.BadParameter(exc.reason, param_hint=f"--{option}") from None


def optional_moment(obj: CliContext, text: str | None, option: str) -> datetime | None:
    return None if text is None else moment(obj, text, option)


_LIST_COLUMNS = (
    "id",
    "order_id",
    "service",
    "action",
    "status",
    "server",
    "tries",
    "failed step",
    "last error",
    "created",
)


@click.command("list")
@click.option("--status", type=click.Choice([s.value for s in OrderStatus]))
@click.option("--server", default=None, help="Server name.")
@click.option("--action", type=click.Choice([a.value for a in Action]))
@click.option("--since", default=None, help="ISO date/datetime, or 90d, 12h, 30m.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--per-page", type=click.IntRange(1, MAX_PER_PAGE), default=50, show_default=True
)
@_JSON
@click.pass_obj
def list_cmd(
    obj: CliContext,
    status: str | None,
    server: str | None,
    action: str | None,
    since: str | None,
    page: int,
    per_page: int,
    as_json: bool,
) -> None:
    """List orders, newest first (e.g. --status failed --since 24h)."""
    since_at = optional_moment(obj, since, "since")
    with obj.services.sessions() as session:
        rows, total = list_orders(
            session,
            status=OrderStatus(status) if status else None,
            server=server,
            action=Action(action) if action else None,
            since=since_at,
            page=page,
            per_page=per_page,
        )
    last_page = max(1, -(-total // per_page))
    if as_json:
        meta = {"total": total, "per_page": per_page, "current_page": page}
        emit_json({"data": rows, "meta": {**meta, "last_page": last_page}})
        return
    emit_table(
        f"orders (page {page}/{last_page}, {total} in all)",
        _LIST_COLUMNS,
        [
            [
                r["id"][:8],
                cell(r["order_id"]),
                cell(r["service_id"]),
                r["action"],
                styled(r["status"]),
                cell(r["server"]),
                r["attempts"],
                _failed_step(r["failed_step"], r["panel_status"]),
                cell(r["last_error"], 60),
                (r["created_at"] or "")[:19],
            ]
            for r in rows
        ],
    )


def _failed_step(kind: str | None, status: int | None) -> str:
    if kind is None:
        return ""
    return f"{kind} ({status})" if status else kind


@click.command("retry")
@click.argument("refs", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every failed order (filters below).")
@click.option("--server", default=None, help="With --all-failed: this server only.")
@click.option("--action", type=click.Choice([a.value for a in Action]))
@click.option("--since", default=None, help="With --all-failed: created since.")
@_JSON
@click.pass_obj
def retry_cmd(
    obj: CliContext,
    refs: tuple[str, ...],
    all_failed: bool,
    server: str | None,
    action: str | None,
    since: str | None,
    as_json: bool,
) -> None:
    """Queue failed orders again: IDs (bridge id or order_id) or --all-failed.

    Steps the panel refused (4xx) get a fresh Idempotency-Key; steps with an
    unknown outcome keep theirs. Exits 1 when any order was refused.
    """
    if bool(refs) == all_failed:
        msg = "give order IDs or --all-failed (not both)"
        raise click.UsageError(msg)
    if not all_failed and (server or action or since):
        msg = "--server, --action and --since filter --all-failed only"
        raise click.UsageError(msg)
    actor = cli_actor()
    services = obj.services
    if all_failed:
        outcomes = retry_all_failed(
            services,
            actor,
            server=server,
            action=Action(action) if action else None,
            since=optional_moment(obj, since, "since"),
        )
    else:
        outcomes = retry_orders(services, refs, actor)
    done = list(outcomes if as_json else _with_progress(outcomes))
    refused = [o for o in done if not o.ok]
    if as_json:
        emit_json(
            {
                "retried": [o.ref for o in done if o.ok],
                "refused": [{"order": o.ref, "error": o.error} for o in refused],
                "fresh_keys": sum(o.fresh_keys for o in done),
            }
        )
    else:
        _summary(done, refused)
    if refused:
        raise SystemExit(1)


def _with_progress(outcomes: Iterator[RetryOutcome]) -> Iterator[RetryOutcome]:
    columns = (
        TextColumn("retrying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("", total=None)
        for outcome in outcomes:
            progress.update(
                task,
                total=outcome.total,
                completed=outcome.index,
                description=cell(outcome.ref),
            )
            yield outcome


def _summary(done: list[RetryOutcome], refused: list[RetryOutcome]) -> None:
    if not done:
        click.echo("no failed orders matched")
        return
    retried = len(done) - len(refused)
    fresh = sum(o.fresh_keys for o in done)
    Console().print(
        f"[green]{retried} retried[/green] ({fresh} step(s) with a fresh key), "
        f"[red]{len(refused)} refused[/red]"
        if refused
        else f"[green]{retried} retried[/green] ({fresh} step(s) with a fresh key)"
    )
    if refused:
        emit_table(
            "refused",
            ["order", "reason"],
            [[cell(o.ref), cell(o.error)] for o in refused],
        )


@click.command("cancel")
@click.argument("ref")
@_JSON
@click.pass_obj
def cancel_cmd(obj: CliContext, ref: str, as_json: bool) -> None:
    """Cancel a queued, waiting, awaiting-capacity or failed order (billing is told)."""
    view = cancel_order(obj.services, ref, cli_actor())
    if as_json:
        emit_json({"order": view})
        return
    click.echo(f"order {view['order_id']} cancelled")


@click.command("resolve")
@click.argument("ref")
@click.option("--note", required=True, help="What was fixed by hand (audited).")
@_JSON
@click.pass_obj
def resolve_cmd(obj: CliContext, ref: str, note: str, as_json: bool) -> None:
    """Mark a failed order completed because it was fixed by hand."""
    view = resolve_order(obj.services, ref, cli_actor(), note)
    if as_json:
        emit_json({"order": view})
        return
    click.echo(f"order {view['order_id']} resolved (completed by hand)")


@click.command("purge")
@click.option(
    "--older-than", required=True, help="Finished before: 90d, 12h or an ISO date."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_JSON
@click.pass_obj
def purge_cmd(obj: CliContext, older_than: str, yes: bool, as_json: bool) -> None:
    """Wipe payloads, bodies, responses and secrets of completed and cancelled
    orders (rows, statuses and the audit log stay; failed orders are kept)."""
    cutoff = moment(obj, older_than, "older-than")
    if not yes:
        click.confirm(
            f"wipe the data of orders finished before {cutoff.isoformat()}?",
            abort=True,
            # A prompt is not output: stdout carries the result (JSON with --json).
            err=True,
        )
    result = purge_orders(obj.services, cutoff, cli_actor())
    if as_json:
        emit_json(
            {
                "older_than": cutoff.isoformat(),
                "orders": result.orders,
                "steps": result.steps,
            }
        )
        return
    click.echo(
        f"purged {result.orders} order(s) and {result.steps} step(s) "
        f"finished before {cutoff.isoformat()}"
    )


COMMANDS = (list_cmd, retry_cmd, cancel_cmd, resolve_cmd, purge_cmd)
