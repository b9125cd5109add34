"""The HTTP shapes of orders: request bodies refuse unknown fields, responses are explicit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ITEMS = 50
MAX_QUANTITY = 1000

Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: uuid.UUID
    quantity: Quantity


class PlaceOrder(BaseModel):
    """`{items: [{product_id, quantity}]}`; each product appears once (a duplicate is refused
    rather than merged, so what the client sent is exactly what is stored and hashed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[LineIn] = Field(min_length=1, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _each_product_once(self) -> PlaceOrder:
        seen: set[uuid.UUID] = set()
        for line in self.items:
            if line.product_id in seen:
                msg = f"product {line.product_id} appears more than once; set its quantity instead"
                raise ValueError(msg)
            seen.add(line.product_id)
        return self


class OrderItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: uuid.UUID
    quantity: int
    unit_price_cents: int


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    items: list[OrderItemOut]
    total_cents: int
    currency: str
    created_at: datetime
    updated_at: datetime
    reason: str | None


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class InternalOrderOut(BaseModel):
    """An order as the worker reads it (exports, reconciliation): its customer too."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    total_cents: int
    currency: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    items: list[OrderItemOut]


class InternalOrderPage(BaseModel):
    items: list[InternalOrderOut]
    next_cursor: str | None
