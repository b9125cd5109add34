"""The HTTP shapes of products and reservations: request bodies refuse unknown fields, responses
are explicit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from catalog.models import (
    DEFAULT_CURRENCY,
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PRICE_MAX_CENTS,
    SKU_MAX_LENGTH,
    STOCK_MAX,
)

# Upper-cased after the pattern matched, so `abc-1` is stored as `ABC-1`.
Sku = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=SKU_MAX_LENGTH, pattern=r"^[A-Za-z0-9-]+$", to_upper=True
    ),
]
# No control characters: they have no place in a product name, and NUL cannot be stored.
Name = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        strip_whitespace=True,
        pattern=r"^[^\x00-\x1f\x7f]+$",
    ),
]
# Line breaks and tabs are fine in a description; other control characters are not.
Description = Annotated[
    str,
    StringConstraints(
        max_length=DESCRIPTION_MAX_LENGTH, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
    ),
]
PriceCents = Annotated[int, Field(strict=True, ge=0, le=PRICE_MAX_CENTS)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Stock = Annotated[int, Field(strict=True, ge=0, le=STOCK_MAX)]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: Name
    description: Description = ""
    price_cents: PriceCents
    currency: Currency = DEFAULT_CURRENCY
    stock: Stock = 0


class ProductPatch(BaseModel):
    """A partial update: only the fields present are changed; `null` is not a value."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    price_cents: PriceCents | None = None
    currency: Currency | None = None
    stock: Stock | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(str(key) for key, value in data.items() if value is None)
            if nulls:
                msg = f"fields cannot be null: {', '.join(nulls)}"
                raise ValueError(msg)
        return data

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    name: str
    description: str
    price_cents: int
    currency: str
    stock: int


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class ReservationOut(BaseModel):
    """Stock held for one order line (`reserved`), or given back (`released`)."""

    model_config = ConfigDict(from_attributes=True)

    order_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    status: str
    created_at: datetime
    released_at: datetime | None


class ReservationPage(BaseModel):
    items: list[ReservationOut]
    next_cursor: str | None
