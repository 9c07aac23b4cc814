"""Login mode: the panel JWT, cached in Redis per (server, host), and how to get one.

Tokens may be bound to the login IP and a second login may revoke the first
(wispanel-api.md §2.3), so the cache key names the host and the processes of one host
share one token. A short Redis lock lets one process log in while the others either
find the fresh token or get a `PanelBusyError` (retry shortly): a stampede of logins
would trip the panel's 20/min per-IP login limit and, on single-session panels, kick
each other out. Redis errors here fail closed like the rate limiter's.
"""

import binascii
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pyotp
import redis

from bridge.errors import RateLimiterUnavailableError
from bridge.panel.errors import PanelAuthError, PanelBusyError, classify
from bridge.panel.routes import Route

LOGIN_OPERATION = "auth_login"
# Drop a cached token this long before it expires, so a request never leaves with a
# token that dies in flight (the panel refreshes via X-New-Token well before).
_EXPIRY_MARGIN_S = 30.0
_MIN_TTL_S = 1.0

_SWAP = """
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class LoginCredentials:
    username: str
    password: str
    totp_secret: str | None
    force: bool

    def __repr__(self) -> str:
        return f"LoginCredentials(username={self.username!r}, force={self.force})"


class TokenCache:
    """One server's JWT for one host in Redis, with compare-and-set updates."""

    def __init__(
        self,
        redis_client: "redis.Redis",
        *,
        server: str,
        host_id: str,
        username: str,
        ttl: float,
        lock_ttl: float,
    ) -> None:
        who = hashlib.sha256(username.encode()).hexdigest()[:12]
        # {server} is the Redis Cluster hash tag, shared with the bucket keys.
        base = f"bridge:panel-token:{{{server}}}:{host_id}:{who}"
        self.key = base
        self.lock_key = base + ":login-lock"
        self._redis = redis_client
        self._ttl = ttl
        self._lock_ms = max(int(lock_ttl * 1000), 1000)
        self._swap = redis_client.register_script(_SWAP)
        self._delete_if = redis_client.register_script(_DELETE_IF)

    def get(self) -> str | None:
        value = self._call(self._redis.get, self.key)
        return _text(value)

    def store(self, token: str) -> None:
        self._call(self._redis.set, self.key, token, px=self._ttl_ms(token))

    def swap(self, old: str, new: str) -> bool:
        """Replace `old` with the refreshed `new`, unless someone already moved on."""
        args = [old, new, self._ttl_ms(new)]
        return bool(self._call(self._swap, keys=[self.key], args=args))

    def discard(self, token: str) -> None:
        """Forget `token` (it was refused), unless it was already replaced."""
        self._call(self._delete_if, keys=[self.key], args=[token])

    def try_lock(self) -> str | None:
        owner = secrets.token_hex(8)
        got = self._call(
            self._redis.set, self.lock_key, owner, nx=True, px=self._lock_ms
        )
        return owner if got else None

    def unlock(self, owner: str) -> None:
        self._call(self._delete_if, keys=[self.lock_key], args=[owner])

    def _ttl_ms(self, token: str) -> int:
        ttl = self._ttl
        exp = _jwt_expiry(token)
        if exp is not None:
            ttl = min(ttl, exp - time.time() - _EXPIRY_MARGIN_S)
        return int(max(ttl, _MIN_TTL_S) * 1000)

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            msg = f"panel token cache unavailable: {type(exc).__name__}"
            raise RateLimiterUnavailableError(msg) from exc


def obtain_token(cache: TokenCache, log_in: Callable[[], str]) -> str:
    """The cached token, or a fresh login when none is cached (one host at a time).

    Raises PanelBusyError when another process of this host is logging in right now.
    """
    token = cache.get()
    if token is not None:
        return token
    owner = cache.try_lock()
    if owner is None:
        token = cache.get()
        if token is not None:
            return token
        raise PanelBusyError(LOGIN_OPERATION, message="another process is logging in")
    try:
        token = cache.get()  # it may have landed while we took the lock
        if token is None:
            token = log_in()
            cache.store(token)
        return token
    finally:
        cache.unlock(owner)


def totp_secret_problem(secret: str) -> str | None:
    """Why `secret` cannot make TOTP codes, or None when it can.

    Asks pyotp itself, which decodes base32 case-insensitively, adds missing
    padding and (from 2.10) refuses secrets under 112 bits, so a secret
    accepted here is one `log_in` can use.
    """
    base32 = "must be base32 (letters A-Z and digits 2-7, '=' padding optional)"
    if not secret.isascii():
        return base32
    try:
        pyotp.TOTP(secret).byte_secret()
    except binascii.Error:
        return base32
    except ValueError as exc:  # e.g. "Secrets must be at least 112 bits ..."
        return str(exc)
    return None


def log_in(http: httpx.Client, route: Route, creds: LoginCredentials) -> str:
    """POST the credentials (+ TOTP, + force only when configured); return the JWT.

    Raises PanelAuthError when the panel refuses (bad credentials, 2FA, another
    session without `force`) and the classified PanelError for anything else.
    """
    body: dict[str, Any] = {"username": creds.username, "password": creds.password}
    if creds.totp_secret:
        body["totp_code"] = pyotp.TOTP(creds.totp_secret).now()
    if creds.force:
        # Never sent unless configured: it revokes every other session of the user.
        body["force"] = True
    try:
        response = http.request(route.method, route.path, json=body)
    except httpx.HTTPError as exc:
        raise classify(exc, operation=LOGIN_OPERATION, method=route.method) from exc
    payload = _json(response)
    if response.status_code == httpx.codes.CONFLICT and payload.get("existing_session"):
        raise PanelAuthError(
            LOGIN_OPERATION,
            status=response.status_code,
            panel_code="EXISTING_SESSION",
            message="another session is active and force login is not configured",
        )
    refused = classify(response, operation=LOGIN_OPERATION, method=route.method)
    if refused is not None:
        raise refused
    token = payload.get("token")
    if isinstance(token, str) and token:
        return token
    if payload.get("requires_2fa"):
        reason = "TOTP code refused" if creds.totp_secret else "totp_secret not set"
        raise PanelAuthError(
            LOGIN_OPERATION, status=response.status_code, message=f"2FA: {reason}"
        )
    raise PanelAuthError(
        LOGIN_OPERATION, status=response.status_code, message="no token in answer"
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _jwt_expiry(token: str) -> float | None:
    # Read only for cache expiry; the panel, not us, verifies the signature.
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
