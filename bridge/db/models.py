"""ORM tables of design.md §3 (servers, services, orders, steps, intake, audit),
plus the billing extras of issue 13 (usage figures, cached panel packages).

Indexes serve the dispatcher (due, unleased orders by priority), per-service ordering
and the sweeps (overdue services, long suspensions).
"""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bridge.db.base import (
    Base,
    BigIntPk,
    CreatedAt,
    JsonType,
    UpdatedAt,
    UtcDateTime,
    str_enum,
)
from bridge.domain.model import (
    AccountRole,
    Action,
    AuthMode,
    CallbackStatus,
    RequestedBy,
    ServerState,
    StepKind,
    SuspendReason,
)
from bridge.domain.roles import Role
from bridge.domain.states import OrderStatus, ServiceStatus, StepStatus, WaitReason

_ACTIVE_ORDER_STATUSES = "status IN ('queued', 'running', 'waiting')"
# Services that hold their panel username on their server: the live ones, and a
# failed one that owns its account (a create that failed after the user step).
HOLDS_USERNAME = (
    "status IN ('pending', 'active', 'suspended')"
    " OR (status = 'failed' AND owns_account)"
)


class Server(Base):
    """One WisPanel panel credential the bridge provisions on."""

    __tablename__ = "servers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_url: Mapped[str] = mapped_column(String(512))
    auth_mode: Mapped[AuthMode] = mapped_column(str_enum(AuthMode, 16))
    # Fernet token of JSON: {"api_key"} or {"username", "password", "totp_secret"}.
    credentials: Mapped[str] = mapped_column(Text)
    force_login: Mapped[bool] = mapped_column(Boolean, default=False)
    rate_limit_per_min: Mapped[int] = mapped_column(Integer, default=60)
    tls_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    ca_bundle: Mapped[str | None] = mapped_column(String(1024))
    tls_fingerprint: Mapped[str | None] = mapped_column(String(128))
    group_name: Mapped[str] = mapped_column(String(64), default="default", index=True)
    capacity: Mapped[int | None] = mapped_column(Integer)
    # The panel's license max_users as last read (servers test); -1 = unlimited.
    license_max_users: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[ServerState] = mapped_column(
        str_enum(ServerState, 16), default=ServerState.ACTIVE
    )
    # Operation -> {"method", "path"} overrides of the default route table.
    route_overrides: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    circuit_open_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    auth_error: Mapped[str | None] = mapped_column(Text)
    # Panel webhooks (issue 13): opted in per server; the subscription's id and
    # its secret (Fernet token; the panel shows the secret only at create).
    webhooks_enabled: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    webhook_id: Mapped[str | None] = mapped_column(String(128))
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class Service(Base):
    """One hosting account as billing knows it (billing's service_id is the key)."""

    __tablename__ = "services"
    __table_args__ = (
        # Suspension sweep: active services past paid_until.
        Index("ix_services_status_paid_until", "status", "paid_until"),
        # Termination sweep: services suspended for non-payment, oldest first.
        Index(
            "ix_services_status_reason_suspended_at",
            "status",
            "suspension_reason",
            "suspended_at",
        ),
        # One holder per panel username and server: a second service can never
        # adopt (and then take over) the first one's account. Terminated services
        # free the name, and failed ones that own no account on the panel.
        Index(
            "uq_services_live_server_username",
            "server_id",
            "username",
            unique=True,
            postgresql_where=text(HOLDS_USERNAME),
            sqlite_where=text(HOLDS_USERNAME),
        ),
    )

    service_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    server_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("servers.id", ondelete="RESTRICT"), index=True
    )
    username: Mapped[str | None] = mapped_column(String(64))
    domain: Mapped[str | None] = mapped_column(String(253))
    package: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[ServiceStatus] = mapped_column(
        str_enum(ServiceStatus, 16), default=ServiceStatus.PENDING
    )
    suspension_reason: Mapped[SuspendReason | None] = mapped_column(
        str_enum(SuspendReason, 16)
    )
    suspended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    paid_until: Mapped[date | None] = mapped_column(Date)
    # True once the bridge created (or adopted as provably its own) the panel
    # account; lifecycle orders act only on such services.
    owns_account: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # A hosting user or a reseller: decides the endpoints of its terminate.
    account_role: Mapped[AccountRole] = mapped_column(
        str_enum(AccountRole, 16),
        default=AccountRole.USER,
        server_default=AccountRole.USER.value,
    )
    # Bumped under a row lock at intake: orders of one service run in posting order.
    order_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    server: Mapped[Server | None] = relationship()


