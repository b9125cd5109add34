"""The worker reads every order at `GET /internal/v1/orders` as itself; nobody else may.

Keyset pages by (created_at, id) for exports, by id for the reconciliation's merge join: each
walk visits every selected order exactly once, and each page's statement runs on an index in its
sort order (checked with EXPLAIN on 100,000 orders, rolled back afterwards).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from orders_test_support import OrdersDb
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.pagination import PageKey
from chassis.sql import sql
from fleetctl.testing import assert_problem
from fleetctl.tokens import TestTokenIssuer
from orders.repository import LINES_OF, IdKey, OrderBy, Selection, page_statement

PATH = "/internal/v1/orders"
HEADER = "Fleet-Service-Authorization"


def _as(token_issuer: TestTokenIssuer, caller: str, audience: str = "orders") -> dict[str, str]:
    return {HEADER: f"Bearer {token_issuer.issue_service(caller=caller, audience=audience)}"}


@pytest.fixture
def worker(token_issuer: TestTokenIssuer) -> dict[str, str]:
    return _as(token_issuer, "worker")


def a_window() -> datetime:
    """The start of a stretch of time no other test's orders are in (years before any order a
    request placed), so a time range selects only this test's orders."""
    return datetime(2001, 1, 1, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 10_000_000)


async def insert_order(
    db: OrdersDb,
    *,
    user_id: uuid.UUID,
    created_at: datetime,
    status: str = "confirmed",
    lines: Sequence[tuple[int, int]] = ((1, 1000),),
) -> dict[str, Any]:
    """An order with these (quantity, unit price) lines, written straight to the schema; the
    item the route should answer for it."""
    order_id = uuid.uuid4()
    items: list[dict[str, Any]] = [
        {"product_id": str(uuid.uuid4()), "quantity": q, "unit_price_cents": p} for q, p in lines
    ]
    total = sum(q * p for q, p in lines)
    async with AsyncSession(db.engine) as session:
        statements = await sql(session)
        await statements.execute(
            "INSERT INTO orders.orders (id, user_id, status, total_cents, currency, created_at,"
            " updated_at) VALUES ($1, $2, $3, $4, 'EUR', $5, $5)",
            order_id,
            user_id,
            status,
            total,
            created_at,
        )
        for position, item in enumerate(items):
            await statements.execute(
                "INSERT INTO orders.order_items (order_id, product_id, position, quantity,"
                " unit_price_cents) VALUES ($1, $2, $3, $4, $5)",
                order_id,
                uuid.UUID(item["product_id"]),
                position,
                item["quantity"],
                item["unit_price_cents"],
            )
        await session.commit()
    return {
        "id": str(order_id),
        "user_id": str(user_id),
        "status": status,
        "total_cents": total,
        "currency": "EUR",
        "reason": None,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": created_at.isoformat().replace("+00:00", "Z"),
        "items": items,
    }


