"""Operator use cases against real PostgreSQL, Redis and the simulator over HTTP."""

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, select, text, update

from bridge.container import Services, build_services
from bridge.db import orders as orders_db
from bridge.db.models import Order, Server, Step
from bridge.domain.model import Action, AuthMode, OrderSpec, StepKind
from bridge.domain.states import OrderStatus, ServiceStatus, StepStatus
from bridge.engine import run_order
from bridge.errors import InvalidOrderError, InvalidTransitionError, NotFoundError
from bridge.ops import (
    OperationRefusedError,
    ServerChanges,
    cancel_order,
    edit_server,
    list_orders,
    needs_fresh_key,
    parse_moment,
    probe_server,
    purge_orders,
    resolve_order,
    retry_all_failed,
    retry_order,
)
from bridge.simulator import SimulatorServer
from tests.factories import drive, load, submit
from tests.infra import make_test_settings
from tests.ops_support import (
    audit_rows,
    failed_create,
    register_sim,
    small_create,
    user_posts,
)
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

OPS = "ops:tester"


@pytest.fixture
def one_shot(
    tmp_path: Path,
    database_url: str,
    committed_db: Engine,
    redis_client: "redis.Redis",
    clock: FakeClock,
    simulator: SimulatorServer,
    sim: SimControl,
) -> Iterator[Services]:
    """Services whose steps give up after one unknown outcome (the circuit stays
    closed), so an order fails with the panel's answer unknown."""
    settings = make_test_settings(
        tmp_path / "var", database_url=database_url, max_attempts=1
    )
    built = build_services(settings, clock=clock)
    register_sim(built, simulator)
    yield built
    built.close()


@pytest.mark.parametrize(
    ("panel_status", "error_code", "fresh"),
    [
        (400, "VALIDATION_ERROR", True),
        (403, "LICENSE_LIMIT", True),
        (404, "NOT_FOUND", True),
        (409, "conflict", True),
        (422, "idempotency_key_mismatch", True),
        (None, "ssl_failed", True),
        (500, "INTERNAL_ERROR", False),
        (None, "PanelOutcomeUnknownError", False),
        (None, "reconcile_absent", False),
    ],
)
def test_which_failed_steps_get_a_fresh_key(
    panel_status: int | None, error_code: str, fresh: bool
) -> None:
    step = Step(panel_status=panel_status, error_code=error_code)
    assert needs_fresh_key(step) is fresh


