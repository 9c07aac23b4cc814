"""A panel server as the client sees it: config, timeouts, the budget it draws on.

Values only; `PanelClient` (bridge.panel.client) puts them to work.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from bridge.domain.model import AuthMode
from bridge.errors import ConfigurationError
from bridge.settings import Settings


class Budget(Protocol):
    """What the client needs from `bridge.ratelimit.RedisRateLimiter`.

    Structural, because the layer contract keeps `bridge.panel` and
    `bridge.ratelimit` independent of each other.
    """

    def acquire(self, key: str, limit_per_min: int) -> "BudgetDecision": ...

    def observe(self, key: str, status: int, headers: Mapping[str, str]) -> None: ...


class BudgetDecision(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def retry_after(self) -> float: ...


@dataclass(frozen=True, slots=True)
class PanelConfig:
    """One server as the client needs it; secrets never appear in its repr."""

    name: str
    base_url: str
    auth_mode: AuthMode
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    force_login: bool = False
    rate_limit_per_min: int = 60
    tls_verify: bool = True
    ca_bundle: str | None = None
    tls_fingerprint: str | None = None
    route_overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rate_limit_per_min < 1:
            msg = f"server {self.name}: rate_limit_per_min must be >= 1"
            raise ConfigurationError(msg)
        if self.auth_mode is AuthMode.API_KEY and not self.api_key:
            msg = f"server {self.name}: api_key mode needs an api_key"
            raise ConfigurationError(msg)
        if self.auth_mode is AuthMode.LOGIN and not (self.username and self.password):
            msg = f"server {self.name}: login mode needs username and password"
            raise ConfigurationError(msg)

    @property
    def credential_identity(self) -> str:
        """What the panel counts requests against: the key, or the login user."""
        if self.auth_mode is AuthMode.API_KEY:
            return f"api_key:{self.api_key}"
        return f"login:{self.username}"


@dataclass(frozen=True, slots=True)
class PanelTimeouts:
    connect: float
    read: float
    write: float
    pool: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "PanelTimeouts":
        return cls(
            connect=settings.panel_connect_timeout,
            read=settings.panel_read_timeout,
            write=settings.panel_write_timeout,
            pool=settings.panel_pool_timeout,
        )

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect, read=self.read, write=self.write, pool=self.pool
        )


def bucket_key(config: PanelConfig) -> str:
    """`bridge:rl:{server}:<sha256(credential)[:12]>`; {server} is the hash tag."""
    digest = hashlib.sha256(config.credential_identity.encode()).hexdigest()[:12]
    return f"bridge:rl:{{{config.name}}}:{digest}"
