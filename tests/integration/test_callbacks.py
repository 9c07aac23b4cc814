"""Signed callbacks to billing: delivered once final, retried, never off-origin."""

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy import Engine

from bridge.callbacks import deliver_callback, is_allowed_callback_url
from bridge.container import Services, build_services
from bridge.domain.model import AuthMode, CallbackStatus
from bridge.fleet import ServerSpec, save_server
from bridge.ops import resolve_order
from bridge.settings import Settings
from tests.factories import create_spec, drive, load, submit
from tests.http_server import serve_in_thread
from tests.infra import INTAKE_SECRET
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


async def _body(request: Request) -> bytes:
    return await request.body()


class Billing:
    """A fake billing endpoint that records callbacks and can fail on demand."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        # Runs (once) while billing holds the next delivery open.
        self.meanwhile: Callable[[], object] | None = None
        self.app = FastAPI()

        @self.app.post("/callback")
        def callback(request: Request, body: bytes = Depends(_body)) -> Response:
            self.received.append((dict(request.headers), body))
            if self.meanwhile is not None:
                meanwhile, self.meanwhile = self.meanwhile, None
                meanwhile()
            if self.fail_next:
                self.fail_next -= 1
                return Response(status_code=500)
            return Response(status_code=204)


@pytest.fixture
def billing() -> Iterator[tuple[Billing, str]]:
    receiver = Billing()
    with serve_in_thread(receiver.app) as url:
        yield receiver, url


@pytest.fixture
def callback_services(
    settings: Settings,
    committed_db: Engine,
    redis_client: "redis.Redis",
    clock: FakeClock,
    billing: tuple[Billing, str],
    simulator: Any,
    sim: SimControl,
) -> Iterator[Services]:
    _, url = billing
    configured = settings.model_copy(update={"billing_callback_url": f"{url}/callback"})
    built = build_services(configured, clock=clock)
    with built.sessions.begin() as session:
        save_server(
            session,
            built.box,
            ServerSpec(
                name="sim",
                base_url=simulator.base_url,
                auth_mode=AuthMode.API_KEY,
                api_key=simulator.credentials().api_key,
                rate_limit_per_min=6000,
            ),
        )
    yield built
    built.close()


def _deliver(services: Services, order_uuid: Any) -> None:
    deliver_callback(
        services.settings, services.sessions, services.http, services.clock, order_uuid
    )


def test_completed_order_sends_one_signed_callback(
    callback_services: Services,
    billing: tuple[Billing, str],
    clock: FakeClock,
    sim: SimControl,
) -> None:
    receiver, _ = billing
    order_uuid = submit(callback_services, create_spec(ssl=False, mailboxes=()))
    drive(callback_services, order_uuid, clock, sim)
    _deliver(callback_services, order_uuid)
    _deliver(callback_services, order_uuid)  # a duplicate message delivers nothing
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    timestamp = headers["x-bridge-timestamp"]
    expected = hmac.new(
        INTAKE_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["x-bridge-signature"] == f"sha256={expected}"
    assert json.loads(body) == {
        "order_id": "ord-1",
        "service_id": "svc-1",
        "action": "create",
        "status": "completed",
        "result": "success",
    }
    assert (
        load(callback_services, order_uuid).callback_status is CallbackStatus.DELIVERED
    )


def test_failed_delivery_is_retried_with_backoff(
    callback_services: Services,
    billing: tuple[Billing, str],
    clock: FakeClock,
    sim: SimControl,
) -> None:
    receiver, _ = billing
    receiver.fail_next = 1
    order_uuid = submit(callback_services, create_spec(ssl=False, mailboxes=()))
    drive(callback_services, order_uuid, clock, sim)
    _deliver(callback_services, order_uuid)
    order = load(callback_services, order_uuid)
    assert order.callback_status is CallbackStatus.PENDING
    assert order.callback_last_error == "HTTP 500"
    assert order.callback_next_at is not None
    clock.advance((order.callback_next_at - clock()).total_seconds() + 0.01)
    with callback_services.sessions() as session:
        from bridge.callbacks import find_due_callbacks

        assert find_due_callbacks(session, clock(), 10) == [order_uuid]
    _deliver(callback_services, order_uuid)
    order = load(callback_services, order_uuid)
    assert order.callback_status is CallbackStatus.DELIVERED
    assert order.callback_attempts == 2
    assert len(receiver.received) == 2
    first, second = (h["x-bridge-delivery"] for h, _ in receiver.received)
    assert first == second == str(order.callback_delivery_id)
    assert uuid.UUID(first).version == 4


def test_a_new_final_status_is_a_new_delivery(
    callback_services: Services,
    billing: tuple[Billing, str],
    clock: FakeClock,
    sim: SimControl,
) -> None:
    receiver, _ = billing
    sim.fail_next(1, 400)
    order_uuid = submit(callback_services, create_spec(ssl=False, mailboxes=()))
    assert drive(callback_services, order_uuid, clock, sim).status.value == "failed"
    _deliver(callback_services, order_uuid)
    resolve_order(callback_services, order_uuid, "ops:test", "created by hand")
    _deliver(callback_services, order_uuid)
    assert [json.loads(b)["status"] for _, b in receiver.received] == [
        "failed",
        "completed",
    ]
    failed_id, completed_id = (h["x-bridge-delivery"] for h, _ in receiver.received)
    assert failed_id != completed_id


def test_a_delivery_answered_after_a_newer_status_leaves_the_newer_one_owed(
    callback_services: Services,
    billing: tuple[Billing, str],
    clock: FakeClock,
    sim: SimControl,
) -> None:
    receiver, _ = billing
    sim.fail_next(1, 400)
    order_uuid = submit(callback_services, create_spec(ssl=False, mailboxes=()))
    assert drive(callback_services, order_uuid, clock, sim).status.value == "failed"
    # While billing holds the "failed" delivery open, ops resolves the order.
    receiver.meanwhile = lambda: resolve_order(
        callback_services, order_uuid, "ops:test", "created by hand"
    )
    _deliver(callback_services, order_uuid)
    owed = load(callback_services, order_uuid)
    assert owed.callback_status is CallbackStatus.PENDING  # "completed" still owed
    _deliver(callback_services, order_uuid)
    assert [json.loads(b)["status"] for _, b in receiver.received] == [
        "failed",
        "completed",
    ]
    assert load(callback_services, order_uuid).callback_status is (
        CallbackStatus.DELIVERED
    )


def test_failed_order_reports_the_error_text(
    callback_services: Services,
    billing: tuple[Billing, str],
    clock: FakeClock,
    sim: SimControl,
) -> None:
    receiver, _ = billing
    sim.fail_next(1, 400)
    order_uuid = submit(callback_services, create_spec(ssl=False, mailboxes=()))
    order = drive(callback_services, order_uuid, clock, sim)
    assert order.status.value == "failed"
    _deliver(callback_services, order_uuid)
    payload = json.loads(receiver.received[0][1])
    assert payload["status"] == "failed"
    assert payload["result"].startswith("create_user:")


def test_only_allowed_origins_are_callback_targets(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"billing_callback_url": "https://billing.example/cb"}
    )
    assert is_allowed_callback_url(configured, "https://billing.example/other?x=1")
    assert is_allowed_callback_url(configured, "https://BILLING.example:443/cb")
    assert not is_allowed_callback_url(configured, "https://billing.example:8443/cb")
    assert not is_allowed_callback_url(configured, "http://billing.example/cb")
    assert not is_allowed_callback_url(configured, "http://127.0.0.1/cb")
    assert not is_allowed_callback_url(configured, "file:///etc/passwd")
    listed = settings.model_copy(
        update={"callback_allowed_origins": ("https://a.example", "https://b.example")}
    )
    assert is_allowed_callback_url(listed, "https://b.example/x")
    assert not is_allowed_callback_url(listed, "https://billing.example/cb")
