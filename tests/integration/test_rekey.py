"""Key rotation: everything stored decrypts with the new key alone afterwards."""

from collections.abc import Iterator

import pytest
import redis
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, select

from bridge.container import Services, build_services
from bridge.crypto import SecretBox
from bridge.db.models import Server, Step
from bridge.rekey import rotate_secrets
from bridge.settings import Settings
from tests.factories import create_spec, submit
from tests.simctl import FakeClock

pytestmark = pytest.mark.integration


@pytest.fixture
def rotated(
    settings: Settings,
    committed_db: Engine,
    redis_client: "redis.Redis",
    clock: FakeClock,
    services: Services,
    server: Server,
) -> Iterator[tuple[Services, str]]:
    submit(services, create_spec())
    old = settings.secret_key.get_secret_value()  # type: ignore[union-attr]
    new = Fernet.generate_key().decode()
    ring = build_services(
        settings.model_copy(update={"secret_key": SecretStr(f"{new},{old}")}),
        clock=clock,
    )
    yield ring, new
    ring.close()


def test_rotate_rewrites_credentials_and_step_secrets(
    rotated: tuple[Services, str],
) -> None:
    ring, new = rotated
    report = rotate_secrets(ring, batch=2)
    assert (report.servers, report.steps) == (1, 3)
    only_new = SecretBox(SecretStr(new))
    with ring.sessions() as session:
        server = session.scalars(select(Server)).one()
        assert "api_key" in only_new.decrypt_json(server.credentials)
        secrets = [
            only_new.decrypt_json(s.secret_body)
            for s in session.scalars(select(Step).where(Step.secret_body.is_not(None)))
        ]
    assert {"password": "correct-horse-battery"} in secrets
