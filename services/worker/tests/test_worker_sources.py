"""The worker reads orders and reservations as itself, page after page: `worker.sources` walks
the internal routes of orders and catalog (small real stand-ins over HTTP, `worker_sources_stub`)
with the worker's service token for each, following each page's cursor, one page in hand at a
time, retrying a busy source and stopping at a refusal."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from worker_sources_stub import SourcesStub, running_sources

from chassis.clients import http_client
from fleetctl.tokens import TestTokenIssuer
from worker.settings import WorkerSettings
from worker.sources import (
    ORDERS_PATH,
    RESERVATIONS_PATH,
    OrderRecord,
    OrdersSource,
    ReservationRecord,
    ReservationsSource,
    SourceRefusedError,
    SourceUnavailableError,
    sources,
)

Sources = tuple[OrdersSource, ReservationsSource]


@pytest.fixture
def stub(token_issuer: TestTokenIssuer) -> Iterator[SourcesStub]:
    with running_sources(token_issuer) as running:
        yield running


@pytest.fixture
async def both(stub: SourcesStub, token_issuer: TestTokenIssuer) -> AsyncIterator[Sources]:
    settings = WorkerSettings(
        _env_file=None,
        fleet_env="test",
        auth_token_url=token_issuer.token_url,
        orders_url=stub.url,
        catalog_url=stub.url,
    )
    async with sources(settings) as opened:
        yield opened


async def test_orders_are_read_page_after_page_by_the_cursor_each_page_gave(
    stub: SourcesStub, both: Sources
) -> None:
    orders, _ = both
    customer, start = uuid.uuid4(), datetime(2026, 3, 1, tzinfo=UTC)
    placed = [
        stub.add_order(user_id=customer, created_at=start + timedelta(hours=i)) for i in range(5)
    ]
    stub.add_order(created_at=start)  # another customer's

    read = [
        order
        async for order in orders.orders(
            user_id=customer,
            created_since=start,
            created_until=start + timedelta(days=1),
            page_size=2,
        )
    ]

    assert [str(order.id) for order in read] == [order["id"] for order in placed]
    assert read[0] == OrderRecord.model_validate(placed[0])
    assert read[0].items[0].quantity == 2
    queries = [seen.query for seen in stub.served(ORDERS_PATH)]
    assert [query.get("after") for query in queries] == [None, "cursor-2", "cursor-4"]
    assert queries[0] == {
        "order_by": "created",
        "limit": "2",
        "user_id": str(customer),
        "created_since": start.isoformat(),
        "created_until": (start + timedelta(days=1)).isoformat(),
    }


async def test_orders_by_id_and_every_reservation_come_in_order_id_order(
    stub: SourcesStub, both: Sources
) -> None:
    orders, reservations = both
    for _ in range(3):
        stub.add_order()
    held = [stub.add_reservation(), stub.add_reservation(released=True), stub.add_reservation()]

    by_id = [order.id async for order in orders.orders(order_by="id", page_size=2)]
    read = [reservation async for reservation in reservations.reservations(page_size=2)]

    assert by_id == sorted(uuid.UUID(order["id"]) for order in stub.orders)
    assert read == sorted(
        (ReservationRecord.model_validate(r) for r in held),
        key=lambda r: (str(r.order_id), str(r.product_id)),
    )
    assert {r.status for r in read} == {"reserved", "released"}
    assert [seen.query.get("after") for seen in stub.served(RESERVATIONS_PATH)] == [
        None,
        "cursor-2",
    ]


async def test_each_source_is_called_with_the_workers_own_token_for_it_fetched_once(
    stub: SourcesStub, both: Sources, token_issuer: TestTokenIssuer
) -> None:
    orders, reservations = both
    for _ in range(3):
        stub.add_order()
        stub.add_reservation()

    [_ async for _ in orders.orders(page_size=1)]
    [_ async for _ in reservations.reservations(page_size=1)]

    callers = {(seen.path, seen.caller, seen.audience) for seen in stub.seen}
    assert callers == {(ORDERS_PATH, "worker", "orders"), (RESERVATIONS_PATH, "worker", "catalog")}
    assert len({seen.token for seen in stub.served(ORDERS_PATH)}) == 1
    assert len(stub.served(ORDERS_PATH)) == 3
    assert token_issuer.token_requests == 2  # one token per callee, reused for every page


async def test_the_next_page_is_asked_for_only_once_the_page_in_hand_is_used_up(
    stub: SourcesStub, both: Sources
) -> None:
    orders, _ = both
    for _ in range(6):
        stub.add_order()
    walk = orders.orders(page_size=2)

    first, second = await anext(walk), await anext(walk)
    asked_for_two = len(stub.served(ORDERS_PATH))
    await anext(walk)

    assert first.id != second.id
    assert asked_for_two == 1
    assert len(stub.served(ORDERS_PATH)) == 2
    await walk.aclose()


async def test_a_busy_source_is_asked_again_and_the_walk_goes_on_where_it_was(
    stub: SourcesStub, both: Sources
) -> None:
    orders, _ = both
    for _ in range(4):
        stub.add_order()
    walk = orders.orders(page_size=2)
    first_page = [await anext(walk), await anext(walk)]
    stub.failures = [503, 502]

    rest = [order async for order in walk]

    ids = [str(order.id) for order in first_page + rest]
    assert sorted(ids) == sorted(order["id"] for order in stub.orders)
    assert [seen.query.get("after") for seen in stub.served(ORDERS_PATH)] == [
        None,
        "cursor-2",
        "cursor-2",
        "cursor-2",
    ]


async def test_an_answer_slower_than_its_bound_is_given_up_and_the_page_asked_again(
    stub: SourcesStub, token_issuer: TestTokenIssuer
) -> None:
    settings = WorkerSettings(
        _env_file=None,
        fleet_env="test",
        auth_token_url=token_issuer.token_url,
        orders_url=stub.url,
        catalog_url=stub.url,
        orders_timeout_seconds=0.3,
    )
    placed = stub.add_order()
    stub.delays = [3.0]

    async with sources(settings) as (orders, _):
        read = [order async for order in orders.orders()]

    assert [str(order.id) for order in read] == [placed["id"]]
    assert len(stub.served(ORDERS_PATH)) == 2


async def test_a_source_busy_at_every_try_fails_the_walk_as_unavailable(
    stub: SourcesStub, both: Sources
) -> None:
    _, reservations = both
    stub.add_reservation()
    stub.failures = [503] * 10

    with pytest.raises(SourceUnavailableError, match="status 503 after 4 tries"):
        [_ async for _ in reservations.reservations()]

    assert len(stub.served(RESERVATIONS_PATH)) == 4


async def test_a_refusal_fails_the_walk_at_once(stub: SourcesStub, both: Sources) -> None:
    orders, _ = both
    stub.add_order()
    stub.failures = [403]

    with pytest.raises(SourceRefusedError, match="status 403: Not now"):
        [_ async for _ in orders.orders()]

    assert len(stub.served(ORDERS_PATH)) == 1


async def test_an_unreachable_source_is_unavailable_after_its_retries() -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client = http_client(base_url=url, connect_timeout=1.0, read_timeout=1.0)
    try:
        orders = OrdersSource(client, retries=1, retry_base_seconds=0.01)
        with pytest.raises(SourceUnavailableError, match="after 2 tries"):
            [_ async for _ in orders.orders()]
    finally:
        await client.aclose()


async def test_a_time_without_a_zone_or_a_page_size_no_route_serves_is_refused_before_asking(
    stub: SourcesStub, both: Sources
) -> None:
    orders, reservations = both

    with pytest.raises(ValueError, match="time zone"):
        orders.orders(created_since=datetime(2026, 3, 1))  # no time zone
    with pytest.raises(ValueError, match="page_size"):
        orders.orders(page_size=1001)
    with pytest.raises(ValueError, match="page_size"):
        reservations.reservations(page_size=0)
    assert stub.seen == []
