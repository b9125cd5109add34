"""The index the retention purge finds expired outbox rows with: published rows by publication
time (unpublished ones stay out of it).

Built CONCURRENTLY (outside a transaction), so registrations go on while the existing rows are
indexed. A build that fails half-way leaves an INVALID index: drop it, then migrate again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from chassis.messaging.tables import create_outbox_retention_index, drop_outbox_retention_index

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "auth"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        create_outbox_retention_index(op, SCHEMA)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        drop_outbox_retention_index(op, SCHEMA)
