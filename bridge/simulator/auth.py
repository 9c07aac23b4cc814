"""Who is calling: ``wsp_`` API keys (scopes) and HS256 session JWTs (tv, IP, refresh).

Raises ``ApiError`` with the documented 401/403 texts; never touches rate limits.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any, Literal

import jwt

from bridge.simulator.errors import ApiError
from bridge.simulator.panel import Panel
from bridge.simulator.records import ApiKey, User

_READ_METHODS = ("GET", "HEAD")
_BOUND_ROLES = ("admin", "reseller")
_REQUIRED_CLAIMS = ["sub", "role", "exp", "iat", "tv"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user: User
    method: Literal["api_key", "jwt"]
    credential: str
    key: ApiKey | None = None
    claims: Mapping[str, Any] | None = None

    @property
    def username(self) -> str:
        """Return the caller's username."""
        return self.user.username

    @property
    def role(self) -> str:
        """Return the caller's role (admin, reseller or user)."""
        return self.user.role


def client_ip(headers: Mapping[str, str], peer: str, trust_forwarded: bool) -> str:
    """Return the caller's IP (first X-Forwarded-For entry when trusted)."""
    forwarded = headers.get("x-forwarded-for", "")
    if trust_forwarded and forwarded:
        return forwarded.split(",")[0].strip()
    return peer


def authenticate(panel: Panel, authorization: str | None, ip: str) -> Principal:
    """Resolve the Authorization header to a principal.

    Raises:
        ApiError: 401 for missing/invalid/expired/revoked credentials, 403 for an
            API key used from an address outside its whitelist.
    """
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Missing authorization")
    if token.startswith("wsp_"):
        return _key_principal(panel, token, ip)
    return _jwt_principal(panel, token, ip)


def _key_principal(panel: Panel, secret: str, ip: str) -> Principal:
    key = panel.state.api_keys.get(secret)
    user = panel.state.users.get(key.owner) if key else None
    if key is None or user is None:
        raise ApiError(401, "Invalid API key")
    now = panel.now()
    if not key.enabled:
        raise ApiError(401, "API key disabled")
    if key.expires_at is not None and now >= key.expires_at:
        raise ApiError(401, "API key expired")
    if user.status == "suspended":
        raise ApiError(401, "Account suspended")
    if key.ip_whitelist and not _ip_allowed(ip, key.ip_whitelist):
        raise ApiError(403, "IP address not allowed for this API key")
    key.last_used = now
    return Principal(user=user, method="api_key", credential=f"key:{key.id}", key=key)


def _ip_allowed(ip: str, whitelist: list[str]) -> bool:
    try:
        address = ip_address(ip)
    except ValueError:
        return False
    return any(address in ip_network(entry, strict=False) for entry in whitelist)


def _jwt_principal(panel: Panel, token: str, ip: str) -> Principal:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            panel.jwt_secret,
            algorithms=["HS256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "require": _REQUIRED_CLAIMS,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise ApiError(401, "Invalid token") from exc
    user = panel.state.users.get(str(claims["sub"]))
    if user is None:
        raise ApiError(401, "Invalid token")
    # exp is judged on the panel clock, which tests move; PyJWT would use the wall.
    if panel.now() >= float(claims["exp"]):
        raise ApiError(401, "Token expired")
    if claims["tv"] != user.token_version:
        raise ApiError(401, "Token revoked")
    if panel.config.ip_binding and "ip" in claims and claims["ip"] != ip:
        raise ApiError(401, "Token bound to a different IP")
    if user.status == "suspended":
        raise ApiError(401, "Account suspended")
    session = panel.state.sessions.get(user.username)
    if session is not None:
        session.last_seen = panel.now()
    return Principal(
        user=user, method="jwt", credential=f"user:{user.username}", claims=claims
    )


def issue_token(panel: Panel, user: User, ip: str) -> str:
    """Mint a session JWT for ``user`` logging in from ``ip``."""
    now = int(panel.now())
    claims: dict[str, Any] = {
        "sub": user.username,
        "role": user.role,
        "iat": now,
        "exp": now + panel.config.token_lifetime_s,
        "tv": user.token_version,
    }
    if panel.config.ip_binding and user.role in _BOUND_ROLES:
        claims["ip"] = ip
    return jwt.encode(claims, panel.jwt_secret, algorithm="HS256")


def renew_token(panel: Panel, claims: Mapping[str, Any]) -> str:
    """Return a fresh token with the same sub, role, tv and ip, and a new exp."""
    now = int(panel.now())
    fresh = dict(claims) | {"iat": now, "exp": now + panel.config.token_lifetime_s}
    return jwt.encode(fresh, panel.jwt_secret, algorithm="HS256")


def sliding_refresh(panel: Panel, principal: Principal) -> str | None:
    """Return a fresh JWT when under half of the caller's token lifetime remains."""
    claims = principal.claims
    if claims is None:
        return None
    lifetime = float(claims["exp"]) - float(claims["iat"])
    remaining = float(claims["exp"]) - panel.now()
    if remaining >= lifetime / 2:
        return None
    return renew_token(panel, claims)


def check_scope(principal: Principal, method: str, path: str) -> None:
    """Refuse an API key lacking the scope for this request.

    Scope names are the first path segment after ``/api/v1/``; ``read`` allows
    any GET, ``all`` everything, and ``auth/me`` is always allowed.

    Raises:
        ApiError: 403 FORBIDDEN naming the missing resource scope.
    """
    if principal.key is None:
        return
    perms = principal.key.permissions
    rest = path.removeprefix("/api/v1/")
    resource = rest.split("/", 1)[0]
    if "all" in perms or rest.rstrip("/") == "auth/me" or resource in perms:
        return
    if method in _READ_METHODS and "read" in perms:
        return
    raise ApiError(403, f"API key is not scoped for '{resource}' on this request")
