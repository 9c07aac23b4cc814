"""Domain values: actions, step kinds, order specs and planned steps (frozen, pure)."""

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    CREATE = "create"
    SUSPEND = "suspend"
    UNSUSPEND = "unsuspend"
    TERMINATE = "terminate"
    CHANGE_PACKAGE = "change_package"
    CHANGE_PASSWORD = "change_password"  # noqa: S105 - an action name


# Higher runs first: a sweep (suspend/terminate) never starves a paying customer.
ACTION_PRIORITY: dict[Action, int] = {
    Action.UNSUSPEND: 50,
    Action.CREATE: 40,
    Action.CHANGE_PACKAGE: 30,
    Action.CHANGE_PASSWORD: 30,
    Action.SUSPEND: 20,
    Action.TERMINATE: 10,
}


class StepKind(StrEnum):
    CREATE_USER = "create_user"
    CREATE_DOMAIN = "create_domain"
    ISSUE_SSL = "issue_ssl"
    CREATE_MAILBOX = "create_mailbox"
    SUSPEND_USER = "suspend_user"
    UNSUSPEND_USER = "unsuspend_user"
    DELETE_USER = "delete_user"
    CHANGE_PACKAGE = "change_package"
    CHANGE_PASSWORD = "change_password"  # noqa: S105 - a step kind
    CREATE_RESELLER = "create_reseller"
    SET_RESELLER_LIMITS = "set_reseller_limits"
    DELETE_RESELLER = "delete_reseller"


class AccountRole(StrEnum):
    """What a create order provisions: a hosting user or a reseller account."""

    USER = "user"
    RESELLER = "reseller"


# A reseller's limits billing may set (wispanel-api.md §7.10); -1 = unlimited.
RESELLER_LIMITS = (
    "max_users",
    "max_domains",
    "max_databases",
    "max_email_accounts",
    "max_ftp_accounts",
    "disk_quota_mb",
    "bandwidth_quota_mb",
)


class RequestedBy(StrEnum):
    BILLING = "billing"
    SWEEP = "sweep"
    OPS = "ops"


class SuspendReason(StrEnum):
    NON_PAYMENT = "non_payment"
    ABUSE = "abuse"
    OTHER = "other"


class AuthMode(StrEnum):
    API_KEY = "api_key"
    LOGIN = "login"


class ServerState(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"
    DISABLED = "disabled"


class CallbackStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    username: str
    email: str
    password: str
    package: str
    role: AccountRole = AccountRole.USER
    limits: tuple[tuple[str, int], ...] = ()  # resellers only


@dataclass(frozen=True, slots=True)
class MailboxSpec:
    local_part: str
    password: str
    quota_mb: int = 0


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """What billing asked for, validated; the planner's only input."""

    order_id: str
    service_id: str
    action: Action
    account: AccountSpec | None = None
    domain: str | None = None
    ssl: bool = False
    mailboxes: tuple[MailboxSpec, ...] = ()
    server: str | None = None
    server_group: str | None = None
    paid_until: date | None = None
    callback_url: str | None = None
    reason: SuspendReason | None = None
    package: str | None = None
    password: str | None = None
    force: bool = False  # terminate a reseller that still has users
    requested_by: RequestedBy = RequestedBy.BILLING


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One panel call, fixed at plan time. Secrets travel apart from the body."""

    kind: StepKind
    params: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)
