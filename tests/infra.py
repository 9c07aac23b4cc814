"""Test infrastructure: reach (never skip) PostgreSQL, Redis; build test settings."""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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


def xdist_worker() -> int | None:
    """This process's pytest-xdist worker number (gw0 -> 0), None when serial."""
    name = os.environ.get("PYTEST_XDIST_WORKER")
    if not name:
        return None
    return int(name.removeprefix("gw"))


def suite_database_url() -> str:
    """BRIDGE_TEST_DATABASE_URL, its name suffixed `_gwN` under xdist worker N.

    Each worker recreates and truncates its own database (PostgreSQL) or file
    (SQLite: `bridge_test.db` -> `bridge_test_gw0.db`), so workers never see each
    other's rows. Databases derived from it (`_cli`, `_chaos`, `_bench_*`) follow.
    """
    url = os.environ.get("BRIDGE_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    worker = xdist_worker()
    if worker is None:
        return url
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        path = Path(name)
        name = str(path.with_name(f"{path.stem}_gw{worker}{path.suffix}"))
    else:
        name = f"{name}_gw{worker}"
    return parsed.set(database=name).render_as_string(hide_password=False)


def suite_redis_url() -> str:
    """BRIDGE_TEST_REDIS_URL, its db index raised by N under xdist worker N.

    Base index 2 with `-n 2` gives workers the indices 2 and 3. Every test that
    uses Redis flushes its worker's index (FLUSHDB, never FLUSHALL) before and
    after, so one index per worker is enough, panel tests included.
    """
    url = os.environ.get("BRIDGE_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    worker = xdist_worker()
    if worker is None:
        return url
    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or "0")
    return urlunsplit(parts._replace(path=f"/{base + worker}"))


def untraced_environ(*drop_prefixes: str) -> dict[str, str]:
    """This environment for a subprocess that coverage must not trace.

    For the benchmark and chaos runs: they check behaviour, the rest of the suite
    measures the code, and tracing every process they start costs the suite's
    time budget. `drop_prefixes`: further variables to leave out.
    """
    drop = ("COVERAGE_", *drop_prefixes)
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


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
