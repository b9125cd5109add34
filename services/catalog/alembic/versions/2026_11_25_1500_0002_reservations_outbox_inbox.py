"""Stock reservations of the order saga, plus the outbox and inbox of reliable messaging.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from chassis.messaging.tables import create_inbox, create_outbox, drop_inbox, drop_outbox

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "catalog"


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="reserved", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservations_quantity_positive")),
        sa.CheckConstraint(
            "status IN ('reserved', 'released')", name=op.f("ck_reservations_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_reservations_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("order_id", "product_id", name=op.f("pk_reservations")),
    )
    op.create_index("ix_reservations_product_id", "reservations", ["product_id"])
    create_outbox(op, SCHEMA)
    create_inbox(op, SCHEMA)


def downgrade() -> None:
    drop_inbox(op, SCHEMA)
    drop_outbox(op, SCHEMA)
    op.drop_index("ix_reservations_product_id", table_name="reservations")
    op.drop_table("reservations")
