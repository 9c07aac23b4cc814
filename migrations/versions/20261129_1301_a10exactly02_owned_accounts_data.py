"""owned accounts (data): services the bridge provisioned own their account

Revision ID: a10exactly02
Revises: a10exactly01
Create Date: 2026-11-29 13:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a10exactly02"
down_revision: str | None = "a10exactly01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Active and suspended services were provisioned by the bridge's creates.
    op.execute(
        sa.text(
            "UPDATE services SET owns_account = true "
            "WHERE status IN ('active', 'suspended')"
        )
    )


def downgrade() -> None:
    # The flag is dropped with its column by the previous revision's downgrade.
    op.execute(sa.text("UPDATE services SET owns_account = false"))
