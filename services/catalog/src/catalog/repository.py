"""Products and stock reservations in Postgres.

Product writes are one statement each, so they are atomic without locking rows. Reserving stock
for an order spans several rows, so :class:`StockRepository` locks them first, always in product
id order: two orders sharing products then queue up instead of deadlocking.

The worker reads every reservation in keyset pages by `(order_id, product_id)`, the primary key's
order (:meth:`StockRepository.reservations_after`), to reconcile them with orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from catalog.models import Product, Reservation, ReservationStatus
from chassis.db import Repository
from chassis.pagination import PageKey
from chassis.sql import qualified, sql

_PRODUCTS = qualified(Product.__table__)  # type: ignore[arg-type]
_RESERVATIONS = qualified(Reservation.__table__)  # type: ignore[arg-type]
# The statements every order takes (reserving its stock) and every product read that misses the
# cache, sent to the driver directly (`chassis.sql`).
_GET = f"""
SELECT id, sku, name, description, price_cents, currency, stock FROM {_PRODUCTS} WHERE id = $1
"""  # noqa: S608 - table names from the model, values as parameters
_LOCK_STOCK = f"""
SELECT id, stock FROM {_PRODUCTS} WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608
_HAS_RESERVATIONS = f"SELECT 1 FROM {_RESERVATIONS} WHERE order_id = $1 LIMIT 1"  # noqa: S608
_TAKE_AND_HOLD = f"""
WITH taken AS (
  UPDATE {_PRODUCTS} p SET stock = p.stock - line.quantity, updated_at = now()
  FROM unnest($2::uuid[], $3::int[]) AS line(product_id, quantity)
  WHERE p.id = line.product_id AND p.stock >= line.quantity
  RETURNING p.id, line.quantity
), held AS (
  INSERT INTO {_RESERVATIONS} (order_id, product_id, quantity)
  SELECT $1, id, quantity FROM taken
)
SELECT count(*) FROM taken
"""  # noqa: S608

# The worker's pages of every reservation, in the primary key's order (read on it, no sort).
RESERVATIONS_FIRST_PAGE = f"""
SELECT order_id, product_id, quantity, status, created_at, released_at FROM {_RESERVATIONS}
ORDER BY order_id, product_id LIMIT $1
"""  # noqa: S608
RESERVATIONS_PAGE_AFTER = f"""
SELECT order_id, product_id, quantity, status, created_at, released_at FROM {_RESERVATIONS}
WHERE (order_id, product_id) > ($2, $3) ORDER BY order_id, product_id LIMIT $1
"""  # noqa: S608

UPDATABLE_FIELDS = frozenset({"name", "description", "price_cents", "currency", "stock"})


@dataclass(frozen=True, slots=True)
class ReservationKey:
    """Where a page of reservations ends (`chassis.pagination` sort key)."""

    order_id: uuid.UUID
    product_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class HeldStock:
    """A reservation as the worker reads it: one order line's stock, held or released."""

    order_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    status: str
    created_at: datetime
    released_at: datetime | None


class ProductRepository(Repository):
    async def get(self, product_id: uuid.UUID) -> dict[str, Any] | None:
        """The product's fields (a read of every cache miss: one statement, no transaction)."""
        row = await (await sql(self._session, begin=False)).fetchrow(_GET, product_id)
        return None if row is None else dict(row)

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


class StockRepository(Repository):
    async def lock_stock(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """The stock of each existing product, its row locked until the transaction ends.

        Rows are locked in id order (Postgres locks them as the sorted rows come out), the one
        order every reservation and release takes, so concurrent orders cannot deadlock. The
        lock is `FOR NO KEY UPDATE`, the one an `UPDATE` of the stock takes anyway.
        """
        rows = await (await sql(self._session)).fetch(_LOCK_STOCK, list(product_ids))
        return {row["id"]: row["stock"] for row in rows}

    async def take_and_hold(self, order_id: uuid.UUID, lines: Mapping[uuid.UUID, int]) -> int:
        """Decrement each product's stock by its quantity unless that would make it negative,
        and record what was taken as the order's reservations (one statement); how many
        products it took from."""
        taken: int = await (await sql(self._session)).fetchval(
            _TAKE_AND_HOLD, order_id, list(lines), list(lines.values())
        )
        return taken

    async def give_back(self, product_id: uuid.UUID, quantity: int) -> None:
        statement = (
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + quantity, updated_at=func.now())
        )
        await self._session.execute(statement)

    async def has_reservations(self, order_id: uuid.UUID) -> bool:
        held = await (await sql(self._session)).fetchval(_HAS_RESERVATIONS, order_id)
        return held is not None

    async def reservations_after(
        self, after: ReservationKey | None, *, limit: int
    ) -> list[HeldStock]:
        """Up to `limit` reservations in (order_id, product_id) order, strictly after `after`."""
        statements = await sql(self._session, begin=False)
        if after is None:
            rows = await statements.fetch(RESERVATIONS_FIRST_PAGE, limit)
        else:
            rows = await statements.fetch(
                RESERVATIONS_PAGE_AFTER, limit, after.order_id, after.product_id
            )
        return [HeldStock(**row) for row in rows]

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
