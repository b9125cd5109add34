"""Use cases of the orders API: place (idempotently), read, list and cancel a customer's orders;
read every order in keyset pages for the worker (`read_orders`)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.pagination import PageKey, cursor_key, keyset_page
from orders import saga
from orders.exceptions import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyReusedError,
    OrderNotCancellableError,
    OrderNotFoundError,
)
from orders.idempotency import StoredResponse, request_hash
from orders.models import OrderStatus
from orders.prices import PriceList
from orders.repository import (
    IdempotencyRepository,
    IdKey,
    Line,
    Order,
    OrderBy,
    OrderRepository,
    Selection,
    StoredKey,
)
from orders.schemas import InternalOrderOut, InternalOrderPage, OrderOut, OrderPage, PlaceOrder

PLACED_STATUS = 202

log = get_logger(__name__)


async def place_order(
    *,
    uow: UnitOfWork,
    prices: PriceList,
    user_id: uuid.UUID,
    key: str,
    key_ttl: timedelta,
    order_in: PlaceOrder,
) -> StoredResponse:
    """Write a pending order, its items, `order.placed` and the key's response in one
    transaction; a retry with the same key within `key_ttl` gets the stored response back, a
    later one is a new order."""
    fingerprint = request_hash(order_in)
    # A fast path only (a replay must not depend on catalog being up): what makes concurrent
    # duplicates safe is the unique key in `record` below.
    async with uow:
        stored = await uow.repository(IdempotencyRepository).find(user_id, key, ttl=key_ttl)
        if stored is not None:
            return _replay(stored, fingerprint)
    priced = await prices.price([line.product_id for line in order_in.items])
    lines = [
        Line(i.product_id, i.quantity, priced.unit_cents[i.product_id]) for i in order_in.items
    ]
    async with uow:
        order = await uow.repository(OrderRepository).add(
            order_id=uuid.uuid4(), user_id=user_id, lines=lines, currency=priced.currency
        )
        await saga.placed(uow, order)
        body = OrderOut.model_validate(order).model_dump_json()
        recorded = await uow.repository(IdempotencyRepository).record(
            user_id=user_id,
            key=key,
            request_hash=fingerprint,
            order_id=order.id,
            status=PLACED_STATUS,
            body=body,
            ttl=key_ttl,
        )
        if recorded:
            await uow.commit()
            log.info("order_placed", order_id=str(order.id), total_cents=order.total_cents)
            return StoredResponse(
                status=PLACED_STATUS, order_id=str(order.id), body=body.encode(), replayed=False
            )
    # A concurrent request with this key committed first; leaving the block above rolled this
    # attempt back, so only the winner's order exists. Answer with its response.
    async with uow:
        stored = await uow.repository(IdempotencyRepository).find(user_id, key, ttl=key_ttl)
        if stored is None:
            # The winner's order was deleted in between; a retry will be processed afresh.
            raise IdempotencyKeyInFlightError("Retry the request.")
        return _replay(stored, fingerprint)


def _replay(stored: StoredKey, fingerprint: str) -> StoredResponse:
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was already used for a different order; use a new key."
        )
    return StoredResponse(
        status=stored.response_status,
        order_id=str(stored.response_body["id"]),
        body=json.dumps(stored.response_body, separators=(",", ":")).encode(),
        replayed=True,
    )


async def get_order(*, uow: UnitOfWork, user_id: uuid.UUID, order_id: uuid.UUID) -> OrderOut:
    async with uow:
        order = await uow.repository(OrderRepository).get_for(order_id, user_id)
        if order is None:
            raise OrderNotFoundError(f"You have no order with the id {order_id}.")
        return OrderOut.model_validate(order)


async def list_orders(
    *, uow: UnitOfWork, user_id: uuid.UUID, limit: int, cursor: str | None
) -> OrderPage:
    """One page of the user's orders, newest first; `limit` must already be capped."""
    after = cursor_key(cursor)
    async with uow:
        orders = uow.repository(OrderRepository)
        page = await keyset_page(
            lambda n: orders.page_for(user_id, after=after, limit=n), limit=limit
        )
        items = [OrderOut.model_validate(order) for order in page.rows]
        return OrderPage(items=items, next_cursor=page.next_cursor)


async def read_orders(
    *, uow: UnitOfWork, selection: Selection, order_by: OrderBy, limit: int, after: str | None
) -> InternalOrderPage:
    """One keyset page of the selected orders with their lines, by (created_at, id) or by id;
    a cursor of the other order is refused (invalid-cursor)."""
    start: PageKey | IdKey | None = (
        cursor_key(after) if order_by == "created" else cursor_key(after, IdKey)
    )

    def key(order: Order) -> PageKey | IdKey:
        return PageKey(order.created_at, order.id) if order_by == "created" else IdKey(order.id)

    async with uow:
        orders = uow.repository(OrderRepository)
        page = await keyset_page(
            lambda n: orders.page(selection, order_by=order_by, after=start, limit=n),
            limit=limit,
            key=key,
        )
        items = [InternalOrderOut.model_validate(order) for order in page.rows]
        return InternalOrderPage(items=items, next_cursor=page.next_cursor)


async def cancel_order(*, uow: UnitOfWork, user_id: uuid.UUID, order_id: uuid.UUID) -> OrderOut:
    async with uow:
        order = await uow.repository(OrderRepository).lock(order_id, user_id=user_id)
        if order is None:
            raise OrderNotFoundError(f"You have no order with the id {order_id}.")
        if not order.can_become(OrderStatus.CANCELLED):
            raise OrderNotCancellableError(f"The order is already {order.status}.")
        await saga.cancel(uow, order)
        cancelled = OrderOut.model_validate(order)
        await uow.commit()
    log.info("order_cancelled", order_id=str(order_id))
    return cancelled
