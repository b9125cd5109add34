"""Use cases of the catalog: read products through the cache, write them and invalidate it;
read every reservation in keyset pages for the worker (`list_reservations`).

Every write stages `product.updated` in the outbox in its own transaction, so the event is
published exactly when (and only if) the change committed, and is audited (`catalog.models.audit`:
the admin who made it, the product, the SKU or the names of the fields changed) in the same one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from catalog.cache import CacheRead, ProductCache
from catalog.exceptions import DuplicateSkuError, ProductNotFoundError
from catalog.models import audit, outbox
from catalog.repository import HeldStock, ProductRepository, ReservationKey, StockRepository
from catalog.schemas import (
    ProductCreate,
    ProductOut,
    ProductPage,
    ProductPatch,
    ReservationOut,
    ReservationPage,
)
from chassis.db import UnitOfWork
from chassis.pagination import cursor_key, encode_cursor, keyset_page
from contracts.events import ProductUpdatedV1

Model = TypeVar("Model", bound=BaseModel)


async def _through_cache(
    cache: ProductCache, read: CacheRead, model: type[Model], load: Callable[[], Awaitable[Model]]
) -> Model:
    if read.value is not None:
        try:
            return model.model_validate_json(read.value)
        except ValidationError:
            pass  # an entry from an older shape of the model: load it afresh
    fresh = await load()
    await cache.fill(read, fresh.model_dump_json().encode())
    return fresh


async def get_product(*, uow: UnitOfWork, cache: ProductCache, product_id: uuid.UUID) -> ProductOut:
    return ProductOut.model_validate_json(
        await product_document(uow=uow, cache=cache, product_id=product_id)
    )


async def product_document(*, uow: UnitOfWork, cache: ProductCache, product_id: uuid.UUID) -> bytes:
    """The product as its JSON document: a cache hit is served as stored (checked against the
    model, never re-serialised), a miss is loaded, filled and served."""
    read = await cache.read_product(product_id)
    if read.value is not None:
        try:
            ProductOut.model_validate_json(read.value)
        except ValidationError:
            pass  # an entry from an older shape of the model: load it afresh
        else:
            return read.value
    async with uow:
        row = await uow.repository(ProductRepository).get(product_id)
    if row is None:
        raise ProductNotFoundError(f"No product has the id {product_id}.")
    document = ProductOut.model_validate(row).model_dump_json().encode()
    await cache.fill(read, document)
    return document


async def list_products(
    *, uow: UnitOfWork, cache: ProductCache, limit: int, cursor: str | None
) -> ProductPage:
    """One page in (created_at, id) order; `limit` must already be capped by the caller."""
    after = cursor_key(cursor)
    canonical = encode_cursor(after) if after is not None else None

    async def load() -> ProductPage:
        async with uow:
            products = uow.repository(ProductRepository)
            page = await keyset_page(
                lambda n: products.list_after(after=after, limit=n), limit=limit
            )
            items = [ProductOut.model_validate(row) for row in page.rows]
        return ProductPage(items=items, next_cursor=page.next_cursor)

    read = await cache.read_page(limit=limit, cursor=canonical)
    return await _through_cache(cache, read, ProductPage, load)


async def list_reservations(*, uow: UnitOfWork, limit: int, after: str | None) -> ReservationPage:
    """One page of every reservation in (order_id, product_id) order, the order a merge join
    with orders sorted by id needs."""
    start = cursor_key(after, ReservationKey)

    def key(held: HeldStock) -> ReservationKey:
        return ReservationKey(held.order_id, held.product_id)

    async with uow:
        stock = uow.repository(StockRepository)
        page = await keyset_page(
            lambda n: stock.reservations_after(start, limit=n), limit=limit, key=key
        )
        items = [ReservationOut.model_validate(held) for held in page.rows]
    return ReservationPage(items=items, next_cursor=page.next_cursor)


async def create_product(
    *, uow: UnitOfWork, cache: ProductCache, product_in: ProductCreate
) -> ProductOut:
    async with uow:
        product = await uow.repository(ProductRepository).add(**product_in.model_dump())
        if product is None:
            raise DuplicateSkuError(f"The SKU {product_in.sku} is already used by another product.")
        created = ProductOut.model_validate(product)
        await _announce(uow, created)
        await audit.record(
            uow, action="catalog.product.create", target=created.id, details={"sku": created.sku}
        )
        await uow.commit()
    await cache.invalidate(created.id)
    return created


async def update_product(
    *, uow: UnitOfWork, cache: ProductCache, product_id: uuid.UUID, patch: ProductPatch
) -> ProductOut:
    changes = patch.changes()
    if not changes:
        return await get_product(uow=uow, cache=cache, product_id=product_id)
    async with uow:
        product = await uow.repository(ProductRepository).update(product_id, changes)
        if product is None:
            raise ProductNotFoundError(f"No product has the id {product_id}.")
        updated = ProductOut.model_validate(product)
        await _announce(uow, updated)
        await audit.record(
            uow,
            action="catalog.product.update",
            target=product_id,
            details={"fields": sorted(changes)},
        )
        await uow.commit()
    await cache.invalidate(product_id)
    return updated


async def _announce(uow: UnitOfWork, product: ProductOut) -> None:
    payload = ProductUpdatedV1(
        product_id=product.id,
        sku=product.sku,
        name=product.name,
        price_cents=product.price_cents,
        currency=product.currency,
        stock=product.stock,
    )
    await outbox.add(uow.session, payload, subject=str(product.id))
