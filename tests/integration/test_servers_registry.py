"""The server registry from the CLI and the admin API: per-server route overrides
(set, shown, validated, cleared), webhooks on `servers add`, and `servers remove`
when the panel keeps the subscription."""

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from bridge.container import Services
from bridge.db.models import Server
from bridge.domain.model import AuthMode
from bridge.errors import InvalidOrderError
from bridge.fleet import (
    CAPACITY_MAX,
    RATE_LIMIT_MAX,
    ServerSpec,
    save_server,
)
from bridge.ops import ServerChanges, edit_server, server_detail
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.cli_runner import as_json, bridge
from tests.infra import ADMIN_TOKEN
from tests.simctl import SimControl

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
USAGE_PATH = "/api/v1/stats/{username}/usage"


def panel_hooks(sim: SimControl) -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = sim._get("/webhooks")["webhooks"]
    return hooks


def shown(settings: Settings, name: str = "sim") -> dict[str, Any]:
    result = bridge(settings, "servers", "show", name, "--json")
    view: dict[str, Any] = as_json(result)["server"]
    return view


# --- route overrides: CLI ---


def test_cli_add_and_edit_set_show_and_clear_route_overrides(
    settings: Settings, services: Services, simulator: SimulatorServer
) -> None:
    added = bridge(
        settings,
        "servers",
        "add",
        "sim",
        "--url",
        simulator.base_url,
        "--api-key",
        simulator.credentials().api_key,
        "--route-override",
        f"get_user_usage=GET:{USAGE_PATH}",
        "--route-override",
        "list_usage=/api/v1/stats/",
    )
    assert added.returncode == 0, added.stderr
    expected = {
        "get_user_usage": {"method": "GET", "path": USAGE_PATH},
        "list_usage": {"path": "/api/v1/stats/"},
    }
    assert shown(settings)["route_overrides"] == expected
    listed = as_json(bridge(settings, "servers", "list", "--json"))
    assert listed[0]["route_overrides"] == expected
    table = bridge(settings, "servers", "list").stdout
    assert "overridden: get_user_usage, list_usage" in table

    dropped = bridge(
        settings, "servers", "edit", "sim", "--route-override", "list_usage="
    )
    assert dropped.returncode == 0, dropped.stderr
    assert shown(settings)["route_overrides"] == {
        "get_user_usage": {"method": "GET", "path": USAGE_PATH}
    }
    human = bridge(settings, "servers", "show", "sim")
    assert f"GET {USAGE_PATH}" in human.stdout

    cleared = bridge(settings, "servers", "edit", "sim", "--no-route-overrides")
    assert cleared.returncode == 0, cleared.stderr
    assert shown(settings)["route_overrides"] == {}
    table = bridge(settings, "servers", "list").stdout
    assert "overridden" not in table
    assert "default" in table


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("list_usages=GET:/api/v1/usage/", "unknown operation 'list_usages'"),
        ("list_usage=FETCH:/api/v1/usage/", "method 'FETCH' not allowed"),
        ("list_usage=GET:api/v1/usage/", "path must be an absolute path"),
        ("list_usage=POST:/api/v1/usage/", "cannot change read/write kind"),
        ("get_user_usage=GET:/api/v1/usage/{user}", "path fields"),
        ("list_usage", "expected OP=METHOD:PATH"),
        ("list_usage=api/v1/usage/", "expected OP=METHOD:PATH"),
    ],
)
def test_cli_refuses_a_bad_route_override_naming_the_option(
    settings: Settings, server: Server, value: str, complaint: str
) -> None:
    result = bridge(settings, "servers", "edit", "sim", "--route-override", value)

    assert result.returncode == 2
    assert "--route-override" in result.stderr
    assert complaint in result.stderr
    assert shown(settings)["route_overrides"] == {}


# --- route overrides: admin API ---


