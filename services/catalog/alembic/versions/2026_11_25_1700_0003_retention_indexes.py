"""Indexes the retention purges find expired rows with: published outbox rows by publication
time, inbox rows by handling time.

Built CONCURRENTLY (outside a transaction), so product writes and stock reservations go on while
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

SCHEMA = "catalog"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        create_outbox_retention_index(op, SCHEMA)
        create_inbox_retention_index(op, SCHEMA)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        drop_inbox_retention_index(op, SCHEMA)
        drop_outbox_retention_index(op, SCHEMA)
