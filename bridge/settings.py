"""Settings from `BRIDGE_*` environment variables; loaded once per entry point.

Every duration the bridge uses is a setting so tests can shrink it. `load_settings()`
turns a validation failure into one `ConfigurationError` line naming the variable.
"""

import base64
import json
import logging
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bridge.errors import ConfigurationError

ENV_PREFIX = "BRIDGE_"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class PlacementPolicy(StrEnum):
    LEAST_FULL = "least_full"
    FILL_IN_ORDER = "fill_in_order"


CommaList = Annotated[tuple[str, ...], NoDecode]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def origin_of(url: str) -> str:
    """`scheme://host:port` of an http(s) URL, lower case, the port made explicit.

    Raises ValueError when the URL's port is not a number in range.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}:{port}"


def _check_http_url(value: str) -> None:
    """Raise ValueError unless `value` is an http(s) URL with a host and valid port."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        msg = "must start with http:// or https://"
        raise ValueError(msg)
    if not parts.hostname:
        msg = "has no host"
        raise ValueError(msg)
    _check_port(parts)


def _check_port(parts: SplitResult) -> None:
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0:  # urlsplit accepts 0; nothing listens there
        msg = "the port must be a number from 1 to 65535"
        raise ValueError(msg)


class Settings(BaseSettings):
    """All runtime configuration. Frozen: pass it down, never mutate it."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore"
    )

    env: Environment = Environment.DEVELOPMENT
    var_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    intake_secret: SecretStr | None = None
    admin_token: SecretStr | None = None
    # Keys the intake duplicate-check digest (an HMAC, so a database reader cannot
    # test password guesses against it). Deliberately not BRIDGE_SECRET_KEY: that
    # one rotates, and duplicate detection must survive a rotation.
    intake_digest_key: SecretStr | None = None
    callback_secret: SecretStr | None = None
    billing_callback_url: str | None = None
    callback_allowed_origins: CommaList = ()
    # Where panels reach this bridge (webhooks: POST <url>/v1/panel-events/<server>).
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    intake_max_skew_seconds: float = Field(default=300, gt=0)
    intake_max_body_bytes: int = Field(default=64 * 1024, gt=0)
    intake_idempotency_ttl_seconds: float = Field(default=7 * 86400, gt=0)
    # Creates of new services arriving together share one transaction, at most
    # this many (bridge/group_commit.py); 1 turns the sharing off.
    intake_max_batch: int = Field(default=32, ge=1, le=1000)

    dispatch_interval: float = Field(default=1.0, gt=0)
    # `bridge worker` processes on this host (None: one per CPU, at most 4).
    worker_processes: int | None = Field(default=None, ge=1, le=64)
    # Workers hand freed heap back to the OS this often (glibc; 0: never).
    malloc_trim_seconds: float = Field(default=30.0, ge=0)
    dispatch_batch: int = Field(default=200, gt=0)
    lease_seconds: float = Field(default=60, gt=0)
    reconcile_after_seconds: float = Field(default=72_000, gt=0)
    max_attempts: int = Field(default=12, gt=0)
    max_step_age: float = Field(default=3 * 86400, gt=0)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_cap_seconds: float = Field(default=600.0, gt=0)
    busy_retry_seconds: float = Field(default=2.0, gt=0)
    # Waits up to this long send the order back with a delayed message instead
    # of waiting for a dispatcher tick (0 = always wait for the dispatcher).
    requeue_within_seconds: float = Field(default=30.0, ge=0)
    # A pending certificate is looked at after ssl_poll_first_seconds, then ever
    # less often up to ssl_poll_seconds; it fails as ssl_timeout after the last.
    ssl_poll_seconds: float = Field(default=15.0, gt=0)
    ssl_poll_first_seconds: float = Field(default=2.0, gt=0)
    ssl_timeout_seconds: float = Field(default=3600.0, gt=0)
    circuit_failure_threshold: int = Field(default=5, gt=0)
    circuit_probe_seconds: float = Field(default=30.0, gt=0)

    panel_connect_timeout: float = Field(default=5.0, gt=0)
    panel_read_timeout: float = Field(default=30.0, gt=0)
    panel_write_timeout: float = Field(default=30.0, gt=0)
    panel_pool_timeout: float = Field(default=5.0, gt=0)
    panel_token_cache_seconds: float = Field(default=86_400, gt=0)
    # Per-server cap on concurrent panel calls (all processes and hosts, via Redis):
    # a slow panel holds at most this many worker threads. A call that finds no
    # free slot waits `server_in_flight_retry_seconds` in the DB, like a budget wait.
    server_max_in_flight: int = Field(default=4, ge=1)
    server_in_flight_retry_seconds: float = Field(default=0.5, gt=0)
    server_in_flight_margin_seconds: float = Field(default=10.0, ge=0)

    callback_timeout: float = Field(default=10.0, gt=0)
    callback_max_attempts: int = Field(default=8, gt=0)

    suspend_sweep_enabled: bool = True
    suspend_after_days: int = Field(default=3, ge=0)
    terminate_sweep_enabled: bool = True
    terminate_after_days: int = Field(default=30, ge=0)
    sweep_interval_seconds: float = Field(default=3600, gt=0)
    sweep_guard_max_share: float = Field(default=0.10, gt=0, le=1)
    sweep_guard_floor: int = Field(default=20, ge=0)
    sweep_batch: int = Field(default=1000, gt=0)

    placement_policy: PlacementPolicy = PlacementPolicy.LEAST_FULL

    # Retention: failed orders' stored passwords are wiped after
    # secret_retention_days; `orders purge` runs every purge_interval_seconds on
    # orders finished more than retention_days ago (0 = no scheduled purge).
    secret_retention_days: float = Field(default=7, gt=0)
    retention_days: float = Field(default=90, ge=0)
    purge_interval_seconds: float = Field(default=86_400, gt=0)

    # Billing-facing extras (issue 13): SSO, usage collection, package cache.
    sso_link_seconds: int = Field(default=120, ge=30, le=900)
    sso_max_wait_seconds: float = Field(default=5.0, ge=0)
    sso_claim_grace_seconds: float = Field(default=0.25, ge=0, le=1)
    usage_enabled: bool = True
    usage_interval_seconds: float = Field(default=3600, ge=0)
    usage_budget_share: float = Field(default=0.20, gt=0, le=1)
    usage_per_page: int = Field(default=100, ge=1, le=100)
    usage_lock_seconds: float = Field(default=600, gt=0)
    packages_refresh_seconds: float = Field(default=3600, ge=0)

    task_soft_time_limit: float = Field(default=300, gt=0)
    task_time_limit: float = Field(default=360, gt=0)
    broker_visibility_timeout: float = Field(default=3600, gt=0)

    @field_validator("callback_allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("billing_callback_url")
    @classmethod
    def _check_billing_callback_url(cls, value: str | None) -> str | None:
        # Checked here, not per order: a URL the bridge cannot call made every
        # order that relies on it fail (a 500 on a bad port, a 422 without scheme).
        if not value:
            return value
        # Every order stores its callback URL and the admin API shows it to any
        # token holder; callbacks are HMAC-signed, so no URL credentials needed.
        if "@" in urlsplit(value).netloc:
            msg = "credentials (user:password@) are not allowed in the URL"
            raise ValueError(msg)
        _check_http_url(value)
        return value

    @field_validator("callback_allowed_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        want = "want scheme://host[:port]"
        for entry in value:
            parts = urlsplit(entry)
            if "@" in parts.netloc:  # not echoed: it would print the password
                msg = f"an entry has credentials (user:password@); {want}"
                raise ValueError(msg)
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                msg = f"{entry!r} is not an origin ({want})"
                raise ValueError(msg)
            try:
                _check_http_url(entry)
            except ValueError as exc:
                msg = f"{entry!r} {exc} ({want})"
                raise ValueError(msg) from None
        return value

    @model_validator(mode="after")
    def _billing_callback_is_allowed(self) -> "Settings":
        url = self.billing_callback_url
        if not url or not self.callback_allowed_origins:
            return self
        origin = origin_of(url)
        if origin not in {origin_of(o) for o in self.callback_allowed_origins}:
            # No field location from a model validator: the message names the
            # variable itself (load_settings prints it as is).
            msg = (
                f"{ENV_PREFIX}BILLING_CALLBACK_URL: its origin {origin} is not in "
                f"{ENV_PREFIX}CALLBACK_ALLOWED_ORIGINS"
            )
            raise ValueError(msg)
        return self

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme.lower() not in _REDIS_SCHEMES:
            msg = "must start with redis://, rediss:// or unix://"
            raise ValueError(msg)
        if parts.scheme.lower() != "unix":
            _check_port(parts)
            db = parts.path.lstrip("/")
            if db and not db.isdigit():
                msg = f"the database must be a number (/{db})"
                raise ValueError(msg)
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        # configure_logging upper-cases it; the stdlib aliases (WARN, FATAL,
        # NOTSET) worked before, so they still do.
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            msg = f"must be one of {', '.join(_LOG_LEVELS)}"
            raise ValueError(msg)
        return level

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql+psycopg://")):
            msg = "must start with sqlite:/// or postgresql+psycopg://"
            raise ValueError(msg)
        return value

    @property
    def usage_collection_on(self) -> bool:
        """Whether the usage beat task runs (BRIDGE_USAGE_INTERVAL_SECONDS=0 is off)."""
        return self.usage_enabled and self.usage_interval_seconds > 0

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under `var_dir`."""
        return self.database_url or f"sqlite:///{self.var_dir / 'bridge.db'}"

    @property
    def panel_call_seconds(self) -> float:
        """The longest one panel request can take (every httpx timeout in a row)."""
        return (
            self.panel_connect_timeout
            + self.panel_write_timeout
            + self.panel_read_timeout
            + self.panel_pool_timeout
        )

    @property
    def effective_callback_secret(self) -> SecretStr | None:
        return self.callback_secret or self.intake_secret