def test_admin_api_sets_shows_and_clears_route_overrides(
    api: httpx.Client, server: Server
) -> None:
    overrides = {"get_user_usage": {"method": "get", "path": USAGE_PATH}}
    put = api.put(
        "/v1/admin/servers/sim", json={"route_overrides": overrides}, headers=ADMIN
    )

    assert put.status_code == 200, put.text
    stored = {"get_user_usage": {"method": "GET", "path": USAGE_PATH}}
    assert put.json()["server"]["route_overrides"] == stored
    got = api.get("/v1/admin/servers/sim", headers=ADMIN).json()["server"]
    assert got["route_overrides"] == stored
    listed = api.get("/v1/admin/servers", headers=ADMIN).json()["data"]
    assert listed[0]["route_overrides"] == stored

    # Other fields leave them alone; null clears them.
    api.put("/v1/admin/servers/sim", json={"limit": 100}, headers=ADMIN)
    got = api.get("/v1/admin/servers/sim", headers=ADMIN).json()["server"]
    assert got["route_overrides"] == stored
    cleared = api.put(
        "/v1/admin/servers/sim", json={"route_overrides": None}, headers=ADMIN
    )
    assert cleared.json()["server"]["route_overrides"] == {}


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"list_usages": {"path": "/x/"}}, "unknown operation 'list_usages'"),
        ({"list_usage": {"method": "FETCH"}}, "method 'FETCH' not allowed"),
        ({"list_usage": {"path": "api/v1/usage/"}}, "absolute path"),
        ({"list_usage": {}}, "give a method, a path or both"),
        ({"list_usage": {"verb": "GET"}}, "Extra inputs"),
        ({"list_usage": "GET /x/"}, "valid dictionary"),
    ],
)
def test_admin_api_refuses_a_bad_route_override_with_422(
    api: httpx.Client, server: Server, overrides: Any, complaint: str
) -> None:
    response = api.put(
        "/v1/admin/servers/sim", json={"route_overrides": overrides}, headers=ADMIN
    )

    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][:2] == ["body", "route_overrides"]
    assert complaint in detail["msg"]
    got = api.get("/v1/admin/servers/sim", headers=ADMIN).json()["server"]
    assert got["route_overrides"] == {}


def test_admin_api_creates_a_server_with_route_overrides(
    api: httpx.Client, services: Services, simulator: SimulatorServer
) -> None:
    body = {
        "url": simulator.base_url,
        "api_key": simulator.credentials().api_key,
        "route_overrides": {"list_usage": {"path": "/api/v1/stats/"}},
    }

    created = api.put("/v1/admin/servers/new", json=body, headers=ADMIN)

    assert created.status_code == 201, created.text
    assert created.json()["server"]["route_overrides"] == {
        "list_usage": {"path": "/api/v1/stats/"}
    }


# --- the registry's limits, from the CLI and save_server ---


def registry(services: Services) -> list[dict[str, Any]]:
    """Every stored server as `servers show` sees it, credentials sealed."""
    with services.sessions() as session:
        rows = session.scalars(select(Server).order_by(Server.name))
        return [server_detail(row) | {"sealed": row.credentials} for row in rows]


def self_signed_pem(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "panel.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize(
    ("args", "code", "complaint"),
    [
        (["--limit", "0"], 2, "--limit"),
        (["--limit", "99999999999"], 2, "--limit"),
        (["--capacity", "-5"], 2, "--capacity"),
        (["--capacity", "99999999999999999999"], 2, "--capacity"),
        (["--ca-bundle", "/etc/passwd"], 2, "not a PEM CA bundle"),
        (["--url", "http://"], 1, "url: expected an http:// or https:// URL"),
        (["--url", "http://a b"], 1, "url: must not contain spaces"),
    ],
)
def test_cli_add_and_edit_refuse_what_the_api_refuses_and_save_nothing(
    settings: Settings,
    services: Services,
    server: Server,
    args: list[str],
    code: int,
    complaint: str,
) -> None:
    # Each was saved: a 0 limit made every order of the server loop on
    # ConfigurationError, a negative capacity read as unlimited, 2**64 was an
    # OverflowError traceback, and "http://a b" a host no order could reach.
    before = registry(services)
    key = ["--api-key", "wsp_x"]
    url = [] if "--url" in args else ["--url", "http://127.0.0.1:9/"]
    added = bridge(settings, "servers", "add", "t0", *url, *key, *args)
    edited = bridge(settings, "servers", "edit", "sim", *args)

    for result in (added, edited):
        assert result.returncode == code, result
        assert complaint in result.stderr
        assert "Traceback" not in result.stderr
    assert registry(services) == before


def test_cli_add_refuses_a_name_the_admin_api_could_not_manage(
    settings: Settings, services: Services
) -> None:
    url, key = ["--url", "http://127.0.0.1:9/"], ["--api-key", "wsp_x"]
    for name in ("bad name", "_under", "n" * 65, "ok\n"):
        added = bridge(settings, "servers", "add", name, *url, *key)
        assert added.returncode == 1, added
        assert "name: 1-64 letters, digits" in added.stderr
    assert registry(services) == []


