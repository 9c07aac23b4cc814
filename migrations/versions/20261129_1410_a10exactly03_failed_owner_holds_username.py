"""a failed service that owns its panel account holds its username

A create that failed after its user step succeeded leaves the account on the
panel, owned by the failed service (its terminate deletes it). Freeing the name
let a second service adopt that account, which the first one's terminate then
deleted: such a service now holds the name until it is terminated.

Revision ID: a10exactly03
Revises: e13import01
Create Date: 2026-11-29 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a10exactly03"
down_revision: str | None = "e13import01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "status IN ('pending', 'active', 'suspended')"
_HOLDS = (
    "status IN ('pending', 'active', 'suspended')"
    " OR (status = 'failed' AND owns_account)"
)


def upgrade() -> None:
    # Older releases let a second service take the name of a failed service that
    # owns the account (and adopt it): settle such pairs by hand first, e.g. by
    # terminating the service whose account it is not.
    twins = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT server_id, username, COUNT(*) FROM services"
                " WHERE (status IN ('pending', 'active', 'suspended')"
                " OR (status = 'failed' AND owns_account))"
                " AND username IS NOT NULL AND server_id IS NOT NULL"
                " GROUP BY server_id, username HAVING COUNT(*) > 1"
            )
        )
        .all()
    )
    if twins:
        listed = ", ".join(f"{row[1]} on server {row[0]}" for row in twins)
        msg = (
            "a live service shares its panel username with a failed service that "
            f"owns the account: {listed}"
        )
        raise RuntimeError(msg)
    _recreate_index(_HOLDS)


def downgrade() -> None:
    _recreate_index(_LIVE)


def _recreate_index(where: str) -> None:
    """The username index again, over the services `where` selects."""
    op.drop_index("uq_services_live_server_username", table_name="services")
    op.create_index(
        "uq_services_live_server_username",
        "services",
        ["server_id", "username"],
        unique=True,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )
