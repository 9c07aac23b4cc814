"""The operator CLI as an operator runs it (its entry point's code, in-process:
tests/cli_runner.py) on the test database: orders list/show/retry/cancel/resolve/
purge, servers, tokens, audit."""

import io
import json
import subprocess
import sys

import pytest

from bridge import admin_tokens
from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.roles import Role
from bridge.domain.states import OrderStatus, ServiceStatus
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.cli_runner import as_json, bridge
from tests.factories import drive, load, submit
from tests.ops_support import audit_rows, failed_create, small_create
from tests.simctl import FakeClock, SimControl

pytestmark = pytest.mark.integration


def test_failed_orders_list_and_show(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    order = failed_create(services, sim, clock)
    submit(services, small_create(2))
    listed = as_json(bridge(settings, "orders", "list", "--status", "failed", "--json"))
    assert listed["meta"] == {
        "total": 1,
        "per_page": 50,
        "current_page": 1,
        "last_page": 1,
    }
    assert listed["data"][0]["id"] == str(order.id)
    human = bridge(settings, "orders", "list", "--status", "failed", "--since", "1d")
    assert human.returncode == 0, human.stderr
    assert "ord-1" in human.stdout
    assert "create_user (400)" in human.stdout
    assert "ord-2" not in human.stdout
    shown = as_json(bridge(settings, "orders", "show", "ord-1", "--json"))["order"]
    assert shown["steps"][0]["panel_status"] == 400
    assert shown["steps"][0]["first_sent_at"]
    human = bridge(settings, "orders", "show", str(order.id))
    assert human.returncode == 0, human.stderr
    for text in ("failed", "last error", "created", "finished", "VALIDATION"):
        assert text in human.stdout
    bad = bridge(settings, "orders", "list", "--since", "soon")
    assert bad.returncode == 2
    assert "--since" in bad.stderr


def test_retry_by_id_then_all_failed_with_a_summary(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    first = failed_create(services, sim, clock, 1)
    second = failed_create(services, sim, clock, 2)
    one = bridge(settings, "orders", "retry", "ord-1")
    assert one.returncode == 0, one.stderr
    assert "1 retried (1 step(s) with a fresh key)" in one.stdout
    rest = as_json(bridge(settings, "orders", "retry", "--all-failed", "--json"))
    assert rest == {"retried": ["ord-2"], "refused": [], "fresh_keys": 1}
    refused = bridge(settings, "orders", "retry", "ord-1", "ord-404")
    assert refused.returncode == 1
    assert "2 refused" in refused.stdout
    assert "queued -> queued" in refused.stdout
    assert "not found" in refused.stdout
    for order in (first, second):
        assert drive(services, order.id, clock, sim).status is OrderStatus.COMPLETED
    assert sim.ledger()["user"] == {"user1": 1, "user2": 1}
    actors = {e.actor for e in audit_rows(services)}
    assert len(actors) == 1
    assert actors.pop().startswith("ops:")


def test_cancel_resolve_and_purge(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    clock: FakeClock,
) -> None:
    queued = submit(services, small_create(1))
    failed = failed_create(services, sim, clock, 2)
    cancel = bridge(settings, "orders", "cancel", str(queued))
    assert cancel.returncode == 0, cancel.stderr
    assert "cancelled" in cancel.stdout
    resolve = bridge(settings, "orders", "resolve", "ord-2", "--note", "made by hand")
    assert resolve.returncode == 0, resolve.stderr
    assert load(services, failed.id).service.status is ServiceStatus.ACTIVE
    kept = as_json(
        bridge(settings, "orders", "purge", "--older-than", "90d", "--yes", "--json")
    )
    assert kept["orders"] == 0
    # Both finished (on the test clock) before the CLI's now: a 0s cutoff takes them.
    purged = bridge(settings, "orders", "purge", "--older-than", "0s", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert "purged 2 order(s)" in purged.stdout
    assert load(services, queued).payload == {}
    assert [e.action for e in audit_rows(services)] == [
        "order_cancelled",
        "order_resolved",
        "orders_purged",
        "orders_purged",
    ]


def test_servers_edit_test_drain_and_remove(
    settings: Settings,
    services: Services,
    server: Server,
    simulator: SimulatorServer,
    sim: SimControl,
) -> None:
    key = simulator.credentials().api_key
    edited = as_json(
        bridge(settings, "servers", "edit", "sim", "--limit", "30", "--json")
    )["server"]
    assert (edited["rate_limit_per_min"], edited["url"]) == (30, simulator.base_url)
    report = as_json(bridge(settings, "servers", "test", "sim", "--json"))
    assert report["ok"] is True  # the stored credentials survived the edit
    assert report["license"]["max_users"] == 30
    submit(services, small_create(server="sim"))
    assert bridge(settings, "servers", "drain", "sim").returncode == 0
    listed = as_json(bridge(settings, "servers", "list", "--json"))
    assert [(s["name"], s["state"]) for s in listed] == [("sim", "draining")]
    assert key not in json.dumps(listed)
    added = bridge(
        settings, "servers", "add", "spare", "--url", simulator.base_url,
        "--api-key", key,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert bridge(settings, "servers", "remove", "spare").returncode == 0
    refused = bridge(settings, "servers", "remove", "sim")
    assert refused.returncode == 1
    assert "disable" in refused.stderr
    broken = bridge(settings, "servers", "edit", "sim", "--api-key", "wsp_wrong_00000")
    assert broken.returncode == 0
    failing = bridge(settings, "servers", "test", "sim")
    assert failing.returncode == 1
    for text in ("reachable", "authenticated", "version", "license", "error"):
        assert text in failing.stdout
    assert "wsp_wrong_00000" not in failing.stdout + failing.stderr
    actions = [e.action for e in audit_rows(services)]
    assert actions == [
        "server_edited",
        "server_tested",
        "server_edited",
        "server_added",
        "server_removed",
        "server_edited",
        "server_tested",
    ]


def test_server_credentials_given_as_dash_are_read_off_the_command_line(
    settings: Settings,
    server: Server,
    simulator: SimulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = simulator.credentials().api_key

    def edit_key_from_stdin(text: str) -> "subprocess.CompletedProcess[str]":
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))
        return bridge(settings, "servers", "edit", "sim", "--api-key", "-")

    wrong = edit_key_from_stdin("wsp_wrong_00000\n")
    assert wrong.returncode == 0, wrong.stderr
    assert bridge(settings, "servers", "test", "sim").returncode == 1  # stored
    right = edit_key_from_stdin(key + "\n")
    assert right.returncode == 0, right.stderr
    assert bridge(settings, "servers", "test", "sim").returncode == 0
    assert key not in right.stdout + right.stderr
    empty = edit_key_from_stdin("")
    assert empty.returncode == 2
    assert "standard input" in empty.stderr
    assert bridge(settings, "servers", "test", "sim").returncode == 0  # unchanged


def test_admin_tokens_and_audit_list(settings: Settings, services: Services) -> None:
    created = bridge(settings, "admin", "tokens", "create", "dana")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith(admin_tokens.TOKEN_PREFIX)
    assert "not shown again" in created.stderr
    ops = bridge(settings, "admin", "tokens", "create", "eve", "--role", "operate")
    assert ops.returncode == 0, ops.stderr
    bad = bridge(settings, "admin", "tokens", "create", "fay", "--role", "root")
    assert bad.returncode != 0
    listed = as_json(bridge(settings, "admin", "tokens", "list", "--json"))
    # Least privilege unless asked for more: the default role is read.
    assert [(t["name"], t["role"], t["state"]) for t in listed] == [
        ("dana", "read", "active"),
        ("eve", "operate", "active"),
    ]
    assert token not in json.dumps(listed)
    assert ops.stdout.strip() not in json.dumps(listed)
    with services.sessions.begin() as session:
        operator = admin_tokens.authenticate(session, services.settings, token)
        assert operator == admin_tokens.Operator("dana", Role.READ)
    assert bridge(settings, "admin", "tokens", "revoke", "dana").returncode == 0
    with services.sessions.begin() as session:
        assert admin_tokens.authenticate(session, services.settings, token) is None
    entries = as_json(bridge(settings, "audit", "list", "--actor", "ops", "--json"))
    assert [(e["action"], e["detail"]["name"]) for e in entries] == [
        ("admin_token_revoked", "dana"),
        ("admin_token_created", "eve"),
        ("admin_token_created", "dana"),
    ]
    assert all(e["actor"].startswith("ops:") for e in entries)
    assert token not in json.dumps(entries)
    human = bridge(settings, "audit", "list", "--since", "1h")
    assert human.returncode == 0, human.stderr
    assert "admin_token_created" in human.stdout
