"""Admin writes announce `product.updated` through the outbox, in the write's own transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from fleetctl.testing import Bus

Saga = Any  # the `saga` fixture: products, stock and the outbox of the catalog


def announced(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": product["id"],
        "sku": product["sku"],
        "name": product["name"],
        "price_cents": product["price_cents"],
        "currency": product["currency"],
        "stock": product["stock"],
    }


async def test_create_and_update_stage_product_updated_with_the_new_state(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    create_product: Callable[..., Any],
    saga: Saga,
) -> None:
    created = await create_product(stock=7)
    patched = await client.patch(
        f"/v1/products/{created['id']}", json={"price_cents": 999}, headers=admin_headers
    )

    events = await saga.staged(created["id"])
    assert [e.type for e in events] == ["product.updated.v1", "product.updated.v1"]
    assert events[0].data == announced(created)
    assert events[1].data == announced(patched.json())
    assert events[1].data["price_cents"] == 999
    assert events[0].body["source"] == "/fleet/catalog"


async def test_product_updated_is_published_to_the_exchange(
    create_product: Callable[..., Any], bus: Bus
) -> None:
    async with bus.tap("product.updated.v1") as queue:
        created = await create_product()
        published = await bus.next_about(queue, created["id"])

    assert published["type"] == "product.updated.v1"
    assert published["data"] == announced(created)


async def test_refused_or_empty_writes_announce_nothing(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    create_product: Callable[..., Any],
    saga: Saga,
) -> None:
    product = await create_product()
    duplicate = {"sku": product["sku"], "name": "Copy", "price_cents": 1}
    unknown = uuid.uuid4()

    refused = await client.post("/v1/products", json=duplicate, headers=admin_headers)
    empty = await client.patch(f"/v1/products/{product['id']}", json={}, headers=admin_headers)
    missing = await client.patch(
        f"/v1/products/{unknown}", json={"stock": 1}, headers=admin_headers
    )

    assert (refused.status_code, empty.status_code, missing.status_code) == (409, 200, 404)
    assert [e.type for e in await saga.staged(product["id"])] == ["product.updated.v1"]
    assert await saga.staged(unknown) == []