class Order(Base):
    """One request from billing (or a sweep, or ops) and its execution state."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("service_id", "service_seq"),
        # Dispatcher: due orders of live statuses, highest priority first.
        Index(
            "ix_orders_due",
            "next_attempt_at",
            postgresql_where=text(_ACTIVE_ORDER_STATUSES),
            sqlite_where=text(_ACTIVE_ORDER_STATUSES),
        ),
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index(
            "ix_orders_callback_due",
            "callback_next_at",
            postgresql_where=text("callback_status = 'pending'"),
            sqlite_where=text("callback_status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    order_id: Mapped[str] = mapped_column(String(255), unique=True)
    service_id: Mapped[str] = mapped_column(
        ForeignKey("services.service_id", ondelete="RESTRICT")
    )
    service_seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[Action] = mapped_column(str_enum(Action, 32))
    # Non-secret request fields as billing sent them (secrets live on the steps).
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    status: Mapped[OrderStatus] = mapped_column(
        str_enum(OrderStatus, 32), default=OrderStatus.QUEUED
    )
    wait_reason: Mapped[WaitReason | None] = mapped_column(str_enum(WaitReason, 32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[RequestedBy] = mapped_column(
        str_enum(RequestedBy, 16), default=RequestedBy.BILLING
    )
    server_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("servers.id", ondelete="RESTRICT"), index=True
    )
    server_group: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Last time a run message was sent; the dispatcher skips recently enqueued
    # orders so a backlog does not fill the broker with duplicates every tick.
    enqueued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_status: Mapped[CallbackStatus] = mapped_column(
        str_enum(CallbackStatus, 16), default=CallbackStatus.NONE
    )
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_next_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    callback_last_error: Mapped[str | None] = mapped_column(Text)
    # X-Bridge-Delivery: new when a callback is scheduled, constant across its
    # retries, so billing can ignore a delivery it has already applied.
    callback_delivery_id: Mapped[uuid.UUID | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    steps: Mapped[list["Step"]] = relationship(
        back_populates="order", order_by="Step.position", cascade="all, delete-orphan"
    )
    service: Mapped[Service] = relationship()
    server: Mapped[Server | None] = relationship()


class Step(Base):
    """One planned panel call of an order, with its persisted Idempotency-Key."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("order_uuid", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    order_uuid: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[StepKind] = mapped_column(str_enum(StepKind, 32))
    params: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    request_body: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # Fernet token of the step's secret fields; NULL once the step has succeeded.
    secret_body: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[StepStatus] = mapped_column(
        str_enum(StepStatus, 16), default=StepStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set when the panel said "already exists" but the read that follows could not
    # run yet: the next try reads first instead of re-sending the create.
    needs_reconcile: Mapped[bool] = mapped_column(Boolean, default=False)
    first_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Set by an operator's retry: the give-up budget (max attempts/age) restarts
    # here, while first_sent_at keeps deciding when to reconcile before re-sending.
    retry_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    response: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    panel_status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    order: Mapped[Order] = relationship(back_populates="steps")


class IntakeRequest(Base):
    """Intake idempotency: one row per order_id / Idempotency-Key seen."""

    __tablename__ = "intake_requests"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    # HMAC-SHA256(BRIDGE_INTAKE_DIGEST_KEY, sha256(canonical body)), hex: keyed so
    # that a database reader cannot confirm a guessed password in the body.
    body_digest: Mapped[str] = mapped_column(String(64))
    order_uuid: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    # The first answer, replayed verbatim (with 200) for the same key and body.
    response: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AuditEntry(Base):
    """Who (billing, sweep, an operator) did what to which order or service."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    at: Mapped[CreatedAt]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    order_uuid: Mapped[uuid.UUID | None] = mapped_column(index=True)
    service_id: Mapped[str | None] = mapped_column(String(128), index=True)
    before_status: Mapped[str | None] = mapped_column(String(32))
    after_status: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class PanelEventDelivery(Base):
    """A panel webhook delivery already applied (replays are ignored until expiry)."""

    __tablename__ = "panel_event_deliveries"

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    delivery_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AdminToken(Base):
    """A named operator's admin API token (stored as a SHA-256 digest) and role."""

    __tablename__ = "admin_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 16))
    created_at: Mapped[CreatedAt]
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SweepRun(Base):
    """One suspension/termination sweep: what it found, did, or refused to do."""

    __tablename__ = "sweep_runs"
    __table_args__ = (Index("ix_sweep_runs_kind_started_at", "kind", "started_at"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[CreatedAt]
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    active_services: Mapped[int] = mapped_column(Integer, default=0)
    orders_created: Mapped[int] = mapped_column(Integer, default=0)
    # True when the blast-radius guard refused to act.
    tripped: Mapped[bool] = mapped_column(Boolean, default=False)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed_by: Mapped[str | None] = mapped_column(String(128))


class ServiceUsage(Base):
    """The latest disk and bandwidth figures of one service, as its panel reported.

    One row per service (overwritten by each collection); `collected_at` is the
    bridge's time, what billing's `since=` filters on.
    """

    __tablename__ = "service_usage"
    __table_args__ = (
        Index("ix_service_usage_server_id_collected_at", "server_id", "collected_at"),
        Index("ix_service_usage_collected_at", "collected_at"),
    )

    service_id: Mapped[str] = mapped_column(
        ForeignKey("services.service_id", ondelete="CASCADE"), primary_key=True
    )
    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE")
    )
    username: Mapped[str] = mapped_column(String(64))
    disk_used_mb: Mapped[int] = mapped_column(BigInteger)
    bandwidth_used_mb: Mapped[int] = mapped_column(BigInteger)
    # The panel's own timestamps, kept as it wrote them (its timezone offset).
    period_start: Mapped[str | None] = mapped_column(String(64))
    measured_at: Mapped[str | None] = mapped_column(String(64))
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class PanelPackage(Base):
    """One package (plan) of a server, as last listed by its panel (a cache)."""

    __tablename__ = "panel_packages"
    __table_args__ = (UniqueConstraint("server_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPk, primary_key=True, autoincrement=True)
    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(128))
    # The package's limits and flags as the panel listed them.
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