def test_cli_saves_the_limits_at_their_bounds_and_a_real_ca_bundle(
    settings: Settings, services: Services, server: Server, tmp_path: Path
) -> None:
    bundle = self_signed_pem(tmp_path / "ca.pem")
    added = bridge(
        settings,
        "servers",
        "add",
        "t0",
        "--url",
        "http://127.0.0.1:9/",
        "--api-key",
        "wsp_x",
        "--limit",
        str(RATE_LIMIT_MAX),
        "--capacity",
        "0",
        "--ca-bundle",
        str(bundle),
    )
    assert added.returncode == 0, added.stderr
    edited = bridge(settings, "servers", "edit", "sim", "--capacity", str(CAPACITY_MAX))
    assert edited.returncode == 0, edited.stderr
    t0, sim = shown(settings, "t0"), shown(settings)
    assert (t0["rate_limit_per_min"], t0["capacity"]) == (RATE_LIMIT_MAX, 0)
    assert t0["ca_bundle"] == str(bundle)
    assert sim["capacity"] == CAPACITY_MAX


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rate_limit_per_min": 0}, "rate_limit_per_min"),
        ({"rate_limit_per_min": RATE_LIMIT_MAX + 1}, "rate_limit_per_min"),
        ({"capacity": -5}, "capacity"),
        ({"capacity": CAPACITY_MAX + 1}, "capacity"),
        ({"base_url": "http://"}, "url"),
        ({"base_url": "http://a b"}, "url"),
        ({"base_url": "ftp://panel.example"}, "url"),
        ({"base_url": "http://panel.example:99999"}, "url"),
        ({"base_url": "http://u:p@panel.example"}, "url"),
        ({"name": "bad name"}, "name"),
        ({"ca_bundle": "/etc/passwd"}, "ca_bundle"),
    ],
)
def test_save_server_refuses_for_every_caller_naming_the_field(
    services: Services, change: dict[str, Any], field: str
) -> None:
    # The importer and `bridge run` save through it too, past the CLI's options.
    spec = ServerSpec(
        name="t0",
        base_url="http://127.0.0.1:9",
        auth_mode=AuthMode.API_KEY,
        api_key="wsp_x",
    )
    with (
        pytest.raises(InvalidOrderError) as refused,
        services.sessions.begin() as session,
    ):
        save_server(session, services.box, dataclasses.replace(spec, **change))
    assert refused.value.field == field
    assert registry(services) == []


# --- webhooks on add and remove ---


@pytest.fixture
def public(settings: Settings, api: httpx.Client) -> Settings:
    """Settings with BRIDGE_PUBLIC_URL pointing at the served API."""
    return settings.model_copy(update={"public_url": str(api.base_url)})


def test_servers_add_with_webhooks_subscribes(
    public: Settings, services: Services, simulator: SimulatorServer, sim: SimControl
) -> None:
    added = bridge(
        public,
        "servers",
        "add",
        "sim",
        "--url",
        simulator.base_url,
        "--api-key",
        simulator.credentials().api_key,
        "--webhooks",
    )

    assert added.returncode == 0, added.stderr
    hooks = panel_hooks(sim)
    assert len(hooks) == 1
    assert hooks[0]["url"].endswith("/v1/panel-events/sim")
    assert f"webhooks: subscribed ({hooks[0]['id']})" in added.stdout
    assert shown(public)["webhook_subscribed"] is True


def test_servers_add_json_is_the_view_with_the_subscription(
    public: Settings, services: Services, simulator: SimulatorServer, sim: SimControl
) -> None:
    api_key = simulator.credentials().api_key
    added = bridge(
        public,
        "servers",
        "add",
        "sim",
        "--url",
        simulator.base_url,
        "--api-key",
        api_key,
        "--webhooks",
        "--route-override",
        "list_usage=/api/v1/stats/",
        "--json",
    )

    assert added.returncode == 0, added.stderr
    view = as_json(added)["server"]
    (hook,) = panel_hooks(sim)
    assert view["webhook"]["subscribed"] is True
    assert view["webhook"]["id"] == hook["id"]
    assert view["route_overrides"] == {"list_usage": {"path": "/api/v1/stats/"}}
    # The same view `edit --json` prints (less its webhook outcome), no secret.
    edited = as_json(bridge(public, "servers", "edit", "sim", "--json"))["server"]
    assert {k: v for k, v in view.items() if k not in {"webhook", "updated_at"}} == {
        k: v for k, v in edited.items() if k not in {"webhook", "updated_at"}
    }
    assert api_key not in added.stdout


