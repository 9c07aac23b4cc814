"""Panel webhooks end to end over real HTTP: the bridge subscribes on the simulator,
the simulator delivers signed events to the bridge's API, and `ssl.issued` wakes
the order waiting on that certificate."""

import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bridge.container import Services
from bridge.db.models import AuditEntry, Order, PanelEventDelivery, Server
from bridge.domain.states import OrderStatus, WaitReason
from bridge.engine import run_order
from bridge.ops import ServerChanges, edit_server, probe_server, remove_server
from bridge.settings import Settings
from tests.cli_runner import as_json, bridge
from tests.factories import create_spec, load, submit
from tests.infra import ADMIN_TOKEN
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

ACTOR = "ops:tester"


@pytest.fixture
def hooked(services: Services, api: httpx.Client) -> Services:
    """The services with BRIDGE_PUBLIC_URL pointing at the served API."""
    settings = services.settings.model_copy(update={"public_url": str(api.base_url)})
    return dataclasses.replace(services, settings=settings)


def panel_hooks(sim: SimControl) -> dict[str, Any]:
    result: dict[str, Any] = sim._get("/webhooks")
    return result


def enable(hooked: Services) -> dict[str, Any]:
    view = edit_server(hooked, "sim", ServerChanges(webhooks=True), ACTOR)
    report: dict[str, Any] = view["webhook"]
    assert report["subscribed"], report
    return report


