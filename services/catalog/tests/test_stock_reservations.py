"""The order-saga handlers, called directly in a unit of work: all lines reserved or none, never
below zero under racing orders, and released exactly once on cancellation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from catalog.models import Reservation
from chassis.db import UnitOfWork
from contracts.events import OrderPlacedV1, new_event
from fleetctl.testing import eventually

Saga = Any  # the `saga` fixture: handlers, products, stock and the outbox of the catalog
Orders = Any  # the `orders` fixture: builders of order events
Counter = Callable[..., float]


async def test_reservation_takes_the_stock_of_every_line_and_stages_stock_reserved(
    saga: Saga, orders: Orders
) -> None:
    kettle, mug = await saga.product(stock=5), await saga.product(stock=3)
    order = orders.placed((kettle, 2), (mug, 3))

    await saga.handle(order)

    assert (await saga.stock(kettle), await saga.stock(mug)) == (3, 0)
    [reserved] = await saga.staged(order.order_id)
    assert reserved.type == "stock.reserved.v1"
    assert reserved.body["source"] == "/fleet/catalog"
    assert reserved.data["order_id"] == str(order.order_id)
    assert {(i["product_id"], i["quantity"]) for i in reserved.data["items"]} == {
        (str(kettle), 2),
        (str(mug), 3),
    }
    async with saga.sessions() as session:
        query = select(Reservation).where(Reservation.order_id == order.order_id)
        rows = (await session.scalars(query)).all()
    assert {(r.product_id, r.quantity, r.status) for r in rows} == {
        (kettle, 2, "reserved"),
        (mug, 3, "reserved"),
    }


async def test_one_short_line_rejects_the_order_and_changes_no_stock(
    saga: Saga, orders: Orders
) -> None:
    plenty, scarce = await saga.product(stock=10), await saga.product(stock=1)
    order = orders.placed((plenty, 4), (scarce, 2))

    await saga.handle(order)

    assert (await saga.stock(plenty), await saga.stock(scarce)) == (10, 1)
    [rejected] = await saga.staged(order.order_id)
    assert rejected.type == "stock.rejected.v1"
    assert rejected.data == {
        "order_id": str(order.order_id),
        "reason": "out of stock",
        "reason_code": "out_of_stock",
        "product_ids": [str(scarce)],
    }


async def test_lines_of_the_same_product_are_added_up_before_checking_stock(
    saga: Saga, orders: Orders
) -> None:
    product = await saga.product(stock=5)
    order = orders.placed((product, 3), (product, 3))

    await saga.handle(order)

    assert await saga.stock(product) == 5
    [rejected] = await saga.staged(order.order_id)
    assert rejected.data["reason"] == "out of stock"


async def test_unknown_product_rejects_the_order_and_changes_no_stock(
    saga: Saga, orders: Orders
) -> None:
    known, unknown = await saga.product(stock=5), uuid.uuid4()
    order = orders.placed((known, 1), (unknown, 1))

    await saga.handle(order)

    assert await saga.stock(known) == 5
    [rejected] = await saga.staged(order.order_id)
    assert rejected.type == "stock.rejected.v1"
    assert rejected.data["reason"] == "unknown product"
    assert rejected.data["reason_code"] == "unknown_product"
    assert rejected.data["product_ids"] == [str(unknown)]


async def test_quantity_beyond_any_stock_is_rejected_not_an_error(
    saga: Saga, orders: Orders
) -> None:
    product = await saga.product(stock=5)
    order = orders.placed((product, 10**15))

    await saga.handle(order)

    assert await saga.stock(product) == 5
    [rejected] = await saga.staged(order.order_id)
    assert rejected.data["reason"] == "out of stock"


async def test_twenty_racing_orders_for_the_last_five_items_reserve_exactly_five(
    saga: Saga, orders: Orders, counter: Counter
) -> None:
    scarce, plenty = await saga.product(stock=5), await saga.product(stock=100)
    # Half the orders list the plentiful product first: without one lock order for everyone,
    # such orders would deadlock each other.
    placed: list[OrderPlacedV1] = [
        orders.placed((scarce, 1), (plenty, 1))
        if n % 2
        else orders.placed((plenty, 1), (scarce, 1))
        for n in range(20)
    ]
    before = {
        o: counter("catalog_stock_reservations_total", outcome=o) for o in ("reserved", "rejected")
    }
    start = asyncio.Event()
    connected: list[OrderPlacedV1] = []

    async def deliver(order: OrderPlacedV1) -> None:
        event = new_event(order, source="/fleet/orders", subject=str(order.order_id))
        async with UnitOfWork(saga.sessions) as uow:
            await uow.session.connection()  # each order holds its own connection ...
            connected.append(order)
            await start.wait()  # ... before the first one starts reserving
            await saga.handler(event.type)(uow, event, order)
            await uow.commit()

    tasks = [asyncio.create_task(deliver(order)) for order in placed]
    await eventually(lambda: len(connected) == len(placed))
    start.set()
    await asyncio.gather(*tasks)
    await saga.settle()

    answers = [(await saga.staged(order.order_id))[0].type for order in placed]
    assert answers.count("stock.reserved.v1") == 5
    assert answers.count("stock.rejected.v1") == 15
    assert await saga.stock(scarce) == 0
    assert await saga.stock(plenty) == 95
    after = {
        o: counter("catalog_stock_reservations_total", outcome=o) for o in ("reserved", "rejected")
    }
    assert after["reserved"] - before["reserved"] == 5
    assert after["rejected"] - before["rejected"] == 15


async def test_cancellation_releases_the_stock_once_and_stages_stock_released(
    saga: Saga, orders: Orders, counter: Counter
) -> None:
    kettle, mug = await saga.product(stock=5), await saga.product(stock=5)
    order = orders.placed((kettle, 2), (mug, 1))
    await saga.handle(order)
    released_before = counter("catalog_stock_released_total")

    first = await saga.handle(orders.cancelled(order))
    # The same cancellation again as a new event, which the inbox cannot recognise.
    second = await saga.handle(orders.cancelled(order))

    assert first.id != second.id
    assert (await saga.stock(kettle), await saga.stock(mug)) == (5, 5)
    events = await saga.staged(order.order_id)
    assert [e.type for e in events] == ["stock.reserved.v1", "stock.released.v1"]
    released = events[1].data
    assert released["order_id"] == str(order.order_id)
    assert {(i["product_id"], i["quantity"]) for i in released["items"]} == {
        (str(kettle), 2),
        (str(mug), 1),
    }
    assert counter("catalog_stock_released_total") - released_before == 1
    async with saga.sessions() as session:
        query = select(Reservation).where(Reservation.order_id == order.order_id)
        rows = (await session.scalars(query)).all()
    assert {r.status for r in rows} == {"released"}
    assert all(r.released_at is not None for r in rows)


async def test_cancelling_an_order_that_holds_no_stock_changes_nothing(
    saga: Saga, orders: Orders
) -> None:
    product = await saga.product(stock=1)
    rejected, never_placed = orders.placed((product, 2)), orders.placed((product, 1))
    await saga.handle(rejected)

    await saga.handle(orders.cancelled(rejected))
    await saga.handle(orders.cancelled(never_placed))

    assert await saga.stock(product) == 1
    assert [e.type for e in await saga.staged(rejected.order_id)] == ["stock.rejected.v1"]
    assert await saga.staged(never_placed.order_id) == []


async def test_an_order_placed_again_under_a_new_event_id_is_not_reserved_twice(
    saga: Saga, orders: Orders
) -> None:
    product = await saga.product(stock=5)
    order = orders.placed((product, 2))

    await saga.handle(order)
    await saga.handle(order)

    assert await saga.stock(product) == 3
    assert [e.type for e in await saga.staged(order.order_id)] == ["stock.reserved.v1"]


@pytest.mark.parametrize("commits", [True, False])
async def test_cache_is_invalidated_only_once_the_reservation_commits(
    saga: Saga, orders: Orders, redis: Redis, redis_prefix: str, commits: bool
) -> None:
    product = await saga.product(stock=5)
    key = f"{redis_prefix}product:{product}"
    await redis.set(key, b"cached", ex=60)
    order = orders.placed((product, 1))
    event = new_event(order, source="/fleet/orders")

    async with UnitOfWork(saga.sessions) as uow:
        await saga.handler(event.type)(uow, event, order)
        await saga.settle()
        assert await redis.get(key) == b"cached"  # not before the commit
        if commits:
            await uow.commit()
    await saga.settle()

    assert (await redis.get(key) is None) is commits
