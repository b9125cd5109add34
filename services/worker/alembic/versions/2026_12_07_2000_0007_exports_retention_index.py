"""The index the retention purge finds finished exports by age with.

Built CONCURRENTLY (outside a transaction), so exports go on being asked for while it builds. A
build that fails half-way leaves an INVALID index: drop it, then migrate again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "worker"
INDEX = "ix_exports_created_at"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            INDEX, "exports", ["created_at"], schema=SCHEMA, postgresql_concurrently=True
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="exports", schema=SCHEMA, postgresql_concurrently=True)
