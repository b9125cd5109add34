"""The outbox and inbox tables, created in each service's own schema by its migrations.

The pending index lets the relay claim unpublished rows in order without stepping over published
ones; the retention indexes let the purges (`chassis.messaging.retention`) find expired rows
without a scan. They came after the tables: a service declares them (`pending_index=True`,
`retention_index=True`) once one of its migrations built them (`create_outbox_pending_index`,
`create_*_retention_index`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

OUTBOX = "outbox"
INBOX = "inbox"
OUTBOX_RETENTION_INDEX = "ix_outbox_published_at"
OUTBOX_PENDING_INDEX = "ix_outbox_pending"
INBOX_RETENTION_INDEX = "ix_inbox_processed_at"
# Only published rows are ever purged; unpublished ones stay out of the index.
_PUBLISHED = "published_at IS NOT NULL"


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


def outbox_table(
    metadata: sa.MetaData, *, retention_index: bool = False, pending_index: bool = False
) -> sa.Table:
    table = sa.Table(OUTBOX, metadata, *_outbox_columns())
    sa.Index(
        "ix_outbox_unpublished",
        table.c.subject,
        table.c.id,
        postgresql_where=table.c.published_at.is_(None),
    )
    if pending_index:
        sa.Index(OUTBOX_PENDING_INDEX, table.c.id, postgresql_where=table.c.published_at.is_(None))
    if retention_index:
        sa.Index(OUTBOX_RETENTION_INDEX, table.c.published_at, postgresql_where=sa.text(_PUBLISHED))
    return table


def inbox_table(metadata: sa.MetaData, *, retention_index: bool = False) -> sa.Table:
    table = sa.Table(INBOX, metadata, *_inbox_columns())
    if retention_index:
        sa.Index(INBOX_RETENTION_INDEX, table.c.processed_at)
    return table


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


# The retention indexes are built on tables that may already be large and busy: CONCURRENTLY, so
# writers are not blocked while they build. Call these inside
# `with op.get_context().autocommit_block():` (Postgres refuses them in a transaction). A build
# that fails half-way leaves an INVALID index behind: drop it before migrating again.


def create_outbox_retention_index(op: Any, schema: str) -> None:
    op.create_index(
        OUTBOX_RETENTION_INDEX,
        OUTBOX,
        ["published_at"],
        schema=schema,
        postgresql_where=sa.text(_PUBLISHED),
        postgresql_concurrently=True,
    )


def create_inbox_retention_index(op: Any, schema: str) -> None:
    op.create_index(
        INBOX_RETENTION_INDEX,
        INBOX,
        ["processed_at"],
        schema=schema,
        postgresql_concurrently=True,
    )


def create_outbox_pending_index(op: Any, schema: str) -> None:
    """The relay's claim walks the unpublished rows in id order through this index alone: in
    the primary key it would step over every published row still kept for retention."""
    op.create_index(
        OUTBOX_PENDING_INDEX,
        OUTBOX,
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
        postgresql_concurrently=True,
    )


def drop_outbox_pending_index(op: Any, schema: str) -> None:
    op.drop_index(
        OUTBOX_PENDING_INDEX, table_name=OUTBOX, schema=schema, postgresql_concurrently=True
    )


def drop_outbox_retention_index(op: Any, schema: str) -> None:
    op.drop_index(
        OUTBOX_RETENTION_INDEX, table_name=OUTBOX, schema=schema, postgresql_concurrently=True
    )


def drop_inbox_retention_index(op: Any, schema: str) -> None:
    op.drop_index(
        INBOX_RETENTION_INDEX, table_name=INBOX, schema=schema, postgresql_concurrently=True
    )
