"""Intake duplicate-check rows: keyed digests (no password oracle), survival of a
secret-key rotation, the data migration of old rows, and their purge."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select, text

from bridge.api.schemas import CreateOrderIn, canonical_body
from bridge.container import Services, build_services
from bridge.db import migrate
from bridge.db.models import IntakeRequest, Server
from bridge.db.session import make_engine
from bridge.errors import ConfigurationError, IdempotencyConflictError
from bridge.intake import accept_order, body_digest, keyed_digest
from bridge.ops import purge_orders
from bridge.settings import Settings
from tests.factories import create_spec, submit
from tests.infra import INTAKE_DIGEST_KEY, recreate_database, suite_database_url
from tests.signing import create_body
from tests.simctl import FakeClock

pytestmark = pytest.mark.integration


def stored_digests(services: Services) -> list[str]:
    with services.sessions() as session:
        return list(session.scalars(select(IntakeRequest.body_digest)))


def test_no_stored_digest_confirms_a_guessed_password(
    services: Services, server: Server
) -> None:
    body = create_body()
    parsed = CreateOrderIn.model_validate(body)
    plain = body_digest(canonical_body(parsed))
    accept_order(services, create_spec(), body_sha256=plain)
    (stored,) = stored_digests(services)
    # The attacker's test: hash the body with the guessed (here: right) password.
    assert stored != plain
    assert (
        stored
        == hmac.new(
            INTAKE_DIGEST_KEY.encode(), plain.encode(), hashlib.sha256
        ).hexdigest()
    )


def test_duplicates_are_still_found_after_a_secret_key_rotation(
    services: Services, server: Server, clock: FakeClock
) -> None:
    spec = create_spec()
    first = accept_order(services, spec, body_sha256="a" * 64)
    old_key = services.settings.secret_key
    assert old_key is not None
    rotated_key = f"{Fernet.generate_key().decode()},{old_key.get_secret_value()}"
    rotated = services.settings.model_copy(
        update={"secret_key": SecretStr(rotated_key)}
    )
    again_services = build_services(rotated, clock=clock)
    try:
        again = accept_order(again_services, spec, body_sha256="a" * 64)
        assert (again.created, again.response) == (False, first.response)
        with pytest.raises(IdempotencyConflictError):
            accept_order(again_services, spec, body_sha256="b" * 64)
        # A different digest key reads the same body as a different one.
        other = services.settings.model_copy(
            update={"intake_digest_key": SecretStr("other")}
        )
        other_services = build_services(other, clock=clock)
        try:
            with pytest.raises(IdempotencyConflictError):
                accept_order(other_services, spec, body_sha256="a" * 64)
        finally:
            other_services.close()
    finally:
        again_services.close()


def test_intake_refuses_to_run_without_a_digest_key(services: Services) -> None:
    settings = services.settings.model_copy(update={"intake_digest_key": None})
    with pytest.raises(ConfigurationError, match="BRIDGE_INTAKE_DIGEST_KEY"):
        keyed_digest(settings, "a" * 64)


def test_purge_deletes_intake_rows_past_their_expiry_only(
    services: Services, server: Server, clock: FakeClock
) -> None:
    ttl = services.settings.intake_idempotency_ttl_seconds
    old = submit(services, create_spec(1))
    clock.advance(ttl / 2)
    submit(services, create_spec(2))
    clock.advance(ttl / 2 + 1)
    result = purge_orders(services, clock() - timedelta(days=90), "ops:test")
    assert result.intake_requests == 1
    with services.sessions() as session:
        kept = session.scalars(select(IntakeRequest.key)).all()
        assert kept == ["order:ord-2"]
        assert (
            session.scalar(
                select(func.count())
                .select_from(IntakeRequest)
                .where(IntakeRequest.order_uuid == old)
            )
            == 0
        )
    assert purge_orders(services, clock(), "ops:test").intake_requests == 0


def test_reused_order_id_after_its_record_expired_is_a_clear_409(
    services: Services, server: Server, clock: FakeClock
) -> None:
    submit(services, create_spec(1))
    clock.advance(services.settings.intake_idempotency_ttl_seconds + 1)
    purge_orders(services, clock() - timedelta(days=90), "ops:test")
    with pytest.raises(IdempotencyConflictError, match="already used by an earlier"):
        submit(services, create_spec(2, order_id="ord-1"))


@pytest.fixture
def migration_url(tmp_path: Path) -> str:
    url = suite_database_url() + "_intake_migration"
    recreate_database(url)
    return url


def _seed_before_upgrade(url: str, plain: str) -> None:
    """An intake row and an admin token as the initial schema stored them."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            # The row's order is beside the point here: skip the FK triggers.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(
                text(
                    "INSERT INTO intake_requests (key, body_sha256, order_uuid, "
                    "response, created_at, expires_at) VALUES ('order:o-1', :d, "
                    "gen_random_uuid(), '{}', :now, :now)"
                ),
                {"d": plain, "now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO admin_tokens (id, name, token_sha256, created_at) "
                    "VALUES (gen_random_uuid(), 'old-op', :d, :now)"
                ),
                {"d": "f" * 64, "now": now},
            )
    finally:
        engine.dispose()


def _upgraded_values(url: str) -> tuple[str, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            digest = conn.execute(text("SELECT body_digest FROM intake_requests"))
            role = conn.execute(text("SELECT role FROM admin_tokens"))
            return digest.scalar_one(), role.scalar_one()
    finally:
        engine.dispose()


def test_upgrade_keys_old_digests_and_makes_old_tokens_admin(
    migration_url: str,
) -> None:
    plain = hashlib.sha256(json.dumps({"password": "guess"}).encode()).hexdigest()
    migrate.upgrade(migration_url, "6458465b1f78")
    _seed_before_upgrade(migration_url, plain)
    cfg = migrate.alembic_config(migration_url)
    cfg.attributes["intake_digest_key"] = "k-from-caller"
    command.upgrade(cfg, "head")
    digest, role = _upgraded_values(migration_url)
    expected = hmac.new(b"k-from-caller", plain.encode(), hashlib.sha256).hexdigest()
    assert (digest, role) == (expected, "admin")
    settings = Settings(intake_digest_key="k-from-caller")
    # What accept_order compares for a repeat of that body: the same value.
    assert keyed_digest(settings, plain) == digest
    migrate.downgrade(migration_url, "6458465b1f78")
    migrate.upgrade(migration_url)


def test_upgrade_reads_the_key_from_the_environment(
    migration_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    migrate.upgrade(migration_url, "6458465b1f78")
    _seed_before_upgrade(migration_url, "0" * 64)
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_INTAKE_DIGEST_KEY", "k-from-env")
    migrate.upgrade(migration_url)
    digest, _ = _upgraded_values(migration_url)
    assert digest == hmac.new(b"k-from-env", b"0" * 64, hashlib.sha256).hexdigest()


def test_production_upgrade_without_the_key_stops_with_its_name(
    migration_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    migrate.upgrade(migration_url, "6458465b1f78")
    _seed_before_upgrade(migration_url, "0" * 64)
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BRIDGE_ENV", "production")
    for name in ("SECRET_KEY", "INTAKE_SECRET", "ADMIN_TOKEN"):
        monkeypatch.setenv(f"BRIDGE_{name}", "set")
    monkeypatch.delenv("BRIDGE_INTAKE_DIGEST_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"^BRIDGE_INTAKE_DIGEST_KEY"):
        migrate.upgrade(migration_url)
