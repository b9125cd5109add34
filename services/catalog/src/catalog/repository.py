"""Products in Postgres. Every write is one statement, so it is atomic without locking rows.

Stock reservations will add `reserve`/`release` here as conditional `UPDATE ... RETURNING`
statements (`WHERE stock >= :quantity`), the same shape as :meth:`ProductRepository.update`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Product
from catalog.pagination import PageKey

UPDATABLE_FIELDS = frozenset({"name", "description", "price_cents", "currency", "stock"})


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, product_id: uuid.UUID) -> Product | None:
        return await self._session.get(Product, product_id)

    async def list_after(self, *, after: PageKey | None, limit: int) -> Sequence[Product]:
        """Up to `limit` products in (created_at, id) order, strictly after `after`."""
        query = select(Product).order_by(Product.created_at, Product.id).limit(limit)
        if after is not None:
            query = query.where(
                tuple_(Product.created_at, Product.id) > tuple_(after.created_at, after.id)
            )
        return (await self._session.scalars(query)).all()

    async def add(
        self,
        *,
        sku: str,
        name: str,
        description: str,
        price_cents: int,
        currency: str,
        stock: int,
    ) -> Product | None:
        """The new product, or None when the SKU is taken."""
        statement = (
            insert(Product)
            .values(
                sku=sku,
                name=name,
                description=description,
                price_cents=price_cents,
                currency=currency,
                stock=stock,
            )
            .on_conflict_do_nothing(index_elements=[Product.sku])
            .returning(Product)
        )
        return (await self._session.scalars(statement)).one_or_none()

    async def add_many_if_absent(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert the rows whose SKU is not taken yet; how many were inserted."""
        if not rows:
            return 0
        statement = (
            insert(Product)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=[Product.sku])
            .returning(Product.id)
        )
        return len((await self._session.scalars(statement)).all())

    async def update(self, product_id: uuid.UUID, changes: Mapping[str, Any]) -> Product | None:
        """The updated product, or None when it does not exist."""
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            msg = f"not updatable: {sorted(unknown)}"
            raise ValueError(msg)
        statement = (
            update(Product)
            .where(Product.id == product_id)
            .values(**changes, updated_at=func.now())
            .returning(Product)
        )
        return (await self._session.scalars(statement)).one_or_none()
