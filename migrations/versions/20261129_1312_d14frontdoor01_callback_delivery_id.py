"""orders.callback_delivery_id: the X-Bridge-Delivery id of a callback

Revision ID: d14frontdoor01
Revises: b11security02
Create Date: 2026-11-29 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d14frontdoor01"
down_revision: str | None = "b11security02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("callback_delivery_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("callback_delivery_id")