def test_retry_after_a_stored_refusal_sends_a_fresh_key_and_creates_once(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    # Given: the license is full, so the panel answers 403 and stores it by key.
    sim.config(license_max_users=0)
    order = drive(services, submit(services, small_create()), clock, sim)
    assert order.status is OrderStatus.FAILED
    assert order.service.status is ServiceStatus.FAILED
    old_key = order.steps[0].idempotency_key
    # When: the operator raises the license and retries.
    sim.config(license_max_users=-1)
    view = retry_order(services, order.order_id, OPS)
    # Then: a fresh key, a restarted budget, and one user on the panel.
    assert view["status"] == "queued"
    step = view["steps"][0]
    assert step["status"] == "pending"
    assert step["idempotency_key"] != old_key
    assert step["first_sent_at"] is None
    assert step["attempts"] == 0
    assert step["retry_started_at"] is not None
    order = drive(services, order.id, clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert order.service.status is ServiceStatus.ACTIVE
    assert sim.ledger()["user"] == {"user1": 1}
    posts = user_posts(sim)
    assert [(p["idempotency_key"], p["status"]) for p in posts] == [
        (old_key, 403),
        (step["idempotency_key"], 201),
    ]


def test_retry_after_a_one_off_400_completes_without_duplicates(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order = failed_create(services, sim, clock)
    retry_order(services, str(order.id), OPS)
    order = drive(services, order.id, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    assert sim.ledger()["user"] == {"user1": 1}
    (entry,) = audit_rows(services, order.id)
    assert (entry.actor, entry.action) == (OPS, "order_retried")
    assert (entry.before_status, entry.after_status) == ("failed", "queued")
    assert entry.detail["steps"] == [
        {"position": 0, "kind": "create_user", "fresh_key": True}
    ]
    assert entry.detail["previous_error"]


def test_retry_of_an_unknown_outcome_keeps_the_key_and_the_panel_replays(
    one_shot: Services, sim: SimControl, clock: FakeClock
) -> None:
    # Given: the create ran on the panel but the answer was lost.
    sim.faults(drop_after_apply_rate=1.0)
    order = drive(one_shot, submit(one_shot, small_create()), clock, sim)
    assert order.status is OrderStatus.FAILED
    key = order.steps[0].idempotency_key
    sim.clear_faults()
    # When
    view = retry_order(one_shot, order.order_id, OPS)
    assert view["steps"][0]["idempotency_key"] == key
    assert view["steps"][0]["first_sent_at"] is not None
    order = drive(one_shot, order.id, clock, sim)
    # Then: the same key, replayed by the panel, no second user.
    assert order.status is OrderStatus.COMPLETED
    assert sim.ledger()["user"] == {"user1": 1}
    assert [p["idempotency_key"] for p in user_posts(sim)] == [key, key]
    assert user_posts(sim)[-1]["replayed"] is True


def test_retry_past_the_key_window_reconciles_instead_of_resending(
    one_shot: Services, sim: SimControl, clock: FakeClock
) -> None:
    sim.faults(drop_after_apply_rate=1.0)
    order = drive(one_shot, submit(one_shot, small_create()), clock, sim)
    assert order.status is OrderStatus.FAILED
    sim.clear_faults()
    # A day later: past our reconcile threshold and the panel's 24 h key memory.
    clock.advance(one_shot.settings.reconcile_after_seconds + 1)
    sim.advance(86_400 + 1)
    retry_order(one_shot, order.order_id, OPS)
    order = drive(one_shot, order.id, clock, sim)
    assert order.status is OrderStatus.COMPLETED
    assert order.steps[0].response is not None
    assert order.steps[0].response.get("adopted") is True
    assert len(user_posts(sim)) == 1
    assert sim.ledger()["user"] == {"user1": 1}


def test_retry_refuses_orders_that_are_not_failed(
    services: Services, server: Server
) -> None:
    order_uuid = submit(services, small_create())
    with pytest.raises(InvalidTransitionError):
        retry_order(services, order_uuid, OPS)
    with pytest.raises(NotFoundError):
        retry_order(services, "no-such-order", OPS)
    assert audit_rows(services) == []


def test_retry_refuses_an_order_superseded_by_a_later_one(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    created = drive(services, submit(services, small_create()), clock, sim)
    assert created.status is OrderStatus.COMPLETED
    sim.fail_next(1, 403)
    suspend = OrderSpec("s-1", created.service_id, Action.SUSPEND)
    suspended = drive(services, submit(services, suspend), clock, sim)
    assert suspended.status is OrderStatus.FAILED
    unsuspend = OrderSpec("u-1", created.service_id, Action.UNSUSPEND)
    assert drive(services, submit(services, unsuspend), clock, sim).status is (
        OrderStatus.COMPLETED
    )
    with pytest.raises(OperationRefusedError, match="superseded by u-1"):
        retry_order(services, "s-1", OPS)
    assert load(services, suspended.id).status is OrderStatus.FAILED


def test_retry_all_failed_reports_progress_and_filters(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    first = failed_create(services, sim, clock, 1)
    second = failed_create(services, sim, clock, 2)
    submit(services, small_create(3))  # queued: not touched
    assert list(retry_all_failed(services, OPS, action=Action.SUSPEND)) == []
    outcomes = list(retry_all_failed(services, OPS, server="sim"))
    assert [(o.ok, o.index, o.total, o.fresh_keys) for o in outcomes] == [
        (True, 1, 2, 1),
        (True, 2, 2, 1),
    ]
    assert {o.ref for o in outcomes} == {first.order_id, second.order_id}
    assert load(services, first.id).status is OrderStatus.QUEUED


def test_cancel_is_refused_while_a_worker_holds_the_order(
    services: Services, server: Server, clock: FakeClock
) -> None:
    order_uuid = submit(services, small_create())
    with services.sessions.begin() as session:
        assert orders_db.acquire_lease(session, order_uuid, "worker-1", clock(), 60)
    with pytest.raises(OperationRefusedError, match="running on a worker"):
        cancel_order(services, order_uuid, OPS)
    order = load(services, order_uuid)
    assert order.status is OrderStatus.RUNNING
    assert order.lease_owner == "worker-1"


def test_cancel_of_a_queued_order_stops_it_before_any_panel_call(
    services: Services, server: Server, sim: SimControl
) -> None:
    order_uuid = submit(services, small_create())
    view = cancel_order(services, order_uuid, OPS)
    assert view["status"] == "cancelled"
    assert view["finished_at"] is not None
    run_order(services, order_uuid)  # a late message for it does nothing
    cancelled = load(services, order_uuid)
    assert cancelled.status is OrderStatus.CANCELLED
    # The account never came to be: billing may post a new create for the service.
    assert cancelled.service.status is ServiceStatus.FAILED
    assert user_posts(sim) == []
    (entry,) = audit_rows(services, order_uuid)
    assert (entry.action, entry.before_status, entry.after_status) == (
        "order_cancelled",
        "queued",
        "cancelled",
    )
    with pytest.raises(InvalidTransitionError):
        cancel_order(services, order_uuid, OPS)


def test_cancel_of_a_failed_order(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order = failed_create(services, sim, clock)
    assert cancel_order(services, order.order_id, OPS)["status"] == "cancelled"


def test_cancel_is_refused_while_a_sent_step_may_have_been_applied(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    # The panel created the user, then the connection dropped: outcome unknown.
    sim.faults(drop_after_apply_rate=1.0)
    order_uuid = submit(services, small_create())
    run_order(services, order_uuid)
    sim.clear_faults()
    waiting = load(services, order_uuid)
    assert waiting.status is OrderStatus.WAITING
    assert waiting.steps[0].first_sent_at is not None
    with pytest.raises(OperationRefusedError) as refused:
        cancel_order(services, order_uuid, OPS)
    message = str(refused.value)
    assert "step 0 (create_user)" in message
    assert "may already have applied it" in message
    assert "Let the order finish" in message
    assert load(services, order_uuid).status is OrderStatus.WAITING
    assert audit_rows(services, order_uuid) == []
    # Left alone, it finishes: the same key, the panel's stored answer.
    done = drive(services, order_uuid, clock, sim)
    assert done.status is OrderStatus.COMPLETED
    assert done.service.status is ServiceStatus.ACTIVE
    assert sim.ledger()["user"] == {"user1": 1}


def test_cancel_of_a_waiting_order_whose_step_was_never_sent(
    services: Services, server: Server, sim: SimControl
) -> None:
    sim.fail_next(1, 429)  # refused before it ran
    order_uuid = submit(services, small_create())
    run_order(services, order_uuid)
    waiting = load(services, order_uuid)
    assert waiting.status is OrderStatus.WAITING
    assert waiting.steps[0].first_sent_at is None
    assert cancel_order(services, order_uuid, OPS)["status"] == "cancelled"
    assert "user1" not in sim.state()["users"]


def test_cancel_of_a_failed_order_whose_outcome_is_unknown(
    one_shot: Services, sim: SimControl, clock: FakeClock
) -> None:
    # The engine gave up: the operator checked the panel and decides.
    sim.faults(drop_after_apply_rate=1.0)
    order = drive(one_shot, submit(one_shot, small_create()), clock, sim)
    sim.clear_faults()
    assert order.status is OrderStatus.FAILED
    assert order.steps[0].first_sent_at is not None
    assert cancel_order(one_shot, order.order_id, OPS)["status"] == "cancelled"


def test_resolve_applies_the_service_effect_and_records_the_note(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order = failed_create(services, sim, clock)
    assert order.service.status is ServiceStatus.FAILED
    with pytest.raises(InvalidOrderError):
        resolve_order(services, order.order_id, OPS, "  ")
    view = resolve_order(services, order.order_id, OPS, "created by hand on sim")
    assert view["status"] == "completed"
    assert view["last_error"] is None
    resolved = load(services, order.id)
    assert resolved.service.status is ServiceStatus.ACTIVE
    assert resolved.service.server_id == server.id
    (entry,) = audit_rows(services, order.id)
    assert entry.action == "order_resolved"
    assert entry.detail["note"] == "created by hand on sim"
    assert (entry.before_status, entry.after_status) == ("failed", "completed")
    with pytest.raises(InvalidTransitionError):
        resolve_order(services, order.order_id, OPS, "again")


@pytest.mark.parametrize("act", ["retry", "resolve"])
def test_reopening_a_create_whose_username_was_taken_since_is_refused(
    act: str, services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    # svc-1's create failed before its account existed, which freed user1;
    # svc-2 has taken the name since.
    order = failed_create(services, sim, clock)
    assert not order.service.owns_account
    taker = small_create(2, account=small_create().account)
    taken = drive(services, submit(services, taker), clock, sim)
    assert taken.status is OrderStatus.COMPLETED, taken.last_error
    held = "username user1 is now held by service svc-2"
    reopens: dict[str, Callable[[], object]] = {
        "retry": lambda: retry_order(services, order.order_id, OPS),
        "resolve": lambda: resolve_order(services, order.order_id, OPS, "by hand"),
    }
    reopen = reopens[act]
    with pytest.raises(OperationRefusedError, match=held):
        reopen()
    # Refused whole: the order, its service and the audit log are as they were.
    again = load(services, order.id)
    assert again.status is OrderStatus.FAILED
    assert again.service.status is ServiceStatus.FAILED
    assert audit_rows(services, order.id) == []


def _steps(services: Services, order_uuid: object) -> list[Step]:
    with services.sessions() as session:
        return list(session.scalars(select(Step).where(Step.order_uuid == order_uuid)))


def test_purge_wipes_finished_orders_data_and_keeps_rows_and_audit(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    done = failed_create(services, sim, clock, 1)
    retry_order(services, done.id, OPS)
    assert drive(services, done.id, clock, sim).status is OrderStatus.COMPLETED
    cancelled = submit(services, small_create(2))
    cancel_order(services, cancelled, OPS)
    still_failed = failed_create(services, sim, clock, 3)
    # Cancelling wiped the password already: it will never be sent.
    assert _steps(services, cancelled)[0].secret_body is None
    clock.advance(91 * 86_400)
    result = purge_orders(services, clock() - timedelta(days=90), OPS)
    assert (result.orders, result.steps) == (2, 2)
    for order_uuid in (done.id, cancelled):
        order = load(services, order_uuid)
        assert order.payload == {}
        assert order.status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED)
        (step,) = _steps(services, order_uuid)
        assert (step.request_body, step.response, step.secret_body) == ({}, None, None)
    kept = _steps(services, still_failed.id)[0]
    assert kept.request_body["username"] == "user3"
    assert kept.secret_body is not None
    assert [e.action for e in audit_rows(services, done.id)] == ["order_retried"]
    assert audit_rows(services)[-1].action == "orders_purged"


def test_purge_leaves_recent_orders_alone(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    order = drive(services, submit(services, small_create()), clock, sim)
    result = purge_orders(services, clock() - timedelta(days=90), OPS)
    assert result.orders == 0
    assert load(services, order.id).payload != {}


def test_list_orders_filters_and_paginates(
    services: Services, server: Server, sim: SimControl, simulator: SimulatorServer
) -> None:
    register_sim(services, simulator, name="other")
    for n in range(1, 6):
        submit(services, small_create(n, server="sim"))
    submit(services, small_create(6, server="other"))
    cancel_order(services, "ord-1", OPS)
    with services.sessions() as session:
        rows, total = list_orders(session, page=2, per_page=4)
        assert (len(rows), total) == (2, 6)
        rows, total = list_orders(session, status=OrderStatus.CANCELLED)
        assert total == 1
        assert rows[0]["order_id"] == "ord-1"
        rows, total = list_orders(session, server="other")
        assert [r["order_id"] for r in rows] == ["ord-6"]
        assert list_orders(session, action=Action.SUSPEND) == ([], 0)
        newest = session.scalar(select(Order.created_at).order_by(Order.created_at))
        assert newest is not None
        later = newest + timedelta(hours=1)
        assert list_orders(session, since=later) == ([], 0)


def test_failed_order_list_shows_the_failed_step_and_panel_status(
    services: Services, server: Server, sim: SimControl, clock: FakeClock
) -> None:
    failed_create(services, sim, clock)
    with services.sessions() as session:
        (row,), _ = list_orders(session, status=OrderStatus.FAILED)
    assert row["failed_step"] == StepKind.CREATE_USER.value
    assert row["panel_status"] == 400
    assert row["server"] == "sim"
    assert row["last_error"]
    with services.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.steps[0].status is StepStatus.FAILED


def test_server_edits_merge_credentials_and_tls_options(
    services: Services, server: Server, tmp_path: Path
) -> None:
    def stored() -> tuple[Server, dict[str, str]]:
        with services.sessions() as session:
            row = session.scalars(select(Server)).one()
            return row, services.box.decrypt_json(row.credentials)

    edit_server(services, "sim", ServerChanges(username="ops", password="pw-1"), OPS)
    row, creds = stored()
    assert row.auth_mode is AuthMode.LOGIN
    assert creds == {"username": "ops", "password": "pw-1"}
    edit_server(services, "sim", ServerChanges(password="pw-2"), OPS)
    assert stored()[1] == {"username": "ops", "password": "pw-2"}
    with pytest.raises(InvalidOrderError):
        edit_server(services, "sim", ServerChanges(api_key="k", username="u"), OPS)
    with pytest.raises(InvalidOrderError, match="tls_fingerprint"):
        edit_server(services, "sim", ServerChanges(tls_fingerprint="abc"), OPS)
    with pytest.raises(InvalidOrderError, match="ca_bundle"):
        edit_server(services, "sim", ServerChanges(ca_bundle="/no/such.pem"), OPS)
    pin = "AB:" * 31 + "AB"
    view = edit_server(services, "sim", ServerChanges(tls_fingerprint=pin), OPS)
    assert (view["tls_fingerprint"], view["ca_bundle"]) == (pin, None)
    bundle = tmp_path / "not-a-cert.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(InvalidOrderError, match=r"ca_bundle: .* not a PEM CA bundle"):
        edit_server(services, "sim", ServerChanges(ca_bundle=str(bundle)), OPS)
    # A stored bundle that stopped loading (edited on disk since) is a failed
    # test with the reason, not a crash.
    with services.sessions.begin() as session:
        session.execute(
            update(Server).values(ca_bundle=str(bundle), tls_fingerprint=None)
        )
    report = probe_server(services, "sim", OPS)
    assert report["ok"] is False
    assert "ca_bundle" in (report["error"] or "")
    view = edit_server(
        services, "sim", ServerChanges(clear=frozenset({"ca_bundle"})), OPS
    )
    assert view["ca_bundle"] is None
    changes = [e.detail for e in audit_rows(services) if e.action == "server_edited"]
    assert changes[0]["auth"] == "credentials replaced"
    assert "pw-1" not in str(changes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", datetime(2024, 3, 2, 12, tzinfo=UTC)),
        ("12h", datetime(2024, 5, 31, tzinfo=UTC)),
        ("2w", datetime(2024, 5, 17, 12, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:00:00+02:00", datetime(2024, 5, 1, 8, tzinfo=UTC)),
    ],
)
def test_moments_are_iso_dates_or_durations_back_from_now(
    text: str, expected: datetime
) -> None:
    now = datetime(2024, 5, 31, 12, tzinfo=UTC)
    assert parse_moment(text, now) == expected
    with pytest.raises(InvalidOrderError):
        parse_moment("last tuesday", now)


def _waiting_on_a_lock(services: Services) -> bool:
    with services.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    return bool(waiting)


def test_cancel_loses_cleanly_to_a_worker_that_leases_the_order_meanwhile(
    services: Services, server: Server, clock: FakeClock
) -> None:
    order_uuid = submit(services, small_create())
    worker = services.sessions()
    worker.begin()
    # The worker holds the row; the operator reads "queued" and then waits on it.
    worker.execute(select(Order.id).where(Order.id == order_uuid).with_for_update())
    with ThreadPoolExecutor(max_workers=1) as pool:
        attempt = pool.submit(cancel_order, services, order_uuid, OPS)
        for _ in range(500):
            if _waiting_on_a_lock(services) or attempt.done():
                break
            time.sleep(0.01)
        assert orders_db.acquire_lease(worker, order_uuid, "worker-1", clock(), 60)
        worker.commit()
        worker.close()
        with pytest.raises(OperationRefusedError):
            attempt.result(timeout=30)
    order = load(services, order_uuid)
    assert (order.status, order.lease_owner) == (OrderStatus.RUNNING, "worker-1")
    assert audit_rows(services, order_uuid) == []
