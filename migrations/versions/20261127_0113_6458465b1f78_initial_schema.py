"""initial schema

Revision ID: 6458465b1f78
Revises:
Create Date: 2026-11-27 01:13:48.766530
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6458465b1f78"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_admin_tokens_name")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_admin_tokens_token_sha256")),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("order_uuid", sa.Uuid(), nullable=True),
        sa.Column("service_id", sa.String(length=128), nullable=True),
        sa.Column("before_status", sa.String(length=32), nullable=True),
        sa.Column("after_status", sa.String(length=32), nullable=True),
        sa.Column(
            "detail",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_log_order_uuid"), ["order_uuid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_log_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "servers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.String(length=512), nullable=False),
        sa.Column(
            "auth_mode",
            sa.Enum("api_key", "login", name="authmode", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("force_login", sa.Boolean(), nullable=False),
        sa.Column("rate_limit_per_min", sa.Integer(), nullable=False),
        sa.Column("tls_verify", sa.Boolean(), nullable=False),
        sa.Column("ca_bundle", sa.String(length=1024), nullable=True),
        sa.Column("tls_fingerprint", sa.String(length=128), nullable=True),
        sa.Column("group_name", sa.String(length=64), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("license_max_users", sa.Integer(), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "active",
                "draining",
                "disabled",
                name="serverstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "route_overrides",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("circuit_open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auth_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        sa.UniqueConstraint("name", name=op.f("uq_servers_name")),
    )
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_servers_group_name"), ["group_name"], unique=False
        )

    op.create_table(
        "sweep_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("active_services", sa.Integer(), nullable=False),
        sa.Column("orders_created", sa.Integer(), nullable=False),
        sa.Column("tripped", sa.Boolean(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("confirmed_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_runs")),
    )
    with op.batch_alter_table("sweep_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sweep_runs_kind_started_at", ["kind", "started_at"], unique=False
        )

    op.create_table(
        "services",
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("package", sa.String(length=128), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "active",
                "suspended",
                "failed",
                "terminated",
                name="servicestatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "suspension_reason",
            sa.Enum(
                "non_payment",
                "abuse",
                "other",
                name="suspendreason",
                native_enum=False,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_until", sa.Date(), nullable=True),
        sa.Column("order_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_services_server_id_servers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_services")),
    )
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_services_server_id"), ["server_id"], unique=False
        )
        batch_op.create_index(
            "ix_services_status_paid_until", ["status", "paid_until"], unique=False
        )
        batch_op.create_index(
            "ix_services_status_reason_suspended_at",
            ["status", "suspension_reason", "suspended_at"],
            unique=False,
        )

    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("service_seq", sa.Integer(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "create",
                "suspend",
                "unsuspend",
                "terminate",
                "change_package",
                "change_password",
                name="action",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "payload",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "waiting",
                "awaiting_capacity",
                "completed",
                "failed",
                "cancelled",
                name="orderstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "wait_reason",
            sa.Enum(
                "rate_limited",
                "retry_backoff",
                "panel_unavailable",
                "panel_busy",
                "ssl_pending",
                "service_busy",
                name="waitreason",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column(
            "requested_by",
            sa.Enum(
                "billing",
                "sweep",
                "ops",
                name="requestedby",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("server_id", sa.Uuid(), nullable=True),
        sa.Column("server_group", sa.String(length=64), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "callback_status",
            sa.Enum(
                "none",
                "pending",
                "delivered",
                "failed",
                name="callbackstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("callback_attempts", sa.Integer(), nullable=False),
        sa.Column("callback_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_last_error", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_orders_server_id_servers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.service_id"],
            name=op.f("fk_orders_service_id_services"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_orders_order_id")),
        sa.UniqueConstraint(
            "service_id", "service_seq", name=op.f("uq_orders_service_id_service_seq")
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_callback_due",
            ["callback_next_at"],
            unique=False,
            postgresql_where=sa.text("callback_status = 'pending'"),
            sqlite_where=sa.text("callback_status = 'pending'"),
        )
        batch_op.create_index(
            "ix_orders_due",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('queued', 'running', 'waiting')"),
            sqlite_where=sa.text("status IN ('queued', 'running', 'waiting')"),
        )
        batch_op.create_index(
            batch_op.f("ix_orders_server_id"), ["server_id"], unique=False
        )
        batch_op.create_index(
            "ix_orders_status_created_at", ["status", "created_at"], unique=False
        )

    op.create_table(
        "intake_requests",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("order_uuid", sa.Uuid(), nullable=False),
        sa.Column(
            "response",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_uuid"],
            ["orders.id"],
            name=op.f("fk_intake_requests_order_uuid_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_intake_requests")),
    )
    with op.batch_alter_table("intake_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intake_requests_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_intake_requests_order_uuid"), ["order_uuid"], unique=False
        )

    op.create_table(
        "steps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_uuid", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "create_user",
                "create_domain",
                "issue_ssl",
                "create_mailbox",
                "suspend_user",
                "unsuspend_user",
                "delete_user",
                "change_package",
                "change_password",
                name="stepkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "params",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column(
            "request_body",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("secret_body", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "in_flight",
                "succeeded",
                "failed",
                "skipped",
                name="stepstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("needs_reconcile", sa.Boolean(), nullable=False),
        sa.Column("first_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "response",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("panel_status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_uuid"],
            ["orders.id"],
            name=op.f("fk_steps_order_uuid_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_steps")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_steps_idempotency_key")),
        sa.UniqueConstraint(
            "order_uuid", "position", name=op.f("uq_steps_order_uuid_position")
        ),
    )


def downgrade() -> None:
    op.drop_table("steps")
    with op.batch_alter_table("intake_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_requests_order_uuid"))
        batch_op.drop_index(batch_op.f("ix_intake_requests_expires_at"))

    op.drop_table("intake_requests")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_created_at")
        batch_op.drop_index(batch_op.f("ix_orders_server_id"))
        batch_op.drop_index(
            "ix_orders_due",
            postgresql_where=sa.text("status IN ('queued', 'running', 'waiting')"),
            sqlite_where=sa.text("status IN ('queued', 'running', 'waiting')"),
        )
        batch_op.drop_index(
            "ix_orders_callback_due",
            postgresql_where=sa.text("callback_status = 'pending'"),
            sqlite_where=sa.text("callback_status = 'pending'"),
        )

    op.drop_table("orders")
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_index("ix_services_status_reason_suspended_at")
        batch_op.drop_index("ix_services_status_paid_until")
        batch_op.drop_index(batch_op.f("ix_services_server_id"))

    op.drop_table("services")
    with op.batch_alter_table("sweep_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_sweep_runs_kind_started_at")

    op.drop_table("sweep_runs")
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_servers_group_name"))

    op.drop_table("servers")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_service_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_order_uuid"))
        batch_op.drop_index("ix_audit_log_at")

    op.drop_table("audit_log")
    op.drop_table("admin_tokens")
