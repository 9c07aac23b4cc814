"""`bridge servers …`: add, edit, list, test, drain, remove panels (audited;
credentials are write-only and never printed)."""

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import click

from bridge.cli import importer
from bridge.cli.context import CliContext
from bridge.cli.operator import cell, cli_actor, styled
from bridge.cli.output import emit_json, emit_table
from bridge.db.servers import get_server_by_name
from bridge.domain.model import AuthMode, ServerState
from bridge.errors import InvalidOrderError
from bridge.fleet import (
    CAPACITY_MAX,
    CAPACITY_MIN,
    RATE_LIMIT_MAX,
    RATE_LIMIT_MIN,
    ServerSpec,
    ca_bundle_problem,
    check_credential,
    check_route_overrides,
)
from bridge.ops import (
    ServerChanges,
    add_server,
    drain_server,
    edit_server,
    list_servers,
    probe_server,
    remove_server,
    server_detail,
)
from bridge.packages import cached_packages, refresh_packages
from bridge.ratelimit import short_waits
from bridge.webhook_subscriptions import CLI_MAX_BUDGET_WAIT_SECONDS

_STATES = click.Choice([s.value for s in ServerState])
_FROM_PROMPT = "-"
_LIMIT = click.IntRange(RATE_LIMIT_MIN, RATE_LIMIT_MAX)
_CAPACITY = click.IntRange(CAPACITY_MIN, CAPACITY_MAX)


