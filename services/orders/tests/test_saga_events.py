"""catalog's answers, delivered through the real broker and consumer, move the order on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from orders_test_support import OrdersDb, catalog_event, sample

from chassis.messaging.dlq import list_dead_letters
from contracts.events import LineItem, RejectionReason, StockRejectedV1, StockReservedV1
from fleetctl.testing import Bus, assert_problem, eventually


def _reserved(order: dict[str, Any]) -> StockReservedV1:
    return StockReservedV1(
        order_id=order["id"],
        items=[
            LineItem(product_id=i["product_id"], quantity=i["quantity"]) for i in order["items"]
        ],
    )


def _status_becomes(db: OrdersDb, order_id: str, status: str) -> Callable[[], Any]:
    async def check() -> bool:
        return await db.status(order_id) == status

    return check


def _events_reach(db: OrdersDb, order_id: str, event_type: str, count: int) -> Callable[[], Any]:
    async def check() -> bool:
        return len(await db.events(order_id, event_type)) >= count

    return check


async def test_stock_reserved_confirms_the_order_and_stages_order_confirmed(
    client: httpx.AsyncClient,
    customer: Any,
    place: Any,
    db: OrdersDb,
    bus: Bus,
) -> None:
    order = await place()
    confirmed_before = sample("orders_confirmed_total")
    saga_before = sample("order_saga_duration_seconds_count")

    await bus.publish(catalog_event(_reserved(order), subject=order["id"]))

    await eventually(_status_becomes(db, order["id"], "confirmed"))
    fetched = (await client.get(f"/v1/orders/{order['id']}", headers=customer.headers)).json()
    assert (fetched["status"], fetched["reason"]) == ("confirmed", None)
    [event] = await db.events(order["id"], "order.confirmed.v1")
    assert event["data"] == {
        "order_id": order["id"],
        "user_id": customer.id,
        "total_cents": order["total_cents"],
        "currency": order["currency"],
    }
    assert sample("orders_confirmed_total") == confirmed_before + 1
    assert sample("order_saga_duration_seconds_count") == saga_before + 1


async def test_the_same_event_delivered_twice_confirms_once(
    client: httpx.AsyncClient, place: Any, db: OrdersDb, bus: Bus
) -> None:
    order = await place()
    event = catalog_event(_reserved(order), subject=order["id"])
    labels = {"event_type": "stock.reserved.v1", "outcome": "duplicate"}
    duplicates_before = sample("events_consumed_total", labels)

    await bus.publish(event)
    await bus.publish(event)

    async def duplicate_seen() -> bool:
        return sample("events_consumed_total", labels) > duplicates_before

    await eventually(duplicate_seen)
    assert await db.status(order["id"]) == "confirmed"
    assert len(await db.events(order["id"], "order.confirmed.v1")) == 1


async def test_stock_rejected_rejects_the_order_with_catalogs_reason(
    client: httpx.AsyncClient,
    customer: Any,
    place: Any,
    db: OrdersDb,
    bus: Bus,
) -> None:
    order = await place()
    rejected = {"reason": "out_of_stock"}
    before = sample("orders_rejected_total", rejected)
    payload = StockRejectedV1(
        order_id=order["id"],
        reason="not enough stock",
        product_ids=[order["items"][0]["product_id"]],
        reason_code=RejectionReason.OUT_OF_STOCK,
    )

    await bus.publish(catalog_event(payload, subject=order["id"]))

    await eventually(_status_becomes(db, order["id"], "rejected"))
    fetched = (await client.get(f"/v1/orders/{order['id']}", headers=customer.headers)).json()
    assert (fetched["status"], fetched["reason"]) == ("rejected", "not enough stock")
    [event] = await db.events(order["id"], "order.rejected.v1")
    assert event["data"] == {
        "order_id": order["id"],
        "user_id": customer.id,
        "reason": "not enough stock",
        "reason_code": "out_of_stock",
    }
    # Counted by the code, whatever catalog's wording.
    assert sample("orders_rejected_total", rejected) == before + 1


async def test_cancelling_a_confirmed_order_releases_its_items_and_rejected_is_final(
    client: httpx.AsyncClient,
    customer: Any,
    place: Any,
    db: OrdersDb,
    bus: Bus,
) -> None:
    confirmed, rejected = await place(), await place()
    await bus.publish(catalog_event(_reserved(confirmed), subject=confirmed["id"]))
    refusal = StockRejectedV1(order_id=rejected["id"], reason="not enough stock")
    await bus.publish(catalog_event(refusal, subject=rejected["id"]))
    await eventually(_status_becomes(db, confirmed["id"], "confirmed"))
    await eventually(_status_becomes(db, rejected["id"], "rejected"))

    cancel_confirmed = await client.post(
        f"/v1/orders/{confirmed['id']}/cancel", headers=customer.headers
    )
    cancel_rejected = await client.post(
        f"/v1/orders/{rejected['id']}/cancel", headers=customer.headers
    )

    assert cancel_confirmed.status_code == 202
    assert cancel_confirmed.json()["status"] == "cancelled"
    [event] = await db.events(confirmed["id"], "order.cancelled.v1")
    assert event["data"]["items"] == _reserved(confirmed).model_dump(mode="json")["items"]
    assert_problem(cancel_rejected, 409, "order-not-cancellable")
    assert await db.events(rejected["id"], "order.cancelled.v1") == []


async def test_stock_reserved_after_a_cancel_is_compensated_with_order_cancelled(
    client: httpx.AsyncClient, customer: Any, place: Any, db: OrdersDb, bus: Bus
) -> None:
    order = await place()
    await client.post(f"/v1/orders/{order['id']}/cancel", headers=customer.headers)

    await bus.publish(catalog_event(_reserved(order), subject=order["id"]))

    await eventually(_events_reach(db, order["id"], "order.cancelled.v1", 2))
    customers_cancel, compensation = await db.events(order["id"], "order.cancelled.v1")
    assert customers_cancel["data"]["reason"] == "cancelled by customer"
    assert customers_cancel["data"]["reason_code"] == "by_customer"
    assert compensation["data"]["reason_code"] == "compensation"
    assert compensation["data"]["items"] == _reserved(order).model_dump(mode="json")["items"]
    assert compensation["causationid"] is not None
    assert await db.status(order["id"]) == "cancelled"
    assert await db.events(order["id"], "order.confirmed.v1") == []


async def test_stock_rejected_for_a_cancelled_order_changes_nothing(
    client: httpx.AsyncClient,
    customer: Any,
    place: Any,
    db: OrdersDb,
    bus: Bus,
) -> None:
    order = await place()
    await client.post(f"/v1/orders/{order['id']}/cancel", headers=customer.headers)
    payload = StockRejectedV1(order_id=order["id"], reason="not enough stock")
    event = catalog_event(payload, subject=order["id"])

    await bus.publish(event)

    async def handled() -> bool:
        return await db.handled(event.id)

    await eventually(handled)
    fetched = (await client.get(f"/v1/orders/{order['id']}", headers=customer.headers)).json()
    assert (fetched["status"], fetched["reason"]) == ("cancelled", "cancelled by customer")
    assert await db.events(order["id"], "order.rejected.v1") == []


async def test_answer_about_an_unknown_order_is_dead_lettered(
    client: httpx.AsyncClient, make_settings: Any, bus: Bus
) -> None:
    stray = StockReservedV1(
        order_id=uuid.uuid4(), items=[LineItem(product_id=uuid.uuid4(), quantity=1)]
    )
    event = catalog_event(stray, subject=str(stray.order_id))

    await bus.publish(event)

    async def dead_lettered() -> bool:
        letters = await list_dead_letters(make_settings(), "orders")
        return any(letter.message_id == str(event.id) for letter in letters)

    await eventually(dead_lettered, interval=0.2)


FAST_TIMEOUT = {"order_confirmation_timeout_seconds": 0.3, "order_timeout_scan_seconds": 0.1}


async def _timed_out_order(client: httpx.AsyncClient, customer: Any, catalog: Any) -> Any:
    response = await client.post(
        "/v1/orders",
        json={"items": [{"product_id": catalog.add(), "quantity": 4}]},
        headers=customer.with_key(),
    )
    assert response.json()["status"] == "pending"
    return response.json()


async def test_order_without_an_answer_in_time_is_rejected(
    start_app: Any, customer: Any, catalog: Any, db: OrdersDb
) -> None:
    timeouts_before = sample("orders_rejected_total", {"reason": "timeout"})
    async with start_app(**FAST_TIMEOUT) as client:
        order = await _timed_out_order(client, customer, catalog)

        await eventually(_status_becomes(db, order["id"], "rejected"), timeout=5)
        fetched = (await client.get(f"/v1/orders/{order['id']}", headers=customer.headers)).json()

    assert fetched["reason"] == "timed out waiting for stock"
    [rejection] = await db.events(order["id"], "order.rejected.v1")
    assert rejection["data"]["reason"] == "timed out waiting for stock"
    assert rejection["data"]["reason_code"] == "timed_out"
    assert sample("orders_rejected_total", {"reason": "timeout"}) >= timeouts_before + 1


async def test_stock_reserved_after_the_timeout_is_released(
    start_app: Any, customer: Any, catalog: Any, db: OrdersDb, bus: Bus
) -> None:
    async with start_app(**FAST_TIMEOUT) as client:
        order = await _timed_out_order(client, customer, catalog)
        await eventually(_status_becomes(db, order["id"], "rejected"), timeout=5)

        await bus.publish(catalog_event(_reserved(order), subject=order["id"]))

        await eventually(_events_reach(db, order["id"], "order.cancelled.v1", 1))
    [release] = await db.events(order["id"], "order.cancelled.v1")
    assert release["data"]["items"] == [
        {"product_id": order["items"][0]["product_id"], "quantity": 4}
    ]
    assert await db.status(order["id"]) == "rejected"
