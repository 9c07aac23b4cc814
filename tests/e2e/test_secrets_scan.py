"""Secrets scan: a full order flow (API process -> real worker -> simulator, both
panel auth modes) with known secret values, then every surface an operator or an
attacker could read is searched for them.

Surfaces: the API's and the worker's log output (DEBUG, JSON), every API response
(intake, admin, /metrics), the callbacks billing received, CLI output (human and
--json), and every row of every table (secrets may only be there as ciphertext).
The one deliberate exception is `admin tokens create`, which prints its new token
once on stdout.
"""

import json
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine, text

from bridge.container import Services
from bridge.db.base import metadata
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.cli_runner import bridge
from tests.e2e.conftest import WorkerProcess, settings_env, wait_until
from tests.http_server import serve_in_thread
from tests.infra import make_test_settings
from tests.signing import create_body, encode, signed_headers
from tests.simctl import SimControl

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def secret(label: str) -> str:
    """A value that cannot occur by chance, tagged for the failure message."""
    return f"{label}-{secrets.token_hex(12)}"


ACCOUNT_PASSWORD = secret("acctpw")
SECOND_ACCOUNT_PASSWORD = secret("acctpw2")
NEW_ACCOUNT_PASSWORD = secret("newpw")
MAILBOX_PASSWORD = secret("mboxpw")
INTAKE_SECRET = secret("intake")
CALLBACK_SECRET = secret("callback")
ADMIN_TOKEN = secret("admintoken")
DIGEST_KEY = secret("digestkey")


