"""The order saga through the public API: orders ⇄ catalog over RabbitMQ, for real."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from e2e_support import RunningFleet, bearer, create_product, register_and_login

from fleetctl.testing import eventually

pytestmark = pytest.mark.e2e
SETTLED = {"confirmed", "rejected", "cancelled"}


async def _product(client: httpx.AsyncClient, *, stock: int, price: int = 1250) -> str:
    return await create_product(client, stock=stock, price=price, name="Saga item")


async def _place(
    client: httpx.AsyncClient,
    token: str,
    product_id: str,
    *,
    quantity: int = 1,
    key: str | None = None,
    request_id: str | None = None,
) -> httpx.Response:
    headers = {**bearer(token), "Idempotency-Key": key or uuid.uuid4().hex}
    if request_id:
        headers["X-Request-ID"] = request_id
    return await client.post(
        "/v1/orders",
        headers=headers,
        json={"items": [{"product_id": product_id, "quantity": quantity}]},
    )


async def _settled(
    client: httpx.AsyncClient, token: str, order_id: str, timeout: float = 15
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        order = (await client.get(f"/v1/orders/{order_id}", headers=bearer(token))).json()
        if order["status"] in SETTLED:
            return dict(order)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"order still {order['status']} after {timeout}s")
        await asyncio.sleep(0.05)


async def _stock(client: httpx.AsyncClient, product_id: str) -> int:
    # The saga changes stock without a write through the gateway: its cached copy may be older.
    current = {"Cache-Control": "no-cache"}
    return int((await client.get(f"/v1/products/{product_id}", headers=current)).json()["stock"])


async def test_placed_order_is_confirmed_and_stock_is_reserved(
    gateway: httpx.AsyncClient,
) -> None:
    product_id = await _product(gateway, stock=10, price=1999)
    session = await register_and_login(gateway)
    placed = await _place(gateway, session["access_token"], product_id, quantity=3)
    assert placed.status_code == 202, placed.text
    assert placed.json()["status"] == "pending"
    assert placed.json()["total_cents"] == 3 * 1999
    order = await _settled(gateway, session["access_token"], placed.json()["id"])
    assert order["status"] == "confirmed"
    assert order["items"] == [{"product_id": product_id, "quantity": 3, "unit_price_cents": 1999}]
    assert await _stock(gateway, product_id) == 7


async def test_twenty_concurrent_orders_for_five_units_confirm_exactly_five(
    gateway: httpx.AsyncClient,
) -> None:
    product_id = await _product(gateway, stock=5)
    session = await register_and_login(gateway)
    token = session["access_token"]
    responses = await asyncio.gather(*(_place(gateway, token, product_id) for _ in range(20)))
    assert [r.status_code for r in responses] == [202] * 20
    orders = await asyncio.gather(*(_settled(gateway, token, r.json()["id"]) for r in responses))
    statuses = sorted(o["status"] for o in orders)
    assert statuses.count("confirmed") == 5
    assert statuses.count("rejected") == 15
    assert all(o["reason"] for o in orders if o["status"] == "rejected")
    assert await _stock(gateway, product_id) == 0


async def test_cancelling_a_confirmed_order_returns_its_stock(gateway: httpx.AsyncClient) -> None:
    product_id = await _product(gateway, stock=4)
    session = await register_and_login(gateway)
    token = session["access_token"]
    placed = await _place(gateway, token, product_id, quantity=4)
    assert (await _settled(gateway, token, placed.json()["id"]))["status"] == "confirmed"
    assert await _stock(gateway, product_id) == 0

    order_id = placed.json()["id"]
    cancelled = await gateway.post(f"/v1/orders/{order_id}/cancel", headers=bearer(token))
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    for _ in range(200):
        if await _stock(gateway, product_id) == 4:
            break
        await asyncio.sleep(0.05)
    assert await _stock(gateway, product_id) == 4
    again = await gateway.post(f"/v1/orders/{order_id}/cancel", headers=bearer(token))
    assert again.status_code == 409


async def test_idempotency_key_replays_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    product_id = await _product(gateway, stock=3)
    session = await register_and_login(gateway)
    token = session["access_token"]
    key = uuid.uuid4().hex
    first = await _place(gateway, token, product_id, key=key)
    second = await _place(gateway, token, product_id, key=key)
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers.get("idempotent-replayed") == "true"
    other_body = await _place(gateway, token, product_id, quantity=2, key=key)
    assert other_body.status_code == 422
    missing = await gateway.post(
        "/v1/orders",
        headers=bearer(token),
        json={"items": [{"product_id": product_id, "quantity": 1}]},
    )
    assert missing.status_code == 400


async def test_someone_elses_order_is_not_found(gateway: httpx.AsyncClient) -> None:
    product_id = await _product(gateway, stock=1)
    owner = await register_and_login(gateway)
    stranger = await register_and_login(gateway)
    placed = await _place(gateway, owner["access_token"], product_id)
    peek = await gateway.get(
        f"/v1/orders/{placed.json()['id']}", headers=bearer(stranger["access_token"])
    )
    assert peek.status_code == 404
    mine = await gateway.get("/v1/orders", headers=bearer(owner["access_token"]))
    assert [o["id"] for o in mine.json()["items"]] == [placed.json()["id"]]


async def test_one_correlation_id_follows_the_order_through_every_service(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    product_id = await _product(gateway, stock=2)
    session = await register_and_login(gateway)
    request_id = f"saga-{uuid.uuid4().hex[:12]}"
    placed = await _place(gateway, session["access_token"], product_id, request_id=request_id)
    await _settled(gateway, session["access_token"], placed.json()["id"])

    def carriers(service: str) -> list[dict[str, Any]]:
        lines = running_fleet.fleet.tail(service).splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in records if request_id in (r.get("correlation_id"), r.get("request_id"))]

    def processed(service: str) -> bool:
        return any(r.get("event") == "event_processed" for r in carriers(service))

    # The services' last log lines reach the supervisor a moment after the order settles.
    await eventually(lambda: processed("catalog") and processed("orders"), timeout=5)
    assert carriers("gateway"), "gateway logged the request"
    assert processed("catalog")
    assert processed("orders")
