"""`bridge run`'s demo panel registration (bridge.cli.embedded), in process: the
simulator itself is started by tests/e2e/test_run.py."""

import pytest
from sqlalchemy import select

from bridge.cli.embedded import DEMO_SERVER, register_demo_server
from bridge.container import Services
from bridge.db.models import AuditEntry, Server
from bridge.domain.model import AuthMode, ServerState
from bridge.fleet import ServerSpec, save_server

pytestmark = pytest.mark.integration


def demo_state(services: Services) -> ServerState:
    with services.sessions() as session:
        row = session.scalars(select(Server).where(Server.name == DEMO_SERVER)).one()
        return row.state


def left_from_an_earlier_run(services: Services) -> None:
    with services.sessions.begin() as session:
        save_server(
            session,
            services.box,
            ServerSpec(
                name=DEMO_SERVER,
                base_url="http://127.0.0.1:9",
                auth_mode=AuthMode.API_KEY,
                api_key="wsp_demo",
            ),
        )


def test_a_demo_left_registered_beside_a_real_server_is_disabled_with_a_warning(
    services: Services,
    server: Server,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No simulator is started when another server exists; `demo` stayed active,
    # so placement could choose a panel that nothing serves.
    left_from_an_earlier_run(services)

    assert register_demo_server(database_url, services.box, 0) is None

    assert demo_state(services) is ServerState.DISABLED
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "demo panel is not started; server 'demo' set to disabled" in err
    with services.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "server_edited")
        ).one()
    assert (entry.before_status, entry.after_status) == ("active", "disabled")
    assert entry.actor.startswith("ops:")
    # Said once: the next start finds it disabled already.
    assert register_demo_server(database_url, services.box, 0) is None
    assert capsys.readouterr().err == ""


def test_a_demo_alone_again_is_started_and_active(
    services: Services, database_url: str
) -> None:
    left_from_an_earlier_run(services)
    with services.sessions.begin() as session:
        row = session.scalars(select(Server).where(Server.name == DEMO_SERVER)).one()
        row.state = ServerState.DISABLED

    started = register_demo_server(database_url, services.box, 0)

    assert started is not None
    assert demo_state(services) is ServerState.ACTIVE


def test_without_a_demo_nothing_is_said_or_added(
    services: Services,
    server: Server,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert register_demo_server(database_url, services.box, 0) is None

    assert capsys.readouterr().err == ""
    with services.sessions() as session:
        names = session.scalars(select(Server.name)).all()
    assert names == ["sim"]
