"""`servers edit` and the rejected-credentials flag: only new credentials lift it
(a passing `servers test` too); an edit of anything else leaves it up."""

import pytest
from sqlalchemy import update

from bridge.container import Services
from bridge.db.models import Server
from bridge.settings import Settings
from bridge.simulator import SimulatorServer
from tests.cli_runner import as_json, bridge

pytestmark = pytest.mark.integration


def auth_error(settings: Settings) -> object:
    return as_json(bridge(settings, "servers", "list", "--json"))[0]["auth_error"]


def test_an_edit_without_new_credentials_keeps_the_rejected_flag(
    settings: Settings, services: Services, server: Server, simulator: SimulatorServer
) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Server)
            .where(Server.id == server.id)
            .values(auth_error="401 Invalid API key")
        )

    limit = bridge(settings, "servers", "edit", "sim", "--limit", "100")
    same_key = bridge(
        settings, "servers", "edit", "sim", "--api-key", simulator.credentials().api_key
    )

    assert limit.returncode == 0, limit.stderr
    assert same_key.returncode == 0, same_key.stderr
    assert auth_error(settings) == "401 Invalid API key"

    new_key = bridge(settings, "servers", "edit", "sim", "--api-key", "wsp_rotated")
    assert new_key.returncode == 0, new_key.stderr
    assert auth_error(settings) is None
