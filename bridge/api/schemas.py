"""The public intake contract: order bodies by action (pydantic, field-level 422s).

Where the JSON type carries meaning the field is strict: `true` is not a quota and
`0` is not a day (pydantic's lax mode would read them as 1 and 1970-01-01).
"""

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    model_validator,
)

from bridge.domain.model import (
    AccountRole,
    AccountSpec,
    Action,
    MailboxSpec,
    OrderSpec,
    SuspendReason,
)
from bridge.fleet import http_url_problem

USERNAME = r"^[a-z][a-z0-9]{1,15}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DOMAIN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
PACKAGE = r"^[A-Za-z0-9_.-]{1,64}$"
LOCAL_PART = r"^[a-z0-9._+-]{1,64}$"
PRINTABLE_ID = r"^[\x21-\x7e]{1,255}$"

Password = Annotated[SecretStr, Field(min_length=8, max_length=128)]

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _iso_day(value: object) -> object:
    # Only the text form: pydantic would read a number as a Unix timestamp.
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        msg = "expected a date as YYYY-MM-DD"
        raise ValueError(msg)
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


def _http_url(value: str) -> str:
    """An http(s) URL with a host and a valid port, and no credentials in it."""
    problem = http_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


HttpUrlText = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


LimitValue = Annotated[StrictInt, Field(ge=-1, le=2**31 - 1)]


class ResellerLimitsIn(_Strict):
    """A reseller's limits (wispanel-api.md §7.10); -1 = unlimited."""

    max_users: LimitValue | None = None
    max_domains: LimitValue | None = None
    max_databases: LimitValue | None = None
    max_email_accounts: LimitValue | None = None
    max_ftp_accounts: LimitValue | None = None
    disk_quota_mb: LimitValue | None = None
    bandwidth_quota_mb: LimitValue | None = None


class AccountIn(_Strict):
    username: str = Field(pattern=USERNAME, description="Panel username")
    email: str = Field(pattern=EMAIL, max_length=254)
    password: Password
    package: str = Field(pattern=PACKAGE)
    role: AccountRole = Field(
        default=AccountRole.USER,
        description="reseller: created through /resellers (admin credential)",
    )
    limits: ResellerLimitsIn | None = Field(default=None, description="reseller only")

    @model_validator(mode="after")
    def _limits_for_resellers(self) -> "AccountIn":
        if self.limits is not None and self.role is not AccountRole.RESELLER:
            msg = "limits are only for role reseller"
            raise ValueError(msg)
        return self


class MailboxIn(_Strict):
    local_part: str = Field(pattern=LOCAL_PART)
    password: Password
    quota_mb: StrictInt = Field(
        default=0, ge=0, le=10_000_000, description="0 = unlimited"
    )


class _OrderBase(_Strict):
    order_id: str = Field(
        pattern=PRINTABLE_ID, description="Billing's id of this request"
    )
    service_id: str = Field(pattern=r"^[\x21-\x7e]{1,128}$")
    callback_url: HttpUrlText | None = None
    paid_until: IsoDay | None = None


class CreateOrderIn(_OrderBase):
    action: Literal["create"]
    account: AccountIn
    domain: str | None = Field(default=None, pattern=DOMAIN, max_length=253)
    ssl: StrictBool = False
    mailboxes: list[MailboxIn] = Field(default_factory=list, max_length=100)
    server: str | None = Field(default=None, max_length=64)
    server_group: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _domain_needed(self) -> "CreateOrderIn":
        if (self.ssl or self.mailboxes) and not self.domain:
            msg = "domain is required when ssl or mailboxes are requested"
            raise ValueError(msg)
        return self


class SuspendOrderIn(_OrderBase):
    action: Literal["suspend"]
    reason: SuspendReason = SuspendReason.OTHER


class UnsuspendOrderIn(_OrderBase):
    action: Literal["unsuspend"]


class TerminateOrderIn(_OrderBase):
    action: Literal["terminate"]
    force: StrictBool = Field(
        default=False,
        description="terminate a reseller even though it still has users",
    )


class ChangePackageOrderIn(_OrderBase):
    action: Literal["change_package"]
    package: str = Field(pattern=PACKAGE)


class ChangePasswordOrderIn(_OrderBase):
    action: Literal["change_password"]
    password: Password


OrderIn = Annotated[
    CreateOrderIn
    | SuspendOrderIn
    | UnsuspendOrderIn
    | TerminateOrderIn
    | ChangePackageOrderIn
    | ChangePasswordOrderIn,
    Field(discriminator="action"),
]


def to_spec(body: BaseModel) -> OrderSpec:
    """Map a validated body to the domain's OrderSpec."""
    data: Any = body
    common: dict[str, Any] = {
        "order_id": data.order_id,
        "service_id": data.service_id,
        "action": Action(data.action),
        "callback_url": data.callback_url,
        "paid_until": data.paid_until,
    }
    if isinstance(body, CreateOrderIn):
        return OrderSpec(
            **common,
            account=AccountSpec(
                username=body.account.username,
                email=body.account.email,
                password=body.account.password.get_secret_value(),
                package=body.account.package,
                role=body.account.role,
                limits=tuple(
                    (name, value)
                    for name, value in (
                        body.account.limits.model_dump() if body.account.limits else {}
                    ).items()
                    if value is not None
                ),
            ),
            domain=body.domain,
            ssl=body.ssl,
            mailboxes=tuple(
                MailboxSpec(m.local_part, m.password.get_secret_value(), m.quota_mb)
                for m in body.mailboxes
            ),
            server=body.server,
            server_group=body.server_group,
        )
    if isinstance(body, SuspendOrderIn):
        return OrderSpec(**common, reason=body.reason)
    if isinstance(body, ChangePackageOrderIn):
        return OrderSpec(**common, package=body.package)
    if isinstance(body, ChangePasswordOrderIn):
        return OrderSpec(**common, password=body.password.get_secret_value())
    if isinstance(body, TerminateOrderIn):
        return OrderSpec(**common, force=body.force)
    return OrderSpec(**common)


def canonical_body(body: BaseModel) -> dict[str, Any]:
    """The body with secrets in clear, for the duplicate check's digest only."""

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [reveal(v) for v in value]
        return value

    return dict(reveal(body.model_dump(mode="python")))


class StepOut(BaseModel):
    position: int
    kind: str
    status: str
    attempts: int
    last_error: str | None


class OrderOut(BaseModel):
    id: str
    order_id: str
    service_id: str
    action: str
    status: str
    wait_reason: str | None
    server: str | None
    requested_by: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    paid_until: str | None
    callback_status: str
    created_at: str | None
    updated_at: str | None
    finished_at: str | None
    steps: list[StepOut]


class OrderEnvelope(BaseModel):
    order: OrderOut


class OrderList(BaseModel):
    orders: list[OrderOut]


class ServiceOut(BaseModel):
    service_id: str
    status: str
    server: str | None
    username: str | None
    domain: str | None
    package: str | None
    paid_until: str | None
    suspension_reason: str | None


class ServiceEnvelope(BaseModel):
    service: ServiceOut