async def walk(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of the pages from the first to the last; and how many pages there were."""
    items: list[dict[str, Any]] = []
    pages = 0
    query = {
        key: value.isoformat() if isinstance(value, datetime) else str(value)
        for key, value in params.items()
    }
    while True:
        response = await client.get(PATH, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        pages += 1
        if page["next_cursor"] is None:
            return items, pages
        query["after"] = page["next_cursor"]


def normalised(item: dict[str, Any]) -> dict[str, Any]:
    """An item with its times as instants, so `Z` and `+00:00` compare equal."""
    return {
        **item,
        "created_at": datetime.fromisoformat(item["created_at"]),
        "updated_at": datetime.fromisoformat(item["updated_at"]),
    }


async def test_the_worker_reads_a_customers_orders_with_their_lines_oldest_first(
    client: httpx.AsyncClient, db: OrdersDb, worker: dict[str, str]
) -> None:
    customer, stranger = uuid.uuid4(), uuid.uuid4()
    start = a_window()
    expected = [
        await insert_order(
            db, user_id=customer, created_at=start + timedelta(seconds=i), lines=[(i + 1, 250)]
        )
        for i in range(4)
    ]
    expected.append(
        await insert_order(
            db, user_id=customer, created_at=start + timedelta(seconds=4), status="cancelled",
            lines=[(2, 100), (1, 999)],
        )
    )  # fmt: skip
    await insert_order(db, user_id=stranger, created_at=start + timedelta(seconds=1))

    items, pages = await walk(client, worker, user_id=customer, limit=2)

    assert [normalised(i) for i in items] == [normalised(i) for i in expected]
    assert pages == 3


async def test_pages_by_creation_and_by_id_each_visit_every_order_once(
    client: httpx.AsyncClient, db: OrdersDb, worker: dict[str, str]
) -> None:
    start = a_window()
    # Three orders share one instant: the page boundary falls among them, the id breaks ties.
    moments = [start, start, start, start + timedelta(seconds=1), start + timedelta(seconds=2)]
    placed = [
        await insert_order(db, user_id=uuid.uuid4(), created_at=moment)
        for moment in moments + moments[:2]
    ]
    window = {"created_since": start, "created_until": start + timedelta(seconds=3)}

    by_creation, _ = await walk(client, worker, order_by="created", limit=2, **window)
    by_id, _ = await walk(client, worker, order_by="id", limit=3, **window)

    def key(item: dict[str, Any]) -> tuple[datetime, uuid.UUID]:
        return datetime.fromisoformat(item["created_at"]), uuid.UUID(item["id"])

    assert [i["id"] for i in by_creation] == [i["id"] for i in sorted(placed, key=key)]
    assert [uuid.UUID(i["id"]) for i in by_id] == sorted(uuid.UUID(i["id"]) for i in placed)


async def test_the_walk_by_id_covers_every_order_of_every_customer_in_id_order(
    client: httpx.AsyncClient, db: OrdersDb, worker: dict[str, str]
) -> None:
    placed = {(await insert_order(db, user_id=uuid.uuid4(), created_at=a_window()))["id"]}
    placed |= {(await insert_order(db, user_id=uuid.uuid4(), created_at=a_window()))["id"]}

    items, _ = await walk(client, worker, order_by="id", limit=1000)

    ids = [uuid.UUID(item["id"]) for item in items]
    assert ids == sorted(set(ids))  # ascending, none twice
    assert placed <= {item["id"] for item in items}


async def test_the_time_range_includes_its_start_and_excludes_its_end(
    client: httpx.AsyncClient, db: OrdersDb, worker: dict[str, str]
) -> None:
    customer, start = uuid.uuid4(), a_window()
    at = [start + timedelta(minutes=i) for i in range(4)]
    placed = [await insert_order(db, user_id=customer, created_at=moment) for moment in at]

    items, _ = await walk(
        client, worker, user_id=customer, created_since=at[1], created_until=at[3]
    )
    until_only, _ = await walk(client, worker, user_id=customer, created_until=at[1])

    assert [i["id"] for i in items] == [placed[1]["id"], placed[2]["id"]]
    assert [i["id"] for i in until_only] == [placed[0]["id"]]


async def test_the_internal_read_refuses_every_caller_but_the_worker(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    user_token = token_issuer.issue(roles=["admin"])

    anonymous = assert_problem(await client.get(PATH), 401, "invalid-service-token")
    as_user = await client.get(PATH, headers={"Authorization": f"Bearer {user_token}"})
    user_as_service = await client.get(PATH, headers={HEADER: f"Bearer {user_token}"})
    for_catalog = await client.get(PATH, headers=_as(token_issuer, "worker", "catalog"))
    from_gateway = await client.get(PATH, headers=_as(token_issuer, "gateway"))

    assert anonymous["status"] == 401
    assert_problem(as_user, 401, "invalid-service-token")
    assert 'realm="fleet-service"' in as_user.headers["www-authenticate"]
    assert_problem(user_as_service, 401, "invalid-service-token")
    assert_problem(for_catalog, 401, "invalid-service-token")
    assert_problem(from_gateway, 403, "caller-not-allowed")


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "order_by=total",
        "user_id=someone",
        "created_since=2026-01-01T00:00:00",  # no time zone: which instant is it?
        "after=bm90LWEtY3Vyc29y",
    ],
)
async def test_a_bad_query_is_a_422_problem(
    client: httpx.AsyncClient, worker: dict[str, str], query: str
) -> None:
    assert_problem(await client.get(f"{PATH}?{query}", headers=worker), 422)


async def test_a_cursor_of_one_sort_order_is_refused_by_the_other(
    client: httpx.AsyncClient, db: OrdersDb, worker: dict[str, str]
) -> None:
    customer, start = uuid.uuid4(), a_window()
    for i in range(2):
        await insert_order(db, user_id=customer, created_at=start + timedelta(seconds=i))
    first = await client.get(PATH, params={"user_id": str(customer), "limit": 1}, headers=worker)
    cursor = first.json()["next_cursor"]

    by_id = await client.get(PATH, params={"order_by": "id", "after": cursor}, headers=worker)

    assert_problem(by_id, 422, "invalid-cursor")


async def test_the_internal_read_is_not_in_the_public_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/internal")]


# --- the plans of the pages' statements on 100,000 orders ------------------------------------

ORDERS_IN_PLAN_TEST = 100_000


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


SOMEONE = uuid.uuid4()
LATER = datetime(2031, 1, 1, tzinfo=UTC)
AFTER = PageKey(LATER + timedelta(hours=5), uuid.UUID(int=0))
BY_CUSTOMER, BY_CREATION, BY_ID = (
    "ix_orders_user_id_created_at_id",
    "ix_orders_created_at_id",
    "pk_orders",
)

# Each page's statement, and the indexes that hold its rows in its order. A customer with a
# fifth of all orders may be read from either index: the planner walks the one by creation and
# skips other customers' orders when that is cheaper than reaching its own from the start.
PAGES: list[tuple[str, Selection, OrderBy, PageKey | IdKey | None, set[str]]] = [
    ("customer", Selection(user_id=SOMEONE), "created", None, {BY_CUSTOMER, BY_CREATION}),
    ("customer, after", Selection(user_id=SOMEONE), "created", AFTER, {BY_CUSTOMER, BY_CREATION}),
    (
        "time range, after",
        Selection(created_since=LATER, created_until=LATER + timedelta(hours=12)),
        "created",
        AFTER,
        {BY_CREATION},
    ),
    ("all by creation", Selection(), "created", None, {BY_CREATION}),
    ("all by id", Selection(), "id", None, {BY_ID}),
    ("all by id, after", Selection(), "id", IdKey(uuid.UUID(int=2**127)), {BY_ID}),
]


async def test_every_page_reads_an_index_in_its_sort_order_on_100000_orders(
    db: OrdersDb,
) -> None:
    async with AsyncSession(db.engine) as session:
        statements = await sql(session)
        # An order a second, each with one line, one customer's every fifth (an export of a
        # long history, 20,000 orders: its pages must not sort all of them), the others' one
        # each; gone again with the rollback.
        await statements.execute(
            """
            INSERT INTO orders.orders (id, user_id, status, total_cents, currency, created_at,
                                       updated_at)
            SELECT gen_random_uuid(),
                   CASE WHEN n % 5 = 0 THEN $3::uuid ELSE md5('plan-' || n)::uuid END, 'confirmed',
                   1000, 'EUR', $1::timestamptz + n * interval '1 second',
                   $1::timestamptz + n * interval '1 second'
            FROM generate_series(1, $2::int) AS n
            """,
            LATER,
            ORDERS_IN_PLAN_TEST,
            SOMEONE,
        )
        await statements.execute(
            "INSERT INTO orders.order_items (order_id, product_id, position, quantity,"
            " unit_price_cents) SELECT id, gen_random_uuid(), 0, 1, 1000 FROM orders.orders"
            " WHERE created_at >= $1",
            LATER,
        )
        await statements.execute("ANALYZE orders.orders")
        await statements.execute("ANALYZE orders.order_items")
        plans: dict[str, Any] = {}
        for name, selection, order_by, after, _ in PAGES:
            statement, args = page_statement(selection, order_by=order_by, after=after, limit=501)
            plans[name] = await statements.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *args)
        page_ids = await statements.fetch(
            "SELECT id FROM orders.orders WHERE created_at >= $1 ORDER BY id LIMIT 501", LATER
        )
        plans["lines"] = await statements.fetchval(
            f"EXPLAIN (FORMAT JSON) {LINES_OF}", [row["id"] for row in page_ids]
        )
        await session.rollback()

    indexes = {name: index for name, *_, index in PAGES} | {"lines": {"pk_order_items"}}
    for name, explained in plans.items():
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        nodes = plan_nodes(plan)
        assert indexes[name] & {n.get("Index Name") for n in nodes}, (name, json.dumps(plan))
        scans = [n for n in nodes if n["Node Type"] == "Seq Scan" or "Sort" in n["Node Type"]]
        assert not scans, (name, json.dumps(plan))
