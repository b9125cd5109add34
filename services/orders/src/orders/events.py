"""Handlers of the events orders consumes: catalog's answer to `order.placed`.

Each runs inside the consumer's transaction, after the event id was recorded in the inbox, so a
redelivered event changes nothing. The order row is locked first: a customer's cancel or the
timeout sweeper racing the answer is serialised with it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.db import after_commit
from chassis.logging import get_logger
from chassis.messaging.consumer import Handler, PermanentError
from contracts.events import CloudEvent, StockRejectedV1, StockReservedV1
from orders import saga
from orders.admission import OrderAdmission
from orders.models import OrderStatus
from orders.repository import Order, OrderRepository

log = get_logger(__name__)


async def _locked(session: AsyncSession, event: CloudEvent, order_id: Any) -> Order:
    order = await OrderRepository(session).lock(order_id)
    if order is None:
        # Catalog answers only orders it heard of from us; retrying cannot make one appear.
        msg = f"{event.type} for unknown order {order_id}"
        raise PermanentError(msg)
    return order


def _decided(session: AsyncSession, lag_seconds: float, admission: OrderAdmission) -> None:
    """Tell admission control how long the order took, once its decision committed."""
    after_commit(session, lambda: admission.decided(lag_seconds))


async def on_stock_reserved(
    session: AsyncSession, event: CloudEvent, payload: Any, admission: OrderAdmission
) -> None:
    assert isinstance(payload, StockReservedV1)
    order = await _locked(session, event, payload.order_id)
    if order.status == OrderStatus.PENDING.value:
        _decided(session, await saga.confirm(session, order), admission)
        log.info("order_confirmed", order_id=str(order.id))
        return
    if order.status in (OrderStatus.CANCELLED.value, OrderStatus.REJECTED.value):
        # Stock was reserved for an order that is over (cancelled, or timed out): give it back.
        reason = f"stock reserved after the order was {order.status}"
        await saga.release(session, order, reason, payload.items)
        log.info("order_stock_compensated", order_id=str(order.id), status=order.status)
        return
    log.warning("stock_reserved_ignored", order_id=str(order.id), status=order.status)


async def on_stock_rejected(
    session: AsyncSession, event: CloudEvent, payload: Any, admission: OrderAdmission
) -> None:
    assert isinstance(payload, StockRejectedV1)
    order = await _locked(session, event, payload.order_id)
    if order.status != OrderStatus.PENDING.value:
        # Nothing was reserved, so there is nothing to give back; the order's fate is sealed.
        log.info("stock_rejected_ignored", order_id=str(order.id), status=order.status)
        return
    _decided(session, await saga.reject(session, order, payload.reason), admission)
    log.info("order_rejected", order_id=str(order.id), reason=payload.reason)


def handlers(admission: OrderAdmission) -> Mapping[str, Handler]:
    """The handlers, reporting each decision's lag to admission control."""
    return {
        StockReservedV1.event_type: functools.partial(on_stock_reserved, admission=admission),
        StockRejectedV1.event_type: functools.partial(on_stock_rejected, admission=admission),
    }
