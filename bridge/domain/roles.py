"""Operator roles of admin tokens (read < operate < admin) and what each may do.

A role includes every lower one: an `operate` token can read, an `admin` token can
do everything. The CLI works on the database directly and counts as `admin`.
"""

from enum import StrEnum


class Role(StrEnum):
    READ = "read"  # list and show orders, servers, the audit log
    OPERATE = "operate"  # retry, cancel, resolve orders; run sweeps
    ADMIN = "admin"  # servers, tokens, secrets


_RANK = {Role.READ: 0, Role.OPERATE: 1, Role.ADMIN: 2}


def role_allows(held: Role, needed: Role) -> bool:
    """True when a token of role `held` may do what needs `needed`."""
    return _RANK[held] >= _RANK[needed]
