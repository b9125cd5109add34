"""Handlers of the events the catalog consumes: its part of the order saga.

`order.placed` reserves the order's stock (all lines or none) and answers `stock.reserved` or
`stock.rejected`; `order.cancelled` gives the stock back and announces `stock.released`. Each
handler runs in the consumer's transaction, which also records the event in the inbox and holds
the staged answer, so a redelivered event changes nothing. The product cache is invalidated (and
the metrics counted) only once that transaction committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import Counter

from catalog import stock
from catalog.cache import ProductCache
from catalog.models import outbox
from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.messaging.handlers import Handlers
from chassis.metrics import initialise_labels
from contracts.events import (
    CloudEvent,
    LineItem,
    OrderCancelledV1,
    OrderPlacedV1,
    StockRejectedV1,
    StockReleasedV1,
    StockReservedV1,
)

log = get_logger(__name__)

STOCK_RESERVATIONS = Counter(
    "catalog_stock_reservations_total",
    "Orders whose stock was reserved or rejected (committed outcomes only).",
    ["outcome"],
)
initialise_labels(STOCK_RESERVATIONS, outcome=("reserved", "rejected"))
STOCK_RELEASED = Counter(
    "catalog_stock_released_total", "Orders whose reserved stock was released on cancellation."
)


def _line_items(lines: Mapping[uuid.UUID, int]) -> list[LineItem]:
    return [LineItem(product_id=product_id, quantity=qty) for product_id, qty in lines.items()]


class CatalogHandlers:
    """The order handlers, bound to the cache they invalidate."""

    def __init__(self, cache: ProductCache) -> None:
        self._cache = cache

    @property
    def registry(self) -> Handlers:
        return (
            Handlers()
            .add(OrderPlacedV1, self.on_order_placed)
            .add(OrderCancelledV1, self.on_order_cancelled)
        )

    async def on_order_placed(
        self, uow: UnitOfWork, event: CloudEvent, payload: OrderPlacedV1
    ) -> None:
        order_id = payload.order_id
        outcome = await stock.reserve(uow=uow, order_id=order_id, items=payload.items)
        subject = str(order_id)
        match outcome:
            case stock.Reserved(lines=lines):
                items = _line_items(lines)
                await outbox.add(
                    uow.session, StockReservedV1(order_id=order_id, items=items), subject=subject
                )
                self._on_commit(uow, lines, STOCK_RESERVATIONS.labels("reserved").inc)
                log.info("stock_reserved", order_id=subject, products=len(lines))
            case stock.Rejected(code=code, product_ids=product_ids):
                reason = stock.REASONS[code]
                rejected = StockRejectedV1(
                    order_id=order_id, reason=reason, product_ids=product_ids, reason_code=code
                )
                await outbox.add(uow.session, rejected, subject=subject)
                self._on_commit(uow, (), STOCK_RESERVATIONS.labels("rejected").inc)
                log.info("stock_rejected", order_id=subject, reason=reason)
            case stock.AlreadyReserved():
                log.warning("order_already_reserved", order_id=subject, event_id=str(event.id))

    async def on_order_cancelled(
        self, uow: UnitOfWork, event: CloudEvent, payload: OrderCancelledV1
    ) -> None:
        order_id = payload.order_id
        released = await stock.release(uow=uow, order_id=order_id)
        if not released:
            log.info("nothing_to_release", order_id=str(order_id), event_id=str(event.id))
            return
        released_event = StockReleasedV1(order_id=order_id, items=_line_items(released))
        await outbox.add(uow.session, released_event, subject=str(order_id))
        self._on_commit(uow, released, STOCK_RELEASED.inc)
        log.info("stock_released", order_id=str(order_id), products=len(released))

    def _on_commit(
        self, uow: UnitOfWork, changed: Iterable[uuid.UUID], count: Callable[[], None]
    ) -> None:
        """Once committed: count the outcome and drop the changed products from the cache."""
        product_ids = list(changed)

        async def committed() -> None:
            count()
            if product_ids:
                await self._cache.invalidate_many(product_ids)

        uow.after_commit(committed)
