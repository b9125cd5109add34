"""The index of the worker's read of every order by creation: `(created_at, id)`.

The worker exports the orders created in a time range in keyset pages sorted by `(created_at,
id)` (`orders.repository.page_statement`); without this index each page would sort the whole
table. A customer's orders have theirs (`ix_orders_user_id_created_at_id`), and the read by id
walks the primary key. Built CONCURRENTLY, so placing orders goes on while the existing rows are
indexed; a build that fails half-way leaves an INVALID index: drop it, then migrate again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "orders"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_orders_created_at_id",
            "orders",
            ["created_at", "id"],
            schema=SCHEMA,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_orders_created_at_id",
            table_name="orders",
            schema=SCHEMA,
            postgresql_concurrently=True,
        )
