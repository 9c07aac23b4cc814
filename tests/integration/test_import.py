"""`servers import` against the simulator over HTTP: what is recorded (hosting users
and resellers), idempotence, resumption, mapping files, budget waits, and lifecycle
orders on imported services."""

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.container import Services
from bridge.db.models import AuditEntry, Server, Service
from bridge.domain.model import AccountRole, Action, SuspendReason
from bridge.domain.states import OrderStatus, ServiceStatus
from bridge.errors import InvalidOrderError, NotFoundError, RateLimitedError
from bridge.ops.errors import OperationRefusedError
from bridge.ops.import_map import load_mapping
from bridge.ops.importer import import_accounts
from bridge.ops.linking import link_service
from tests.factories import drive, submit
from tests.panel_api import PanelApi
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration

ACTOR = "ops:tester"


def seed_panel(panel_api: PanelApi) -> None:
    """Two hosting users (one suspended, one with a site), a reseller, the admin."""
    panel_api.create_user("alice", package="pro")
    panel_api.create_user("bob")
    panel_api.create_user("partner", role="reseller")
    body = {"domain": "alice.example", "username": "alice"}
    assert panel_api.call("POST", "/api/v1/domains/", json=body).status_code == 201
    mailbox = {"domain": "alice.example", "username": "info", "password": "pw-1"}
    assert (
        panel_api.call("POST", "/api/v1/email/accounts", json=mailbox).status_code
        == 201
    )
    assert (
        panel_api.call("POST", "/api/v1/ssl/alice.example/issue", json={}).status_code
        == 200
    )
    suspended = panel_api.call(
        "POST", "/api/v1/users/bob/suspend", json={"reason": "x"}
    )
    assert suspended.status_code == 200


def run_import(services: Services, **kwargs: Any) -> dict[str, Any]:
    """Import from `sim` as the CLI does: waiting for the shared budget."""
    kwargs.setdefault("sleep", time.sleep)
    return import_accounts(services, "sim", ACTOR, **kwargs)


def services_by_username(services: Services) -> dict[str, Service]:
    with services.sessions() as session:
        rows = session.scalars(select(Service)).all()
        return {s.username or "": s for s in rows}


