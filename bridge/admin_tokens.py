"""Per-operator admin API tokens: create (shown once), list, revoke, authenticate.

Only a token's SHA-256 digest is stored, so a database dump grants nothing. Each
token carries a role (`bridge.domain.roles`: read < operate < admin). The
`BRIDGE_ADMIN_TOKEN` setting keeps working as the bootstrap operator "bootstrap"
with role `admin`, so a fresh install can be administered before any named token
exists.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.db.models import AdminToken
from bridge.domain.roles import Role
from bridge.errors import BridgeError, InvalidOrderError, NotFoundError
from bridge.settings import Settings

BOOTSTRAP_OPERATOR = "bootstrap"
TOKEN_PREFIX = "bat_"  # noqa: S105 - a public prefix that marks admin tokens
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# last_used_at is for "is this token still in use?", not a request log: writing it
# at most once a minute keeps a busy script from turning every read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenNameTakenError(BridgeError):
    """An active token already has this name; revoke it first."""


@dataclass(frozen=True, slots=True)
class Operator:
    """Who presented a valid admin token, and what that token may do."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        """The audit log's name for this operator."""
        return f"admin:{self.name}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _find(session: Session, name: str) -> AdminToken | None:
    return session.scalars(
        select(AdminToken).where(AdminToken.name == name)
    ).one_or_none()


def create_token(session: Session, name: str, role: Role) -> str:
    """Create token `name` with `role` and return it; the only time it is visible.

    A revoked name may be reused (the old row is replaced; the audit log keeps the
    history). Raises InvalidOrderError for a bad or reserved name and
    TokenNameTakenError when an active token has it.
    """
    if not _NAME.match(name):
        raise InvalidOrderError("name", "1-64 letters, digits, '.', '_', '@' or '-'")
    if name == BOOTSTRAP_OPERATOR:
        raise InvalidOrderError("name", f"{name!r} is the BRIDGE_ADMIN_TOKEN operator")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = _find(session, name)
    if row is not None and row.revoked_at is None:
        msg = f"admin token {name!r} exists; revoke it first"
        raise TokenNameTakenError(msg)
    if row is None:
        row = AdminToken(name=name)
        session.add(row)
    row.token_sha256 = _digest(token)
    row.role = role
    row.created_at = datetime.now(UTC)
    row.last_used_at = None
    row.revoked_at = None
    return token


def list_tokens(session: Session) -> list[dict[str, Any]]:
    """Every token by name (never a digest), active ones first."""
    rows = session.scalars(select(AdminToken).order_by(AdminToken.name))
    views = [token_view(r) for r in rows]
    return sorted(views, key=lambda v: v["state"] != "active")


def token_view(row: AdminToken) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "name": row.name,
        "role": row.role.value,
        "state": "revoked" if row.revoked_at else "active",
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }


def revoke_token(session: Session, name: str, *, now: datetime | None = None) -> bool:
    """Revoke token `name`; False when it was already revoked.

    Raises NotFoundError for an unknown name.
    """
    row = _find(session, name)
    if row is None:
        msg = f"admin token {name!r} not found"
        raise NotFoundError(msg)
    if row.revoked_at is not None:
        return False
    row.revoked_at = now or datetime.now(UTC)
    return True


def authenticate(
    session: Session,
    settings: Settings,
    presented: str | None,
    *,
    now: datetime | None = None,
) -> Operator | None:
    """The operator `presented` belongs to, or None (unknown or revoked)."""
    if not presented:
        return None
    digest = _digest(presented)
    bootstrap = settings.admin_token
    # Digests on both sides: equal lengths, so not even the length leaks.
    if bootstrap is not None and hmac.compare_digest(
        digest, _digest(bootstrap.get_secret_value())
    ):
        return Operator(BOOTSTRAP_OPERATOR, Role.ADMIN)
    # The lookup is by digest, so its timing reveals nothing about the token
    # itself; the compare below keeps the final check constant-time anyway.
    row = session.scalars(
        select(AdminToken).where(AdminToken.token_sha256 == digest)
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    if row.revoked_at is not None:
        return None
    moment = now or datetime.now(UTC)
    if row.last_used_at is None or moment - row.last_used_at >= _LAST_USED_RESOLUTION:
        row.last_used_at = moment
    return Operator(row.name, row.role)
