"""`bridge admin tokens …` (per-operator admin API tokens) and `bridge audit list`."""

import uuid

import click

from bridge import audit
from bridge.cli.context import CliContext
from bridge.cli.operator import cell, cli_actor, styled
from bridge.cli.orders_ops import optional_moment
from bridge.cli.output import emit_json, emit_table
from bridge.domain.roles import Role
from bridge.ops import issue_token, list_tokens, revoke_token

_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group()
def admin() -> None:
    """Administer the bridge's admin API."""


@admin.group()
def tokens() -> None:
    """Per-operator bearer tokens for /v1/admin (stored hashed)."""


@tokens.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.READ.value,
    show_default=True,
    help="read: list/show/audit; operate: also retry/cancel/resolve/sweeps; "
    "admin: also servers, tokens, secrets.",
)
@click.pass_obj
def create(obj: CliContext, name: str, role: str) -> None:
    """Create token NAME and print it once (it cannot be shown again).

    The role defaults to `read`: least privilege unless asked for more.
    """
    token = issue_token(obj.services, name, cli_actor(), role=Role(role))
    click.echo(token)
    click.echo(
        f"admin token {name!r} ({role}) created; store it now, it is not shown again",
        err=True,
    )


@tokens.command("list")
@_JSON
@click.pass_obj
def list_cmd(obj: CliContext, as_json: bool) -> None:
    """List tokens by name (never the tokens)."""
    rows = list_tokens(obj.services)
    if as_json:
        emit_json(rows)
        return
    emit_table(
        "admin tokens",
        ["name", "role", "state", "created", "last used", "revoked"],
        [
            [
                cell(r["name"]),
                r["role"],
                styled(r["state"]),
                (r["created_at"] or "")[:19],
                (r["last_used_at"] or "")[:19],
                (r["revoked_at"] or "")[:19],
            ]
            for r in rows
        ],
    )


@tokens.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke(obj: CliContext, name: str) -> None:
    """Revoke token NAME; requests with it get 401 from now on."""
    changed = revoke_token(obj.services, name, cli_actor())
    click.echo(f"admin token {name!r} " + ("revoked" if changed else "was revoked"))


@click.group("audit")
def audit_group() -> None:
    """The audit log: who did what to which order, server or token, and when."""


@audit_group.command("list")
@click.option("--since", default=None, help="ISO date/datetime, or 90d, 12h, 30m.")
@click.option("--actor", default=None, help="e.g. ops:alice, admin:bob, or ops.")
@click.option("--order", "order_uuid", type=click.UUID, default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@_JSON
@click.pass_obj
def audit_list(
    obj: CliContext,
    since: str | None,
    actor: str | None,
    order_uuid: uuid.UUID | None,
    limit: int,
    as_json: bool,
) -> None:
    """Audit entries, newest first."""
    since_at = optional_moment(obj, since, "since")
    with obj.services.sessions() as session:
        rows = audit.list_entries(
            session, since=since_at, actor=actor, order_uuid=order_uuid, limit=limit
        )
    if as_json:
        emit_json(rows)
        return
    emit_table(
        "audit log",
        ["at", "actor", "action", "order", "service", "before", "after", "detail"],
        [
            [
                r["at"][:19],
                cell(r["actor"]),
                r["action"],
                (r["order"] or "")[:8],
                cell(r["service_id"]),
                styled(r["before"]),
                styled(r["after"]),
                cell(_detail(r["detail"]), 70),
            ]
            for r in rows
        ],
    )


def _detail(detail: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in detail.items() if v not in (None, "", []))