def audit_actions(services: Services) -> list[str]:
    with services.sessions() as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_import_records_hosting_users_and_resellers_and_skips_the_admin(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    report = run_import(services)
    results = {
        a["username"]: (a["role"], a["result"], a.get("reason"))
        for a in report["accounts"]
    }
    assert results == {
        "admin": ("admin", "skipped", "admin account"),
        "alice": ("user", "imported", None),
        "bob": ("user", "imported", None),
        "partner": ("reseller", "imported", None),
    }
    alice = next(a for a in report["accounts"] if a["username"] == "alice")
    assert alice["domains"] == ["alice.example"]
    assert alice["mailboxes"] == 1
    assert alice["certificates"] == {"alice.example": "pending"}
    rows = services_by_username(services)
    assert set(rows) == {"alice", "bob", "partner"}
    assert rows["alice"].service_id == "import:sim:alice"
    assert rows["alice"].account_role is AccountRole.USER
    assert rows["alice"].status is ServiceStatus.ACTIVE
    assert rows["alice"].domain == "alice.example"
    assert rows["alice"].package == "pro"
    assert rows["bob"].status is ServiceStatus.SUSPENDED
    assert rows["bob"].suspension_reason is SuspendReason.OTHER
    assert rows["partner"].service_id == "import:sim:partner"
    assert rows["partner"].account_role is AccountRole.RESELLER
    assert rows["partner"].status is ServiceStatus.ACTIVE
    assert rows["partner"].suspension_reason is None
    assert all(r.owns_account and r.server_id == server.id for r in rows.values())
    assert audit_actions(services).count("service_imported") == 3
    assert "servers_imported" in audit_actions(services)
    # Reads only: the panel was not changed by the import.
    assert all(r["method"] == "GET" for r in sim.requests()[-4:])


def test_a_second_run_changes_nothing(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    run_import(services)
    before = {
        n: (s.service_id, s.status, s.updated_at)
        for n, s in services_by_username(services).items()
    }
    actions = audit_actions(services)
    report = run_import(services)
    assert report["counts"] == {"unchanged": 3, "skipped": 1}
    after = {
        n: (s.service_id, s.status, s.updated_at)
        for n, s in services_by_username(services).items()
    }
    assert after == before
    assert audit_actions(services) == actions


def test_a_suspended_reseller_is_imported_suspended_with_its_users_counted(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    # Given: a reseller with a hosting user of its own, suspended on the panel
    seed_panel(panel_api)
    panel_api.create_user("agency", role="reseller")
    panel_api.create_user("carol", token=panel_api.create_key("agency"))
    suspended = panel_api.call(
        "POST", "/api/v1/users/agency/suspend", json={"reason": "x"}
    )
    assert suspended.status_code == 200
    # When
    report = run_import(services, mapping={"agency": "whmcs-r1"})
    # Then: the map applies to resellers too; the reseller's user is its own service
    by_name = {a["username"]: a for a in report["accounts"]}
    assert by_name["agency"]["result"] == "imported"
    assert by_name["agency"]["users"] == 1
    assert by_name["agency"]["service_id"] == "whmcs-r1"
    assert "users" not in by_name["carol"]
    rows = services_by_username(services)
    agency = rows["agency"]
    assert (agency.service_id, agency.account_role) == (
        "whmcs-r1",
        AccountRole.RESELLER,
    )
    assert agency.status is ServiceStatus.SUSPENDED
    assert agency.suspension_reason is SuspendReason.OTHER
    assert agency.suspended_at is not None
    assert rows["carol"].account_role is AccountRole.USER
    with services.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "service_imported",
                AuditEntry.service_id == "whmcs-r1",
            )
        ).one()
    assert entry.after_status == "suspended"
    assert (entry.detail["role"], entry.detail["users"]) == ("reseller", 1)


def test_a_service_recorded_with_another_role_is_a_conflict(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    # Given: partner is managed as a hosting user, but the panel says reseller
    seed_panel(panel_api)
    run_import(services)
    with services.sessions.begin() as session:
        row = session.get(Service, "import:sim:partner")
        assert row is not None
        row.account_role = AccountRole.USER
    # When
    report = run_import(services)
    # Then: reported, not rewritten (its terminate would take other endpoints)
    partner = next(a for a in report["accounts"] if a["username"] == "partner")
    assert (partner["result"], partner["reason"]) == (
        "conflict",
        "managed as import:sim:partner with role user",
    )
    assert services_by_username(services)["partner"].account_role is AccountRole.USER


def test_an_interrupted_import_is_completed_by_a_rerun(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    # Given: an import that stopped after alice (each account is its own
    # transaction, so a crash leaves exactly such a state)
    seed_panel(panel_api)
    run_import(services)
    with services.sessions.begin() as session:
        session.delete(session.get(Service, "import:sim:bob"))
    # When
    report = run_import(services)
    # Then
    results = {a["username"]: a["result"] for a in report["accounts"]}
    assert results["alice"] == "unchanged"
    assert results["bob"] == "imported"
    assert results["partner"] == "unchanged"
    assert set(services_by_username(services)) == {"alice", "bob", "partner"}


def test_dry_run_writes_nothing(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    report = run_import(services, dry_run=True)
    assert report["counts"] == {"would_import": 3, "skipped": 1}
    assert services_by_username(services) == {}
    assert audit_actions(services) == []


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_a_mapping_file_gives_billings_ids(
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
    tmp_path: Path,
    kind: str,
) -> None:
    seed_panel(panel_api)
    path = tmp_path / f"map.{kind}"
    if kind == "csv":
        path.write_text("username,service_id\nalice,whmcs-100\nghost,whmcs-9\n")
    else:
        path.write_text(json.dumps({"alice": "whmcs-100", "ghost": "whmcs-9"}))
    report = run_import(services, mapping=load_mapping(path))
    rows = services_by_username(services)
    assert rows["alice"].service_id == "whmcs-100"
    assert rows["bob"].service_id == "import:sim:bob"
    assert report["unmapped"] == ["ghost"]


def test_a_rerun_with_a_mapping_links_placeholders(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    run_import(services)
    report = run_import(services, mapping={"bob": "whmcs-7"})
    bob = next(a for a in report["accounts"] if a["username"] == "bob")
    assert (bob["result"], bob["reason"]) == ("linked", "was import:sim:bob")
    assert services_by_username(services)["bob"].service_id == "whmcs-7"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("alice\n", "entry 1: expected username,service_id"),
        ("alice,a b\n", "entry 1: service id must be 1-128 printable characters"),
        ("alice,x\nbob,x\n", "service ids used twice: x"),
        ("alice,import:sim:alice\n", "entry 1: 'import:' ids are reserved"),
        ("{not json", "not valid JSON"),
    ],
)
def test_a_bad_mapping_file_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "map.txt"
    path.write_text(text)
    with pytest.raises(InvalidOrderError) as caught:
        load_mapping(path)
    assert (caught.value.field, caught.value.reason) == ("map", reason)


def test_mapped_id_taken_by_another_service_is_a_conflict(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    run_import(services, mapping={"alice": "whmcs-1"})
    report = run_import(services, mapping={"alice": "whmcs-1", "bob": "whmcs-1x"})
    assert report["counts"] == {"unchanged": 2, "linked": 1, "skipped": 1}
    again = run_import(services, mapping={"alice": "whmcs-2"})
    alice = next(a for a in again["accounts"] if a["username"] == "alice")
    assert (alice["result"], alice["reason"]) == (
        "conflict",
        "already managed as whmcs-1",
    )


def test_mapping_a_placeholder_to_a_taken_id_is_a_conflict(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    run_import(services, mapping={"alice": "whmcs-1"})
    report = run_import(services, mapping={"bob": "whmcs-1"})
    bob = next(a for a in report["accounts"] if a["username"] == "bob")
    assert bob["result"] == "conflict"
    assert "whmcs-1 already exists" in bob["reason"]
    assert services_by_username(services)["bob"].service_id == "import:sim:bob"


def test_unknown_server_is_not_found(services: Services) -> None:
    with pytest.raises(NotFoundError):
        import_accounts(services, "nope", ACTOR)


def test_a_panel_without_the_list_endpoint_imports_nothing(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    with services.sessions.begin() as session:
        row = session.get(Server, server.id)
        assert row is not None
        row.route_overrides = {"list_domains": {"path": "/api/v1/sites/"}}
    with pytest.raises(
        OperationRefusedError, match="reading domains from the panel failed"
    ):
        run_import(services)
    assert services_by_username(services) == {}


def test_import_waits_for_the_shared_budget(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    with services.sessions.begin() as session:
        row = session.get(Server, server.id)
        assert row is not None
        row.rate_limit_per_min = 300  # a call every ~0.2 s after a tiny burst
    with pytest.raises(RateLimitedError):
        run_import(services, sleep=None)
    assert services_by_username(services) == {}
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    events: list[str] = []
    report = run_import(services, sleep=sleep, progress=lambda k, _d: events.append(k))
    assert waits
    assert "wait" in events
    assert report["counts"]["imported"] == 3


def _lifecycle(n: int, action: Action, service_id: str, **extra: Any) -> Any:
    from bridge.domain.model import OrderSpec

    return OrderSpec(
        order_id=f"life-{n}", service_id=service_id, action=action, **extra
    )


def test_lifecycle_orders_work_on_imported_services(
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
    clock: FakeClock,
) -> None:
    seed_panel(panel_api)
    run_import(services, mapping={"alice": "whmcs-1"})
    orders = [
        _lifecycle(1, Action.SUSPEND, "whmcs-1", reason=SuspendReason.NON_PAYMENT),
        _lifecycle(2, Action.UNSUSPEND, "whmcs-1"),
        _lifecycle(3, Action.CHANGE_PACKAGE, "whmcs-1", package="basic"),
        _lifecycle(4, Action.UNSUSPEND, "import:sim:bob"),
        _lifecycle(5, Action.TERMINATE, "import:sim:bob"),
    ]
    for spec in orders:
        order = drive(services, submit(services, spec), clock, sim)
        assert order.status is OrderStatus.COMPLETED, (spec.action, order.last_error)
    assert panel_api.get_user("alice")["package"] == "basic"
    assert panel_api.get_user("alice")["status"] == "active"
    assert panel_api.call("GET", "/api/v1/users/bob").status_code == 404
    rows = services_by_username(services)
    assert rows["alice"].status is ServiceStatus.ACTIVE
    assert rows["bob"].status is ServiceStatus.TERMINATED


def test_lifecycle_orders_work_on_an_imported_reseller(
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
    clock: FakeClock,
) -> None:
    seed_panel(panel_api)
    run_import(services, mapping={"partner": "whmcs-r"})
    suspend = _lifecycle(1, Action.SUSPEND, "whmcs-r", reason=SuspendReason.NON_PAYMENT)
    order = drive(services, submit(services, suspend), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    assert panel_api.get_user("partner")["status"] == "suspended"
    # A re-import leaves the bridge's own suspension as it is.
    before = services_by_username(services)["partner"]
    actions = audit_actions(services)
    again = run_import(services, mapping={"partner": "whmcs-r"})
    partner = next(a for a in again["accounts"] if a["username"] == "partner")
    assert (partner["status"], partner["result"]) == ("suspended", "unchanged")
    after = services_by_username(services)["partner"]
    assert (after.status, after.suspension_reason, after.updated_at) == (
        ServiceStatus.SUSPENDED,
        SuspendReason.NON_PAYMENT,
        before.updated_at,
    )
    assert audit_actions(services) == actions
    # A reseller with no users is terminated without force, through /resellers.
    terminate = _lifecycle(2, Action.TERMINATE, "whmcs-r")
    order = drive(services, submit(services, terminate), clock, sim)
    assert order.status is OrderStatus.COMPLETED, order.last_error
    deletes = [r["path"] for r in sim.requests() if r["method"] == "DELETE"]
    assert deletes == ["/api/v1/resellers/partner"]
    assert panel_api.call("GET", "/api/v1/users/partner").status_code == 404
    assert services_by_username(services)["partner"].status is (
        ServiceStatus.TERMINATED
    )


def test_an_imported_reseller_with_users_is_not_terminated_unless_forced(
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
    clock: FakeClock,
) -> None:
    panel_api.create_user("agency", role="reseller")
    panel_api.create_user("carol", token=panel_api.create_key("agency"))
    run_import(services)
    terminate = _lifecycle(1, Action.TERMINATE, "import:sim:agency")
    refused = drive(services, submit(services, terminate), clock, sim)
    assert refused.status is OrderStatus.FAILED
    assert refused.steps[0].error_code == "reseller_has_users"
    assert "carol" in (refused.last_error or "")
    assert panel_api.get_user("carol")["creator"] == "agency"  # nothing deleted
    assert services_by_username(services)["agency"].status is ServiceStatus.ACTIVE


def test_link_renames_the_service_and_its_orders(
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
    clock: FakeClock,
) -> None:
    seed_panel(panel_api)
    run_import(services)
    spec = _lifecycle(1, Action.SUSPEND, "import:sim:alice", reason=SuspendReason.ABUSE)
    order = drive(services, submit(services, spec), clock, sim)
    assert order.status is OrderStatus.COMPLETED
    view = link_service(services, "import:sim:alice", "whmcs-42", ACTOR)
    assert view["service_id"] == "whmcs-42"
    assert view["status"] == "suspended"
    with services.sessions() as session:
        assert session.get(Service, "import:sim:alice") is None
        moved = session.get(Service, "whmcs-42")
        assert moved is not None
        assert moved.username == "alice"
        assert moved.owns_account
        from bridge.db.models import Order

        assert session.scalars(select(Order.service_id)).all() == ["whmcs-42"]
        ids = set(session.scalars(select(AuditEntry.service_id)).all())
        assert "import:sim:alice" not in ids
    follow = _lifecycle(2, Action.UNSUSPEND, "whmcs-42")
    assert (
        drive(services, submit(services, follow), clock, sim).status
        is OrderStatus.COMPLETED
    )


def test_link_refuses_an_existing_target_and_changes_nothing(
    services: Services, server: Server, sim: SimControl, panel_api: PanelApi
) -> None:
    seed_panel(panel_api)
    run_import(services, mapping={"bob": "whmcs-7"})
    with pytest.raises(OperationRefusedError, match="already exists"):
        link_service(services, "import:sim:alice", "whmcs-7", ACTOR)
    with pytest.raises(OperationRefusedError, match="only imported"):
        link_service(services, "whmcs-7", "whmcs-8", ACTOR)
    with pytest.raises(NotFoundError):
        link_service(services, "import:sim:nobody", "whmcs-9", ACTOR)
    rows = services_by_username(services)
    assert (rows["alice"].service_id, rows["bob"].service_id) == (
        "import:sim:alice",
        "whmcs-7",
    )
