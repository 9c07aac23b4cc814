"""`bridge sweep …`: run or preview a suspension/termination sweep; recent runs.

Beat runs the sweeps on its own; operators use these to preview (`--dry-run`), to
release a tripped blast-radius guard once they have checked billing (`--confirm`),
and to see what the last runs did (`status`).
"""

import getpass
from datetime import date, datetime
from typing import Any

import click

from bridge.cli.context import CliContext
from bridge.cli.output import emit_json, emit_table
from bridge.sweeps import SweepKind, SweepReport, recent_runs, run_sweep


@click.group()
def sweep() -> None:
    """Suspension and termination sweeps (Celery beat runs them on schedule)."""


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"


# The sweeps subtract the grace period from --today: a day near year 1 made that
# overflow (a traceback); no billing record is older than the epoch.
_FIRST_DAY = date(1970, 1, 1)


def _check_today(
    ctx: click.Context, param: click.Parameter, value: datetime | None
) -> datetime | None:
    if value is not None and value.date() < _FIRST_DAY:
        msg = f"{value.date()} is before {_FIRST_DAY}"
        raise click.BadParameter(msg, ctx, param)
    return value


def _report_json(report: SweepReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "today": report.today.isoformat(),
        "enabled": report.enabled,
        "dry_run": report.dry_run,
        "candidates": report.candidates,
        "active_services": report.fleet,
        "orders_created": report.orders_created,
        "tripped": report.tripped,
        "confirmed_by": report.confirmed_by,
        "run_id": report.run_id,
        "preview": [
            {
                "service_id": d.service_id,
                "server": d.server,
                "reason": "non_payment",
                "due_date": d.due_date.isoformat(),
            }
            for d in report.preview
        ],
    }


def _print_report(report: SweepReport) -> None:
    if report.dry_run:
        emit_table(
            f"{report.kind} sweep dry run as of {report.today}",
            ["service", "server", "reason", "due date"],
            [
                (d.service_id, d.server, "non_payment", d.due_date)
                for d in report.preview
            ],
        )
        if report.candidates > len(report.preview):
            click.echo(f"... and {report.candidates - len(report.preview)} more")
    if not report.enabled:
        click.echo(f"the {report.kind} sweep is disabled in the settings")
        if not report.dry_run:
            return
    found = f"{report.kind}: {report.candidates} due of {report.fleet} services"
    if report.dry_run:
        click.echo(f"{found}; nothing done (dry run)")
    elif report.tripped:
        click.echo(f"{found}; nothing done")
    else:
        click.echo(f"{found}; {report.orders_created} orders created")
    if report.tripped:
        would = "would refuse" if report.dry_run else "refused"
        click.echo(
            f"blast-radius guard {would} this run: too large a share of the fleet "
            f"is due. Check billing, then `bridge sweep {report.kind} --confirm`."
        )


def _sweep_command(kind: SweepKind, summary: str) -> click.Command:
    @click.command(name=kind, help=summary)
    @click.option(
        "--dry-run", is_flag=True, help="List what would happen; act on nothing."
    )
    @click.option(
        "--confirm",
        is_flag=True,
        help="Act even when the blast-radius guard trips (this run only).",
    )
    @click.option(
        "--today",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        callback=_check_today,
        help=f"Run as of this UTC day, {_FIRST_DAY} or later (default: today).",
    )
    @click.option(
        "--operator",
        default=_operator,
        show_default="login name",
        help="Who runs it, for the audit log (as ops:NAME).",
    )
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=1000,
        show_default=True,
        help="Dry run: candidates listed at most.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_obj
    def command(
        obj: CliContext,
        dry_run: bool,
        confirm: bool,
        today: datetime | None,
        operator: str,
        limit: int,
        as_json: bool,
    ) -> None:
        if dry_run and confirm:
            msg = "give at most one of --dry-run and --confirm"
            raise click.UsageError(msg)
        day: date | None = today.date() if today else None
        report = run_sweep(
            obj.services,
            kind,
            today=day,
            dry_run=dry_run,
            confirm=confirm,
            actor=f"ops:{operator}",
            preview_limit=limit,
        )
        if as_json:
            emit_json(_report_json(report))
        else:
            _print_report(report)
        if report.tripped and not report.dry_run:
            msg = f"{kind} sweep refused by the blast-radius guard"
            raise click.ClickException(msg)

    return command


sweep.add_command(
    _sweep_command("suspend", "Suspend services overdue past the grace period.")
)
sweep.add_command(
    _sweep_command(
        "terminate", "Terminate services suspended for non-payment past the delay."
    )
)


@sweep.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(obj: CliContext, limit: int, as_json: bool) -> None:
    """The latest sweep runs, newest first (guard trips included)."""
    runs = recent_runs(obj.services, limit)
    if as_json:
        emit_json(runs)
        return
    emit_table(
        "sweep runs",
        ["id", "kind", "started", "due", "services", "orders", "guard", "mode"],
        [
            (
                r["id"],
                r["kind"],
                r["started_at"][:19],
                r["candidates"],
                r["active_services"],
                r["orders_created"],
                "TRIPPED" if r["tripped"] else "ok",
                _mode(r),
            )
            for r in runs
        ],
    )


def _mode(run: dict[str, Any]) -> str:
    if run["dry_run"]:
        return "dry run"
    if run["confirmed_by"]:
        return f"confirmed by {run['confirmed_by']}"
    return ""