class CallbackSink:
    """Billing's callback endpoint: records every delivery, answers 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/billing/callback")
        async def receive(request: Request) -> Response:
            self.received.append(
                {
                    "headers": dict(request.headers),
                    "body": (await request.body()).decode(),
                }
            )
            return Response(status_code=200)


@pytest.fixture
def sink() -> Iterator[tuple[CallbackSink, str]]:
    callbacks = CallbackSink()
    with serve_in_thread(callbacks.app) as base_url:
        yield callbacks, base_url


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, sink: tuple[CallbackSink, str]
) -> Settings:
    return make_test_settings(
        tmp_path / "var",
        database_url=database_url,
        intake_secret=INTAKE_SECRET,
        callback_secret=CALLBACK_SECRET,
        admin_token=ADMIN_TOKEN,
        intake_digest_key=DIGEST_KEY,
        billing_callback_url=f"{sink[1]}/billing/callback",
        log_level="DEBUG",
        log_format="json",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ApiProcess:
    """`bridge api` as a child process, its output in a file."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.log = tmp / "api.log"
        self.base_url = ""
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bridge", "api", "--host", "127.0.0.1",
                 "--port", str(port)],
                env=settings_env(settings), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self) -> None:
        def ready() -> bool:
            try:
                return httpx.get(self.base_url + "/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 30, "the API process")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture
def api_process(settings: Settings, tmp_path: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(settings, tmp_path)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


class Recorder:
    """Every text the flow showed anyone, by where it was shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def add(self, where: str, content: str) -> str:
        self.seen.append((where, content))
        return content

    def cli(self, settings: Settings, *args: str) -> str:
        # The CLI's entry point in-process (tests/cli_runner.py): the same
        # output and log lines as a process, at a fraction of the CPU.
        result = bridge(settings, *args, columns=250)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        self.add(f"cli {' '.join(args)} (stderr)", result.stderr)
        return self.add(f"cli {' '.join(args)}", result.stdout)

    def leaks(self, values: dict[str, str]) -> list[str]:
        return [
            f"{name} in {where}"
            for where, content in self.seen
            for name, value in values.items()
            if value in content
        ]


def database_text(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            table.name: "\n".join(
                conn.execute(
                    text(f"SELECT row_to_json(t)::text FROM {table.name} t")  # noqa: S608 - table names
                ).scalars()
            )
            for table in metadata.sorted_tables
        }


def post_order(
    client: httpx.Client, rec: Recorder, body: dict[str, Any]
) -> dict[str, Any]:
    raw = encode(body)
    headers = signed_headers("POST", "/v1/orders", raw, secret=INTAKE_SECRET)
    response = client.post("/v1/orders", content=raw, headers=headers)
    rec.add("POST /v1/orders", response.text + json.dumps(dict(response.headers)))
    assert response.status_code == 202, response.text
    order: dict[str, Any] = response.json()["order"]
    return order


def signed_get(client: httpx.Client, rec: Recorder, target: str) -> Any:
    response = client.get(
        target, headers=signed_headers("GET", target, secret=INTAKE_SECRET)
    )
    rec.add(f"GET {target}", response.text + json.dumps(dict(response.headers)))
    assert response.status_code == 200, response.text
    return response.json()


def admin_get(client: httpx.Client, rec: Recorder, target: str, token: str) -> Any:
    response = client.get(target, headers={"Authorization": f"Bearer {token}"})
    rec.add(f"GET {target}", response.text + json.dumps(dict(response.headers)))
    assert response.status_code == 200, response.text
    return response.json()


def panel_jwt(redis_client: "redis.Redis") -> str:
    keys = [
        k.decode()
        for k in redis_client.keys("bridge:panel-token:{login}:*")
        if not k.decode().endswith(":login-lock")
    ]
    assert len(keys) == 1, keys
    value = redis_client.get(keys[0])
    assert isinstance(value, bytes)
    return value.decode()


def add_servers(rec: Recorder, settings: Settings, simulator: SimulatorServer) -> str:
    """Servers `key` (api_key mode) and `login` on the panel, added with the CLI;
    an `operate` token; returns that token."""
    panel = simulator.credentials()
    url = simulator.base_url
    rec.cli(settings, "servers", "add", "key", "--url", url, "--api-key",
            panel.api_key, "--limit", "6000")  # fmt: skip
    login_args = ["--username", panel.username, "--password", panel.password]
    if panel.totp_secret:
        login_args += ["--totp-secret", panel.totp_secret]
    rec.cli(settings, "servers", "add", "login", "--url", url, *login_args,
            "--limit", "6000")  # fmt: skip
    created = bridge(settings, "admin", "tokens", "create", "ops1", "--role", "operate")
    assert created.returncode == 0, created.stderr[-2000:]
    # Its stdout is the one place a token is meant to be shown (once).
    rec.add("cli admin tokens create (stderr)", created.stderr)
    return created.stdout.strip()


def run_orders(
    client: httpx.Client, rec: Recorder, sink: CallbackSink
) -> list[dict[str, Any]]:
    """Two creates (one per server) and a password change, until billing has
    heard about all three."""
    first = create_body(1, server="key")
    first["account"]["password"] = ACCOUNT_PASSWORD
    first["mailboxes"][0]["password"] = MAILBOX_PASSWORD
    second = create_body(2, server="login", ssl=False, mailboxes=[])
    second["account"]["password"] = SECOND_ACCOUNT_PASSWORD
    orders = [post_order(client, rec, first), post_order(client, rec, second)]

    def finished(order_uuid: str) -> bool:
        view = signed_get(client, rec, f"/v1/orders/{order_uuid}")["order"]
        return bool(view["status"] in {"completed", "failed"})

    for order in orders:
        wait_until(lambda o=order: finished(o["id"]), 90, "orders to finish")
    change = {
        "order_id": "ord-pw",
        "service_id": "svc-1",
        "action": "change_password",
        "password": NEW_ACCOUNT_PASSWORD,
    }
    orders.append(post_order(client, rec, change))
    wait_until(lambda: finished(orders[2]["id"]), 90, "password change")
    wait_until(lambda: len(sink.received) >= 3, 60, "three callbacks")
    return orders


def read_api(
    client: httpx.Client,
    rec: Recorder,
    orders: list[dict[str, Any]],
    named_token: str,
) -> list[str]:
    """Read every order, service, admin list and /metrics; the orders' statuses."""
    statuses = []
    for order in orders:
        view = signed_get(client, rec, f"/v1/orders/{order['id']}")["order"]
        statuses.append(view["status"])
        admin_get(client, rec, f"/v1/admin/orders/{order['id']}", named_token)
    signed_get(client, rec, "/v1/services/svc-1")
    signed_get(client, rec, "/v1/orders?order_id=ord-1")
    for target in (
        "/v1/admin/orders",
        "/v1/admin/servers",
        "/v1/admin/servers/key",
        "/v1/admin/servers/login",
        "/v1/admin/audit",
    ):
        admin_get(client, rec, target, ADMIN_TOKEN)
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    rec.add("GET /metrics", metrics.text)
    refused = client.get(
        "/v1/admin/orders", headers={"Authorization": "Bearer " + ADMIN_TOKEN[:-1]}
    )
    rec.add("401 answer", refused.text + json.dumps(dict(refused.headers)))
    return statuses


def read_cli(rec: Recorder, settings: Settings) -> None:
    for args in (
        ("orders", "list", "--json"),
        ("orders", "list"),
        ("orders", "show", "ord-1", "--json"),
        ("orders", "show", "ord-1"),
        ("orders", "show", "ord-2", "--json"),
        ("orders", "show", "ord-pw", "--json"),
        ("servers", "list", "--json"),
        ("servers", "list"),
        ("servers", "test", "login", "--json"),
        ("servers", "test", "key"),
        ("admin", "tokens", "list", "--json"),
        ("admin", "tokens", "list"),
        ("audit", "list", "--json"),
        ("audit", "list"),
    ):
        rec.cli(settings, *args)


def test_no_secret_reaches_logs_responses_callbacks_cli_metrics_or_plain_rows(
    settings: Settings,
    services: Services,
    simulator: SimulatorServer,
    sim: SimControl,
    sink: tuple[CallbackSink, str],
    api_process: ApiProcess,
    worker: WorkerProcess,
    redis_client: "redis.Redis",
    tmp_path: Path,
) -> None:
    rec = Recorder()
    named_token = add_servers(rec, settings, simulator)
    with httpx.Client(base_url=api_process.base_url, timeout=30) as client:
        orders = run_orders(client, rec, sink[0])
        statuses = read_api(client, rec, orders, named_token)
    assert statuses == ["completed"] * 3, worker.log_tail()
    read_cli(rec, settings)
    for delivery in sink[0].received:
        rec.add("callback", json.dumps(delivery))
    api_process.stop()
    worker.stop()
    api_log = rec.add("API log", api_process.log.read_text(errors="replace"))
    worker_log = rec.add("worker log", (tmp_path / "worker.log").read_text())
    for table, content in database_text(services.engine).items():
        rec.add(f"table {table}", content)

    panel = simulator.credentials()
    assert settings.secret_key is not None
    known = {
        "account password": ACCOUNT_PASSWORD,
        "second account password": SECOND_ACCOUNT_PASSWORD,
        "changed account password": NEW_ACCOUNT_PASSWORD,
        "mailbox password": MAILBOX_PASSWORD,
        "panel API key": panel.api_key,
        "panel password": panel.password,
        "panel JWT": panel_jwt(redis_client),
        "intake secret": INTAKE_SECRET,
        "callback secret": CALLBACK_SECRET,
        "bootstrap admin token": ADMIN_TOKEN,
        "named admin token": named_token,
        "intake digest key": DIGEST_KEY,
        "secret key": settings.secret_key.get_secret_value(),
    }
    if panel.totp_secret:
        known["panel TOTP secret"] = panel.totp_secret
    assert rec.leaks(known) == []
    # The scan is not vacuous: the logs are there, DEBUG and JSON; billing got
    # its callbacks; the panel credentials are in the database, sealed.
    assert '"event": "order_received"' in api_log
    assert '"level": "debug"' in worker_log
    assert len(sink[0].received) >= 3
    with services.engine.connect() as conn:
        sealed = conn.execute(text("SELECT credentials FROM servers")).scalars().all()
    opened = " ".join(json.dumps(services.box.decrypt_json(s)) for s in sealed)
    assert panel.api_key in opened
    assert panel.password in opened
