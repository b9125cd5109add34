"""Products and stock reservations in Postgres.

Product writes are one statement each, so they are atomic without locking rows. Reserving stock
for an order spans several rows, so :class:`StockRepository` locks them first, always in product
id order: two orders sharing products then queue up instead of deadlocking.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Product, Reservation, ReservationStatus
from chassis.pagination import PageKey

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


class StockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_stock(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """The stock of each existing product, its row locked until the transaction ends.

        Rows are locked in id order (Postgres locks them as the sorted rows come out), the one
        order every reservation and release takes, so concurrent orders cannot deadlock. The
        lock is `FOR NO KEY UPDATE`, the one an `UPDATE` of the stock takes anyway.
        """
        query = (
            select(Product.id, Product.stock)
            .where(Product.id.in_(product_ids))
            .order_by(Product.id)
            .with_for_update(key_share=True)
        )
        return {row.id: row.stock for row in await self._session.execute(query)}

    async def take(self, product_id: uuid.UUID, quantity: int) -> bool:
        """Decrement the stock unless that would make it negative; whether it was taken."""
        statement = (
            update(Product)
            .where(Product.id == product_id, Product.stock >= quantity)
            .values(stock=Product.stock - quantity, updated_at=func.now())
            .returning(Product.id)
        )
        return (await self._session.execute(statement)).first() is not None

    async def give_back(self, product_id: uuid.UUID, quantity: int) -> None:
        statement = (
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + quantity, updated_at=func.now())
        )
        await self._session.execute(statement)

    async def has_reservations(self, order_id: uuid.UUID) -> bool:
        query = select(Reservation.order_id).where(Reservation.order_id == order_id).limit(1)
        return (await self._session.execute(query)).first() is not None

    async def add_reservations(self, order_id: uuid.UUID, lines: Mapping[uuid.UUID, int]) -> None:
        rows = [
            {"order_id": order_id, "product_id": product_id, "quantity": quantity}
            for product_id, quantity in lines.items()
        ]
        await self._session.execute(insert(Reservation), rows)

    async def release_reservations(self, order_id: uuid.UUID) -> dict[uuid.UUID, int]:
        """Mark the order's held lines released; the quantities that must go back to stock.

        The conditional update locks the rows, so a concurrent release of the same order waits
        and then finds nothing left to release.
        """
        statement = (
            update(Reservation)
            .where(
                Reservation.order_id == order_id,
                Reservation.status == ReservationStatus.RESERVED,
            )
            .values(status=ReservationStatus.RELEASED, released_at=func.now())
            .returning(Reservation.product_id, Reservation.quantity)
        )
        rows = await self._session.execute(statement)
        return {row.product_id: row.quantity for row in rows}
