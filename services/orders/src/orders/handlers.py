"""Handlers of the events orders consumes: catalog's answer to `order.placed`.

Each runs inside the consumer's transaction, after the event id was recorded in the inbox, so a
redelivered event changes nothing. The order row is locked first: a customer's cancel or the
timeout sweeper racing the answer is serialised with it. What the answer may do to the order is
its life's transition table (`orders.models.TRANSITIONS`).
"""

from __future__ import annotations

import uuid

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.messaging.handlers import Handlers, PermanentError
from contracts.events import CloudEvent, StockRejectedV1, StockReservedV1
from orders import saga
from orders.admission import OrderAdmission
from orders.models import OrderStatus
from orders.repository import Order, OrderRepository

log = get_logger(__name__)


class OrdersHandlers:
    """The handlers, reporting each decision's lag to admission control."""

    def __init__(self, admission: OrderAdmission) -> None:
        self._admission = admission

    @property
    def registry(self) -> Handlers:
        return (
            Handlers()
            .add(StockReservedV1, self.on_stock_reserved)
            .add(StockRejectedV1, self.on_stock_rejected)
        )

    async def on_stock_reserved(
        self, uow: UnitOfWork, event: CloudEvent, payload: StockReservedV1
    ) -> None:
        order = await _locked(uow, event, payload.order_id)
        if order.can_become(OrderStatus.CONFIRMED):
            self._decided(uow, await saga.confirm(uow, order))
            log.info("order_confirmed", order_id=str(order.id))
            return
        if order.is_over:
            # Stock was reserved for an order that is over (cancelled, or timed out): give it back.
            await saga.compensate(uow, order, payload.items)
            log.info("order_stock_compensated", order_id=str(order.id), status=order.status)
            return
        log.warning("stock_reserved_ignored", order_id=str(order.id), status=order.status)

    async def on_stock_rejected(
        self, uow: UnitOfWork, event: CloudEvent, payload: StockRejectedV1
    ) -> None:
        order = await _locked(uow, event, payload.order_id)
        if not order.can_become(OrderStatus.REJECTED):
            # Nothing was reserved, so there is nothing to give back; the order's fate is sealed.
            log.info("stock_rejected_ignored", order_id=str(order.id), status=order.status)
            return
        lag = await saga.reject(uow, order, payload.reason, payload.reason_code)
        self._decided(uow, lag)
        log.info("order_rejected", order_id=str(order.id), reason=payload.reason)

    def _decided(self, uow: UnitOfWork, lag_seconds: float) -> None:
        """Tell admission control how long the order took, once its decision committed."""
        uow.after_commit(lambda: self._admission.decided(lag_seconds))


async def _locked(uow: UnitOfWork, event: CloudEvent, order_id: uuid.UUID) -> Order:
    order = await uow.repository(OrderRepository).lock(order_id)
    if order is None:
        # Catalog answers only orders it heard of from us; retrying cannot make one appear.
        msg = f"{event.type} for unknown order {order_id}"
        raise PermanentError(msg)
    return order
