"""PanelClient: one long-lived httpx.Client per server; every call budgeted and typed.

A call takes one of the server's in-flight slots (none -> `RateLimitedError` with a
short retry_after: the panel already has its share of calls in flight) and then a token
from the shared bucket (none -> `RateLimitedError`); nothing is sent without both. It
goes out once; its answer is folded back into the bucket and classified
(`bridge.panel.errors.classify`). The client never sleeps and never retries, except
that in login mode a 401 leads to one fresh login and one repeat of the call.
Typed per-operation methods live in `bridge.panel.operations`.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import redis
import structlog

from bridge import __version__
from bridge.domain.model import AuthMode
from bridge.errors import RateLimitedError, RateLimiterUnavailableError
from bridge.panel.auth import LoginCredentials, TokenCache, log_in, obtain_token
from bridge.panel.config import (
    Budget,
    BudgetDecision,
    PanelConfig,
    PanelTimeouts,
    bucket_key,
)
from bridge.panel.errors import (
    PanelError,
    PanelNotFoundError,
    PanelRejectedError,
    classify,
)
from bridge.panel.operations import PanelOperations
from bridge.panel.routes import Route, resolve_routes
from bridge.panel.schemas import ConnectionReport, PanelResponse, RateLimitInfo
from bridge.panel.tls import build_tls_policy, probe_tls

log = structlog.get_logger(__name__)

# Importable from here too: the engine builds clients from this module.
__all__ = [
    "Budget",
    "BudgetDecision",
    "PanelClient",
    "PanelConfig",
    "PanelResponse",
    "PanelTimeouts",
    "bucket_key",
]

USER_AGENT = f"wispanel-bridge/{__version__}"


class InFlightGate(Protocol):
    """What the client needs from `bridge.inflight.InFlightSlots` (structural, as
    `Budget`: the layer contract keeps the two packages independent)."""

    def acquire(self, server: str) -> str | None: ...

    def release(self, server: str, slot: str) -> None: ...


LOGIN_OPERATION = "auth_login"


class PanelClient(PanelOperations):
    """The WisPanel API of one server, as the bridge uses it."""

    def __init__(
        self,
        config: PanelConfig,
        *,
        redis: "redis.Redis",
        limiter: Budget,
        timeouts: PanelTimeouts,
        host_id: str,
        token_ttl: float,
        transport: httpx.BaseTransport | None = None,
        inflight: InFlightGate | None = None,
        inflight_retry_after: float = 0.5,
    ) -> None:
        self.config = config
        self._inflight = inflight
        self._inflight_retry_after = inflight_retry_after
        self.routes = resolve_routes(config.route_overrides)
        self.bucket_key = bucket_key(config)
        self._limiter = limiter
        self.tls = build_tls_policy(
            server=config.name,
            verify=config.tls_verify,
            ca_bundle=config.ca_bundle,
            fingerprint=config.tls_fingerprint,
        )
        self._timeouts = timeouts
        self._tokens: TokenCache | None = None
        self._account: str | None = None
        if config.auth_mode is AuthMode.LOGIN:
            self._tokens = TokenCache(
                redis,
                server=config.name,
                host_id=host_id,
                username=config.username or "",
                ttl=token_ttl,
                # The lock must outlive one login attempt, however slow.
                lock_ttl=timeouts.connect + timeouts.write + timeouts.read + 5,
            )
        # One client for the life of the process: building one costs ~45 ms and a
        # fresh client would also throw away the keep-alive connection.
        self._http = httpx.Client(
            base_url=config.base_url,
            timeout=timeouts.as_httpx(),
            verify=self.tls.verify,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "PanelClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PanelClient({self.config.name!r}, {self.config.base_url!r})"

    def request(
        self,
        operation: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> PanelResponse:
        """Send one operation (after a bucket token) and return its success.

        Raises RateLimitedError (no token; nothing sent), RateLimiterUnavailableError
        (Redis down; nothing sent), a PanelError per design.md §2, or ValueError for
        an unknown operation, missing path params or a write without a key.
        """
        route = self._route(operation)
        if route.is_mutating and not idempotency_key:
            msg = f"{operation} changes the panel: an idempotency_key is required"
            raise ValueError(msg)
        path = route.url_path(params or {})
        call = _Call(operation, route, path, body, query, idempotency_key)
        response, used = self._send_budgeted(call)
        if (
            response.status_code == httpx.codes.UNAUTHORIZED
            and self._tokens is not None
        ):
            # Expired or revoked (tv bump, password change, IP moved): one fresh
            # login, then the call once more with the same key.
            log.info("panel_relogin", server=self.config.name, operation=operation)
            self._tokens.discard(used)
            response, _ = self._send_budgeted(call)
        error = classify(response, operation=operation, method=route.method)
        if error is not None:
            raise error
        return PanelResponse(
            status=response.status_code,
            data=_decode(response),
            headers=dict(response.headers),
            replayed=response.headers.get("idempotent-replayed", "").lower() == "true",
        )

    def test_connection(
        self, *, sleep: Callable[[float], None] | None = None
    ) -> ConnectionReport:
        """Who we are on the panel, its version, license, limits and TLS session.

        Three budgeted calls (auth/me, version, license). Without `sleep` a call
        with no token raises RateLimitedError like any other; the CLI, which is no
        worker, passes `time.sleep` to wait for the budget instead.
        Raises a PanelError when auth/me fails; version/license failures are notes.
        """
        notes: list[str] = []
        me = self._budget_waiting("auth_me", sleep)
        version = self._optional("version", sleep, notes)
        license_ = self._optional("license", sleep, notes)
        last = license_ or version or me
        try:
            tls = probe_tls(self.config.base_url, self.tls, self._timeouts.connect)
        except OSError as exc:
            tls = None
            notes.append(f"tls probe failed: {type(exc).__name__}: {exc}")
        version_data = version.data if version else None
        return ConnectionReport(
            server=self.config.name,
            base_url=self.config.base_url,
            auth_mode=str(self.config.auth_mode),
            me=me.data if isinstance(me.data, dict) else {},
            version=_str_field(version_data, "version"),
            license=license_.data
            if license_ and isinstance(license_.data, dict)
            else None,
            rate_limit=RateLimitInfo(
                limit=_int_header(last.headers, "x-ratelimit-limit"),
                remaining=_int_header(last.headers, "x-ratelimit-remaining"),
                reset=_int_header(last.headers, "x-ratelimit-reset"),
            ),
            tls=tls,
            notes=tuple(notes),
        )

    def _budget_waiting(
        self, operation: str, sleep: Callable[[float], None] | None
    ) -> PanelResponse:
        for _ in range(_MAX_BUDGET_WAITS):
            try:
                return self.request(operation)
            except RateLimitedError as exc:
                if sleep is None:
                    raise
                sleep(exc.retry_after)
        return self.request(operation)

    def _optional(
        self, operation: str, sleep: Callable[[float], None] | None, notes: list[str]
    ) -> PanelResponse | None:
        try:
            return self._budget_waiting(operation, sleep)
        except (PanelNotFoundError, PanelRejectedError) as exc:
            # A user-role key may not read the license; that is a fact to show.
            notes.append(f"{operation}: {_short(exc)}")
            return None

    def _route(self, operation: str) -> Route:
        if operation == LOGIN_OPERATION:
            msg = "auth_login is performed by the client itself"
            raise ValueError(msg)
        try:
            return self.routes[operation]
        except KeyError:
            msg = f"unknown panel operation {operation!r}"
            raise ValueError(msg) from None

    def _send_budgeted(self, call: "_Call") -> tuple[httpx.Response, str]:
        # The slot comes before the token: a call refused for want of a slot has
        # spent nothing of the panel's budget (and no attempt: the engine treats
        # RateLimitedError as a budget wait and puts the order back in the DB).
        if self._inflight is None:
            return self._send_with_token(call)
        slot = self._inflight.acquire(self.config.name)
        if slot is None:
            raise RateLimitedError(self._inflight_retry_after)
        try:
            return self._send_with_token(call)
        finally:
            self._inflight.release(self.config.name, slot)

    def _send_with_token(self, call: "_Call") -> tuple[httpx.Response, str]:
        decision = self._limiter.acquire(
            self.bucket_key, self.config.rate_limit_per_min
        )
        if not decision.allowed:
            raise RateLimitedError(decision.retry_after)
        token = self._bearer()
        headers = {"Authorization": f"Bearer {token}"}
        if call.route.is_mutating and call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        try:
            response = self._http.request(
                call.route.method,
                call.path,
                json=dict(call.body) if call.body is not None else None,
                params=dict(call.query) if call.query else None,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            method = call.route.method
            raise classify(exc, operation=call.operation, method=method) from exc
        try:
            self._limiter.observe(
                self.bucket_key, response.status_code, response.headers
            )
            self._adopt_new_token(token, response)
        except RateLimiterUnavailableError as exc:
            # The request went out and has an answer: losing Redis now must not
            # turn it into "nothing sent". The next acquire fails closed anyway.
            log.warning(
                "panel_budget_update_failed", server=self.config.name, error=str(exc)
            )
        return response, token

    def _bearer(self) -> str:
        if self._tokens is None:
            return self.config.api_key or ""
        return obtain_token(self._tokens, self._log_in)

    def _log_in(self) -> str:
        creds = LoginCredentials(
            username=self.config.username or "",
            password=self.config.password or "",
            totp_secret=self.config.totp_secret,
            force=self.config.force_login,
        )
        token = log_in(self._http, self.routes[LOGIN_OPERATION], creds)
        log.info("panel_logged_in", server=self.config.name)
        return token

    def _adopt_new_token(self, used: str, response: httpx.Response) -> None:
        new = response.headers.get("x-new-token")
        if self._tokens is not None and new and new != used:
            self._tokens.swap(used, new)

    def account_name(self) -> str:
        """The panel username the bridge acts as (the `creator` of what it makes).

        Login mode knows it from its credentials; an API key asks `auth/me` once
        per process (a budgeted read; raises like any call).
        """
        if self.config.auth_mode is AuthMode.LOGIN:
            return self.config.username or ""
        if self._account is None:
            me = self.request("auth_me").data
            name = me.get("username") if isinstance(me, dict) else None
            self._account = str(name or "")
        return self._account

    @property
    def token_cache(self) -> TokenCache | None:
        """Login mode's shared JWT cache (None in api_key mode)."""
        return self._tokens


_MAX_BUDGET_WAITS = 5


def _short(exc: PanelError) -> str:
    return str(exc).removeprefix(exc.operation + " ")


def _str_field(data: Any, name: str) -> str | None:
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        return int(lowered[name])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class _Call:
    operation: str
    route: Route
    path: str
    body: Mapping[str, Any] | None
    query: Mapping[str, str] | None
    idempotency_key: str | None


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
