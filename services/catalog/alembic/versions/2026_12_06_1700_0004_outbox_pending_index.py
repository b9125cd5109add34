"""The outbox relay's claim index: unpublished rows in id order, and nothing else.

Without it the claim walks the primary key, stepping over every published row kept for
retention (hundreds per second of them under load). Built CONCURRENTLY, so producers go on while
it builds; a build that fails half-way leaves an INVALID index: drop it, then migrate again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

from chassis.messaging.tables import create_outbox_pending_index, drop_outbox_pending_index

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "catalog"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        create_outbox_pending_index(op, SCHEMA)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        drop_outbox_pending_index(op, SCHEMA)