def _ca_bundle(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """--ca-bundle must load as a CA bundle (as save_server checks it)."""
    if value:
        problem = ca_bundle_problem(value)
        if problem is not None:
            raise click.BadParameter(problem, param=param)
    return value


_CA_BUNDLE = click.option(
    "--ca-bundle",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    callback=_ca_bundle,
    help="PEM file of the CA(s) that signed the panel's certificate.",
)


def _secret_from_prompt(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """A credential given as `-` is asked for at a hidden prompt (or read from stdin).

    A value on the command line is readable by every local user (`ps`) while the
    command runs, and stays in the shell's history: `-` keeps it off both.
    The value is checked as the API checks it (`check_credential`), so one the
    panel client could not send is a usage error naming the option.
    """
    secret = _read_secret(param, value)
    if secret:
        try:
            check_credential(param.name or "", secret)
        except InvalidOrderError as exc:
            raise click.BadParameter(exc.reason, param=param) from None
    return secret


def _read_secret(param: click.Parameter, value: str | None) -> str | None:
    if value != _FROM_PROMPT:
        return value
    label = (param.name or "secret").replace("_", " ")
    if not sys.stdin.isatty():  # piped: one line, no terminal to hide it on
        entered = sys.stdin.readline().rstrip("\r\n")
        if not entered:
            msg = f"'-' reads the {label} from standard input, which gave none"
            raise click.BadParameter(msg, param=param)
        return entered
    typed: str = click.prompt(label, hide_input=True, err=True)
    return typed


_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
# Login-mode credentials, as `add` and `edit` take them.
_USERNAME = click.option("--username", default=None, help="Login mode: username.")
_PASSWORD = click.option(
    "--password",
    default=None,
    callback=_secret_from_prompt,
    help="Login mode: password. '-': ask for it, off the command line.",
)
_TOTP_SECRET = click.option(
    "--totp-secret",
    default=None,
    callback=_secret_from_prompt,
    help="Login mode: TOTP secret. '-': ask for it, off the command line.",
)
_ROUTE_OVERRIDE = click.option(
    "--route-override",
    "route_override",
    multiple=True,
    metavar="OP=METHOD:PATH",
    help=(
        "Use another panel route for operation OP (e.g. "
        "list_usage=GET:/api/v1/stats/usage; METHOD: is optional); OP= drops it. "
        "Repeatable."
    ),
)


@click.group()
def servers() -> None:
    """Manage the WisPanel servers the bridge provisions on."""


servers.add_command(importer.import_cmd)


@servers.command("add")
@click.argument("name")
@click.option("--url", required=True, help="Panel base URL, e.g. https://host:3082")
@click.option(
    "--api-key",
    default=None,
    callback=_secret_from_prompt,
    help="wsp_… key (api_key mode). '-': ask for it, off the command line.",
)
@_USERNAME
@_PASSWORD
@_TOTP_SECRET
@click.option("--force-login", is_flag=True, help="Send force=true on login.")
@click.option(
    "--limit", type=_LIMIT, default=60, show_default=True, help="Requests/min."
)
@click.option("--group", default="default", show_default=True)
@click.option("--capacity", type=_CAPACITY, default=None, help="Max accounts.")
@_CA_BUNDLE
@click.option("--tls-fingerprint", default=None, help="Pinned SHA-256 of the cert.")
@click.option("--state", type=_STATES, default="active", show_default=True)
@click.option(
    "--webhooks/--no-webhooks",
    default=False,
    show_default=True,
    help="Subscribe to the panel's ssl.issued/user.* events (BRIDGE_PUBLIC_URL).",
)
@_ROUTE_OVERRIDE
@_JSON
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
    webhooks: bool,
    route_override: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add (or replace) server NAME; credentials are stored encrypted."""
    if bool(api_key) == bool(username):
        msg = "give either --api-key or --username/--password"
        raise click.UsageError(msg)
    routes = {
        op: entry
        for op, entry in _route_overrides(route_override).items()
        if entry is not None
    }
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
        webhooks=webhooks,
        route_overrides=routes,
    )
    view = add_server(obj.services, spec, cli_actor(), sleep=_webhook_waits())
    if as_json:  # as `edit --json`: the view, the webhook outcome under "webhook"
        emit_json({"server": view})
        return
    click.echo(f"server {name} saved")
    _echo_webhook(view["webhook"])


def _webhook_waits() -> Callable[[float], None]:
    """The panel (un)subscription waits a few seconds for the shared budget, so
    an edit right after another call does not give up on a 0.2 s wait."""
    return short_waits(CLI_MAX_BUDGET_WAIT_SECONDS)


def _echo_webhook(report: dict[str, Any]) -> None:
    if report.get("error"):
        click.echo(f"webhooks: not subscribed: {report['error']}", err=True)
    elif report.get("subscribed"):
        click.echo(f"webhooks: subscribed ({report.get('id')})")
    elif report.get("enabled") or report.get("note") == "unsubscribed":
        click.echo(f"webhooks: {report.get('note')}")


def _route_overrides(values: tuple[str, ...]) -> dict[str, dict[str, str] | None]:
    """--route-override OP=METHOD:PATH | OP=PATH | OP= (drop OP's override).

    Checked against the route table here, so a mistake names the option.
    """
    parsed: dict[str, dict[str, str] | None] = {}
    for value in values:
        operation, sep, rest = value.partition("=")
        if not sep or not operation:
            msg = f"{value!r}: expected OP=METHOD:PATH (or OP= to drop it)"
            raise click.BadParameter(msg, param_hint="--route-override")
        if not rest:
            parsed[operation] = None
            continue
        method, colon, path = rest.partition(":")
        if rest.startswith("/"):
            parsed[operation] = {"path": rest}
        elif colon and method.isalpha():
            parsed[operation] = {"method": method.upper(), "path": path}
        else:
            msg = f"{value!r}: expected OP=METHOD:PATH, e.g. list_usage=GET:/usage/"
            raise click.BadParameter(msg, param_hint="--route-override")
    _check_routes({k: v for k, v in parsed.items() if v is not None})
    return parsed


def _check_routes(routes: Mapping[str, Mapping[str, str]]) -> None:
    try:
        check_route_overrides(routes)
    except InvalidOrderError as exc:
        raise click.BadParameter(exc.reason, param_hint="--route-override") from None


def _capacity(value: str | None) -> tuple[int | None, bool]:
    """--capacity N, or `none` for no limit of our own (the license still counts)."""
    if value is None:
        return None, False
    if value.lower() in {"none", "unlimited"}:
        return None, True
    if not value.isascii() or not value.isdigit():
        msg = "a number of accounts, or 'none'"
        raise click.BadParameter(msg, param_hint="--capacity")
    try:
        return _CAPACITY.convert(int(value), None, None), False
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="--capacity") from None


@servers.command("edit")
@click.argument("name")
@click.option("--url", default=None, help="Panel base URL.")
@click.option(
    "--api-key",
    default=None,
    callback=_secret_from_prompt,
    help="New key (switches to api_key mode). '-': ask for it, off the command line.",
)
@_USERNAME
@_PASSWORD
@_TOTP_SECRET
@click.option("--force-login/--no-force-login", default=None)
@click.option("--limit", type=_LIMIT, default=None, help="Requests/min.")
@click.option("--group", default=None)
@click.option("--capacity", default=None, help="Max accounts, or 'none'.")
@_CA_BUNDLE
@click.option("--tls-fingerprint", default=None, help="Pinned SHA-256 of the cert.")
@click.option("--system-tls", is_flag=True, help="Drop the CA bundle and the pin.")
@click.option("--state", type=_STATES, default=None)
@click.option("--webhooks/--no-webhooks", default=None, help="Panel events on/off.")
@_ROUTE_OVERRIDE
@click.option(
    "--no-route-overrides",
    is_flag=True,
    help="Drop every route override first (back to the contract's routes).",
)
@_JSON
@click.pass_obj
def edit(
    obj: CliContext,
    name: str,
    url: str | None,
    api_key: str | None,
    username: str | None,
    password: str | None,
    totp_secret: str | None,
    force_login: bool | None,
    limit: int | None,
    group: str | None,
    capacity: str | None,
    ca_bundle: str | None,
    tls_fingerprint: str | None,
    system_tls: bool,
    state: str | None,
    webhooks: bool | None,
    route_override: tuple[str, ...],
    no_route_overrides: bool,
    as_json: bool,
) -> None:
    """Change only the given fields of server NAME (credentials only if given)."""
    cap, clear_cap = _capacity(capacity)
    clear = {"capacity"} if clear_cap else set()
    if system_tls:
        clear |= {"ca_bundle", "tls_fingerprint"}
    if no_route_overrides:
        clear.add("route_overrides")
    routes = _route_overrides(route_override)
    changes = ServerChanges(
        url=url,
        api_key=api_key,
        username=username,
        password=password,
        totp_secret=totp_secret,
        force_login=force_login,
        rate_limit_per_min=limit,
        group=group,
        capacity=cap,
        ca_bundle=ca_bundle,
        tls_fingerprint=tls_fingerprint,
        state=ServerState(state) if state else None,
        webhooks=webhooks,
        routes=routes,
        clear=frozenset(clear),
    )
    view = edit_server(obj.services, name, changes, cli_actor(), sleep=_webhook_waits())
    if as_json:
        emit_json({"server": view})
        return
    click.echo(f"server {name} saved ({view['state']})")
    _echo_webhook(view["webhook"])


@servers.command("list")
@_JSON
@click.pass_obj
def list_cmd(obj: CliContext, as_json: bool) -> None:
    """List servers (never their credentials)."""
    with obj.services.sessions() as session:
        rows = list_servers(session)
    if as_json:
        emit_json(rows)
        return
    columns = ["name", "url", "auth_mode", "group", "state", "rate_limit_per_min"]
    emit_table(
        "servers",
        [*columns, "capacity", "license", "credentials", "routes"],
        [
            [
                *(styled(r[c]) if c == "state" else cell(r[c]) for c in columns),
                r["capacity"],
                r["license_max_users"],
                # Orders wait with panel_auth until `servers test` or `edit`.
                "REJECTED" if r["auth_error"] else "ok",
                _routes_cell(r["route_overrides"]),
            ]
            for r in rows
        ],
    )


def _routes_cell(overrides: Mapping[str, Any]) -> str:
    """The operations given their own route (`servers show` has the paths)."""
    if not overrides:
        return "default"
    return cell("overridden: " + ", ".join(sorted(overrides)))


@servers.command("show")
@click.argument("name")
@_JSON
@click.pass_obj
def show(obj: CliContext, name: str, as_json: bool) -> None:
    """One server's settings and state (never its credentials)."""
    with obj.services.sessions() as session:
        view = server_detail(get_server_by_name(session, name))
    if as_json:
        emit_json({"server": view})
        return
    routes = view.pop("route_overrides")
    rows = [[key, cell(value)] for key, value in view.items()]
    rows += [
        [
            f"route {op}",
            cell(
                f"{entry.get('method', '(default)')} {entry.get('path', '(default)')}"
            ),
        ]
        for op, entry in sorted(routes.items())
    ]
    emit_table(f"server {name}", ["field", "value"], rows)


@servers.command("drain")
@click.argument("name")
@click.pass_obj
def drain(obj: CliContext, name: str) -> None:
    """No new accounts on NAME; its existing accounts are still managed."""
    drain_server(obj.services, name, cli_actor(), sleep=_webhook_waits())
    click.echo(f"server {name} is draining")


@servers.command("remove")
@click.argument("name")
@_JSON
@click.pass_obj
def remove(obj: CliContext, name: str, as_json: bool) -> None:
    """Remove server NAME; refused while services or orders refer to it."""
    warning = remove_server(obj.services, name, cli_actor(), sleep=_webhook_waits())
    if as_json:  # the warning (the panel kept the subscription) or null
        emit_json({"removed": name, "warning": warning})
        return
    click.echo(f"server {name} removed")
    if warning:
        click.echo(f"warning: {warning}", err=True)


@servers.command("test")
@click.argument("name")
@_JSON
@click.pass_obj
def test(obj: CliContext, name: str, as_json: bool) -> None:
    """TestConnection: reachability, TLS, auth, version, license, rate limits.

    Waits for the server's shared budget if needed. Exits 1 when the test fails.
    """
    report = probe_server(obj.services, name, cli_actor(), sleep=time.sleep)
    if as_json:
        emit_json(report)
    else:
        _print_report(report)
    if not report["ok"]:
        raise SystemExit(1)


@servers.command("packages")
@click.argument("name")
@click.option("--refresh", is_flag=True, help="Read the list from the panel first.")
@_JSON
@click.pass_obj
def packages_cmd(obj: CliContext, name: str, refresh: bool, as_json: bool) -> None:
    """The packages (plans) of server NAME, from the cache (`servers test` and a
    scheduled refresh fill it; --refresh reads the panel now)."""
    services = obj.services
    if refresh:
        refresh_packages(services, name, sleep=time.sleep)
    with services.sessions() as session:
        listed = cached_packages(session, get_server_by_name(session, name))
    refreshed = listed.refreshed_at.isoformat() if listed.refreshed_at else None
    if as_json:
        emit_json(
            {
                "server": listed.server,
                "refreshed_at": refreshed,
                "packages": list(listed.packages),
            }
        )
        return
    if not listed.packages:
        click.echo(
            f"no cached packages for {name}: run `bridge servers packages "
            f"{name} --refresh` or `bridge servers test {name}`"
        )
        return
    columns = ["name", "disk_quota_mb", "bandwidth_quota_mb", "max_domains"]
    emit_table(
        f"packages on {name} (read {refreshed})",
        columns,
        [[cell(p.get(c)) for c in columns] for p in listed.packages],
    )


def _yes(value: bool) -> str:
    return "[green]yes[/green]" if value else "[red]no[/red]"


def _print_report(r: dict[str, Any]) -> None:
    tls = r["tls"]
    identity = r["identity"] or {}
    license_ = r["license"] or {}
    limits = r["rate_limit"] or {}
    rows = [
        ["reachable", _yes(r["reachable"])],
        [
            "tls",
            cell(f"{tls['mode']}, {tls['protocol']}, {tls['cipher']}")
            if tls
            else ("plain http" if r["url"].startswith("http://") else "-"),
        ],
        [
            "authenticated",
            _yes(r["authenticated"])
            + (f" as {cell(identity.get('username'))}" if identity else ""),
        ],
        ["version", cell(r["version"])],
        ["license", cell(_license_line(license_))],
        ["rate limit", cell(", ".join(f"{k} {v}" for k, v in limits.items()))],
        ["packages", cell(r.get("packages"))],
    ]
    rows += [["note", cell(n)] for n in r["notes"]]
    hook = r.get("webhook") or {}
    if hook.get("enabled"):
        state = "subscribed" if hook.get("subscribed") else "not subscribed"
        rows.append(["webhooks", cell(hook.get("error") or hook.get("note") or state)])
    if r["error"]:
        rows.append(["[red]error[/red]", cell(r["error"])])
    emit_table(
        f"{r['server']} ({cell(r['url'])}, {r['auth_mode']})", ["check", "result"], rows
    )


def _license_line(license_: dict[str, Any]) -> str:
    """Limits with their usage, e.g. "max_users 30 (12 used), tier free, valid"."""
    usage = license_.get("usage") or {}
    used = {"max_users": "accounts", "max_domains": "domains"}
    parts = []
    for key in ("max_users", "max_domains"):
        if key in license_:
            count = usage.get(used[key])
            suffix = f" ({count} used)" if count is not None else ""
            parts.append(f"{key} {license_[key]}{suffix}")
    if license_.get("tier"):
        parts.append(f"tier {license_['tier']}")
    if "is_valid" in license_:
        parts.append("valid" if license_["is_valid"] else "INVALID")
    return ", ".join(parts) or "-"
