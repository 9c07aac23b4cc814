"""admin token roles; intake body digest column renamed for its keyed form

Revision ID: b11security01
Revises: a10exactly02
Create Date: 2026-11-29 13:10:00.000000

Schema only (STYLE 2.5: data migrations are separate revisions). Existing admin
tokens keep the full power they had: they become `admin`. New rows always name
their role, so the column keeps no server default (least privilege is the CLI's
default, not the database's). `body_sha256` becomes `body_digest`; the next
revision (b11security02) turns the stored values into their keyed form.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b11security01"
down_revision: str | None = "a10exactly02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("admin_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "role", sa.String(length=16), nullable=False, server_default="admin"
            )
        )
    with op.batch_alter_table("admin_tokens", schema=None) as batch_op:
        batch_op.alter_column("role", server_default=None)
    with op.batch_alter_table("intake_requests", schema=None) as batch_op:
        batch_op.alter_column("body_sha256", new_column_name="body_digest")


def downgrade() -> None:
    with op.batch_alter_table("intake_requests", schema=None) as batch_op:
        batch_op.alter_column("body_digest", new_column_name="body_sha256")
    with op.batch_alter_table("admin_tokens", schema=None) as batch_op:
        batch_op.drop_column("role")
