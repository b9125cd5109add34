"""The worker sends commands (an outbox, like every service that sends), and keeps the state of
the jobs they run: exports of orders, reconciliation runs, and the schedule that sends the
reconciliation command (one replica per period).

Expand only: new tables the running release does not know. Their indexes are built on empty
tables, CONCURRENTLY all the same (the discipline every index of this project follows).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from chassis.messaging.tables import (
    create_outbox,
    create_outbox_pending_index,
    create_outbox_retention_index,
    drop_outbox,
    drop_outbox_pending_index,
    drop_outbox_retention_index,
)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "worker"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    create_outbox(op, SCHEMA)
    op.create_table(
        "exports",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=True),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("created_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("object_key", sa.Text, nullable=True),
        sa.Column("order_count", sa.Integer, nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("format IN ('csv', 'jsonl')", name="format_known"),
        sa.CheckConstraint("status IN ('pending', 'ready', 'failed')", name="status_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "reconciliations",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("requested_by", UUID(as_uuid=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("orders_checked", sa.Integer, nullable=True),
        sa.Column("reservations_checked", sa.Integer, nullable=True),
        sa.Column("mismatches", sa.Integer, nullable=True),
        sa.Column("mismatches_by_kind", JSONB, nullable=True),
        sa.Column("report_key", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("trigger IN ('schedule', 'admin')", name="trigger_known"),
        sa.CheckConstraint("status IN ('pending', 'completed', 'failed')", name="status_known"),
        schema=SCHEMA,
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_by", sa.String(200), nullable=True),
        schema=SCHEMA,
    )
    with op.get_context().autocommit_block():
        create_outbox_pending_index(op, SCHEMA)
        create_outbox_retention_index(op, SCHEMA)
        op.create_index(
            "ix_exports_requested_by_created_at",
            "exports",
            ["requested_by", "created_at"],
            schema=SCHEMA,
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_exports_pending",
            "exports",
            ["created_at"],
            schema=SCHEMA,
            postgresql_where=sa.text("status = 'pending'"),
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_reconciliations_created_at_id",
            "reconciliations",
            ["created_at", "id"],
            schema=SCHEMA,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for index, table in (
            ("ix_reconciliations_created_at_id", "reconciliations"),
            ("ix_exports_pending", "exports"),
            ("ix_exports_requested_by_created_at", "exports"),
        ):
            op.drop_index(index, table_name=table, schema=SCHEMA, postgresql_concurrently=True)
        drop_outbox_retention_index(op, SCHEMA)
        drop_outbox_pending_index(op, SCHEMA)
    op.drop_table("schedules", schema=SCHEMA)
    op.drop_table("reconciliations", schema=SCHEMA)
    op.drop_table("exports", schema=SCHEMA)
    drop_outbox(op, SCHEMA)
