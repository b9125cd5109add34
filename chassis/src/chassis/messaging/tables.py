"""The outbox and inbox tables, created in each service's own schema by its migrations."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

OUTBOX = "outbox"
INBOX = "inbox"


def _outbox_columns() -> list[Any]:
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        # The aggregate the event is about; events of one subject are published in order.
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("body", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    ]


def _inbox_columns() -> list[Any]:
    return [
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    ]


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    table = sa.Table(OUTBOX, metadata, *_outbox_columns())
    sa.Index(
        "ix_outbox_unpublished",
        table.c.subject,
        table.c.id,
        postgresql_where=table.c.published_at.is_(None),
    )
    return table


def inbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(INBOX, metadata, *_inbox_columns())


def create_outbox(op: Any, schema: str) -> None:
    """For a migration: `create_outbox(op, "orders")`."""
    op.create_table(OUTBOX, *_outbox_columns(), schema=schema)
    op.create_index(
        "ix_outbox_unpublished",
        OUTBOX,
        ["subject", "id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def create_inbox(op: Any, schema: str) -> None:
    op.create_table(INBOX, *_inbox_columns(), schema=schema)


def drop_outbox(op: Any, schema: str) -> None:
    op.drop_index("ix_outbox_unpublished", table_name=OUTBOX, schema=schema)
    op.drop_table(OUTBOX, schema=schema)


def drop_inbox(op: Any, schema: str) -> None:
    op.drop_table(INBOX, schema=schema)
