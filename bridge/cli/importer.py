"""`bridge servers import` (existing panel accounts -> managed services) and
`bridge services link` (an imported placeholder id -> billing's service id);
`bridge services sso` is added here from bridge.cli.sso."""

import time
from pathlib import Path
from typing import Any

import click

from bridge.cli.context import CliContext
from bridge.cli.operator import cell, cli_actor, styled
from bridge.cli.output import emit_json, emit_table
from bridge.cli.sso import sso_cmd
from bridge.ops.import_map import load_mapping
from bridge.ops.importer import import_accounts
from bridge.ops.linking import link_service

_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _progress(kind: str, data: dict[str, Any]) -> None:
    """Progress on stderr, so `--json` output on stdout stays one document."""
    if kind == "read":
        click.echo(
            f"read {data['what']}: page {data['page']}/{data['last_page']}", err=True
        )
    elif kind == "wait":
        click.echo(
            f"panel budget: waiting {data['seconds']}s ({data['what']})", err=True
        )
    elif kind == "account":
        reason = f" ({data['reason']})" if data.get("reason") else ""
        role = " (reseller)" if data.get("role") == "reseller" else ""
        click.echo(f"{data['username']}{role}: {data['result']}{reason}", err=True)


@click.command("import")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Report what would be imported.")
@click.option(
    "--map",
    "map_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="username -> billing service id: CSV 'username,service_id' or a JSON object.",
)
@_JSON
@click.pass_obj
def import_cmd(
    obj: CliContext, name: str, dry_run: bool, map_file: Path | None, as_json: bool
) -> None:
    """Record the existing hosting users and resellers of server NAME as managed
    services (resellers with the reseller role).

    Unmapped accounts get the id import:NAME:USERNAME (link them later with
    `bridge services link`). The panel's admin accounts are skipped. Safe to
    re-run: what is recorded stays as it is; an interrupted run continues.
    """
    mapping = load_mapping(map_file) if map_file else None
    report = import_accounts(
        obj.services,
        name,
        cli_actor(),
        mapping=mapping,
        dry_run=dry_run,
        sleep=time.sleep,
        progress=None if as_json else _progress,
    )
    if as_json:
        emit_json(report)
        return
    emit_table(
        f"import from {name}" + (" (dry run)" if dry_run else ""),
        [
            "username",
            "role",
            "service_id",
            "panel",
            "result",
            "domains",
            "mailboxes",
            "note",
        ],
        [
            [
                cell(a["username"]),
                cell(a["role"]),
                cell(a["service_id"]),
                styled(a["status"]),
                cell(a["result"]),
                cell(", ".join(a["domains"]), 40),
                a["mailboxes"],
                cell(a.get("reason")),
            ]
            for a in report["accounts"]
        ],
    )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report["counts"].items()))
    click.echo(f"{counts or 'no accounts'}")
    if report["unmapped"]:
        click.echo(
            f"map entries with no panel account: {', '.join(report['unmapped'])}"
        )


@click.group("services")
def services_group() -> None:
    """Services the bridge manages (imported accounts, panel login links)."""


services_group.add_command(sso_cmd)


@services_group.command("link")
@click.argument("service_id")
@click.argument("new_id")
@_JSON
@click.pass_obj
def link(obj: CliContext, service_id: str, new_id: str, as_json: bool) -> None:
    """Rename imported SERVICE_ID (import:…) to billing's NEW_ID, orders included."""
    view = link_service(obj.services, service_id, new_id, cli_actor())
    if as_json:
        emit_json({"service": view})
        return
    click.echo(f"service {service_id} is now {view['service_id']}")
