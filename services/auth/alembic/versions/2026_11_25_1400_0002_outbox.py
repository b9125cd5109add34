"""Outbox of the auth schema: `user.registered` is written with the user, in one transaction.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from chassis.messaging.tables import create_outbox, drop_outbox

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox(op, "auth")


def downgrade() -> None:
    drop_outbox(op, "auth")
