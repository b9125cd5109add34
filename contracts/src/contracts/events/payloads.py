"""Versioned payloads of every event in the services table of the architecture.

A payload class is frozen once its schema is committed (`contracts/schemas/<type>.json`): it may
gain optional fields and looser types, nothing else. Anything else is a new class with the next
version (`OrderPlacedV2`, `order.placed.v2`) published alongside the old one until no consumer
reads the old type. `python -m contract_schemas check` enforces this.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from contracts.events.envelope import EventPayload


class LineItem(BaseModel):
    """A quantity of one product."""

    model_config = ConfigDict(extra="ignore", frozen=True, use_attribute_docstrings=True)

    product_id: UUID
    quantity: int = Field(ge=1)


class RejectionReason(StrEnum):
    """Why an order was rejected, for machines (metrics, the worker's e-mails); `reason` is the
    producer's wording for people and may change."""

    OUT_OF_STOCK = "out_of_stock"
    """A product had less stock than the order asked for."""
    UNKNOWN_PRODUCT = "unknown_product"
    """A product of the order does not exist (any more)."""
    TIMED_OUT = "timed_out"
    """Catalog's answer did not come within the confirmation timeout."""


class CancellationReason(StrEnum):
    """Why an order was cancelled, for machines; `reason` is the wording for people."""

    BY_CUSTOMER = "by_customer"
    """The customer cancelled the order."""
    COMPENSATION = "compensation"
    """Stock was reserved for an order already rejected or cancelled: the cancel only gives it
    back (the customer was told about the order's end already)."""


def _known_or_absent(codes: type[StrEnum]) -> BeforeValidator:
    """A code this reader does not know (a newer producer's: adding a value is compatible) is
    read as absent, so the reader falls back to `reason` instead of refusing the event."""
    known = {code.value for code in codes}
    return BeforeValidator(lambda value: value if value is None or value in known else None)


RejectionCode = Annotated[RejectionReason | None, _known_or_absent(RejectionReason)]
CancellationCode = Annotated[CancellationReason | None, _known_or_absent(CancellationReason)]


class PricedLineItem(LineItem):
    """A line item with the unit price the customer was charged."""

    unit_price_cents: int = Field(ge=0)


class OrderPlacedV1(EventPayload):
    """Orders accepted an order as `pending`; catalog answers by reserving its stock."""

    event_type: ClassVar[str] = "order.placed.v1"

    order_id: UUID
    user_id: UUID
    items: list[PricedLineItem] = Field(min_length=1)
    total_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    """ISO 4217 code of every amount in the order."""


class OrderConfirmedV1(EventPayload):
    """The order's stock is reserved: the order is `confirmed`."""

    event_type: ClassVar[str] = "order.confirmed.v1"

    order_id: UUID
    user_id: UUID
    total_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)


class OrderRejectedV1(EventPayload):
    """Catalog could not reserve the order's stock: the order is `rejected`."""

    event_type: ClassVar[str] = "order.rejected.v1"

    order_id: UUID
    user_id: UUID
    reason: str
    reason_code: RejectionCode = None
    """Why, for machines; absent in events of producers older than this field."""


class OrderCancelledV1(EventPayload):
    """The customer cancelled the order; catalog gives back what it had reserved."""

    event_type: ClassVar[str] = "order.cancelled.v1"

    order_id: UUID
    user_id: UUID
    reason: str
    items: list[LineItem] = Field(default_factory=list)
    """What catalog reserved for the order and must give back (empty if nothing was)."""
    reason_code: CancellationCode = None
    """Why, for machines; absent in events of producers older than this field."""


class StockReservedV1(EventPayload):
    """Catalog reserved every item of an order, atomically."""

    event_type: ClassVar[str] = "stock.reserved.v1"

    order_id: UUID
    items: list[LineItem] = Field(min_length=1)


class StockRejectedV1(EventPayload):
    """Catalog reserved nothing for an order: a product is unknown or short of stock."""

    event_type: ClassVar[str] = "stock.rejected.v1"

    order_id: UUID
    reason: str
    product_ids: list[UUID] = Field(default_factory=list)
    """Products that could not be reserved (unknown, or not enough stock)."""
    reason_code: RejectionCode = None
    """Why, for machines; absent in events of producers older than this field."""


class StockReleasedV1(EventPayload):
    """Catalog gave back the stock reserved for a cancelled order."""

    event_type: ClassVar[str] = "stock.released.v1"

    order_id: UUID
    items: list[LineItem] = Field(min_length=1)


class UserRegisteredV1(EventPayload):
    """A new user account exists."""

    event_type: ClassVar[str] = "user.registered.v1"

    user_id: UUID
    email: str


class ProductUpdatedV1(EventPayload):
    """A product was created or changed (price, name or stock): its state after the change."""

    event_type: ClassVar[str] = "product.updated.v1"

    product_id: UUID
    sku: str
    name: str
    price_cents: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    stock: int = Field(ge=0)


EVENT_TYPES: dict[str, type[EventPayload]] = {
    payload.event_type: payload
    for payload in (
        OrderPlacedV1,
        OrderConfirmedV1,
        OrderRejectedV1,
        OrderCancelledV1,
        StockReservedV1,
        StockRejectedV1,
        StockReleasedV1,
        UserRegisteredV1,
        ProductUpdatedV1,
    )
}
