"""The engine against the simulator over HTTP: exactly once, whatever fails."""

import dataclasses
import time

import pytest
from sqlalchemy import event

from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.states import OrderStatus, ServiceStatus, StepStatus
from bridge.engine import run_order
from bridge.errors import InvalidOrderError
from tests.factories import create_spec, drive, load, submit
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

EXPECTED_LEDGER = {
    "user": {"user1": 1},
    "domain": {"site1.example": 1},
    "certificate": {"site1.example": 1},
    "mailbox": {"info@site1.example": 1, "sales@site1.example": 1},
}


def _assert_created_once(sim: SimControl) -> None:
    ledger = sim.ledger()
    for kind, expected in EXPECTED_LEDGER.items():
        assert ledger.get(kind, {}) == expected, kind


def test_create_order_provisions_everything_once(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, create_spec())
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert [s.status for s in order.steps] == [StepStatus.SUCCEEDED] * 5
    assert order.service.status is ServiceStatus.ACTIVE
    assert all(s.secret_body is None for s in order.steps)
    _assert_created_once(sim)
    keys = {r["idempotency_key"] for r in sim.requests() if r["method"] == "POST"}
    assert keys == {s.idempotency_key for s in order.steps}


def test_ssl_pending_is_polled_until_active(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order_uuid = submit(services, create_spec(mailboxes=()))
    for _ in range(3):
        run_order(services, order_uuid)
    order = load(services, order_uuid)
    assert order.status is OrderStatus.WAITING
    assert order.wait_reason is not None
    assert order.wait_reason.value == "ssl_pending"
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    gets = [r for r in sim.requests() if r["path"].startswith("/api/v1/ssl/")]
    assert any(r["method"] == "GET" for r in gets)


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 0.5},
        {"drop_after_apply_rate": 0.5},
        {"stall_after_apply_rate": 0.5, "stall_seconds": 3},
    ],
    ids=["500", "drop-after-apply", "stall-after-apply"],
)
def test_faults_end_completed_with_each_resource_created_once(
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
    faults: dict[str, float],
) -> None:
    sim.config(seed=7)
    sim.faults(**faults)
    order_uuid = submit(services, create_spec())
    order = drive(services, order_uuid, clock, sim, rounds=200)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    _assert_created_once(sim)


