"""owned accounts: services.owns_account and account_role, one live service per
server username

Revision ID: a10exactly01
Revises: 6458465b1f78
Create Date: 2026-11-29 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a10exactly01"
down_revision: str | None = "6458465b1f78"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "status IN ('pending', 'active', 'suspended')"


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(
            sa.Column(
                "owns_account", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch.add_column(
            sa.Column(
                "account_role",
                sa.Enum(
                    "user",
                    "reseller",
                    name="accountrole",
                    native_enum=False,
                    create_constraint=False,
                    length=16,
                ),
                server_default="user",
                nullable=False,
            )
        )
    # Older releases let a second service adopt the first one's account; such
    # pairs must be settled by hand (terminate or re-point one) before the index.
    twins = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT server_id, username, COUNT(*) FROM services"
                " WHERE status IN ('pending', 'active', 'suspended')"
                " AND username IS NOT NULL AND server_id IS NOT NULL"
                " GROUP BY server_id, username HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if twins:
        listed = ", ".join(f"{row[1]} on server {row[0]}" for row in twins)
        msg = f"several live services share a panel username: {listed}"
        raise RuntimeError(msg)
    op.create_index(
        "uq_services_live_server_username",
        "services",
        ["server_id", "username"],
        unique=True,
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_services_live_server_username", table_name="services")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("account_role")
        batch.drop_column("owns_account")
