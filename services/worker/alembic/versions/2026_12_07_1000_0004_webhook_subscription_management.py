"""Webhook subscriptions managed by their owners: paused ones (deliveries held), a previous
secret that signs beside the current one until it expires (rotation), and the index their
owner's cursor pages walk.

Expand only: nullable columns (the running release neither reads nor writes them) and an index
built CONCURRENTLY (outside a transaction). A build that fails half-way leaves an INVALID index:
drop it, then migrate again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "worker"
TABLE = "webhook_subscriptions"
OWNER_PAGES = "ix_webhook_subscriptions_owner_created"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("paused_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column(TABLE, sa.Column("previous_secret", sa.Text()), schema=SCHEMA)
    op.add_column(
        TABLE, sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True)), schema=SCHEMA
    )
    with op.get_context().autocommit_block():
        op.create_index(
            OWNER_PAGES,
            TABLE,
            ["owner_id", "created_at", "id"],
            schema=SCHEMA,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(OWNER_PAGES, table_name=TABLE, schema=SCHEMA, postgresql_concurrently=True)
    for column in ("previous_secret_expires_at", "previous_secret", "paused_at"):
        op.drop_column(TABLE, column, schema=SCHEMA)
