"""Persistence model of the worker: its read model of users, the e-mails it owes, webhook
subscriptions and their deliveries, exports and reconciliation runs, the schedule of the commands
it sends itself, and the inbox and outbox of its messages.

E-mails and deliveries are written in the transaction that consumes their event (with its inbox
row), then sent by background loops: the rows are the durable to-do list that survives restarts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chassis.audit import AuditTrail
from chassis.db import schema_metadata
from chassis.messaging.consumer import Inbox
from chassis.messaging.outbox import Outbox

SCHEMA = "worker"
URL_MAX_LENGTH = 2000
ERROR_MAX_LENGTH = 500


class NotificationStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class User(Base):
    """Who a user id's e-mails go to (from `user.registered`; order events carry only ids)."""

    __tablename__ = "users"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Notification(Base):
    """One e-mail owed for one event (`event_id` unique: one mail per event, ever)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_known"),
        # The sender's scan: only mails still to send are indexed.
        Index("ix_notifications_due", "next_attempt_at", postgresql_where="status = 'pending'"),
        # The retention purge's scan: settled mails by age.
        Index("ix_notifications_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        Index("ix_webhook_subscriptions_owner_id", "owner_id"),
        # The owner's list, newest first, in cursor pages.
        Index("ix_webhook_subscriptions_owner_created", "owner_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The subscriber's token subject: it receives the events about this user id.
    owner_id: Mapped[str] = mapped_column(Text)
    # An admin's subscription receives every user's events.
    all_users: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str] = mapped_column(String(URL_MAX_LENGTH))
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # Kept in clear: deliveries are signed with it (HMAC needs the key itself, not a hash).
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Paused: its deliveries are still recorded, but held (not sent) until it is resumed.
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The secret a rotation replaced: it signs beside `secret` until it expires.
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One event owed to one subscription; the body is the exact signed bytes, kept as text."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        # The dispatcher's scans (due subscriptions, then one subscription's due deliveries).
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            "subscription_id",
            postgresql_where="status = 'pending'",
        ),
        Index(
            "ix_webhook_deliveries_subscription_due",
            "subscription_id",
            "next_attempt_at",
            postgresql_where="status = 'pending'",
        ),
        Index("ix_webhook_deliveries_subscription_created", "subscription_id", "created_at"),
        # The retention purge's scan: settled deliveries by age.
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ExportStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class Export(Base):
    """An export of orders asked for through the API, written by the `export.generate.v1`
    command to object storage (`object_key`); `user_id` None: an admin's export of all orders."""

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint("format IN ('csv', 'jsonl')", name="format_known"),
        CheckConstraint("status IN ('pending', 'ready', 'failed')", name="status_known"),
        Index("ix_exports_requested_by_created_at", "requested_by", "created_at"),
        # The deadline sweep's scan: exports still pending, by age.
        Index("ix_exports_pending", "created_at", postgresql_where="status = 'pending'"),
        # The retention purge's scan: exports by age (migration 0007).
        Index("ix_exports_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requested_by: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID | None]
    format: Mapped[str] = mapped_column(String(8))
    created_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    reason: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))
    object_key: Mapped[str | None] = mapped_column(Text)
    order_count: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReconciliationStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


class Reconciliation(Base):
    """One run of the reconciliation (`reconciliation.run.v1`): what it compared, how much
    drift it found (by kind), and where its report is (`report_key`)."""

    __tablename__ = "reconciliations"
    __table_args__ = (
        CheckConstraint("trigger IN ('schedule', 'admin')", name="trigger_known"),
        CheckConstraint("status IN ('pending', 'completed', 'failed')", name="status_known"),
        Index("ix_reconciliations_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    reason: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))
    orders_checked: Mapped[int | None] = mapped_column(Integer)
    reservations_checked: Mapped[int | None] = mapped_column(Integer)
    mismatches: Mapped[int | None] = mapped_column(Integer)
    mismatches_by_kind: Mapped[dict[str, int] | None] = mapped_column(JSONB)
    report_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Schedule(Base):
    """A command sent every period by one replica: whichever moves `next_run_at` on first (in
    the transaction that stages the command) holds that period."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sent_by: Mapped[str | None] = mapped_column(String(200))


inbox = Inbox(Base.metadata, retention_index=True)
# The commands the worker sends itself (exports, reconciliations), published by its relay.
outbox = Outbox(Base.metadata, source="/fleet/worker", retention_index=True, pending_index=True)
# Webhook subscription changes by their owners, each in its change's transaction (the table:
# migration 0005).
audit = AuditTrail(Base.metadata, service="worker")
