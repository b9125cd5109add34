"""The order's state changes, each written with the event that announces it (one transaction).
Which changes exist is `orders.models.TRANSITIONS`; the repository refuses any other.

Every function takes the unit of work whose transaction holds the order's row lock, stages the
event in the outbox, and counts the change once the transaction commits (`uow.after_commit`: a
retried or failed unit of work does not count twice).
"""

from __future__ import annotations

from collections.abc import Iterable

from chassis.db import UnitOfWork
from contracts.events import (
    CancellationReason,
    LineItem,
    OrderCancelledV1,
    OrderConfirmedV1,
    OrderPlacedV1,
    OrderRejectedV1,
    RejectionReason,
)
from contracts.events.payloads import PricedLineItem
from orders import metrics
from orders.models import OrderStatus, outbox
from orders.repository import Order, OrderRepository

CANCELLED_BY_CUSTOMER = "cancelled by customer"
TIMED_OUT = "timed out waiting for stock"


async def placed(uow: UnitOfWork, order: Order) -> None:
    payload = OrderPlacedV1(
        order_id=order.id,
        user_id=order.user_id,
        items=[
            PricedLineItem(
                product_id=i.product_id, quantity=i.quantity, unit_price_cents=i.unit_price_cents
            )
            for i in order.items
        ],
        total_cents=order.total_cents,
        currency=order.currency,
    )
    await outbox.add(uow.session, payload, subject=str(order.id))
    uow.after_commit(metrics.ORDERS_PLACED.inc)


async def confirm(uow: UnitOfWork, order: Order) -> float:
    """Confirm a pending order; how long it took from placed to decided, in seconds."""
    await uow.repository(OrderRepository).set_status(order, OrderStatus.CONFIRMED, None)
    payload = OrderConfirmedV1(
        order_id=order.id,
        user_id=order.user_id,
        total_cents=order.total_cents,
        currency=order.currency,
    )
    await outbox.add(uow.session, payload, subject=str(order.id))
    duration = (order.updated_at - order.created_at).total_seconds()
    uow.after_commit(metrics.ORDERS_CONFIRMED.inc)
    uow.after_commit(lambda: metrics.SAGA_DURATION.observe(duration))
    return duration


async def reject(uow: UnitOfWork, order: Order, reason: str, code: RejectionReason | None) -> float:
    """Reject a pending order; how long it took from placed to decided, in seconds. `code` is
    None only when catalog's answer came from a version that sends none."""
    await uow.repository(OrderRepository).set_status(order, OrderStatus.REJECTED, reason)
    payload = OrderRejectedV1(
        order_id=order.id, user_id=order.user_id, reason=reason, reason_code=code
    )
    await outbox.add(uow.session, payload, subject=str(order.id))
    duration = (order.updated_at - order.created_at).total_seconds()
    uow.after_commit(metrics.ORDERS_REJECTED.labels(metrics.rejection_label(code)).inc)
    uow.after_commit(lambda: metrics.SAGA_DURATION.observe(duration))
    return duration


async def time_out(uow: UnitOfWork, order: Order) -> float:
    """Reject a pending order catalog did not answer in time."""
    return await reject(uow, order, TIMED_OUT, RejectionReason.TIMED_OUT)


async def cancel(uow: UnitOfWork, order: Order) -> None:
    """The customer's cancel. Catalog is asked to release the order's items whether it was
    confirmed or still pending: it gives back only what it actually reserved."""
    await uow.repository(OrderRepository).set_status(
        order, OrderStatus.CANCELLED, CANCELLED_BY_CUSTOMER
    )
    await _release(uow, order, CANCELLED_BY_CUSTOMER, CancellationReason.BY_CUSTOMER, _lines(order))
    uow.after_commit(metrics.ORDERS_CANCELLED.inc)


async def compensate(uow: UnitOfWork, order: Order, items: Iterable[LineItem]) -> None:
    """Give back stock catalog reserved for an order that is over already (rejected by the
    timeout, or cancelled before catalog answered); the order itself does not change."""
    reason = f"stock reserved after the order was {order.status}"
    await _release(uow, order, reason, CancellationReason.COMPENSATION, items)


async def _release(
    uow: UnitOfWork,
    order: Order,
    reason: str,
    code: CancellationReason,
    items: Iterable[LineItem],
) -> None:
    """Announce `order.cancelled`, which makes catalog give the items' stock back."""
    payload = OrderCancelledV1(
        order_id=order.id, user_id=order.user_id, reason=reason, items=list(items), reason_code=code
    )
    await outbox.add(uow.session, payload, subject=str(order.id))


def _lines(order: Order) -> list[LineItem]:
    return [LineItem(product_id=i.product_id, quantity=i.quantity) for i in order.items]
