"""Indexes the retention purges find expired rows with: idempotency keys by age, published
outbox rows by publication time, inbox rows by handling time.

Built CONCURRENTLY (outside a transaction), so placing orders and consuming events go on while
the existing rows are indexed. A build that fails half-way leaves an INVALID index: drop it, then
migrate again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from chassis.messaging.tables import (
    create_inbox_retention_index,
    create_outbox_retention_index,
    drop_inbox_retention_index,
    drop_outbox_retention_index,
)

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "orders"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_idempotency_keys_created_at",
            "idempotency_keys",
            ["created_at"],
            schema=SCHEMA,
            postgresql_concurrently=True,
        )
        create_outbox_retention_index(op, SCHEMA)
        create_inbox_retention_index(op, SCHEMA)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        drop_inbox_retention_index(op, SCHEMA)
        drop_outbox_retention_index(op, SCHEMA)
        op.drop_index(
            "ix_idempotency_keys_created_at",
            table_name="idempotency_keys",
            schema=SCHEMA,
            postgresql_concurrently=True,
        )
