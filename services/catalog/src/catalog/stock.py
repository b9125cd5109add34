"""Stock for orders: reserve every line of an order or none of it, and give it back on cancel.

Both run inside the caller's transaction; the caller stages the announcing event in the same
transaction, so the stock change and its event commit (or roll back) together.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from catalog.repository import StockRepository
from chassis.db import UnitOfWork
from contracts.events import LineItem, RejectionReason

# The wording of each refusal, for people (`stock.rejected` carries the code too).
REASONS = {
    RejectionReason.OUT_OF_STOCK: "out of stock",
    RejectionReason.UNKNOWN_PRODUCT: "unknown product",
}


@dataclass(frozen=True, slots=True)
class Reserved:
    lines: dict[uuid.UUID, int]


@dataclass(frozen=True, slots=True)
class Rejected:
    code: RejectionReason
    product_ids: list[uuid.UUID]


@dataclass(frozen=True, slots=True)
class AlreadyReserved:
    """The order holds stock from an earlier delivery (under another event id)."""


Reservation = Reserved | Rejected | AlreadyReserved


def order_lines(items: Iterable[LineItem]) -> dict[uuid.UUID, int]:
    """Quantity per product in product id order; an order may name a product on several lines."""
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for item in items:
        totals[item.product_id] += item.quantity
    return dict(sorted(totals.items()))


async def reserve(
    *, uow: UnitOfWork, order_id: uuid.UUID, items: Iterable[LineItem]
) -> Reservation:
    """Take the stock of every line, or of none when a product is unknown or short."""
    repository = uow.repository(StockRepository)
    if await repository.has_reservations(order_id):
        return AlreadyReserved()
    lines = order_lines(items)
    # Check-then-act under row locks: nobody changes these rows' stock until we commit.
    stock = await repository.lock_stock(list(lines))
    unknown = [product_id for product_id in lines if product_id not in stock]
    if unknown:
        return Rejected(RejectionReason.UNKNOWN_PRODUCT, unknown)
    short = [product_id for product_id, quantity in lines.items() if stock[product_id] < quantity]
    if short:
        return Rejected(RejectionReason.OUT_OF_STOCK, short)
    if await repository.take_and_hold(order_id, lines) != len(lines):
        # Impossible while the rows are locked; fail (and roll back) rather than oversell.
        msg = f"stock of order {order_id}'s products changed under their row locks"
        raise RuntimeError(msg)
    return Reserved(lines)


async def release(*, uow: UnitOfWork, order_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Give back what the order still holds; what was released (empty if nothing was held)."""
    repository = uow.repository(StockRepository)
    released = dict(sorted((await repository.release_reservations(order_id)).items()))
    # Product rows are locked in id order here too, like every reservation does.
    for product_id, quantity in released.items():
        await repository.give_back(product_id, quantity)
    return released
