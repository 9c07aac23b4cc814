"""`bridge servers …`: register and list panels (credentials never printed)."""

import click
from sqlalchemy import select

from bridge.cli.context import CliContext
from bridge.cli.output import emit_json, emit_table
from bridge.db.models import Server
from bridge.domain.model import AuthMode, ServerState
from bridge.fleet import ServerSpec, describe_server, save_server


@click.group()
def servers() -> None:
    """Manage the WisPanel servers the bridge provisions on."""


@servers.command("add")
@click.argument("name")
@click.option("--url", required=True, help="Panel base URL, e.g. https://host:3082")
@click.option("--api-key", default=None, help="wsp_… key (api_key mode).")
@click.option("--username", default=None, help="Login mode: username.")
@click.option("--password", default=None, help="Login mode: password.")
@click.option("--totp-secret", default=None, help="Login mode: TOTP secret.")
@click.option("--force-login", is_flag=True, help="Send force=true on login.")
@click.option("--limit", type=int, default=60, show_default=True, help="Requests/min.")
@click.option("--group", default="default", show_default=True)
@click.option("--capacity", type=int, default=None, help="Max accounts.")
@click.option("--ca-bundle", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--tls-fingerprint", default=None, help="Pinned SHA-256 of the cert.")
@click.option(
    "--state",
    type=click.Choice([s.value for s in ServerState]),
    default=ServerState.ACTIVE.value,
    show_default=True,
)
@click.pass_obj
def add(
    obj: CliContext,
    name: str,
    url: str,
    api_key: str | None,
    username: str | None,
    password: str | None,
    totp_secret: str | None,
    force_login: bool,
    limit: int,
    group: str,
    capacity: int | None,
    ca_bundle: str | None,
    tls_fingerprint: str | None,
    state: str,
) -> None:
    """Add (or replace) server NAME; credentials are stored encrypted."""
    if bool(api_key) == bool(username):
        msg = "give either --api-key or --username/--password"
        raise click.UsageError(msg)
    spec = ServerSpec(
        name=name,
        base_url=url,
        auth_mode=AuthMode.API_KEY if api_key else AuthMode.LOGIN,
        api_key=api_key,
        username=username,
        password=password,
        totp_secret=totp_secret,
        force_login=force_login,
        rate_limit_per_min=limit,
        group=group,
        capacity=capacity,
        ca_bundle=ca_bundle,
        tls_fingerprint=tls_fingerprint,
        state=ServerState(state),
    )
    services = obj.services
    with services.sessions.begin() as session:
        save_server(session, services.box, spec)
    click.echo(f"server {name} saved")


@servers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def list_servers(obj: CliContext, as_json: bool) -> None:
    """List servers (never their credentials)."""
    with obj.services.sessions() as session:
        rows = [
            describe_server(s)
            for s in session.scalars(select(Server).order_by(Server.name))
        ]
    if as_json:
        emit_json(rows)
        return
    columns = ["name", "url", "auth_mode", "group", "state", "rate_limit_per_min"]
    emit_table("servers", columns, [[r[c] for c in columns] for r in rows])
