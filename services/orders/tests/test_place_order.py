"""Placing an order: catalog prices, one transaction with `order.placed`, and clear refusals."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from orders_catalog_stub import CatalogStub, closed_port_url
from orders_test_support import OrdersDb, sample

from fleetctl.testing import assert_problem
from orders.admission import OrderAdmission
from orders.repository import IdempotencyRepository


async def test_placed_order_is_pending_at_catalog_prices_with_order_placed_staged(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    kettle, mug = catalog.add(price_cents=2599), catalog.add(price_cents=450)
    placed_before = sample("orders_placed_total")

    response = await client.post(
        "/v1/orders",
        json={"items": [{"product_id": kettle, "quantity": 1}, {"product_id": mug, "quantity": 3}]},
        headers=customer.with_key(),
    )

    assert response.status_code == 202, response.text
    order = response.json()
    assert order == {
        "id": order["id"],
        "status": "pending",
        "items": [
            {"product_id": kettle, "quantity": 1, "unit_price_cents": 2599},
            {"product_id": mug, "quantity": 3, "unit_price_cents": 450},
        ],
        "total_cents": 2599 + 3 * 450,
        "currency": "EUR",
        "created_at": order["created_at"],
        "updated_at": order["created_at"],
        "reason": None,
    }
    assert response.headers["location"] == f"/v1/orders/{order['id']}"
    assert "idempotent-replayed" not in response.headers
    [row] = await db.orders_of(customer.id)
    assert (str(row["id"]), row["status"], row["total_cents"]) == (order["id"], "pending", 3949)
    [event] = await db.events(order["id"])
    assert event["type"] == "order.placed.v1"
    assert event["source"] == "/fleet/orders"
    assert event["data"] == {
        "order_id": order["id"],
        "user_id": customer.id,
        "items": order["items"],
        "total_cents": 3949,
        "currency": "EUR",
    }
    assert sample("orders_placed_total") == placed_before + 1


async def test_price_changes_after_placing_do_not_change_the_order(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, place: Any
) -> None:
    product = catalog.add(price_cents=1000)
    order = await place([{"product_id": product, "quantity": 2}])

    catalog.set_price(product, 9999)
    fetched = (await client.get(f"/v1/orders/{order['id']}", headers=customer.headers)).json()

    assert fetched["items"][0]["unit_price_cents"] == 1000
    assert fetched["total_cents"] == 2000


async def test_failure_after_staging_the_event_leaves_neither_order_nor_event(
    client: httpx.AsyncClient,
    customer: Any,
    catalog: CatalogStub,
    db: OrdersDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = {"items": [{"product_id": catalog.add(), "quantity": 1}]}
    headers = customer.with_key()

    async def crash(*_: Any, **__: Any) -> bool:
        raise RuntimeError("database went away after the outbox row was written")

    with monkeypatch.context() as patch:
        patch.setattr(IdempotencyRepository, "record", crash)
        failed = await client.post("/v1/orders", json=body, headers=headers)

    assert failed.status_code == 500
    assert await db.orders_of(customer.id) == []
    assert await db.events_of_user(customer.id) == []
    # Nothing was stored for the key either: the client's retry is processed afresh.
    retried = await client.post("/v1/orders", json=body, headers=headers)
    assert retried.status_code == 202
    assert "idempotent-replayed" not in retried.headers
    assert len(await db.orders_of(customer.id)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 0}]},
        {"items": [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 1001}]},
        {"items": [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": "2"}]},
        {"items": [{"product_id": "not-a-uuid", "quantity": 1}]},
        {"items": [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 1}], "x": 1},
        {"items": [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 1, "p": 1}]},
        {"items": [{"product_id": "00000000-0000-0000-0000-000000000001", "quantity": 1}] * 2},
        {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1} for _ in range(51)]},
        {},
    ],
    ids=[
        "no-items",
        "quantity-0",
        "quantity-1001",
        "quantity-as-string",
        "malformed-product-id",
        "unknown-field",
        "unknown-item-field",
        "duplicate-product",
        "51-items",
        "no-body-fields",
    ],
)
async def test_invalid_bodies_are_422_and_store_nothing(
    client: httpx.AsyncClient, customer: Any, db: OrdersDb, body: Any
) -> None:
    response = await client.post("/v1/orders", json=body, headers=customer.with_key())

    assert_problem(response, 422, "validation-error")
    assert await db.orders_of(customer.id) == []


async def test_unknown_product_is_422_naming_it(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    unknown = str(uuid.uuid4())
    body = {
        "items": [
            {"product_id": catalog.add(), "quantity": 1},
            {"product_id": unknown, "quantity": 1},
        ]
    }

    response = await client.post("/v1/orders", json=body, headers=customer.with_key())

    assert_problem(response, 422, "unknown-product")
    assert response.json()["product_ids"] == [unknown]
    assert await db.orders_of(customer.id) == []


async def test_items_priced_in_different_currencies_are_422(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub
) -> None:
    body = {
        "items": [
            {"product_id": catalog.add(currency="EUR"), "quantity": 1},
            {"product_id": catalog.add(currency="USD"), "quantity": 1},
        ]
    }

    response = await client.post("/v1/orders", json=body, headers=customer.with_key())

    assert_problem(response, 422, "mixed-currencies")


async def test_unreachable_catalog_is_a_quick_503_with_retry_after(
    start_app: Any, customer: Any, db: OrdersDb
) -> None:
    body = {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]}
    async with start_app(catalog_url=closed_port_url()) as client:
        started = time.monotonic()
        response = await client.post("/v1/orders", json=body, headers=customer.with_key())
        elapsed = time.monotonic() - started

    assert_problem(response, 503, "catalog-unavailable")
    assert response.headers["retry-after"] == "2"
    assert elapsed < 2
    assert await db.orders_of(customer.id) == []


async def test_slow_catalog_is_503_at_the_catalog_timeout_not_a_hang(
    start_app: Any, customer: Any, catalog: CatalogStub
) -> None:
    body = {
        "items": [
            {"product_id": catalog.add(), "quantity": 1},
            {"product_id": catalog.add(delay=10), "quantity": 1},
        ]
    }
    async with start_app(catalog_timeout_seconds=0.3) as client:
        started = time.monotonic()
        response = await client.post("/v1/orders", json=body, headers=customer.with_key())
        elapsed = time.monotonic() - started

    assert_problem(response, 503, "catalog-unavailable")
    assert "retry-after" in response.headers
    assert 0.3 <= elapsed < 1.5


async def test_placing_needs_a_valid_bearer_token(
    client: httpx.AsyncClient, catalog: CatalogStub
) -> None:
    body = {"items": [{"product_id": catalog.add(), "quantity": 1}]}

    missing = await client.post("/v1/orders", json=body, headers={"Idempotency-Key": "k"})
    forged = await client.post(
        "/v1/orders",
        json=body,
        headers={"Idempotency-Key": "k", "Authorization": "Bearer not-a-jwt"},
    )

    assert_problem(missing, 401)
    assert_problem(forged, 401)


async def test_an_order_refused_by_admission_control_is_a_quick_503_and_writes_nothing(
    client: httpx.AsyncClient,
    customer: Any,
    catalog: CatalogStub,
    db: OrdersDb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if recent orders had been decided far too late: the gate admits nothing.
    monkeypatch.setattr(OrderAdmission, "share", property(lambda _: 0.0))
    product = catalog.add()

    response = await client.post(
        "/v1/orders",
        json={"items": [{"product_id": product, "quantity": 1}]},
        headers=customer.with_key(),
    )

    assert_problem(response, 503, "overloaded")
    assert response.headers["retry-after"] == "1"
    assert await db.orders_of(customer.id) == []
