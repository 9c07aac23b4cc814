"""service usage and cached panel packages (issue 13)

Revision ID: c13billing01
Revises: d14frontdoor01
Create Date: 2026-11-29 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c13billing01"
down_revision: str | None = "d14frontdoor01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_usage",
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("disk_used_mb", sa.BigInteger(), nullable=False),
        sa.Column("bandwidth_used_mb", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.String(length=64), nullable=True),
        sa.Column("measured_at", sa.String(length=64), nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_service_usage_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.service_id"],
            name=op.f("fk_service_usage_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_service_usage")),
    )
    with op.batch_alter_table("service_usage", schema=None) as batch_op:
        batch_op.create_index(
            "ix_service_usage_collected_at", ["collected_at"], unique=False
        )
        batch_op.create_index(
            "ix_service_usage_server_id_collected_at",
            ["server_id", "collected_at"],
            unique=False,
        )
    op.create_table(
        "panel_packages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_panel_packages_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_panel_packages")),
        sa.UniqueConstraint(
            "server_id", "name", name=op.f("uq_panel_packages_server_id_name")
        ),
    )


def downgrade() -> None:
    op.drop_table("panel_packages")
    with op.batch_alter_table("service_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_service_usage_server_id_collected_at")
        batch_op.drop_index("ix_service_usage_collected_at")
    op.drop_table("service_usage")