def test_rate_limit_storm_waits_without_burning_attempts(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    sim.faults(storm_seconds=4)  # its Retry-After blocks the shared bucket in real time
    order_uuid = submit(services, create_spec(ssl=False, mailboxes=()))
    run_order(services, order_uuid)
    order = load(services, order_uuid)
    assert order.status is OrderStatus.WAITING
    assert order.wait_reason is not None
    assert order.wait_reason.value == "rate_limited"
    assert order.steps[0].attempts == 0
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    assert sim.ledger()["user"] == {"user1": 1}


def test_a_run_refused_its_token_commits_twice_and_sends_nothing(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    """The lease and the first step's preparation share one transaction."""
    sim.faults(storm_seconds=4)  # the first call's 429 blocks the bucket (real time)
    first = submit(services, create_spec(1, ssl=False, mailboxes=()))
    second = submit(services, create_spec(2, ssl=False, mailboxes=()))
    run_order(services, first)
    sent = len(sim.requests())
    commits: list[object] = []
    listener = commits.append
    event.listen(services.engine, "commit", listener)
    try:
        run_order(services, second)
    finally:
        event.remove(services.engine, "commit", listener)
    assert len(commits) == 2  # lease + prepare, then the refusal's release
    assert len(sim.requests()) == sent  # refused before anything was sent
    order = load(services, second)
    assert order.status is OrderStatus.WAITING
    assert order.wait_reason is not None
    assert order.wait_reason.value == "rate_limited"
    assert order.lease_owner is None
    assert order.steps[0].status is StepStatus.PENDING
    assert order.steps[0].attempts == 0


def test_user_made_on_the_panel_with_another_email_fails_as_conflict(
    services: Services, server: Server, sim: SimControl, clock: FakeClock, panel_api
) -> None:
    panel_api.create_user("user1", email="someone@else.example")
    spec = create_spec(1, ssl=False, mailboxes=(), domain=None)
    order = drive(services, submit(services, spec), clock, sim)
    assert order.status is OrderStatus.FAILED
    assert order.steps[0].error_code == "conflict"
    assert "another email or package" in (order.last_error or "")
    assert sim.ledger()["user"] == {"user1": 1}


def test_second_service_cannot_take_a_live_services_username(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    first = submit(services, create_spec(1, ssl=False, mailboxes=(), domain=None))
    assert drive(services, first, clock, sim).status is OrderStatus.COMPLETED
    again = create_spec(
        1, order_id="ord-again", service_id="svc-again", ssl=False, mailboxes=()
    )
    with pytest.raises(InvalidOrderError, match="already used on server sim"):
        submit(services, again)
    assert sim.ledger()["user"] == {"user1": 1}


def test_panel_outage_opens_the_circuit_and_orders_wait_not_fail(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    sim.faults(error_rate=1.0)
    order_uuid = submit(services, create_spec(ssl=False, mailboxes=()))
    order = drive(services, order_uuid, clock, sim, rounds=40)
    assert order.status is OrderStatus.WAITING
    assert order.wait_reason is not None
    assert order.wait_reason.value == "panel_unavailable"
    # Only failures before the circuit tripped count; 40 rounds of probes do not.
    assert order.steps[0].attempts == services.settings.circuit_failure_threshold - 1
    probes = [r for r in sim.requests() if r["path"] == "/api/v1/users/"]
    assert len(probes) > services.settings.max_attempts
    sim.clear_faults()
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED


def _age_first_send(services: Services, order_uuid: object, hours: float) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from bridge.db.models import Step

    with services.sessions.begin() as session:
        for step in session.scalars(select(Step).where(Step.order_uuid == order_uuid)):
            if step.first_sent_at is not None:
                step.first_sent_at -= timedelta(hours=hours)


def test_step_older_than_the_key_window_reads_before_resending(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:

    sim.faults(drop_after_apply_rate=1.0)  # applied on the panel, answer lost
    order_uuid = submit(services, create_spec(mailboxes=()))
    run_order(services, order_uuid)
    assert load(services, order_uuid).steps[0].status is StepStatus.PENDING
    sim.clear_faults()
    sim.advance(25 * 3600)  # the panel has forgotten the key
    _age_first_send(services, order_uuid, 21)
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    assert order.steps[0].response is not None
    assert order.steps[0].response.get("adopted") is True
    user_calls = [
        (r["method"], r["path"]) for r in sim.requests() if "/users" in r["path"]
    ]
    assert user_calls[:2] == [
        ("POST", "/api/v1/users/"),
        ("GET", "/api/v1/users/user1"),
    ]
    assert sim.ledger()["user"] == {"user1": 1}
    assert sim.ledger()["certificate"] == {"site1.example": 1}


def test_reconcile_of_a_never_issued_certificate_issues_it(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    from bridge.domain.model import StepKind
    from bridge.outcomes import Answer
    from bridge.steps import StepCall, execute

    order_uuid = submit(services, create_spec(ssl=False, mailboxes=()))
    assert drive(services, order_uuid, clock, sim).status is OrderStatus.COMPLETED
    call = StepCall(
        kind=StepKind.ISSUE_SSL,
        params={"domain": "site1.example"},
        body={"provider": "letsencrypt", "include_www": True},
        secret={},
        idempotency_key="c0ffee00-0000-4000-8000-000000000001",
        read_first=True,
        polling=False,
    )
    with services.sessions() as session:
        client = services.panels.client_for(session.get_one(Server, server.id))
    result = execute(client, call)
    for _ in range(50):  # the shared budget paces calls: wait our turn, like the engine
        if result.answer is not Answer.NO_TOKEN:
            break
        if result.read_absent:  # read as absent: the engine sends next time
            call = dataclasses.replace(call, read_first=False)
        time.sleep(result.retry_after or 0.01)
        result = execute(client, call)
    assert result.answer is Answer.SSL_PENDING  # "none" read as absent -> issued
    assert sim.ledger()["certificate"] == {"site1.example": 1}


def test_domain_owned_by_another_account_fails_as_conflict(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    first = submit(services, create_spec(1, ssl=False, mailboxes=()))
    assert drive(services, first, clock, sim).status is OrderStatus.COMPLETED
    second = submit(
        services, create_spec(2, domain="site1.example", ssl=False, mailboxes=())
    )
    order = drive(services, second, clock, sim)
    assert order.status is OrderStatus.FAILED
    assert order.steps[1].error_code == "conflict"
    assert "another owner" in (order.last_error or "")
    assert sim.ledger()["domain"] == {"site1.example": 1}


def test_every_create_whose_answer_is_lost_happens_once_keyed_or_not(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    # Every write is applied and its answer dropped. Users and domains replay
    # under their key; SSL and mailboxes (no key on the panel) are read first.
    sim.faults(drop_after_apply_rate=1.0)
    order = drive(services, submit(services, create_spec()), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    _assert_created_once(sim)
    adopted = [s.kind.value for s in order.steps if (s.response or {}).get("adopted")]
    assert adopted == ["create_mailbox", "create_mailbox"]
    issues = [r for r in sim.requests() if r["path"].endswith("/issue")]
    assert len(issues) == 1  # then read (pending) and polled, never re-sent


def test_old_step_read_as_absent_is_sent_again_without_rereading(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:

    sim.faults(error_rate=1.0)  # 500 on every write: nothing applied, outcome unknown
    order_uuid = submit(services, create_spec(ssl=False, mailboxes=(), domain=None))
    run_order(services, order_uuid)
    sim.clear_faults()
    _age_first_send(services, order_uuid, 21)
    order = drive(services, order_uuid, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    calls = [
        (r["method"], r["path"])
        for r in sim.requests()
        if r["status"] != 500 and r["path"] != "/api/v1/auth/me"  # who we are
    ]
    # One read (absent), then the create; never a second read before sending.
    assert calls[0] == ("GET", "/api/v1/users/user1")
    assert calls.count(("GET", "/api/v1/users/user1")) == 1
    assert sim.ledger()["user"] == {"user1": 1}


def test_login_mode_survives_token_revocation_mid_order(
    services: Services, simulator: object, sim: SimControl, clock: FakeClock
) -> None:
    from bridge.domain.model import AuthMode
    from bridge.fleet import ServerSpec, save_server
    from bridge.simulator import SimulatorServer

    assert isinstance(simulator, SimulatorServer)
    creds = simulator.credentials()
    with services.sessions.begin() as session:
        save_server(
            session,
            services.box,
            ServerSpec(
                name="sim-login",
                base_url=simulator.base_url,
                auth_mode=AuthMode.LOGIN,
                username=creds.username,
                password=creds.password,
                totp_secret=creds.totp_secret,
                rate_limit_per_min=6000,
            ),
        )
    first = submit(services, create_spec(1, ssl=False, mailboxes=()))
    assert drive(services, first, clock, sim).status is OrderStatus.COMPLETED
    sim.revoke()  # the cached JWT now answers 401 "Token revoked"
    second = submit(services, create_spec(2, ssl=False, mailboxes=()))
    order = drive(services, second, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert sim.ledger()["user"] == {"user1": 1, "user2": 1}
    assert sim.ledger()["domain"] == {"site1.example": 1, "site2.example": 1}
    logins = [r for r in sim.requests() if r["path"] == "/api/v1/auth/login"]
    assert len(logins) == 2  # the first login, then one after the revocation
    assert [r["status"] for r in sim.requests() if r["status"] == 401] == [401]