def post_event(
    api: httpx.Client,
    secret: str,
    event: str,
    data: dict[str, Any],
    *,
    stamp: float | None = None,
    delivery: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    body = json.dumps(
        {"event": event, "timestamp": int(stamp or time.time()), "data": data}
    ).encode()
    return post_body(api, secret, body, delivery=delivery, signature=signature)


def post_body(
    api: httpx.Client,
    secret: str,
    body: bytes,
    *,
    delivery: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """POST these exact bytes as a delivery, signed with `secret`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-WisPanel-Signature": signature or f"sha256={digest}",
        "X-WisPanel-Delivery": delivery or str(uuid.uuid4()),
    }
    return api.post("/v1/panel-events/sim", content=body, headers=headers)


def count(services: Services, model: Any, *where: Any) -> int:
    with services.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        )


def test_enabling_webhooks_subscribes_once_with_a_key_and_keeps_the_secret_encrypted(
    hooked: Services, server: Server, sim: SimControl, api: httpx.Client
) -> None:
    report = enable(hooked)
    hooks = panel_hooks(sim)["webhooks"]
    assert len(hooks) == 1
    assert hooks[0]["id"] == report["id"]
    assert hooks[0]["url"] == f"{api.base_url}/v1/panel-events/sim"
    assert hooks[0]["events"] == ["ssl.issued", "user.*"]
    posts = [r for r in sim.requests() if r["path"].startswith("/api/v1/webhooks")]
    assert len(posts) == 1
    assert posts[0]["idempotency_key"]
    with hooked.sessions() as session:
        row = session.get(Server, server.id)
        assert row is not None
        assert row.webhook_id == report["id"]
        assert hooks[0]["secret"] not in (row.webhook_secret or "")
        assert hooked.box.decrypt(row.webhook_secret or "") == hooks[0]["secret"]
    with hooked.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "webhook_subscribed")
        ).one()
        assert entry.actor == ACTOR
        assert entry.detail["webhook_id"] == report["id"]
        assert hooks[0]["secret"] not in json.dumps(entry.detail)
    # servers test keeps the existing subscription
    tested = probe_server(hooked, "sim", ACTOR, sleep=time.sleep)
    assert tested["webhook"] == {
        "enabled": True,
        "subscribed": True,
        "id": report["id"],
    }
    assert len(panel_hooks(sim)["webhooks"]) == 1


def test_servers_test_subscribes_when_missing(
    hooked: Services, server: Server, sim: SimControl
) -> None:
    with hooked.sessions.begin() as session:
        row = session.get(Server, server.id)
        assert row is not None
        row.webhooks_enabled = True
    report = probe_server(hooked, "sim", ACTOR, sleep=time.sleep)
    assert report["webhook"]["subscribed"] is True
    assert len(panel_hooks(sim)["webhooks"]) == 1


def test_without_a_public_url_nothing_is_subscribed(
    services: Services, server: Server, sim: SimControl
) -> None:
    view = edit_server(services, "sim", ServerChanges(webhooks=True), ACTOR)
    assert view["webhook"]["subscribed"] is False
    assert "BRIDGE_PUBLIC_URL" in view["webhook"]["note"]
    assert view["webhooks"] is True
    assert panel_hooks(sim)["webhooks"] == []


def test_a_panel_without_webhooks_gets_a_clear_error(
    hooked: Services, server: Server, sim: SimControl
) -> None:
    with hooked.sessions.begin() as session:
        row = session.get(Server, server.id)
        assert row is not None
        row.route_overrides = {"create_webhook": {"path": "/api/v1/hooks/"}}
    view = edit_server(hooked, "sim", ServerChanges(webhooks=True), ACTOR)
    assert view["webhook"]["error"] == (
        "the panel has no webhooks endpoint (POST /api/v1/webhooks/)"
    )
    assert view["webhook_subscribed"] is False
    assert panel_hooks(sim)["webhooks"] == []


def test_disabling_or_removing_the_server_unsubscribes(
    hooked: Services, server: Server, sim: SimControl
) -> None:
    enable(hooked)
    view = edit_server(hooked, "sim", ServerChanges(webhooks=False), ACTOR)
    assert view["webhook"]["note"] == "unsubscribed"
    assert panel_hooks(sim)["webhooks"] == []
    enable(hooked)
    remove_server(hooked, "sim", ACTOR)
    assert panel_hooks(sim)["webhooks"] == []
    deletes = [r for r in sim.requests() if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes] == [200, 200]


def _secret(sim: SimControl) -> str:
    return str(panel_hooks(sim)["webhooks"][0]["secret"])


def test_a_bad_signature_is_401_and_records_nothing(
    hooked: Services, server: Server, sim: SimControl, api: httpx.Client
) -> None:
    enable(hooked)
    answer = post_event(api, "wrong-secret", "user.suspended", {"username": "x"})
    assert answer.status_code == 401
    assert answer.json() == {"detail": "X-WisPanel-Signature does not match"}
    missing = post_event(
        api, _secret(sim), "user.suspended", {"username": "x"}, signature="md5=00"
    )
    assert missing.status_code == 401
    assert count(hooked, PanelEventDelivery) == 0


def test_a_stale_timestamp_is_401(
    hooked: Services, server: Server, sim: SimControl, api: httpx.Client
) -> None:
    enable(hooked)
    answer = post_event(
        api,
        _secret(sim),
        "user.deleted",
        {"username": "x"},
        # Over 300 s before the bridge's clock (a test clock that stands still),
        # not the wall clock's: setting up the hook may take seconds on a slow machine.
        stamp=hooked.clock().timestamp() - 302,
    )
    assert answer.status_code == 401
    assert "timestamp" in answer.json()["detail"]
    assert count(hooked, PanelEventDelivery) == 0


@pytest.mark.parametrize(
    "stamp",
    ["9" * 400, "-" + "9" * 400, "NaN", "Infinity", "-Infinity", "1e400"],
    ids=["400-digits", "negative-400-digits", "nan", "infinity", "-infinity", "1e400"],
)
def test_a_timestamp_that_is_no_finite_number_is_400(
    hooked: Services, server: Server, sim: SimControl, api: httpx.Client, stamp: str
) -> None:
    # Python's json reads all of these: the 400-digit integer overflowed float()
    # (a 500) and NaN passed the 300 s window (every comparison with it is false).
    enable(hooked)
    body = b'{"event": "user.deleted", "timestamp": %s, "data": {"username": "x"}}'
    answer = post_body(api, _secret(sim), body % stamp.encode())
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": "body: 'timestamp' must be a finite number"}
    assert count(hooked, PanelEventDelivery) == 0


def test_unknown_server_or_no_subscription_is_404(
    hooked: Services, server: Server, sim: SimControl, api: httpx.Client
) -> None:
    answer = post_event(api, "s", "user.deleted", {"username": "x"})
    assert answer.status_code == 404  # sim has no subscription yet
    unknown = api.post("/v1/panel-events/nope", content=b"{}")
    assert unknown.status_code == 404


def test_a_replayed_delivery_is_ignored(
    hooked: Services,
    server: Server,
    sim: SimControl,
    api: httpx.Client,
    clock: FakeClock,
) -> None:
    enable(hooked)
    order = submit(hooked, create_spec(mailboxes=(), ssl=False, domain=None))
    for _ in range(3):
        run_order(hooked, order)
    assert load(hooked, order).status is OrderStatus.COMPLETED
    secret = _secret(sim)
    first = post_event(
        api, secret, "user.suspended", {"username": "user1"}, delivery="d-1"
    )
    again = post_event(
        api, secret, "user.suspended", {"username": "user1"}, delivery="d-1"
    )
    assert first.json() == {"event": "user.suspended", "result": "noted"}
    assert again.status_code == 200
    assert again.json() == {"event": "user.suspended", "result": "duplicate"}
    with hooked.sessions() as session:
        noted = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "panel_event")
        ).all()
    # The panel's own user.created may arrive too; the replay is not applied.
    assert [d["event"] for d in noted].count("user.suspended") == 1


def test_an_unknown_event_is_accepted_and_changes_nothing(
    hooked: Services, server: Server, sim: SimControl, api: httpx.Client
) -> None:
    enable(hooked)
    audit_before = count(hooked, AuditEntry)
    # A newer panel release's event that matches the subscription's user.* pattern,
    # emitted by the panel itself and delivered over real HTTP.
    emitted = sim._post("/webhooks/emit", {"event": "user.renamed", "data": {"a": 1}})
    assert emitted == {"deliveries": 1}
    # And an event outside the catalogue, signed by hand.
    answer = post_event(api, _secret(sim), "domain.created", {"domain": "x.example"})
    assert answer.status_code == 200
    assert answer.json() == {"event": "domain.created", "result": "ignored"}
    deadline = time.monotonic() + 10
    while panel_hooks(sim)["deliveries"][0]["state"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert panel_hooks(sim)["deliveries"][0]["attempts"][0]["status"] == 200
    assert count(hooked, AuditEntry) == audit_before
    assert count(hooked, PanelEventDelivery) == 0


def test_ssl_issued_wakes_the_waiting_order(
    hooked: Services,
    server: Server,
    sim: SimControl,
    api: httpx.Client,
    clock: FakeClock,
) -> None:
    # Given: polling so slow the order would wait ten minutes for its next look
    slow = hooked.settings.model_copy(
        update={"ssl_poll_first_seconds": 600, "ssl_poll_seconds": 600}
    )
    slow_services = dataclasses.replace(hooked, settings=slow)
    sim.config(ssl_delay_s=1.0, webhook_ssl_tick_s=0.05)
    enable(slow_services)
    order_uuid = submit(slow_services, create_spec(mailboxes=()))
    for _ in range(3):
        run_order(slow_services, order_uuid)
    order = load(slow_services, order_uuid)
    assert order.wait_reason is WaitReason.SSL_PENDING
    assert order.next_attempt_at is not None
    assert (order.next_attempt_at - clock()).total_seconds() >= 599
    # When: the certificate becomes active and the panel says so
    deadline = time.monotonic() + 15
    while load(slow_services, order_uuid).next_attempt_at != clock():
        assert time.monotonic() < deadline, panel_hooks(sim)["deliveries"]
        time.sleep(0.05)
    # Then: due now, and the next run (re-reading the certificate) completes it
    assert count(slow_services, Order, Order.next_attempt_at <= clock()) == 1
    run_order(slow_services, order_uuid)
    done = load(slow_services, order_uuid)
    assert done.status is OrderStatus.COMPLETED, done.last_error
    ssl_reads = [
        r
        for r in sim.requests()
        if r["method"] == "GET" and r["path"] == "/api/v1/ssl/site1.example"
    ]
    assert ssl_reads  # the engine read the certificate before completing


def test_cli_edit_and_test_report_the_subscription(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    api: httpx.Client,
) -> None:
    hooked = settings.model_copy(update={"public_url": str(api.base_url)})
    edited = as_json(bridge(hooked, "servers", "edit", "sim", "--webhooks", "--json"))
    assert edited["server"]["webhooks"] is True
    assert edited["server"]["webhook"]["subscribed"] is True
    assert edited["server"]["webhook_subscribed"] is True
    human = bridge(hooked, "servers", "edit", "sim", "--no-webhooks")
    assert human.returncode == 0, human.stderr
    assert "webhooks: unsubscribed" in human.stdout
    assert panel_hooks(sim)["webhooks"] == []


def test_admin_api_put_turns_webhooks_on(
    services: Services, server: Server, sim: SimControl, api: httpx.Client
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = api.put("/v1/admin/servers/sim", json={"webhooks": True}, headers=admin)
    assert answer.status_code == 200, answer.text
    view = answer.json()["server"]
    assert view["webhooks"] is True
    # The API process here has no BRIDGE_PUBLIC_URL: it says so, and subscribes nothing.
    assert "BRIDGE_PUBLIC_URL" in view["webhook"]["note"]
    assert panel_hooks(sim)["webhooks"] == []
    bad = api.put("/v1/admin/servers/sim", json={"webhooks": "maybe"}, headers=admin)
    assert bad.status_code == 422
