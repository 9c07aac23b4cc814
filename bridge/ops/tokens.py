"""Operator actions on admin tokens, audited (the token itself never is)."""

from typing import Any

from bridge import admin_tokens, audit
from bridge.container import Services
from bridge.domain.roles import Role


def issue_token(services: Services, name: str, actor: str, *, role: Role) -> str:
    """Create admin token `name` with `role` and return it (shown once, stored
    hashed)."""
    with services.sessions.begin() as session:
        token = admin_tokens.create_token(session, name, role)
        audit.record(
            session,
            actor=actor,
            action="admin_token_created",
            after="active",
            detail={"name": name, "role": role.value},
        )
    return token


def revoke_token(services: Services, name: str, actor: str) -> bool:
    """Revoke admin token `name`; False if it already was. Raises NotFoundError."""
    with services.sessions.begin() as session:
        changed = admin_tokens.revoke_token(session, name, now=services.clock())
        if changed:
            audit.record(
                session,
                actor=actor,
                action="admin_token_revoked",
                before="active",
                after="revoked",
                detail={"name": name},
            )
    return changed


def list_tokens(services: Services) -> list[dict[str, Any]]:
    with services.sessions() as session:
        return admin_tokens.list_tokens(session)
