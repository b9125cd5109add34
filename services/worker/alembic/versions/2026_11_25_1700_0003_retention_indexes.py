"""Indexes the retention purges find expired rows with: e-mails and webhook deliveries by age,
inbox rows by handling time.

Built CONCURRENTLY (outside a transaction), so consuming events and sending go on while the
existing rows are indexed. A build that fails half-way leaves an INVALID index: drop it, then
migrate again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from chassis.messaging.tables import create_inbox_retention_index, drop_inbox_retention_index

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "worker"
BY_AGE = {
    "ix_notifications_created_at": "notifications",
    "ix_webhook_deliveries_created_at": "webhook_deliveries",
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for index, table in BY_AGE.items():
            op.create_index(
                index, table, ["created_at"], schema=SCHEMA, postgresql_concurrently=True
            )
        create_inbox_retention_index(op, SCHEMA)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        drop_inbox_retention_index(op, SCHEMA)
        for index, table in BY_AGE.items():
            op.drop_index(index, table_name=table, schema=SCHEMA, postgresql_concurrently=True)
