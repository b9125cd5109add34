"""The order's state changes, each written with the event that announces it (one transaction).
Which changes exist is `orders.models.TRANSITIONS`; the repository refuses any other.

Every function takes a session whose transaction holds the order's row lock, stages the event
in the outbox, and counts the change once the transaction commits (`chassis.db.after_commit`:
a retried or failed unit of work does not count twice).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.db import after_commit
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


async def placed(session: AsyncSession, order: Order) -> None:
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
    await outbox.add(session, payload, subject=str(order.id))
    after_commit(session, metrics.ORDERS_PLACED.inc)


async def confirm(session: AsyncSession, order: Order) -> float:
    """Confirm a pending order; how long it took from placed to decided, in seconds."""
    await OrderRepository(session).set_status(order, OrderStatus.CONFIRMED, None)
    payload = OrderConfirmedV1(
        order_id=order.id,
        user_id=order.user_id,
        total_cents=order.total_cents,
        currency=order.currency,
    )
    await outbox.add(session, payload, subject=str(order.id))
    duration = (order.updated_at - order.created_at).total_seconds()
    after_commit(session, metrics.ORDERS_CONFIRMED.inc)
    after_commit(session, lambda: metrics.SAGA_DURATION.observe(duration))
    return duration


async def reject(
    session: AsyncSession, order: Order, reason: str, code: RejectionReason | None
) -> float:
    """Reject a pending order; how long it took from placed to decided, in seconds. `code` is
    None only when catalog's answer came from a version that sends none."""
    await OrderRepository(session).set_status(order, OrderStatus.REJECTED, reason)
    payload = OrderRejectedV1(
        order_id=order.id, user_id=order.user_id, reason=reason, reason_code=code
    )
    await outbox.add(session, payload, subject=str(order.id))
    duration = (order.updated_at - order.created_at).total_seconds()
    after_commit(session, metrics.ORDERS_REJECTED.labels(metrics.rejection_label(code)).inc)
    after_commit(session, lambda: metrics.SAGA_DURATION.observe(duration))
    return duration


async def time_out(session: AsyncSession, order: Order) -> float:
    """Reject a pending order catalog did not answer in time."""
    return await reject(session, order, TIMED_OUT, RejectionReason.TIMED_OUT)


async def cancel(session: AsyncSession, order: Order) -> None:
    """The customer's cancel. Catalog is asked to release the order's items whether it was
    confirmed or still pending: it gives back only what it actually reserved."""
    await OrderRepository(session).set_status(order, OrderStatus.CANCELLED, CANCELLED_BY_CUSTOMER)
    await _release(
        session, order, CANCELLED_BY_CUSTOMER, CancellationReason.BY_CUSTOMER, _lines(order)
    )
    after_commit(session, metrics.ORDERS_CANCELLED.inc)


async def compensate(session: AsyncSession, order: Order, items: Iterable[LineItem]) -> None:
    """Give back stock catalog reserved for an order that is over already (rejected by the
    timeout, or cancelled before catalog answered); the order itself does not change."""
    reason = f"stock reserved after the order was {order.status}"
    await _release(session, order, reason, CancellationReason.COMPENSATION, items)


async def _release(
    session: AsyncSession,
    order: Order,
    reason: str,
    code: CancellationReason,
    items: Iterable[LineItem],
) -> None:
    """Announce `order.cancelled`, which makes catalog give the items' stock back."""
    payload = OrderCancelledV1(
        order_id=order.id, user_id=order.user_id, reason=reason, items=list(items), reason_code=code
    )
    await outbox.add(session, payload, subject=str(order.id))


def _lines(order: Order) -> list[LineItem]:
    return [LineItem(product_id=i.product_id, quantity=i.quantity) for i in order.items]
