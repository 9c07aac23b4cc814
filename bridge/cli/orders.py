"""`bridge orders …`: submit a signed order to the API, show one; the failed-jobs
queue commands (list, retry, cancel, resolve, purge) come from `orders_ops`."""

import json
import secrets
import time
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console

from bridge.api.signing import signature
from bridge.cli import orders_ops
from bridge.cli.context import CliContext
from bridge.cli.operator import cell, styled
from bridge.cli.output import emit_json, emit_table
from bridge.errors import NotFoundError
from bridge.ops import get_order_by_ref, order_detail

_FINAL = {"completed", "failed", "cancelled"}


@click.group()
def orders() -> None:
    """Submit, inspect, retry, cancel and resolve orders."""


def example_order() -> dict[str, Any]:
    """A create order with a domain, SSL and one mailbox; unique names each call."""
    tag = secrets.token_hex(3)
    return {
        "order_id": f"example-{tag}",
        "service_id": f"example-{tag}",
        "action": "create",
        "account": {
            "username": f"demo{tag}",
            "email": f"demo{tag}@example.com",
            "password": secrets.token_urlsafe(12),
            "package": "default",
        },
        "domain": f"demo{tag}.example",
        "ssl": True,
        "mailboxes": [
            {
                "local_part": "info",
                "password": secrets.token_urlsafe(12),
                "quota_mb": 500,
            }
        ],
    }


@orders.command()
@click.option("--example", is_flag=True, help="Submit a generated example order.")
@click.option(
    "--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--api-url",
    default=None,
    help="Default: the running `bridge run`, else http://BRIDGE_API_HOST:PORT",
)
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Poll to the end."
)
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.pass_obj
def submit(
    obj: CliContext,
    example: bool,
    path: Path | None,
    api_url: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """POST a signed order to the intake API (and watch it complete)."""
    if example == (path is not None):
        msg = "give exactly one of --example or --file"
        raise click.UsageError(msg)
    settings = obj.settings
    body = example_order() if path is None else _read_order(path)
    raw = json.dumps(body).encode()
    base = api_url or obj.api_url
    secret = settings.intake_secret
    if secret is None:
        msg = "BRIDGE_INTAKE_SECRET is not set"
        raise click.UsageError(msg)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            order = _post(http, secret.get_secret_value(), raw)
            click.echo(
                f"order {order['order_id']} accepted: {order['id']} ({order['status']})"
            )
            if wait:
                order = _watch(http, secret.get_secret_value(), order, timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # Connection refused, a bad URL, a timeout: one line, not a traceback.
        msg = (
            f"cannot reach the intake API at {base}: "
            f"{str(exc) or type(exc).__name__}; is `bridge run` running?"
        )
        raise click.ClickException(msg) from None
    emit_json({"order": order})
    if order["status"] != "completed" and wait:
        raise SystemExit(1)


def _read_order(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        msg = f"{path} is not valid JSON: {exc}"
        raise click.BadParameter(msg, param_hint="--file") from None


def _post(http: httpx.Client, secret: str, raw: bytes) -> dict[str, Any]:
    """POST the order; the order view the intake answered."""
    response = http.post(
        "/v1/orders",
        content=raw,
        headers=_signed(secret, "POST", "/v1/orders", raw),
    )
    return _order(response, (200, 202))


def _order(response: httpx.Response, ok: tuple[int, ...]) -> dict[str, Any]:
    """The order view of an intake answer; any other answer is one clear line."""
    if response.status_code not in ok:
        msg = f"intake answered {response.status_code}: {response.text}"
        raise click.ClickException(msg)
    order: dict[str, Any] = response.json()["order"]
    return order


def _signed(secret: str, method: str, target: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Bridge-Timestamp": timestamp,
        "X-Bridge-Signature": signature(secret, timestamp, method, target, body),
    }


def _watch(
    http: httpx.Client, secret: str, order: dict[str, Any], timeout: float
) -> dict[str, Any]:
    target = f"/v1/orders/{order['id']}"
    deadline = time.monotonic() + timeout
    last = ""
    while order["status"] not in _FINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        order = _order(
            http.get(target, headers=_signed(secret, "GET", target, b"")), (200,)
        )
        line = " ".join(f"{s['kind']}={s['status']}" for s in order["steps"])
        if line != last:
            click.echo(f"  {order['status']}: {line}")
            last = line
    return order


@orders.command()
@click.argument("order_ref")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def show(obj: CliContext, order_ref: str, as_json: bool) -> None:
    """Show an order by the bridge's id or billing's order_id."""
    with obj.sessions() as session:
        try:
            view = order_detail(get_order_by_ref(session, order_ref))
        except NotFoundError:
            msg = f"no order {order_ref}"
            raise click.ClickException(msg) from None
    if as_json:
        emit_json({"order": view})
        return
    Console().print(
        f"{cell(view['order_id'])} ({view['id']}) {view['action']} on "
        f"{cell(view['server'])}: {styled(view['status'])}"
        + (" " + cell(f"[{view['wait_reason']}]") if view["wait_reason"] else "")
    )
    for label, key in _TIMES:
        if view.get(key):
            click.echo(f"  {label:<13} {view[key]}")
    if view["lease_owner"]:
        click.echo(f"  {'leased by':<13} {view['lease_owner']}")
    if view["last_error"]:
        Console().print(f"  [red]last error[/red]    {cell(view['last_error'])}")
    emit_table(
        "steps",
        ["#", "kind", "status", "tries", "panel", "error", "first sent", "last sent"],
        [
            [
                s["position"],
                s["kind"],
                styled(s["status"]),
                s["attempts"],
                s["panel_status"],
                cell(s["error_message"] or s["error_code"], 60),
                (s["first_sent_at"] or "")[:19],
                (s["last_sent_at"] or "")[:19],
            ]
            for s in view["steps"]
        ],
    )


@orders.command()
@click.argument("order_ref")
@click.option("--timeout", type=float, default=120.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the final order as JSON.")
@click.pass_obj
def watch(obj: CliContext, order_ref: str, timeout: float, as_json: bool) -> None:
    """Follow an order until it is final; exit 1 unless it completed.

    Reads the database only, so it needs neither the API nor Redis.
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        with obj.sessions() as session:
            try:
                view = order_detail(get_order_by_ref(session, order_ref))
            except NotFoundError:
                msg = f"no order {order_ref}"
                raise click.ClickException(msg) from None
        line = f"{view['status']}: " + " ".join(
            f"{s['kind']}={s['status']}" for s in view["steps"]
        )
        if line != last:
            # With --json, stdout carries the JSON alone: progress goes to stderr.
            click.echo(f"  {line}", err=as_json)
            last = line
        if view["status"] in _FINAL or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    if as_json:
        emit_json({"order": view})
    elif view["last_error"]:
        click.echo(f"  last error: {view['last_error']}")
    if view["status"] != "completed":
        raise SystemExit(1)


_TIMES = (
    ("created", "created_at"),
    ("updated", "updated_at"),
    ("next attempt", "next_attempt_at"),
    ("finished", "finished_at"),
    ("callback", "callback_status"),
)

for _command in orders_ops.COMMANDS:
    orders.add_command(_command)