# Secrets a process needs; production refuses to start without them, development
# generates them once under var_dir so `make run` works on a fresh machine.
_REQUIRED_SECRETS = ("secret_key", "intake_secret", "admin_token", "intake_digest_key")
DEV_SECRETS_FILE = "dev-secrets.json"


def _generate(name: str) -> str:
    if name == "secret_key":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(32)


def load_settings(**overrides: Any) -> tuple[Settings, list[str]]:
    """Read the environment (plus explicit overrides) into a frozen `Settings`.

    Returns the settings and the names of development secrets generated by this call
    (written to the secrets file now; the caller warns once logging is configured).
    Secrets read back from that file later are not reported again.
    Raises ConfigurationError with one line naming the first bad variable.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        reason = first["msg"].removeprefix("Value error, ")
        if first["loc"]:
            name = ENV_PREFIX + "_".join(str(p) for p in first["loc"]).upper()
            reason = f"{name}: {reason}"
        # else a check across variables, whose message names them itself
        raise ConfigurationError(reason) from None
    missing = [n for n in _REQUIRED_SECRETS if getattr(settings, n) is None]
    if not missing:
        return settings, []
    if settings.is_production:
        name = ENV_PREFIX + missing[0].upper()
        msg = f"{name}: required when BRIDGE_ENV=production"
        raise ConfigurationError(msg)
    stored, created = _dev_secrets(settings.var_dir, missing)
    update = {n: SecretStr(stored[n]) for n in missing}
    return settings.model_copy(update=update), [ENV_PREFIX + n.upper() for n in created]


def _dev_secrets(var_dir: Path, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Read (creating what is absent) the development secrets file, mode 0600.

    Returns the secrets and the names written by this call.
    """
    path = var_dir / DEV_SECRETS_FILE
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    created = [n for n in names if n not in stored]
    if created:
        stored.update({n: _generate(n) for n in created})
        var_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(stored, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)
    return stored, created
