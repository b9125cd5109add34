"""Reading orders: one's own only, by id or as newest-first keyset pages."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from fleetctl.testing import assert_problem


async def test_customer_reads_their_order_as_placed(
    client: httpx.AsyncClient, customer: Any, place: Any
) -> None:
    order = await place()

    response = await client.get(f"/v1/orders/{order['id']}", headers=customer.headers)

    assert response.status_code == 200
    assert response.json() == order


async def test_someone_elses_order_reads_as_not_found(
    client: httpx.AsyncClient, new_customer: Any, place: Any
) -> None:
    order = await place()
    stranger = new_customer()

    read = await client.get(f"/v1/orders/{order['id']}", headers=stranger.headers)
    cancel = await client.post(f"/v1/orders/{order['id']}/cancel", headers=stranger.headers)

    assert_problem(read, 404, "order-not-found")
    assert_problem(cancel, 404, "order-not-found")


async def test_unknown_id_is_404_and_malformed_id_is_422(
    client: httpx.AsyncClient, customer: Any
) -> None:
    assert_problem(await client.get(f"/v1/orders/{uuid.uuid4()}", headers=customer.headers), 404)
    assert_problem(await client.get("/v1/orders/not-a-uuid", headers=customer.headers), 422)
    assert_problem(await client.post("/v1/orders/42/cancel", headers=customer.headers), 422)


async def test_reading_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/orders"), 401)
    assert_problem(await client.get(f"/v1/orders/{uuid.uuid4()}"), 401)


async def test_list_pages_through_own_orders_newest_first(
    client: httpx.AsyncClient, customer: Any, new_customer: Any, place: Any, catalog: Any
) -> None:
    placed = [(await place())["id"] for _ in range(5)]
    stranger = new_customer()
    await client.post(
        "/v1/orders",
        json={"items": [{"product_id": catalog.add(), "quantity": 1}]},
        headers=stranger.with_key(),
    )

    seen: list[str] = []
    cursors: list[str | None] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        response = await client.get("/v1/orders", params=params, headers=customer.headers)
        assert response.status_code == 200
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursors.append(page["next_cursor"])
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}

    assert seen == list(reversed(placed))
    assert len(cursors) == 3


async def test_list_uses_twenty_by_default_and_caps_large_limits(
    start_app: Any, customer: Any, catalog: Any
) -> None:
    async with start_app(orders_max_page_size=3) as client:
        for _ in range(4):
            await client.post(
                "/v1/orders",
                json={"items": [{"product_id": catalog.add(), "quantity": 1}]},
                headers=customer.with_key(),
            )
        capped = (await client.get("/v1/orders?limit=500", headers=customer.headers)).json()
        default = (await client.get("/v1/orders", headers=customer.headers)).json()

    assert len(capped["items"]) == 3
    assert capped["next_cursor"] is not None
    assert len(default["items"]) == 3


async def test_bad_limit_or_cursor_is_422(client: httpx.AsyncClient, customer: Any) -> None:
    assert_problem(await client.get("/v1/orders?limit=0", headers=customer.headers), 422)
    assert_problem(
        await client.get("/v1/orders?cursor=bm90LWEtY3Vyc29y", headers=customer.headers),
        422,
        "invalid-cursor",
    )
