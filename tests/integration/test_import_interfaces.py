"""`bridge servers import` / `bridge services link` as a real process, and
`POST /v1/admin/services/{id}/link` over real HTTP."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bridge.container import Services
from bridge.db.models import AuditEntry, Server, Service
from bridge.settings import Settings
from tests.cli_runner import as_json, bridge
from tests.infra import ADMIN_TOKEN
from tests.integration.test_import import run_import, seed_panel
from tests.panel_api import PanelApi
from tests.simctl import SimControl

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def service_ids(services: Services) -> set[str]:
    with services.sessions() as session:
        return set(session.scalars(select(Service.service_id)))


def test_cli_import_json_dry_run_then_for_real(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
    tmp_path: Path,
) -> None:
    seed_panel(panel_api)
    mapping = tmp_path / "map.csv"
    mapping.write_text("alice,whmcs-1\n")
    dry = as_json(bridge(settings, "servers", "import", "sim", "--dry-run", "--json"))
    assert dry["dry_run"] is True
    assert dry["counts"] == {"would_import": 3, "skipped": 1}
    assert service_ids(services) == set()
    done = bridge(settings, "servers", "import", "sim", "--map", str(mapping))
    assert done.returncode == 0, done.stderr
    assert "read users: page 1/1" in done.stderr
    assert "admin: skipped (admin account)" in done.stderr
    assert "partner (reseller): imported" in done.stderr
    assert "reseller" in done.stdout  # the table's role column
    assert "imported 3" in done.stdout
    assert service_ids(services) == {"whmcs-1", "import:sim:bob", "import:sim:partner"}
    again = as_json(bridge(settings, "servers", "import", "sim", "--json"))
    results = {a["username"]: a["result"] for a in again["accounts"]}
    assert results == {
        "admin": "skipped",
        "alice": "unchanged",
        "bob": "unchanged",
        "partner": "unchanged",
    }
    roles = {a["username"]: a["role"] for a in again["accounts"]}
    assert roles == {
        "admin": "admin",
        "alice": "user",
        "bob": "user",
        "partner": "reseller",
    }


def test_cli_import_bad_input_changes_nothing(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
    tmp_path: Path,
) -> None:
    seed_panel(panel_api)
    unknown = bridge(settings, "servers", "import", "nope")
    assert unknown.returncode == 1
    assert "server 'nope' not found" in unknown.stderr
    bad_map = tmp_path / "map.csv"
    bad_map.write_text("alice\n")
    refused = bridge(settings, "servers", "import", "sim", "--map", str(bad_map))
    assert refused.returncode != 0
    assert "expected username,service_id" in refused.stderr
    assert service_ids(services) == set()


def test_cli_link(
    settings: Settings,
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
) -> None:
    seed_panel(panel_api)
    run_import(services)
    linked = as_json(
        bridge(settings, "services", "link", "import:sim:bob", "whmcs-5", "--json")
    )
    assert linked["service"]["service_id"] == "whmcs-5"
    assert linked["service"]["status"] == "suspended"
    taken = bridge(settings, "services", "link", "import:sim:alice", "whmcs-5")
    assert taken.returncode == 1
    assert "already exists" in taken.stderr
    assert service_ids(services) == {
        "whmcs-5",
        "import:sim:alice",
        "import:sim:partner",
    }


def test_api_link(
    api: httpx.Client,
    services: Services,
    server: Server,
    sim: SimControl,
    panel_api: PanelApi,
) -> None:
    seed_panel(panel_api)
    run_import(services, mapping={"alice": "whmcs-1"})
    url = "/v1/admin/services/import:sim:bob/link"
    assert api.post(url, json={"service_id": "whmcs-2"}).status_code == 401
    bad = api.post(url, json={"service_id": "has space"}, headers=ADMIN)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "service_id"]
    reserved = api.post(url, json={"service_id": "import:x"}, headers=ADMIN)
    assert reserved.status_code == 422
    assert reserved.json()["detail"][0]["loc"] == ["body", "service_id"]
    taken = api.post(url, json={"service_id": "whmcs-1"}, headers=ADMIN)
    assert taken.status_code == 409
    assert "already exists" in taken.json()["detail"]
    unknown = api.post(
        "/v1/admin/services/import:sim:zed/link",
        json={"service_id": "whmcs-3"},
        headers=ADMIN,
    )
    assert unknown.status_code == 404
    assert service_ids(services) == {"whmcs-1", "import:sim:bob", "import:sim:partner"}
    done = api.post(url, json={"service_id": "whmcs-2"}, headers=ADMIN)
    assert done.status_code == 200, done.text
    assert done.json()["service"]["service_id"] == "whmcs-2"
    with services.sessions() as session:
        linked = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "service_linked")
        )
        assert linked == 1
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "service_linked")
        ).one()
        assert entry.actor == "admin:bootstrap"
        assert entry.detail == {"from": "import:sim:bob", "to": "whmcs-2"}


def test_openapi_documents_link_and_panel_events(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    assert "/v1/admin/services/{service_id}/link" in spec["paths"]
    events = spec["paths"]["/v1/panel-events/{server}"]["post"]
    assert {"200", "401", "404"} <= set(events["responses"])
    headers = {p["name"] for p in events["parameters"] if p["in"] == "header"}
    assert headers == {"x-wispanel-signature", "x-wispanel-delivery"}
