"""panel webhooks: per-server subscription columns, applied-delivery table

Revision ID: e13import01
Revises: c13billing01
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e13import01"
down_revision: str | None = "c13billing01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(
            sa.Column(
                "webhooks_enabled",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
        batch.add_column(sa.Column("webhook_id", sa.String(length=128)))
        batch.add_column(sa.Column("webhook_secret", sa.Text()))
    op.create_table(
        "panel_event_deliveries",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_panel_event_deliveries_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "server_id", "delivery_id", name=op.f("pk_panel_event_deliveries")
        ),
    )
    op.create_index(
        op.f("ix_panel_event_deliveries_expires_at"),
        "panel_event_deliveries",
        ["expires_at"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_panel_event_deliveries_expires_at"),
        table_name="panel_event_deliveries",
    )
    op.drop_table("panel_event_deliveries")
    with op.batch_alter_table("servers") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_id")
        batch.drop_column("webhooks_enabled")
