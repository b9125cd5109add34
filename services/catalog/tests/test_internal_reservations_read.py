"""The worker reads every reservation at `GET /internal/v1/reservations` as itself; nobody else
may. Keyset pages by (order_id, product_id), the order of a merge join with orders sorted by id:
any page size visits every reservation exactly once, and each page is read on the primary key
(checked with EXPLAIN on 100,000 reservations, rolled back afterwards)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.repository import RESERVATIONS_FIRST_PAGE, RESERVATIONS_PAGE_AFTER
from chassis.sql import sql
from fleetctl.testing import assert_problem
from fleetctl.tokens import TestTokenIssuer

PATH = "/internal/v1/reservations"
HEADER = "Fleet-Service-Authorization"

Saga = Any  # the `saga` fixture: handlers, products, stock and the outbox of the catalog
Orders = Any  # the `orders` fixture: builders of order events


def _as(token_issuer: TestTokenIssuer, caller: str, audience: str = "catalog") -> dict[str, str]:
    return {HEADER: f"Bearer {token_issuer.issue_service(caller=caller, audience=audience)}"}


@pytest.fixture
def worker(token_issuer: TestTokenIssuer) -> dict[str, str]:
    return _as(token_issuer, "worker")


async def walk(
    client: httpx.AsyncClient, headers: dict[str, str], *, limit: int
) -> list[dict[str, Any]]:
    """Every reservation, page after page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(PATH, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["after"] = page["next_cursor"]


async def test_the_worker_reads_reserved_and_released_stock_of_each_order_line(
    client: httpx.AsyncClient, saga: Saga, orders: Orders, worker: dict[str, str]
) -> None:
    kettle, mug = await saga.product(stock=5), await saga.product(stock=5)
    kept = orders.placed((kettle, 2), (mug, 1))
    cancelled = orders.placed((kettle, 3))
    await saga.handle(kept)
    await saga.handle(cancelled)
    await saga.handle(orders.cancelled(cancelled))

    mine = {
        (item["order_id"], item["product_id"]): item
        for item in await walk(client, worker, limit=1000)
        if item["order_id"] in {str(kept.order_id), str(cancelled.order_id)}
    }

    assert {key: (i["quantity"], i["status"]) for key, i in mine.items()} == {
        (str(kept.order_id), str(kettle)): (2, "reserved"),
        (str(kept.order_id), str(mug)): (1, "reserved"),
        (str(cancelled.order_id), str(kettle)): (3, "released"),
    }
    released = mine[(str(cancelled.order_id), str(kettle))]
    assert datetime.fromisoformat(released["released_at"]) >= datetime.fromisoformat(
        released["created_at"]
    )
    assert mine[(str(kept.order_id), str(kettle))]["released_at"] is None


async def test_small_pages_visit_every_reservation_once_in_order_id_then_product_id_order(
    client: httpx.AsyncClient, saga: Saga, orders: Orders, worker: dict[str, str]
) -> None:
    products = [await saga.product(stock=10) for _ in range(3)]
    # Orders of several lines: page boundaries fall between lines of one order too.
    for _ in range(4):
        await saga.handle(orders.placed(*((product, 1) for product in products)))

    in_small_pages = await walk(client, worker, limit=2)
    in_one_page = await walk(client, worker, limit=1000)

    keys = [(uuid.UUID(i["order_id"]), uuid.UUID(i["product_id"])) for i in in_small_pages]
    assert keys == sorted(set(keys))  # ascending, none twice
    assert in_small_pages == in_one_page
    assert len(in_one_page) >= 12


async def test_the_reservations_read_refuses_every_caller_but_the_worker(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, user_headers: dict[str, str]
) -> None:
    user_token = user_headers["Authorization"].removeprefix("Bearer ")

    anonymous = await client.get(PATH)
    as_user = await client.get(PATH, headers=user_headers)
    user_as_service = await client.get(PATH, headers={HEADER: f"Bearer {user_token}"})
    for_orders = await client.get(PATH, headers=_as(token_issuer, "worker", "orders"))
    from_gateway = await client.get(PATH, headers=_as(token_issuer, "gateway"))
    from_orders = await client.get(PATH, headers=_as(token_issuer, "orders"))

    assert_problem(anonymous, 401, "invalid-service-token")
    assert 'realm="fleet-service"' in anonymous.headers["www-authenticate"]
    assert_problem(as_user, 401, "invalid-service-token")
    assert_problem(user_as_service, 401, "invalid-service-token")
    assert_problem(for_orders, 401, "invalid-service-token")
    assert_problem(from_gateway, 403, "caller-not-allowed")
    assert_problem(from_orders, 403, "caller-not-allowed")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=many", "after=bm90LWEtY3Vyc29y"])
async def test_a_bad_query_is_a_422_problem(
    client: httpx.AsyncClient, worker: dict[str, str], query: str
) -> None:
    assert_problem(await client.get(f"{PATH}?{query}", headers=worker), 422)


async def test_a_cursor_of_the_product_list_is_refused(
    client: httpx.AsyncClient, create_product: Any, worker: dict[str, str]
) -> None:
    for _ in range(2):
        await create_product()
    cursor = (await client.get("/v1/products", params={"limit": 1})).json()["next_cursor"]

    response = await client.get(PATH, params={"after": cursor}, headers=worker)

    assert_problem(response, 422, "invalid-cursor")


async def test_the_reservations_read_is_not_in_the_public_document(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/internal/v1/reservations")]


# --- the plans of the pages' statements on 100,000 reservations ------------------------------


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


async def test_every_page_is_read_on_the_primary_key_of_100000_reservations(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        statements = await sql(session)
        product = await statements.fetchval(
            "INSERT INTO catalog.products (sku, name, price_cents, stock)"
            " VALUES ($1, 'Plan kettle', 1000, 0) RETURNING id",
            f"PLAN-{uuid.uuid4().hex[:12].upper()}",
        )
        # A line each of 100,000 orders; gone again with the rollback.
        await statements.execute(
            "INSERT INTO catalog.reservations (order_id, product_id, quantity)"
            " SELECT gen_random_uuid(), $1, 1 FROM generate_series(1, 100000)",
            product,
        )
        await statements.execute("ANALYZE catalog.reservations")
        plans = [
            await statements.fetchval(f"EXPLAIN (FORMAT JSON) {RESERVATIONS_FIRST_PAGE}", 501),
            await statements.fetchval(
                f"EXPLAIN (FORMAT JSON) {RESERVATIONS_PAGE_AFTER}",
                501,
                uuid.UUID(int=2**127),
                product,
            ),
        ]
        await session.rollback()

    for explained in plans:
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        nodes = plan_nodes(plan)
        assert "pk_reservations" in {n.get("Index Name") for n in nodes}, json.dumps(plan)
        scans = [n for n in nodes if n["Node Type"] == "Seq Scan" or "Sort" in n["Node Type"]]
        assert not scans, json.dumps(plan)
