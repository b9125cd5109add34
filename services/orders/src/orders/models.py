"""Persistence model of orders: orders, their items, idempotency keys, outbox and inbox."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from chassis.db import schema_metadata
from chassis.messaging.consumer import Inbox
from chassis.messaging.outbox import Outbox

SCHEMA = "orders"
IDEMPOTENCY_KEY_MAX_LENGTH = 200
REASON_MAX_LENGTH = 500


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# An order's life, every status change there is (`Order.can_become` reads it, the repository
# refuses any other):
#
#     pending --stock.reserved--> confirmed
#     pending --stock.rejected / timeout--> rejected
#     pending | confirmed --customer--> cancelled
#
# Rejected and cancelled are final.
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
    ),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.CANCELLED}),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class Order(Base):
    __tablename__ = "orders"
    # Timestamps are the database's (one clock for every replica), read back with RETURNING.
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'confirmed', 'rejected', 'cancelled')", name="status_known"
        ),
        CheckConstraint("total_cents >= 0", name="total_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        # A customer's orders, newest first (keyset pagination).
        Index("ix_orders_user_id_created_at_id", "user_id", "created_at", "id"),
        # Every order by creation, in keyset pages (the worker's exports of a time range).
        Index("ix_orders_created_at_id", "created_at", "id"),
        # The timeout sweeper's scan: only pending orders are indexed.
        Index(
            "ix_orders_pending_created_at",
            "created_at",
            postgresql_where="status = 'pending'",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(16))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(REASON_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    items: Mapped[list[OrderItem]] = relationship(
        order_by="OrderItem.position", lazy="raise", cascade="all, delete-orphan"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_non_negative"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The line's place in the request, so an order reads back in the order it was placed.
    position: Mapped[int] = mapped_column(SmallInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    # The price the customer was shown when placing the order, whatever catalog charges later.
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(Base):
    """The first response to `(user, Idempotency-Key)`, replayed to every retry of it until the
    key expires (`IDEMPOTENCY_KEY_TTL_HOURS` after `created_at`)."""

    __tablename__ = "idempotency_keys"
    # The retention purge's scan: keys past their TTL, oldest first.
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH), primary_key=True)
    request_hash: Mapped[str] = mapped_column(Text)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    response_status: Mapped[int] = mapped_column(SmallInteger)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


outbox = Outbox(Base.metadata, source="/fleet/orders", retention_index=True, pending_index=True)
inbox = Inbox(Base.metadata, retention_index=True)
