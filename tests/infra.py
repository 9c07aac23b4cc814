"""Test infrastructure: reach (never skip) PostgreSQL, Redis; build test settings."""

import os
from pathlib import Path

import psycopg
import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from bridge.settings import Settings

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bridge_test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/1"

INTAKE_SECRET = "test-intake-secret"
ADMIN_TOKEN = "test-admin-token"
INTAKE_DIGEST_KEY = "test-intake-digest-key"


def suite_database_url() -> str:
    return os.environ.get("BRIDGE_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def suite_redis_url() -> str:
    return os.environ.get("BRIDGE_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def recreate_database(url: str) -> None:
    """Drop and create the database named in `url` (PostgreSQL) or its file (SQLite).

    Fails the run with a clear message when the server cannot be reached.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = parsed.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{parsed.database}"')
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL unreachable at {parsed.host}:{parsed.port} "
            f"(BRIDGE_TEST_DATABASE_URL): {exc}",
            pytrace=False,
        )


def connect_redis(url: str) -> "redis.Redis":
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis unreachable at {url} (BRIDGE_TEST_REDIS_URL): {exc}", pytrace=False
        )
    return client


def make_test_settings(var_dir: Path, **overrides: object) -> Settings:
    """Settings for tests: real services, small durations, fixed secrets."""
    values: dict[str, object] = {
        "env": "development",
        "var_dir": var_dir,
        "database_url": suite_database_url(),
        "redis_url": suite_redis_url(),
        "secret_key": Fernet.generate_key().decode(),
        "intake_secret": INTAKE_SECRET,
        "admin_token": ADMIN_TOKEN,
        "intake_digest_key": INTAKE_DIGEST_KEY,
        "log_format": "console",
        "dispatch_interval": 0.2,
        "lease_seconds": 5,
        "backoff_base_seconds": 0.05,
        "backoff_cap_seconds": 0.5,
        "busy_retry_seconds": 0.05,
        "ssl_poll_seconds": 0.1,
        "ssl_poll_first_seconds": 0.05,
        "circuit_probe_seconds": 0.5,
        "panel_connect_timeout": 2,
        "panel_read_timeout": 2,
        "panel_write_timeout": 2,
        "panel_pool_timeout": 2,
        "callback_timeout": 2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
