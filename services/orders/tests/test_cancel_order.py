"""Cancelling: the order is cancelled at once and `order.cancelled` asks catalog for the stock."""

from __future__ import annotations

from typing import Any

import httpx
from orders_test_support import OrdersDb, sample

from fleetctl.testing import assert_problem


async def test_cancelling_a_pending_order_stages_order_cancelled_with_its_items(
    client: httpx.AsyncClient, customer: Any, catalog: Any, place: Any, db: OrdersDb
) -> None:
    order = await place(
        [
            {"product_id": catalog.add(), "quantity": 2},
            {"product_id": catalog.add(), "quantity": 1},
        ]
    )
    before = sample("orders_cancelled_total")

    response = await client.post(f"/v1/orders/{order['id']}/cancel", headers=customer.headers)

    assert response.status_code == 202
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["reason"] == "cancelled by customer"
    assert cancelled["updated_at"] >= order["updated_at"]
    assert cancelled["items"] == order["items"]
    assert await db.status(order["id"]) == "cancelled"
    [event] = await db.events(order["id"], "order.cancelled.v1")
    assert event["data"] == {
        "order_id": order["id"],
        "user_id": customer.id,
        "reason": "cancelled by customer",
        "reason_code": "by_customer",
        "items": [
            {"product_id": i["product_id"], "quantity": i["quantity"]} for i in order["items"]
        ],
    }
    assert sample("orders_cancelled_total") == before + 1


async def test_cancelling_twice_is_409_and_stages_one_event(
    client: httpx.AsyncClient, customer: Any, place: Any, db: OrdersDb
) -> None:
    order = await place()

    first = await client.post(f"/v1/orders/{order['id']}/cancel", headers=customer.headers)
    second = await client.post(f"/v1/orders/{order['id']}/cancel", headers=customer.headers)

    assert first.status_code == 202
    assert_problem(second, 409, "order-not-cancellable")
    assert len(await db.events(order["id"], "order.cancelled.v1")) == 1
