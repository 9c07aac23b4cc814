"""The server registry: register/edit servers (credentials encrypted) and the
per-process `PanelRegistry` that hands out one long-lived PanelClient per server."""

import re
import ssl
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import redis
import structlog
from sqlalchemy.orm import Session

from bridge.crypto import SecretBox
from bridge.db.models import Server
from bridge.db.servers import find_server_by_name
from bridge.domain.model import AuthMode, ServerState
from bridge.errors import (
    ConfigurationError,
    InvalidOrderError,
    RateLimiterUnavailableError,
)
from bridge.inflight import InFlightSlots
from bridge.panel import Budget, PanelClient, PanelConfig, PanelTimeouts, resolve_routes
from bridge.panel.auth import totp_secret_problem
from bridge.ratelimit import RedisRateLimiter

log = structlog.get_logger(__name__)

# The registry's limits, shared by the CLI, the admin API's schema
# (bridge.api.admin_schemas) and save_server, which checks them for both.
SERVER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # the column is 64
URL_MAX_LENGTH = 512  # the column
RATE_LIMIT_MIN = 1  # 0 would make every call of the server a ConfigurationError
# A bound against overflow and typos, not a realistic panel: the benches run an
# "unlimited" simulator at 1,000,000 requests/min.
RATE_LIMIT_MAX = 1_000_000
CAPACITY_MIN = 0  # None is "no limit of our own"; a negative one read as unlimited
CAPACITY_MAX = 2**31 - 1  # the column is a 32-bit INTEGER
SERVER_NAME_RULE = (
    "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)
_SERVER_NAME = re.compile(SERVER_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What an operator gives to register or edit a server (secrets in clear)."""

    name: str
    base_url: str
    auth_mode: AuthMode
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    totp_secret: str | None = None
    force_login: bool = False
    rate_limit_per_min: int = 60
    group: str = "default"
    capacity: int | None = None
    tls_verify: bool = True
    ca_bundle: str | None = None
    tls_fingerprint: str | None = None
    state: ServerState = ServerState.ACTIVE
    webhooks: bool = False
    # Operation -> {"method"?, "path"?}: the panel's routes where they differ from
    # the contract's (bridge.panel.routes; the usage paths are only ASSUMED).
    route_overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def credentials(self) -> dict[str, str]:
        """The credentials to store, each checked as it will be used.

        Raises InvalidOrderError naming the field.
        """
        if self.auth_mode is AuthMode.API_KEY:
            if not self.api_key:
                raise InvalidOrderError("api_key", "required in api_key mode")
            check_credential("api_key", self.api_key)
            return {"api_key": self.api_key}
        if not self.username or not self.password:
            raise InvalidOrderError("username", "username and password required")
        creds = {"username": self.username, "password": self.password}
        if self.totp_secret:
            check_credential("totp_secret", self.totp_secret)
            creds["totp_secret"] = self.totp_secret
        return creds


def check_credential(name: str, value: str) -> None:
    """Refuse a credential the panel client could not send, when it is saved
    rather than on every order of the server.

    The API key goes into the Authorization header, which httpx encodes as
    ASCII: one printable-ASCII token, no spaces or control characters. The
    TOTP secret must be base32 that pyotp decodes. The username and password
    travel in a JSON body, where any Unicode is fine (NUL and lone surrogates
    are refused at the edge already), so they are not checked here.

    Raises InvalidOrderError(name, reason).
    """
    if name == "api_key" and not all("!" <= c <= "~" for c in value):
        reason = (
            "must be printable ASCII without spaces or control characters "
            "(it is sent in the Authorization header)"
        )
        raise InvalidOrderError(name, reason)
    if name == "totp_secret":
        problem = totp_secret_problem(value)
        if problem is not None:
            raise InvalidOrderError(name, problem)


def check_route_overrides(
    overrides: Mapping[str, Mapping[str, str]],
) -> dict[str, dict[str, str]]:
    """The overrides as stored (methods upper-case), checked against the route
    table now, so a typo fails when the server is configured, not on an order.

    Raises InvalidOrderError("route_overrides", …) naming the operation.
    """
    stored: dict[str, dict[str, str]] = {}
    for operation, entry in overrides.items():
        if not entry:
            msg = f"{operation!r}: give a method, a path or both"
            raise InvalidOrderError("route_overrides", msg)
        stored[operation] = {
            k: v.upper() if k == "method" else v for k, v in entry.items()
        }
    try:
        resolve_routes(stored)
    except ConfigurationError as exc:
        raise InvalidOrderError("route_overrides", str(exc)) from None
    return stored


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a panel's base URL, or None.

    An http(s) URL with a host and a valid port, no credentials (they would be
    shown by `servers list`), and no whitespace or control characters (urlsplit
    silently drops some and keeps others in the host).
    """
    if len(url) > URL_MAX_LENGTH:
        return f"at most {URL_MAX_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return "must not contain spaces or control characters"
    return http_url_problem(url)


def http_url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL with a host, a valid port and no
    credentials (they would be stored and shown), or None. Shared by the API's
    URL fields (bridge.api.schemas) and the servers' base URLs."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "expected an http:// or https:// URL with a host"
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        return "invalid port"
    if parts.username is not None or parts.password is not None:
        return "credentials (user:password@) are not allowed in the URL"
    return None


def ca_bundle_problem(path: str) -> str | None:
    """Why `path` cannot serve as the server's CA bundle, or None: it must load
    as one, as the panel client will load it (bridge.panel.tls)."""
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        return f"{path} is not a PEM CA bundle ({exc.reason or exc})"
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None


def check_spec(spec: ServerSpec) -> None:
    """Refuse what the admin API's schema refuses, for every caller (the CLI,
    the importer and `bridge run` too): a server no order can use is refused
    when saved. (save_server checks the name of a new server.)

    Raises InvalidOrderError naming the field (the API's 422).
    """
    problem = url_problem(spec.base_url)
    if problem is not None:
        raise InvalidOrderError("url", problem)
    if not RATE_LIMIT_MIN <= spec.rate_limit_per_min <= RATE_LIMIT_MAX:
        reason = f"requests per minute from {RATE_LIMIT_MIN} to {RATE_LIMIT_MAX}"
        raise InvalidOrderError("rate_limit_per_min", reason)
    if spec.capacity is not None and not CAPACITY_MIN <= spec.capacity <= CAPACITY_MAX:
        reason = f"from {CAPACITY_MIN} to {CAPACITY_MAX} accounts, or none"
        raise InvalidOrderError("capacity", reason)


def save_server(session: Session, box: SecretBox, spec: ServerSpec) -> Server:
    """Insert or update the server named `spec.name`; credentials stored encrypted.

    Raises InvalidOrderError naming the field; nothing is changed then.
    """
    check_spec(spec)
    credentials = spec.credentials()
    routes = check_route_overrides(spec.route_overrides)
    server = find_server_by_name(session, spec.name)
    # Only a new name: one stored before this check cannot be renamed, and must
    # stay editable (to disable it) by the CLI.
    if server is None and not _SERVER_NAME.fullmatch(spec.name):
        raise InvalidOrderError("name", SERVER_NAME_RULE)
    # A new bundle is loaded now, not on the server's first order; a stored one
    # is not re-read on every edit (a vanished file is the probe's to report).
    if spec.ca_bundle and (server is None or server.ca_bundle != spec.ca_bundle):
        problem = ca_bundle_problem(spec.ca_bundle)
        if problem is not None:
            raise InvalidOrderError("ca_bundle", problem)
    if server is None:
        server = Server(name=spec.name)
        session.add(server)
    elif (
        server.auth_mode is not spec.auth_mode
        or box.decrypt_json(server.credentials) != credentials
    ):
        # The rejected-credentials flag is about these credentials: only new
        # ones lift it (as does a passing `servers test`); editing the group or
        # the limit proves nothing about them.
        server.auth_error = None
    server.base_url = spec.base_url.rstrip("/")
    server.auth_mode = spec.auth_mode
    server.credentials = box.encrypt_json(credentials)
    server.force_login = spec.force_login
    server.rate_limit_per_min = spec.rate_limit_per_min
    server.group_name = spec.group
    server.capacity = spec.capacity
    server.tls_verify = spec.tls_verify
    server.ca_bundle = spec.ca_bundle
    server.tls_fingerprint = spec.tls_fingerprint
    server.state = spec.state
    server.webhooks_enabled = spec.webhooks
    server.route_overrides = routes
    return server


def panel_config(server: Server, box: SecretBox) -> PanelConfig:
    """Decrypt a server row into the client's configuration."""
    creds = box.decrypt_json(server.credentials)
    overrides: Mapping[str, Mapping[str, str]] = server.route_overrides or {}
    return PanelConfig(
        name=server.name,
        base_url=server.base_url,
        auth_mode=server.auth_mode,
        api_key=creds.get("api_key"),
        username=creds.get("username"),
        password=creds.get("password"),
        totp_secret=creds.get("totp_secret"),
        force_login=server.force_login,
        rate_limit_per_min=server.rate_limit_per_min,
        tls_verify=server.tls_verify,
        ca_bundle=server.ca_bundle,
        tls_fingerprint=server.tls_fingerprint,
        route_overrides=overrides,
    )


class PanelRegistry:
    """One PanelClient per server, rebuilt only when the server row changes."""

    def __init__(
        self,
        *,
        box: SecretBox,
        redis_client: "redis.Redis",
        limiter: RedisRateLimiter,
        timeouts: PanelTimeouts,
        host_id: str,
        token_ttl: float,
        inflight: InFlightSlots | None = None,
        inflight_retry_after: float = 0.5,
    ) -> None:
        self._inflight = inflight
        self._inflight_retry_after = inflight_retry_after
        self._box = box
        self._redis = redis_client
        self._limiter = limiter
        self._timeouts = timeouts
        self._host_id = host_id
        self._token_ttl = token_ttl
        self._clients: dict[uuid.UUID, tuple[datetime, PanelClient]] = {}
        self._lock = threading.Lock()

    def client_for(self, server: Server) -> PanelClient:
        with self._lock:
            cached = self._clients.get(server.id)
            if cached is not None and cached[0] == server.updated_at:
                return cached[1]
            client = self.new_client(server, self._limiter)
            if cached is not None:
                cached[1].close()
            self._clients[server.id] = (server.updated_at, client)
            return client

    def new_client(self, server: Server, limiter: Budget) -> PanelClient:
        """A client of `server` spending `limiter` (uncached: the caller closes it).

        The lanes (bridge.lanes) give theirs another budget; everything else
        (credentials, timeouts, login cache, the in-flight cap) is the same.
        """
        return PanelClient(
            panel_config(server, self._box),
            redis=self._redis,
            limiter=limiter,
            timeouts=self._timeouts,
            host_id=self._host_id,
            token_ttl=self._token_ttl,
            inflight=self._inflight,
            inflight_retry_after=self._inflight_retry_after,
        )

    @property
    def inflight(self) -> InFlightSlots | None:
        """The per-server cap on concurrent calls (tests hold its slots)."""
        return self._inflight

    def calls_in_flight(
        self, servers: Sequence[str], *, older_than: float = 0.0
    ) -> dict[str, int]:
        """Per server name: panel calls in flight for `older_than` s or more, in
        every process.

        Best effort: without the cap or without Redis, no calls are known ({}),
        so callers count every leased order as still wanting budget (cautious).
        """
        if self._inflight is None:
            return {}
        try:
            return self._inflight.live_counts(servers, older_than=older_than)
        except RateLimiterUnavailableError as exc:
            log.warning("inflight_count_failed", error=str(exc))
            return {}

    def close(self) -> None:
        with self._lock:
            for _, client in self._clients.values():
                client.close()
            self._clients.clear()


def describe_server(server: Server) -> dict[str, Any]:
    """A server as operators see it: never its credentials."""
    return {
        "name": server.name,
        "url": server.base_url,
        "auth_mode": server.auth_mode.value,
        "group": server.group_name,
        "capacity": server.capacity,
        "rate_limit_per_min": server.rate_limit_per_min,
        "state": server.state.value,
        "tls_verify": server.tls_verify,
        "circuit_open_until": (
            server.circuit_open_until.isoformat() if server.circuit_open_until else None
        ),
        "auth_error": server.auth_error,
        "webhooks": server.webhooks_enabled,
        "webhook_subscribed": not (server.webhook_id or "pending:").startswith(
            "pending:"
        ),
        "route_overrides": dict(server.route_overrides or {}),
    }