def _subscribed_at(public: Settings, simulator: SimulatorServer, limit: int) -> None:
    """Server sim added with webhooks at `limit`/min: its one call just spent."""
    added = bridge(
        public,
        "servers",
        "add",
        "sim",
        "--url",
        simulator.base_url,
        "--api-key",
        simulator.credentials().api_key,
        "--limit",
        str(limit),
        "--webhooks",
    )
    assert added.returncode == 0, added.stderr
    assert "webhooks: subscribed" in added.stdout


def test_servers_edit_no_webhooks_waits_a_short_budget_wait(
    public: Settings, services: Services, simulator: SimulatorServer, sim: SimControl
) -> None:
    # At 20/min the unsubscribe waits ~3 s for the budget the subscribe spent:
    # it gave up ("rate limited, retry after 0.196s") with the subscription kept.
    _subscribed_at(public, simulator, 20)

    edited = bridge(public, "servers", "edit", "sim", "--no-webhooks")

    assert edited.returncode == 0, edited.stderr
    assert "not subscribed" not in edited.stderr
    assert "webhooks: unsubscribed" in edited.stdout
    view = shown(public)
    assert (view["webhooks"], view["webhook_subscribed"]) == (False, False)
    assert panel_hooks(sim) == []


def test_servers_edit_no_webhooks_reports_a_long_budget_wait(
    public: Settings, services: Services, simulator: SimulatorServer, sim: SimControl
) -> None:
    # At 1/min the wait is about a minute: said, not waited for; the id is kept
    # so the next edit tries again.
    _subscribed_at(public, simulator, 1)

    edited = bridge(public, "servers", "edit", "sim", "--no-webhooks")

    assert edited.returncode == 0, edited.stderr
    assert "webhooks: not subscribed: unsubscribe failed: rate limited" in (
        edited.stderr
    )
    assert shown(public)["webhook_subscribed"] is True
    assert len(panel_hooks(sim)) == 1


def test_servers_remove_json(settings: Settings, server: Server) -> None:
    removed = bridge(settings, "servers", "remove", "sim", "--json")

    assert removed.returncode == 0, removed.stderr
    assert as_json(removed) == {"removed": "sim", "warning": None}
    assert bridge(settings, "servers", "show", "sim").returncode == 1


def _subscribed_with_a_failing_unsubscribe(
    public: Settings, services: Services, sim: SimControl
) -> str:
    """sim subscribed to the panel's events; the panel will fail the next call."""
    hooked = dataclasses.replace(services, settings=public)
    view = edit_server(hooked, "sim", ServerChanges(webhooks=True), "ops:t")
    sim.fail_next(1, 503)
    return str(view["webhook"]["id"])


def test_servers_remove_warns_when_the_panel_keeps_the_subscription(
    public: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    api: httpx.Client,
) -> None:
    hook_id = _subscribed_with_a_failing_unsubscribe(public, services, sim)

    removed = bridge(public, "servers", "remove", "sim")

    assert removed.returncode == 0, removed.stderr
    assert "server sim removed" in removed.stdout
    assert "warning: the panel at" in removed.stderr
    assert f"webhook subscription {hook_id}" in removed.stderr
    assert f"DELETE /api/v1/webhooks/{hook_id}" in removed.stderr
    assert [h["id"] for h in panel_hooks(sim)] == [hook_id]


def test_servers_remove_json_carries_the_warning(
    public: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    api: httpx.Client,
) -> None:
    hook_id = _subscribed_with_a_failing_unsubscribe(public, services, sim)

    removed = bridge(public, "servers", "remove", "sim", "--json")

    assert removed.returncode == 0, removed.stderr
    body = as_json(removed)
    assert body["removed"] == "sim"
    assert f"DELETE /api/v1/webhooks/{hook_id}" in body["warning"]
    assert removed.stderr == ""


def test_admin_api_delete_says_when_the_panel_keeps_the_subscription(
    public: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    api: httpx.Client,
) -> None:
    hook_id = _subscribed_with_a_failing_unsubscribe(public, services, sim)

    response = api.delete("/v1/admin/servers/sim", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert f"subscription {hook_id}" in response.json()["warning"]
    assert api.get("/v1/admin/servers/sim", headers=ADMIN).status_code == 404
