"""`Idempotency-Key`: required, replayed for the same body, refused for another, race-safe."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from orders_catalog_stub import CatalogStub
from orders_test_support import OrdersDb

from fleetctl.testing import assert_problem


def _body(catalog: CatalogStub, quantity: int = 1) -> dict[str, Any]:
    return {"items": [{"product_id": catalog.add(), "quantity": quantity}]}


async def test_missing_idempotency_key_is_400_before_the_body_is_read(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    valid = await client.post("/v1/orders", json=_body(catalog), headers=customer.headers)
    invalid_body = await client.post("/v1/orders", json={"items": []}, headers=customer.headers)

    assert_problem(valid, 400, "idempotency-key-required")
    assert_problem(invalid_body, 400, "idempotency-key-required")
    assert await db.orders_of(customer.id) == []


@pytest.mark.parametrize("key", ["", "k" * 201, "tab\there"], ids=["empty", "201-chars", "control"])
async def test_malformed_idempotency_key_is_400(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, key: str
) -> None:
    response = await client.post(
        "/v1/orders", json=_body(catalog), headers={**customer.headers, "Idempotency-Key": key}
    )

    assert_problem(response, 400, "idempotency-key-invalid")


async def test_retry_with_the_same_key_and_body_replays_the_first_response(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    body, headers = _body(catalog), customer.with_key("k" * 200)
    first = await client.post("/v1/orders", json=body, headers=headers)
    # The order moves on meanwhile; the replay is still the response the first request got.
    await client.post(f"/v1/orders/{first.json()['id']}/cancel", headers=customer.headers)

    # Same content, other formatting and key order: the canonical JSON is what is compared.
    reordered = {"items": [{"quantity": 1, "product_id": body["items"][0]["product_id"].upper()}]}
    again = await client.post("/v1/orders", json=reordered, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.json()["status"] == "pending"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(await db.orders_of(customer.id)) == 1
    assert len(await db.events(first.json()["id"], "order.placed.v1")) == 1


async def test_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    body, headers = _body(catalog), customer.with_key()
    await client.post("/v1/orders", json=body, headers=headers)
    other = {"items": [{**body["items"][0], "quantity": 2}]}

    response = await client.post("/v1/orders", json=other, headers=headers)

    assert_problem(response, 422, "idempotency-key-reused")
    assert len(await db.orders_of(customer.id)) == 1


async def test_keys_belong_to_their_user(
    client: httpx.AsyncClient, new_customer: Any, catalog: CatalogStub
) -> None:
    ada, bob = new_customer(), new_customer()
    body = _body(catalog)

    for_ada = await client.post("/v1/orders", json=body, headers=ada.with_key("shared-key"))
    for_bob = await client.post("/v1/orders", json=body, headers=bob.with_key("shared-key"))

    assert for_ada.status_code == for_bob.status_code == 202
    assert for_ada.json()["id"] != for_bob.json()["id"]
    assert "idempotent-replayed" not in for_bob.headers


async def test_ten_concurrent_requests_with_one_key_create_exactly_one_order(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub, db: OrdersDb
) -> None:
    body, headers = _body(catalog, quantity=2), customer.with_key()

    responses = await asyncio.gather(
        *(client.post("/v1/orders", json=body, headers=headers) for _ in range(10))
    )

    assert [r.status_code for r in responses] == [202] * 10, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    [order] = await db.orders_of(customer.id)
    assert len(await db.events(str(order["id"]), "order.placed.v1")) == 1


async def test_a_failed_attempt_does_not_use_up_the_key(
    client: httpx.AsyncClient, customer: Any, catalog: CatalogStub
) -> None:
    body, headers = _body(catalog), customer.with_key()
    product = body["items"][0]["product_id"]
    catalog.hide(product)
    refused = await client.post("/v1/orders", json=body, headers=headers)
    catalog.show(product)

    accepted = await client.post("/v1/orders", json=body, headers=headers)

    assert_problem(refused, 422, "unknown-product")
    assert accepted.status_code == 202
    assert "idempotent-replayed" not in accepted.headers
