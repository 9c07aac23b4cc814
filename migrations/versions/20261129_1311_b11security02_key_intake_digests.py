"""data: stored intake digests become HMAC(BRIDGE_INTAKE_DIGEST_KEY, old digest)

Revision ID: b11security02
Revises: b11security01
Create Date: 2026-11-29 13:11:00.000000

The bridge now compares HMAC(key, sha256(canonical body)), so an existing row's
plain SHA-256 maps onto the new form without the body: HMAC(key, old digest).
Duplicate detection of orders accepted before the upgrade keeps working, and no
unkeyed digest of a body holding passwords is left behind.

The key is not in the database, so this step loads the settings the bridge
itself would use (BRIDGE_INTAKE_DIGEST_KEY; in development the generated secrets
file under BRIDGE_VAR_DIR; production refuses to run without it), unless a caller
passes `config.attributes["intake_digest_key"]`. It is only needed when there are
rows: an empty table migrates anywhere.

Downgrade leaves the rows keyed: a keyed digest cannot be turned back. After a
downgrade, a duplicate of an order accepted before it answers 409 instead of
replaying, until the row expires (BRIDGE_INTAKE_IDEMPOTENCY_TTL_SECONDS).
"""

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "b11security02"
down_revision: str | None = "b11security01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_table = sa.table(
    "intake_requests", sa.column("key", sa.String), sa.column("body_digest", sa.String)
)


def _digest_key() -> bytes:
    given = context.config.attributes.get("intake_digest_key")
    if isinstance(given, str):
        return given.encode()
    from bridge.settings import load_settings

    settings, _ = load_settings()
    assert settings.intake_digest_key is not None  # noqa: S101 - load_settings sets it
    return settings.intake_digest_key.get_secret_value().encode()


def upgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(_table)).scalar() == 0:
        return
    key = _digest_key()
    last = ""
    while True:
        rows = bind.execute(
            sa.select(_table.c.key, _table.c.body_digest)
            .where(_table.c.key > last)
            .order_by(_table.c.key)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row_key, old in rows:
            keyed = hmac.new(key, old.encode(), hashlib.sha256).hexdigest()
            bind.execute(
                sa.update(_table)
                .where(_table.c.key == row_key)
                .values(body_digest=keyed)
            )
        last = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: see the module docstring (keyed digests stay keyed)."""
