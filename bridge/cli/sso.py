"""`bridge services sso SERVICE_ID`: an operator's single-use panel login link for
a service's account, minted like billing's (`bridge.sso.mint_sso`): audited with
the operator as actor, never logged. The link goes to stdout only (the expiry to
stderr), so `$(bridge services sso ID)` is just the link."""

import time

import click

from bridge.cli.context import CliContext
from bridge.cli.operator import cli_actor
from bridge.cli.output import emit_json
from bridge.sso import MAX_EXPIRES, MIN_EXPIRES, check_target_path, mint_sso


def _target_path(
    _: click.Context, __: click.Parameter, value: str | None
) -> str | None:
    try:
        return check_target_path(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("sso")
@click.argument("service_id")
@click.option(
    "--target-path",
    default=None,
    callback=_target_path,
    help="Panel-relative landing path, e.g. /files.",
)
@click.option(
    "--expires-in",
    type=click.IntRange(MIN_EXPIRES, MAX_EXPIRES),
    default=None,
    help="Link lifetime in seconds (default BRIDGE_SSO_LINK_SECONDS).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def sso_cmd(
    obj: CliContext,
    service_id: str,
    target_path: str | None,
    expires_in: int | None,
    as_json: bool,
) -> None:
    """Print a single-use link that logs into SERVICE_ID's panel account.

    Exits 1 when the service is unknown or not active, its server has no API key,
    or the panel cannot mint now (busy, down, credentials rejected).
    """
    link = mint_sso(
        obj.services,
        service_id,
        target_path=target_path,
        expires_in=expires_in,
        actor=cli_actor(),
        sleep=time.sleep,
    )
    expires_at = link.expires_at.isoformat() if link.expires_at else None
    if as_json:
        emit_json({"url": link.url, "expires_at": expires_at})
        return
    click.echo(link.url)
    click.echo(f"single use; expires at {expires_at}", err=True)
