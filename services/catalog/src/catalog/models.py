"""Persistence model of the catalog: products (stock is a column of the product), the stock
reserved for orders, and the outbox and inbox of the service's events."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chassis.audit import AuditTrail
from chassis.db import schema_metadata
from chassis.messaging.consumer import Inbox
from chassis.messaging.outbox import Outbox

SCHEMA = "catalog"

SKU_MAX_LENGTH = 64
NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 2000
PRICE_MAX_CENTS = 1_000_000_000
# Bounded well inside Postgres `integer`, so no request can overflow the column.
STOCK_MAX = 1_000_000_000
DEFAULT_CURRENCY = "EUR"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint("price_cents >= 0", name="price_non_negative"),
        CheckConstraint("sku ~ '^[A-Z0-9-]{1,64}$'", name="sku_format"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        # Keyset pagination walks (created_at, id).
        Index("ix_products_created_at_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    sku: Mapped[str] = mapped_column(String(SKU_MAX_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX_LENGTH), server_default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), server_default=DEFAULT_CURRENCY)
    stock: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    RELEASED = "released"


class Reservation(Base):
    """Stock held for one order line; released (never deleted) when the order is cancelled."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("status IN ('reserved', 'released')", name="status_known"),
        Index("ix_reservations_product_id", "product_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(Product.id), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default=ReservationStatus.RESERVED)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Published outbox rows and handled-event inbox rows are purged after their retention
# (`OUTBOX_RETENTION_DAYS`, `INBOX_RETENTION_DAYS`; the indexes for it: migration 0003).
outbox = Outbox(Base.metadata, source="/fleet/catalog", retention_index=True, pending_index=True)
inbox = Inbox(Base.metadata, retention_index=True)
# Admin product writes, each in its write's transaction (the table: migration 0005).
audit = AuditTrail(Base.metadata, service="catalog")
