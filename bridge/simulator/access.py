"""Ownership rules: admin sees all; a reseller itself and its users; a user itself.

Lookups here raise the documented 404 (missing) before 403 (not yours).
"""

from bridge.simulator.auth import Principal
from bridge.simulator.errors import ApiError
from bridge.simulator.panel import Panel
from bridge.simulator.records import Domain, User


def can_see(principal: Principal, target: User) -> bool:
    """Return whether ``principal`` may read and manage ``target``."""
    if principal.role == "admin":
        return True
    if target.username == principal.username:
        return True
    return principal.role == "reseller" and target.creator == principal.username


def require_role(principal: Principal, *roles: str) -> None:
    """Refuse callers whose role is not in ``roles``.

    Raises:
        ApiError: 403 FORBIDDEN.
    """
    if principal.role not in roles:
        raise ApiError(403, "Insufficient permissions")


def get_user(panel: Panel, principal: Principal, username: str) -> User:
    """Return a user the caller may see.

    Raises:
        ApiError: 404 "User not found", 403 when it is someone else's.
    """
    user = panel.state.users.get(username)
    if user is None:
        raise ApiError(404, "User not found")
    if not can_see(principal, user):
        raise ApiError(403, "Access denied to this user")
    return user


def get_managed_user(panel: Panel, principal: Principal, username: str) -> User:
    """Return a user the caller may suspend, delete or re-package (never an admin).

    Raises:
        ApiError: 404, or 403 for admins, self-management and foreign users.
    """
    user = get_user(panel, principal, username)
    if user.role == "admin":
        raise ApiError(403, "Cannot modify admin accounts")
    if principal.role == "user":
        raise ApiError(403, "Insufficient permissions")
    return user


def get_domain(panel: Panel, principal: Principal, name: str) -> Domain:
    """Return a domain owned by a user the caller may see.

    Raises:
        ApiError: 404 "Domain not found", 403 when it is someone else's.
    """
    domain = panel.state.domains.get(name.strip().lower())
    if domain is None:
        raise ApiError(404, "Domain not found")
    owner = panel.state.users.get(domain.owner)
    if owner is None or not can_see(principal, owner):
        raise ApiError(403, "Access denied to this domain")
    return domain


def visible_usernames(panel: Panel, principal: Principal) -> set[str]:
    """Return the usernames whose resources the caller may list."""
    return {u.username for u in panel.state.users.values() if can_see(principal, u)}
