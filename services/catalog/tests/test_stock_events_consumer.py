"""The order saga through the real broker: order events published to the exchange are consumed
by the running catalog, and its answers leave through the outbox relay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contracts.events import CloudEvent, OrderPlacedV1, new_event
from fleetctl.testing import Bus, eventually

Saga = Any  # the `saga` fixture: products, stock and the outbox of the catalog
Orders = Any  # the `orders` fixture: builders of order events
Counter = Callable[..., float]


def as_event(payload: Any, correlation_id: str | None = None) -> CloudEvent:
    return new_event(
        payload,
        source="/fleet/orders",
        subject=str(payload.order_id),
        correlation_id=correlation_id,
    )


@pytest.mark.usefixtures("client")
async def test_order_placed_on_the_bus_is_answered_with_stock_reserved(
    saga: Saga,
    orders: Orders,
    bus: Bus,
) -> None:
    product = await saga.product(stock=5)
    order = orders.placed((product, 2))
    placed = as_event(order, correlation_id="req-123")

    async with bus.tap("stock.#") as answers:
        await bus.publish(placed)
        answer = await bus.next_about(answers, order.order_id)

    assert answer["type"] == "stock.reserved.v1"
    assert answer["data"]["items"] == [{"product_id": str(product), "quantity": 2}]
    assert answer["causationid"] == str(placed.id)
    assert answer["correlationid"] == "req-123"
    assert await saga.stock(product) == 3


async def test_cached_product_shows_the_stock_left_after_a_reservation(
    client: httpx.AsyncClient,
    saga: Saga,
    orders: Orders,
    bus: Bus,
) -> None:
    product = await saga.product(stock=5)
    url = f"/v1/products/{product}"
    assert (await client.get(url)).json()["stock"] == 5  # now cached
    order = orders.placed((product, 4))

    async with bus.tap("stock.#") as answers:
        await bus.publish(as_event(order))
        await bus.next_about(answers, order.order_id)

    async def shows_one_left() -> bool:
        return bool((await client.get(url)).json()["stock"] == 1)

    await eventually(shows_one_left, timeout=2.0)


@pytest.mark.usefixtures("client")
async def test_short_stock_on_the_bus_is_answered_with_stock_rejected(
    saga: Saga,
    orders: Orders,
    bus: Bus,
) -> None:
    product = await saga.product(stock=1)
    order = orders.placed((product, 2))

    async with bus.tap("stock.#") as answers:
        await bus.publish(as_event(order))
        answer = await bus.next_about(answers, order.order_id)

    assert answer["type"] == "stock.rejected.v1"
    assert answer["data"]["reason"] == "out of stock"
    assert answer["data"]["reason_code"] == "out_of_stock"
    assert answer["data"]["product_ids"] == [str(product)]
    assert await saga.stock(product) == 1


@pytest.mark.usefixtures("client")
async def test_the_same_event_delivered_twice_reserves_once(
    saga: Saga,
    orders: Orders,
    bus: Bus,
    counter: Counter,
) -> None:
    product = await saga.product(stock=5)
    order = orders.placed((product, 2))
    placed = as_event(order)
    labels = {"event_type": "order.placed.v1", "outcome": "duplicate"}
    duplicates = counter("events_consumed_total", **labels)

    async with bus.tap("stock.#") as answers:
        await bus.publish(placed)
        await bus.next_about(answers, order.order_id)
        await bus.publish(placed)

        async def second_copy_was_ignored() -> bool:
            return counter("events_consumed_total", **labels) > duplicates

        await eventually(second_copy_was_ignored)

    assert await saga.stock(product) == 3
    assert [e.type for e in await saga.staged(order.order_id)] == ["stock.reserved.v1"]


@pytest.mark.usefixtures("client")
async def test_cancellation_on_the_bus_releases_the_stock_and_announces_it(
    saga: Saga,
    orders: Orders,
    bus: Bus,
) -> None:
    product = await saga.product(stock=5)
    order = orders.placed((product, 5))

    async with bus.tap("stock.#") as answers:
        await bus.publish(as_event(order))
        assert (await bus.next_about(answers, order.order_id))["type"] == "stock.reserved.v1"
        assert await saga.stock(product) == 0
        await bus.publish(as_event(orders.cancelled(order)))
        answer = await bus.next_about(answers, order.order_id)

    assert answer["type"] == "stock.released.v1"
    assert answer["data"]["items"] == [{"product_id": str(product), "quantity": 5}]
    assert await saga.stock(product) == 5


async def test_twenty_concurrent_orders_on_the_bus_never_oversell(
    make_settings: Callable[..., Any],
    run_app: Callable[..., Any],
    saga: Saga,
    orders: Orders,
    bus: Bus,
) -> None:
    product = await saga.product(stock=5)
    placed: list[OrderPlacedV1] = [orders.placed((product, 1)) for _ in range(20)]

    async with run_app(make_settings(consumer_prefetch=20)), bus.tap("stock.#") as queue:
        await asyncio.gather(*(bus.publish(as_event(order)) for order in placed))
        answers = await bus.first_about(queue, [o.order_id for o in placed], timeout=20)

    types = [answer["type"] for answer in answers.values()]
    assert types.count("stock.reserved.v1") == 5
    assert types.count("stock.rejected.v1") == 15
    assert await saga.stock(product) == 0
