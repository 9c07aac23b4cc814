"""Exactly-once against the panel as documented (issue 10): safe adoption, fenced
leases, bounded SSL, no poison orders, rejected credentials, secret retention.

Every test runs against the simulator's default contract: Idempotency-Key is
honoured only on users/resellers/domains/webhooks; SSL and email re-sends execute.
"""

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select, update

from bridge.container import Services, build_services, system_clock
from bridge.db.models import Order, Server, Service, Step
from bridge.dispatcher import dispatch_due_orders
from bridge.domain.model import AccountRole, AccountSpec, Action, OrderSpec, StepKind
from bridge.domain.states import OrderStatus, ServiceStatus, StepStatus, WaitReason
from bridge.engine import run_order
from bridge.errors import InvalidOrderError, RateLimitedError
from bridge.ops import OperationRefusedError
from bridge.ops.orders import cancel_order, resolve_order
from bridge.ops.probe import probe_server
from bridge.ops.retention import run_retention
from bridge.ops.retry import retry_order
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from bridge.steps import ConflictError, StepCall, match_user
from tests.e2e.conftest import wait_until
from tests.factories import create_spec, drive, load, set_server_key, submit
from tests.panel_api import PanelApi
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

_T = TypeVar("_T")


def _user_only(n: int = 1, **overrides: object) -> OrderSpec:
    return create_spec(n, ssl=False, mailboxes=(), domain=None, **overrides)


def _password_order(n: int, service_id: str, password: str) -> OrderSpec:
    return OrderSpec(
        order_id=f"pw-{n}",
        service_id=service_id,
        action=Action.CHANGE_PASSWORD,
        password=password,
    )


# -- adoption never takes a stranger's account ------------------------------------


