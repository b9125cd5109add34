"""Prices of the products in an order, read synchronously from catalog.

The customer is charged what catalog says at the moment the order is placed, so each item's
price is fetched (concurrently) from catalog's internal `GET /internal/v1/products/{id}` (with
orders' service token, `chassis.service_tokens`) and stored on the item. The whole
lookup is bounded by one deadline: a slow or unreachable catalog means a quick 503 with
`Retry-After`, never a hung request and never a 500.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field

from chassis.logging import get_logger
from orders.exceptions import CatalogUnavailableError, MixedCurrenciesError, UnknownProductsError

log = get_logger(__name__)


class _CatalogProduct(BaseModel):
    """The fields of catalog's product this service relies on; others are ignored."""

    model_config = ConfigDict(extra="ignore")

    price_cents: int = Field(strict=True, ge=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Price:
    cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class PricedItems:
    """Unit prices of every product of an order, all in one currency."""

    unit_cents: dict[uuid.UUID, int]
    currency: str


class _UnavailableError(Exception):
    pass


class PriceList:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float, retry_after: int) -> None:
        self._client = client
        self._timeout = timeout
        self._retry_after = retry_after

    async def price(self, product_ids: Sequence[uuid.UUID]) -> PricedItems:
        """Prices of all products; raises UnknownProductsError, MixedCurrenciesError or
        CatalogUnavailableError."""
        try:
            async with asyncio.timeout(self._timeout):
                results = await asyncio.gather(
                    *(self._fetch(p) for p in product_ids), return_exceptions=True
                )
        except TimeoutError:
            log.warning("catalog_timeout", timeout_seconds=self._timeout)
            raise self._unavailable("Catalog did not answer in time.") from None
        unknown = [str(p) for p, r in zip(product_ids, results, strict=True) if r is None]
        if unknown:
            raise UnknownProductsError(
                f"No product has the id {', '.join(unknown)}.", product_ids=unknown
            )
        prices: dict[uuid.UUID, Price] = {}
        for product_id, result in zip(product_ids, results, strict=True):
            if isinstance(result, _UnavailableError):
                raise self._unavailable("Catalog could not be reached.") from result
            if isinstance(result, BaseException):
                raise result
            assert result is not None
            prices[product_id] = result
        currencies = sorted({p.currency for p in prices.values()})
        if len(currencies) > 1:
            raise MixedCurrenciesError(
                f"Items are priced in {', '.join(currencies)}; place one order per currency."
            )
        return PricedItems(
            unit_cents={p: price.cents for p, price in prices.items()}, currency=currencies[0]
        )

    async def _fetch(self, product_id: uuid.UUID) -> Price | None:
        """The product's price; None when catalog does not know it."""
        try:
            response = await self._client.get(f"/internal/v1/products/{product_id}")
        except httpx.HTTPError as exc:
            log.warning("catalog_unreachable", error=type(exc).__name__)
            raise _UnavailableError from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            log.warning("catalog_error", status=response.status_code)
            raise _UnavailableError
        try:
            product = _CatalogProduct.model_validate_json(response.content)
        except ValueError as exc:
            log.warning("catalog_bad_product", product_id=str(product_id))
            raise _UnavailableError from exc
        return Price(cents=product.price_cents, currency=product.currency)

    def _unavailable(self, detail: str) -> CatalogUnavailableError:
        return CatalogUnavailableError(detail, retry_after=self._retry_after)
