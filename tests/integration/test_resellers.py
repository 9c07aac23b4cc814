"""Reseller accounts (issue 13.5): created through /resellers with their limits,
never terminated with their users by accident, adopted only when ordered."""

import dataclasses

import pytest
from sqlalchemy import update

from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.model import AccountRole, Action, OrderSpec
from bridge.domain.states import OrderStatus, ServiceStatus
from bridge.ops import retry_order
from tests.factories import create_spec, drive, set_server_key, submit
from tests.panel_api import PanelApi
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


def _reseller_spec(n: int = 1, **limits: int) -> OrderSpec:
    spec = create_spec(n, ssl=False, mailboxes=(), domain=None)
    assert spec.account is not None
    account = dataclasses.replace(
        spec.account, role=AccountRole.RESELLER, limits=tuple(limits.items())
    )
    return dataclasses.replace(spec, account=account)


def _terminate(n: int, service_id: str, *, force: bool = False) -> OrderSpec:
    return OrderSpec(
        order_id=f"term-{n}",
        service_id=service_id,
        action=Action.TERMINATE,
        force=force,
    )


def test_reseller_is_created_with_its_limits(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    order = drive(services, submit(services, _reseller_spec(max_users=5)), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert order.service.account_role is AccountRole.RESELLER
    assert panel_api.get_user("user1")["role"] == "reseller"
    limits = panel_api.call("GET", "/api/v1/resellers/user1/limits").json()
    assert limits["max_users"] == 5
    paths = [r["path"] for r in sim.requests() if r["method"] != "GET"]
    assert paths == ["/api/v1/resellers/", "/api/v1/resellers/user1/limits"]


def test_reseller_with_users_is_not_terminated_unless_forced(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    created = submit(services, _reseller_spec())
    assert drive(services, created, clock, sim).status is OrderStatus.COMPLETED
    reseller_key = panel_api.create_key("user1")
    panel_api.create_user("client1", token=reseller_key)
    refused = drive(services, submit(services, _terminate(1, "svc-1")), clock, sim)
    assert refused.status is OrderStatus.FAILED
    assert refused.steps[0].error_code == "reseller_has_users"
    assert "client1" in (refused.last_error or "")
    assert panel_api.get_user("client1")["creator"] == "user1"  # nothing deleted
    forced = _terminate(2, "svc-1", force=True)
    order = drive(services, submit(services, forced), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    gone = panel_api.call("GET", "/api/v1/users/client1")
    assert gone.status_code == 404


def _default_budget(services: Services, server: Server, sim: SimControl) -> None:
    """The panel and the bridge at their default 60 a minute: never two calls in a
    row, so a step that needs a read and a write gets them on two tries."""
    sim.config(limit=60)
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(rate_limit_per_min=60)
        )


def test_reseller_without_users_is_terminated_with_one_check_and_one_delete(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    _default_budget(services, server, sim)
    created = submit(services, _reseller_spec(max_users=5))
    assert drive(services, created, clock, sim).status is OrderStatus.COMPLETED
    order = drive(services, submit(services, _terminate(1, "svc-1")), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert order.service.status is ServiceStatus.TERMINATED
    # The check took one try's token and the DELETE the next one's: the check is
    # kept on the step, not repeated (repeated, it took every try's token and the
    # DELETE never went).
    calls = [
        (r["method"], r["path"])
        for r in sim.requests()
        if r["path"].startswith("/api/v1/resellers/user1")
        and r["path"] != "/api/v1/resellers/user1/limits"
    ]
    assert calls == [
        ("GET", "/api/v1/resellers/user1/users"),
        ("DELETE", "/api/v1/resellers/user1"),
    ]
    assert order.steps[0].response is not None
    assert "proven" not in order.steps[0].response  # the DELETE's answer now


def test_a_failed_terminate_forgets_its_check_so_a_retry_checks_again(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    _default_budget(services, server, sim)
    created = submit(services, _reseller_spec())
    assert drive(services, created, clock, sim).status is OrderStatus.COMPLETED
    terminate = submit(services, _terminate(1, "svc-1"))
    for _ in range(5):
        # No users yet: the DELETE waits for its token with the check kept.
        order = drive(services, terminate, clock, sim, rounds=1)
        if (order.steps[0].response or {}).get("proven"):
            break
    assert order.steps[0].response == {"proven": True, "reseller_users": 0}
    sim.fail_next(1, 403)
    failed = drive(services, terminate, clock, sim)
    assert failed.status is OrderStatus.FAILED
    assert failed.steps[0].panel_status == 403
    assert failed.steps[0].response is None  # the check is not kept past a failure
    # Days later the reseller has a user: the operator's retry checks again.
    panel_api.create_user("client1", token=panel_api.create_key("user1"))
    retry_order(services, terminate, "ops:test")
    refused = drive(services, terminate, clock, sim)
    assert refused.status is OrderStatus.FAILED
    assert refused.steps[0].error_code == "reseller_has_users"
    assert panel_api.get_user("client1")["creator"] == "user1"  # nothing deleted


def test_reseller_on_the_panel_is_adopted_only_by_a_reseller_order(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    panel_api.create_user("user1", role="reseller")
    as_user = create_spec(1, ssl=False, mailboxes=(), domain=None)
    refused = drive(services, submit(services, as_user), clock, sim)
    assert refused.status is OrderStatus.FAILED
    assert "role 'reseller'" in (refused.last_error or "")
    as_reseller = dataclasses.replace(
        _reseller_spec(), order_id="ord-r", service_id="svc-r"
    )
    order = drive(services, submit(services, as_reseller), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert (order.steps[0].response or {}).get("adopted") is True
    assert panel_api.can_log_in("user1", "correct-horse-battery")


def test_only_an_admin_credential_creates_resellers(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
    simulator: object,
) -> None:
    from bridge.simulator import SimulatorServer

    assert isinstance(simulator, SimulatorServer)
    panel_api.create_user("partner", role="reseller")
    set_server_key(services, simulator.base_url, panel_api.create_key("partner"))
    order = drive(services, submit(services, _reseller_spec()), clock, sim)
    assert order.status is OrderStatus.FAILED
    assert order.steps[0].panel_status == 403


def test_intake_takes_a_reseller_with_limits_and_refuses_limits_for_a_user(
    api: object, services: Services, server: Server
) -> None:
    import httpx

    from tests.signing import create_body, encode, signed_headers

    assert isinstance(api, httpx.Client)
    body = create_body(1, ssl=False, mailboxes=[], domain=None)
    body["account"] |= {"role": "reseller", "limits": {"max_users": 10}}
    raw = encode(body)
    accepted = api.post(
        "/v1/orders", content=raw, headers=signed_headers("POST", "/v1/orders", raw)
    )
    assert accepted.status_code == 202, accepted.text
    kinds = [s["kind"] for s in accepted.json()["order"]["steps"]]
    assert kinds == ["create_reseller", "set_reseller_limits"]
    wrong = create_body(2, ssl=False, mailboxes=[], domain=None)
    wrong["account"]["limits"] = {"max_users": 10}
    raw = encode(wrong)
    refused = api.post(
        "/v1/orders", content=raw, headers=signed_headers("POST", "/v1/orders", raw)
    )
    assert refused.status_code == 422
    assert "limits are only for role reseller" in refused.text