def test_create_for_the_panel_admin_never_adopts_it(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    admin = AccountSpec("admin", "admin@example.com", "taken-over-1", "default")
    order = drive(services, submit(services, _user_only(account=admin)), clock, sim)
    assert order.status is OrderStatus.FAILED
    assert order.steps[0].error_code == "conflict"
    assert "role 'admin'" in (order.last_error or "")
    # And nothing can follow it up with a password change.
    with pytest.raises(InvalidOrderError, match="not provisioned"):
        submit(services, _password_order(1, "svc-1", "taken-over-2"))


def test_user_made_by_a_reseller_is_not_adopted(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    panel_api.create_user("partner", role="reseller")
    reseller_key = panel_api.create_key("partner")
    panel_api.create_user("user1", token=reseller_key)
    order = drive(services, submit(services, _user_only()), clock, sim)
    assert order.status is OrderStatus.FAILED
    assert "created by panel account 'partner'" in (order.last_error or "")


def test_user_with_another_package_only_is_not_adopted(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    panel_api.create_user("user1", package="basic")  # same email, other package
    order = drive(services, submit(services, _user_only()), clock, sim)
    assert order.status is OrderStatus.FAILED
    assert order.steps[0].error_code == "conflict"
    assert "another email or package" in (order.last_error or "")
    assert not [r for r in sim.requests() if r["path"].endswith("/password")]


def _paced(call: Callable[[], _T]) -> _T:
    """A direct panel call that waits its turn in the shared budget, like the engine."""
    for _ in range(100):
        try:
            return call()
        except RateLimitedError as exc:
            time.sleep(exc.retry_after or 0.01)
    pytest.fail("no budget token")


def test_panel_user_without_a_role_is_not_adopted(
    services: Services, server: Server, panel_api: PanelApi
) -> None:
    # The simulator always reports a role: take its real answer, minus the role.
    panel_api.create_user("user1")
    with services.sessions() as session:
        client = services.panels.client_for(session.get_one(Server, server.id))
    user = dict(_paced(lambda: client.get_user("user1").data))
    call = StepCall(
        kind=StepKind.CREATE_USER,
        params={},
        body={"username": "user1", "email": "user1@example.com", "package": "default"},
        secret={"password": "correct-horse-battery"},
        idempotency_key=str(uuid.uuid4()),
        read_first=True,
        polling=False,
    )
    ours = _paced(client.account_name)
    assert match_user(call, user, ours) == user  # as reported: provably ours
    del user["role"]
    with pytest.raises(ConflictError, match="no role reported"):
        match_user(call, user, ours)


def test_user_the_bridges_account_made_is_adopted_with_the_ordered_password(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    # What an earlier send that the panel has since forgotten leaves behind.
    panel_api.create_user("user1", password="stale-password-1")
    order = drive(services, submit(services, _user_only()), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert (order.steps[0].response or {}).get("adopted") is True
    assert panel_api.can_log_in("user1", "correct-horse-battery")
    assert not panel_api.can_log_in("user1", "stale-password-1")
    assert order.service.owns_account


def test_terminated_service_frees_its_username(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    first = submit(services, _user_only())
    assert drive(services, first, clock, sim).status is OrderStatus.COMPLETED
    gone = OrderSpec(order_id="term-1", service_id="svc-1", action=Action.TERMINATE)
    assert drive(services, submit(services, gone), clock, sim).status is (
        OrderStatus.COMPLETED
    )
    again = _user_only(order_id="ord-again", service_id="svc-again")
    order = drive(services, submit(services, again), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert sim.ledger()["user"] == {"user1": 2}


def _fail_after_the_user_step(
    services: Services, sim: SimControl, clock: FakeClock
) -> None:
    """svc-1's create fails at its certificate: failed, and owns user1's account."""
    sim.faults(ssl_failure_rate=1.0)
    order = drive(services, submit(services, create_spec(mailboxes=())), clock, sim)
    sim.clear_faults()
    assert order.status is OrderStatus.FAILED
    assert order.service.status is ServiceStatus.FAILED
    assert order.service.owns_account


def test_failed_service_that_owns_its_account_keeps_its_username(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    _fail_after_the_user_step(services, sim, clock)
    # Same username, email and package: it would adopt svc-1's account, which
    # svc-1's terminate would then delete.
    twin = _user_only(order_id="ord-twin", service_id="svc-twin")
    taken = "already used on server sim by service svc-1"
    with pytest.raises(InvalidOrderError, match=taken):
        submit(services, twin)
    gone = OrderSpec(order_id="term-1", service_id="svc-1", action=Action.TERMINATE)
    assert drive(services, submit(services, gone), clock, sim).status is (
        OrderStatus.COMPLETED
    )
    order = drive(services, submit(services, twin), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert not (order.steps[0].response or {}).get("adopted")
    assert sim.ledger()["user"] == {"user1": 2}  # a new account, not svc-1's


def test_engine_refuses_to_adopt_the_account_of_a_failed_owner(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    # Intake and the unique index keep a second holder out; the engine's own
    # check is the last line should one slip past them (a row written before
    # the index, or by hand). Here: svc-twin's create, accepted first, then its
    # service set aside (failed, owning nothing) so svc-1 may take the name.
    twin = submit(services, _user_only(order_id="ord-twin", service_id="svc-twin"))
    with services.sessions.begin() as session:
        session.execute(
            update(Service)
            .where(Service.service_id == "svc-twin")
            .values(status=ServiceStatus.FAILED)
        )
    _fail_after_the_user_step(services, sim, clock)
    order = drive(services, twin, clock, sim)
    assert order.status is OrderStatus.FAILED
    assert order.steps[0].error_code == "conflict"
    assert "belongs to service svc-1" in (order.last_error or "")
    assert sim.ledger()["user"] == {"user1": 1}
    assert not [r for r in sim.requests() if r["path"].endswith("/password")]


def test_lifecycle_order_behind_a_failed_create_does_not_touch_the_account(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    panel_api.create_user("user1", email="stranger@example.com")
    create = submit(services, _user_only())
    # Accepted while the create is pending: it runs after it, in posting order.
    follow = submit(services, _password_order(1, "svc-1", "taken-over-3"))
    assert drive(services, create, clock, sim).status is OrderStatus.FAILED
    order = drive(services, follow, clock, sim)
    assert order.status is OrderStatus.FAILED
    assert "no panel account provisioned by the bridge" in (order.last_error or "")
    writes = [r for r in sim.requests() if r["path"].endswith("/password")]
    assert writes == []


# -- fenced leases -----------------------------------------------------------------


def _real_clock_services(
    tmp_path: Path, settings: Settings, **changes: object
) -> Services:
    return build_services(settings.model_copy(update=changes), clock=system_clock)


def test_panel_stalling_longer_than_the_lease_runs_the_step_once(
    settings: Settings,
    tmp_path: Path,
    services: Services,
    server: Server,
    sim: SimControl,
) -> None:
    # Each call takes 5 s; the lease is 3 s: only the heartbeat keeps it.
    sim.faults(latency_ms=5000)
    live = _real_clock_services(
        tmp_path, settings, lease_seconds=3.0, panel_read_timeout=10
    )
    try:
        order_uuid = submit(live, _user_only())
        worker = threading.Thread(target=run_order, args=(live, order_uuid))
        worker.start()
        time.sleep(3.8)  # past the lease: a second delivery of the message
        run_order(live, order_uuid)
        worker.join(timeout=30)
        order = load(live, order_uuid)
    finally:
        live.close()
    assert order.status is OrderStatus.COMPLETED, order.last_error
    posts = [r for r in sim.requests() if r["method"] == "POST"]
    assert len(posts) == 1
    assert sim.ledger()["user"] == {"user1": 1}


def test_worker_whose_lease_was_taken_writes_nothing(
    settings: Settings,
    tmp_path: Path,
    services: Services,
    server: Server,
    sim: SimControl,
) -> None:
    sim.faults(latency_ms=1500)
    live = _real_clock_services(tmp_path, settings)
    try:
        order_uuid = submit(live, _user_only())
        worker = threading.Thread(target=run_order, args=(live, order_uuid))
        worker.start()
        # The worker holds the lease and its create is on the panel (1.5 s).
        wait_until(
            lambda: load(live, order_uuid).steps[0].status is StepStatus.IN_FLIGHT,
            10,
            "the create in flight",
        )
        with live.sessions.begin() as session:
            # Another worker takes the order over (as after an expired lease).
            session.execute(
                update(Order)
                .where(Order.id == order_uuid)
                .values(lease_owner="thief", version=Order.version + 1)
            )
        worker.join(timeout=30)
        order = load(live, order_uuid)
    finally:
        live.close()
    assert order.lease_owner == "thief"
    assert order.status is OrderStatus.RUNNING
    step = order.steps[0]
    assert step.status is StepStatus.IN_FLIGHT  # the old worker wrote no outcome
    assert step.attempts == 0
    assert step.response is None


# -- non-keyed steps read before they re-send --------------------------------------


def test_ssl_step_left_in_flight_by_a_dead_worker_is_read_not_reissued(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, create_spec(mailboxes=()))
    sim.faults(drop_after_apply_rate=1.0)
    order = drive(services, order_uuid, clock, sim, rounds=3)
    sim.clear_faults()
    ssl = next(s for s in order.steps if s.kind is StepKind.ISSUE_SSL)
    # Pretend the worker died right after sending the issue (no outcome stored).
    with services.sessions.begin() as session:
        session.execute(
            update(Step)
            .where(Step.id == ssl.id)
            .values(status=StepStatus.IN_FLIGHT, needs_reconcile=False, response=None)
        )
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert sim.ledger()["certificate"] == {"site1.example": 1}


def test_mailbox_whose_answer_was_a_500_is_read_before_any_resend(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    order_uuid = submit(services, create_spec(ssl=False))
    # The account and the domain are done: the next call is the first mailbox.
    panel_api.create_user("user1")
    body = {"domain": "site1.example", "username": "user1"}
    assert panel_api.call("POST", "/api/v1/domains/", json=body).status_code == 201
    with services.sessions.begin() as session:
        session.execute(
            update(Step)
            .where(Step.order_uuid == order_uuid, Step.position < 2)
            .values(status=StepStatus.SUCCEEDED, secret_body=None)
        )
    sim.fail_next(1, 500)  # the mailbox create: a 5xx, outcome unknown
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    boxes = [r for r in sim.requests() if r["path"].startswith("/api/v1/email")]
    methods = [r["method"] for r in boxes]
    assert methods[:3] == ["POST", "GET", "POST"]  # 500, read (absent), send
    assert sim.ledger()["mailbox"] == {
        "info@site1.example": 1,
        "sales@site1.example": 1,
    }


# -- SSL is bounded ----------------------------------------------------------------


def test_ssl_polls_cost_no_attempts_and_time_out(
    settings: Settings,
    tmp_path: Path,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    sim.config(ssl_delay_s=100_000)
    bounded = build_services(
        settings.model_copy(
            update={
                "ssl_timeout_seconds": 120,
                "ssl_poll_first_seconds": 1,
                "ssl_poll_seconds": 10,
            }
        ),
        clock=clock,
    )
    try:
        order_uuid = submit(bounded, create_spec(mailboxes=()))
        order = drive(bounded, order_uuid, clock, sim, rounds=200)
    finally:
        bounded.close()
    ssl = next(s for s in order.steps if s.kind is StepKind.ISSUE_SSL)
    assert order.status is OrderStatus.FAILED
    assert ssl.error_code == "ssl_timeout"
    assert ssl.attempts == 0  # a pending answer and its polls are no failures
    polls = [r for r in sim.requests() if r["method"] == "GET" and "/ssl/" in r["path"]]
    assert 5 < len(polls) < 60  # short at first, then growing to the cap


def _until_ssl_pending(
    services: Services, order_uuid: uuid.UUID, clock: FakeClock, sim: SimControl
) -> Order:
    """Run the order until its certificate is issued and pending (clocks kept)."""
    for _ in range(20):
        run_order(services, order_uuid)
        order = load(services, order_uuid)
        if order.wait_reason is WaitReason.SSL_PENDING:
            return order
        if order.next_attempt_at is not None and order.next_attempt_at > clock():
            wait = (order.next_attempt_at - clock()).total_seconds()
            if order.wait_reason is WaitReason.RATE_LIMITED:
                time.sleep(min(wait, 0.2))  # the shared bucket runs on Redis TIME
            clock.advance(wait + 0.001)
            sim.advance(wait + 0.001)
    pytest.fail(f"certificate never pending: {order.status} {order.last_error}")


def test_a_poll_refused_a_slot_keeps_the_certificates_timeout_running(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    sim.config(ssl_delay_s=100_000)
    order_uuid = submit(services, create_spec(mailboxes=()))
    pending = _until_ssl_pending(services, order_uuid, clock, sim)
    issued_at = next(s for s in pending.steps if s.kind is StepKind.ISSUE_SSL)
    assert issued_at.first_sent_at is not None
    clock.advance(60)
    sim.advance(60)
    slots = services.panels.inflight
    assert slots is not None
    held = [slots.acquire("sim") for _ in range(slots.limit)]
    try:
        run_order(services, order_uuid)  # the poll finds no free slot
    finally:
        for slot in held:
            if slot is not None:
                slots.release("sim", slot)
    order = load(services, order_uuid)
    assert order.wait_reason is WaitReason.RATE_LIMITED
    ssl = next(s for s in order.steps if s.kind is StepKind.ISSUE_SSL)
    # The timeout still counts from the issue, not from the refused poll.
    assert ssl.first_sent_at == issued_at.first_sent_at
    clock.advance(services.settings.ssl_timeout_seconds)
    sim.advance(services.settings.ssl_timeout_seconds)
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.FAILED
    assert next(s for s in order.steps if s.kind is StepKind.ISSUE_SSL).error_code == (
        "ssl_timeout"
    )


def _ssl_requests(sim: SimControl, method: str) -> list[dict[str, object]]:
    return [r for r in sim.requests() if r["method"] == method and "/ssl/" in r["path"]]


def test_panels_retry_after_on_a_pending_certificate_wins(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    sim.config(ssl_retry_after=True, ssl_delay_s=300)
    order_uuid = submit(services, create_spec(mailboxes=()))
    order = _until_ssl_pending(services, order_uuid, clock, sim)
    assert order.next_attempt_at is not None
    wait = (order.next_attempt_at - clock()).total_seconds()
    # Not the schedule's 2 s first look (nor its 15 s cap): the panel's 300 s.
    assert 299 < wait <= 300
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert len(_ssl_requests(sim, "GET")) == 1  # one look, when it said
    assert len(_ssl_requests(sim, "POST")) == 1


def test_panels_retry_after_never_outlasts_the_ssl_timeout(
    settings: Settings, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    sim.config(ssl_retry_after=True, ssl_delay_s=100_000)
    bounded = build_services(
        settings.model_copy(update={"ssl_timeout_seconds": 120}), clock=clock
    )
    try:
        order_uuid = submit(bounded, create_spec(mailboxes=()))
        order = _until_ssl_pending(bounded, order_uuid, clock, sim)
        assert order.next_attempt_at is not None
        assert (order.next_attempt_at - clock()).total_seconds() <= 120
        order = drive(bounded, order_uuid, clock, sim)
    finally:
        bounded.close()
    ssl = next(s for s in order.steps if s.kind is StepKind.ISSUE_SSL)
    assert order.status is OrderStatus.FAILED
    assert ssl.error_code == "ssl_timeout"
    assert len(_ssl_requests(sim, "GET")) == 1  # the look at the timeout


def test_transient_error_polling_a_pending_certificate_takes_the_normal_backoff(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, create_spec(mailboxes=()))
    order = _until_ssl_pending(services, order_uuid, clock, sim)
    assert order.next_attempt_at is not None
    wait = (order.next_attempt_at - clock()).total_seconds()
    clock.advance(wait + 0.001)
    sim.advance(wait + 0.001)
    sim.fail_next(1, 500)  # the poll: a 5xx on a read
    run_order(services, order_uuid)
    order = load(services, order_uuid)
    ssl = next(s for s in order.steps if s.kind is StepKind.ISSUE_SSL)
    assert order.status is OrderStatus.WAITING
    assert order.wait_reason is WaitReason.RETRY_BACKOFF
    assert ssl.attempts == 1  # the not-sent rule's one attempt, nothing more
    assert (ssl.response or {}).get("status") == "pending"  # still polled, not issued
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert len(_ssl_requests(sim, "POST")) == 1
    assert sim.ledger()["certificate"] == {"site1.example": 1}


def test_certificate_active_when_its_in_flight_step_is_read_is_adopted(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, create_spec(mailboxes=()))
    order = _until_ssl_pending(services, order_uuid, clock, sim)
    ssl = next(s for s in order.steps if s.kind is StepKind.ISSUE_SSL)
    # The worker died after sending the issue (no outcome stored), and the
    # certificate has since become active: a re-issue would be a second one.
    sim.advance(60)
    clock.advance(60)
    with services.sessions.begin() as session:
        session.execute(
            update(Step)
            .where(Step.id == ssl.id)
            .values(status=StepStatus.IN_FLIGHT, needs_reconcile=False, response=None)
        )
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert len(_ssl_requests(sim, "POST")) == 1
    assert sim.ledger()["certificate"] == {"site1.example": 1}


# -- no poison orders --------------------------------------------------------------


def test_secret_that_no_longer_decrypts_fails_the_order_after_its_attempts(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, _user_only())
    with services.sessions.begin() as session:
        session.execute(
            update(Step)
            .where(Step.order_uuid == order_uuid)
            .values(secret_body="not-a-fernet-token")
        )
    order = drive(services, order_uuid, clock, sim, rounds=100)
    assert order.status is OrderStatus.FAILED
    step = order.steps[0]
    assert step.error_code == "internal"
    assert step.attempts == services.settings.max_attempts
    assert sim.requests() == []  # nothing half-sent


def test_malformed_stored_body_ends_internal_then_failed(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, create_spec(ssl=False, mailboxes=()))
    with services.sessions.begin() as session:
        session.execute(  # the domain step's body lost its owner
            update(Step)
            .where(Step.order_uuid == order_uuid, Step.kind == StepKind.CREATE_DOMAIN)
            .values(request_body={"domain": "site1.example"})
        )
    order = drive(services, order_uuid, clock, sim, rounds=100)
    assert order.status is OrderStatus.FAILED
    domain = next(s for s in order.steps if s.kind is StepKind.CREATE_DOMAIN)
    assert domain.status is StepStatus.FAILED
    assert domain.error_code == "internal"
    assert domain.attempts == services.settings.max_attempts
    assert "internal error: KeyError" in (order.last_error or "")
    assert not [r for r in sim.requests() if r["path"].startswith("/api/v1/domains")]
    assert sim.ledger()["user"] == {"user1": 1}


# -- rejected credentials stop a server, not every order ----------------------------


def test_rejected_credentials_make_the_servers_orders_wait_until_fixed(
    services: Services,
    server: Server,
    simulator: SimulatorServer,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    set_server_key(services, simulator.base_url, "wsp_" + "0" * 48)
    first = submit(services, _user_only(1))
    second = submit(services, _user_only(2))
    run_order(services, first)
    order = load(services, first)
    assert order.status is OrderStatus.WAITING
    assert order.wait_reason is WaitReason.PANEL_AUTH
    assert order.steps[0].attempts == 0
    assert order.server is not None
    assert order.server.auth_error
    clock.advance(3600)
    report = dispatch_due_orders(services)
    assert report.orders == 0  # nothing goes to a server whose key is refused
    # A message that reaches a worker anyway (intake's own enqueue) sends nothing
    # and spends no attempt: the order waits on the server's flag as well.
    sent = len(sim.requests())
    run_order(services, second)
    waiting = load(services, second)
    assert waiting.status is OrderStatus.WAITING
    assert waiting.wait_reason is WaitReason.PANEL_AUTH
    assert waiting.steps[0].attempts == 0
    assert len(sim.requests()) == sent
    set_server_key(services, simulator.base_url, simulator.credentials().api_key)
    for order_uuid in (first, second):
        assert drive(services, order_uuid, clock, sim).status is OrderStatus.COMPLETED


def test_servers_test_clears_the_rejected_credentials_flag(
    services: Services, server: Server, sim: SimControl
) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Server).where(Server.id == server.id).values(auth_error="401")
        )
    assert probe_server(services, "sim", "ops", sleep=time.sleep)["ok"]
    with services.sessions() as session:
        assert session.get_one(Server, server.id).auth_error is None


# -- secrets do not outlive their use ----------------------------------------------


def _secrets(services: Services, order_uuid: uuid.UUID) -> list[str | None]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(Step.secret_body).where(Step.order_uuid == order_uuid)
            )
        )


def test_cancelled_order_keeps_no_secret(
    services: Services, server: Server, clock: FakeClock
) -> None:
    order_uuid = submit(services, create_spec())
    assert any(_secrets(services, order_uuid))
    cancel_order(services, order_uuid, "ops")
    assert _secrets(services, order_uuid) == [None] * 5


def _failed_with_its_secrets(
    services: Services, sim: SimControl, clock: FakeClock, panel_api: PanelApi
) -> uuid.UUID:
    """A create that failed (user1 is a stranger's) and still holds its password."""
    panel_api.create_user("user1", email="stranger@example.com")
    order_uuid = submit(services, _user_only())
    assert drive(services, order_uuid, clock, sim).status is OrderStatus.FAILED
    assert any(_secrets(services, order_uuid))
    return order_uuid


def test_failed_orders_secrets_expire_and_its_retry_asks_for_a_new_order(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    order_uuid = _failed_with_its_secrets(services, sim, clock, panel_api)
    clock.advance(services.settings.secret_retention_days * 86400 - 60)
    assert run_retention(services)["secrets_wiped"] == 0
    clock.advance(120)
    assert run_retention(services)["secrets_wiped"] == 1
    assert _secrets(services, order_uuid) == [None]
    with pytest.raises(OperationRefusedError, match="secrets expired"):
        retry_order(services, order_uuid, "ops")


def test_reseller_create_whose_secrets_expired_asks_for_a_new_order(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    panel_api.create_user("user1", email="stranger@example.com", role="reseller")
    account = AccountSpec(
        "user1",
        "user1@example.com",
        "reseller-password-1",
        "default",
        role=AccountRole.RESELLER,
    )
    order_uuid = submit(services, _user_only(account=account))
    assert drive(services, order_uuid, clock, sim).status is OrderStatus.FAILED
    clock.advance(services.settings.secret_retention_days * 86400 + 60)
    assert run_retention(services)["secrets_wiped"] == 1
    with pytest.raises(OperationRefusedError, match="secrets expired"):
        retry_order(services, order_uuid, "ops")
    assert load(services, order_uuid).status is OrderStatus.FAILED


def test_resolved_order_keeps_no_secret(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    panel_api: PanelApi,
) -> None:
    order_uuid = _failed_with_its_secrets(services, sim, clock, panel_api)
    resolve_order(services, order_uuid, "ops", "set up by hand")
    assert load(services, order_uuid).status is OrderStatus.COMPLETED
    assert _secrets(services, order_uuid) == [None]


def test_retention_purges_old_finished_orders(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, _user_only())
    assert drive(services, order_uuid, clock, sim).status is OrderStatus.COMPLETED
    clock.advance(timedelta(days=services.settings.retention_days + 1).total_seconds())
    assert run_retention(services)["orders_purged"] == 1
    assert load(services, order_uuid).payload == {}


def test_suspend_behind_a_create_that_failed_half_way_fails_cleanly(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    # The account is created, then the certificate fails: the service is failed
    # but owns its account. A suspend queued behind it must not touch the panel,
    # must not run forever, and must not block the terminate after it.
    sim.faults(ssl_failure_rate=1.0)
    create = submit(services, create_spec(mailboxes=()))
    suspend = submit(
        services, OrderSpec(order_id="sus-1", service_id="svc-1", action=Action.SUSPEND)
    )
    terminate = submit(
        services,
        OrderSpec(order_id="term-1", service_id="svc-1", action=Action.TERMINATE),
    )
    assert drive(services, create, clock, sim).status is OrderStatus.FAILED
    order = drive(services, suspend, clock, sim)
    assert order.status is OrderStatus.FAILED
    assert "only terminate or a new create" in (order.last_error or "")
    assert not [r for r in sim.requests() if r["path"].endswith("/suspend")]
    with pytest.raises(InvalidOrderError, match="only terminate or a new create"):
        submit(
            services,
            OrderSpec(order_id="sus-2", service_id="svc-1", action=Action.SUSPEND),
        )
    assert drive(services, terminate, clock, sim).status is OrderStatus.COMPLETED
    assert load(services, terminate).service.status.value == "terminated"
