"""Fixtures of the catalog tests: the real app on a migrated database, real Redis, real JWKS and
a real RabbitMQ (under an exchange and queue names of the test session's own)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog.cache import ProductCache
from catalog.handlers import CatalogHandlers
from catalog.main import build_app
from catalog.models import Product, outbox
from catalog.repository import ProductRepository
from catalog.settings import CatalogSettings
from chassis.db import UnitOfWork, create_engine, session_factory, settle_after_commit
from contracts.events import CloudEvent, EventPayload, OrderCancelledV1, OrderPlacedV1, new_event
from contracts.events.payloads import PricedLineItem
from fleetctl.stack import Stack
from fleetctl.testing import FleetDatabase, ServiceUnderTest
from fleetctl.tokens import TestTokenIssuer

MakeSettings = Callable[..., CatalogSettings]
RunApp = Callable[[CatalogSettings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def catalog_database_url(fleet_database: FleetDatabase) -> str:
    return fleet_database.migrate("catalog")


@pytest.fixture
def catalog_service(
    catalog_database_url: str,
    base_stack: Stack,
    redis_prefix: str,
    token_issuer: TestTokenIssuer,
    broker_namespace: dict[str, Any],
) -> ServiceUnderTest[CatalogSettings]:
    return ServiceUnderTest(
        CatalogSettings,
        build_app,
        {
            "database_url": catalog_database_url,
            "redis_url": base_stack.redis_url,
            "redis_key_prefix": redis_prefix,
            "auth_jwks_url": token_issuer.jwks_url,
            "amqp_url": base_stack.amqp_url,
            # The Redis layer's tests look behind the service's back; the in-process layer in
            # front of it has tests of its own (test_cache_in_process.py).
            "cache_local_ttl_seconds": 0,
            **broker_namespace,
        },
    )


@pytest.fixture
def make_settings(catalog_service: ServiceUnderTest[CatalogSettings]) -> MakeSettings:
    return catalog_service.settings


@pytest.fixture
def run_app(catalog_service: ServiceUnderTest[CatalogSettings]) -> RunApp:
    """Start the catalog with the given settings, for tests that need a non-default one."""
    return catalog_service.run


@pytest.fixture
async def client(
    catalog_service: ServiceUnderTest[CatalogSettings],
) -> AsyncIterator[httpx.AsyncClient]:
    async with catalog_service.start() as http:
        yield http


@pytest.fixture
async def redis(base_stack: Stack, redis_prefix: str) -> AsyncIterator[Redis]:
    """The test's own view of Redis; removes the test's keys afterwards."""
    client = Redis.from_url(base_stack.redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def admin_headers(token_issuer: TestTokenIssuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_issuer.issue(roles=['admin'])}"}


@pytest.fixture
def user_headers(token_issuer: TestTokenIssuer) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_issuer.issue(roles=['customer'])}"}


def _product_body(**overrides: Any) -> dict[str, Any]:
    return {
        "sku": f"T-{uuid.uuid4().hex[:12].upper()}",
        "name": "Test kettle",
        "description": "Boils water.",
        "price_cents": 2599,
        **overrides,
    }


@pytest.fixture
def product_body() -> Callable[..., dict[str, Any]]:
    """A valid create body with a SKU no other test uses."""
    return _product_body


@pytest.fixture
def create_product(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Callable[..., Any]:
    async def create(**overrides: Any) -> dict[str, Any]:
        response = await client.post(
            "/v1/products", json=_product_body(**overrides), headers=admin_headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return create


@pytest.fixture
def cache_count() -> Callable[[str], float]:
    """The current value of `catalog_cache_requests_total{result=...}`."""

    def count(result: str) -> float:
        value = REGISTRY.get_sample_value("catalog_cache_requests_total", {"result": result})
        return value or 0.0

    return count


# --- The order saga: direct handler calls, the outbox, and the real broker ----------------------


@pytest.fixture
async def sessions(catalog_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the catalog's database, enough of them for a race of twenty orders."""
    engine = create_engine(catalog_database_url, pool_size=25, max_overflow=0)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def stock_events(redis: Redis, redis_prefix: str) -> AsyncIterator[CatalogHandlers]:
    cache = ProductCache(redis, prefix=redis_prefix, ttl_seconds=60, cooldown_seconds=5)
    try:
        yield CatalogHandlers(cache)
    finally:
        await settle_after_commit()


@dataclass(frozen=True)
class StagedEvent:
    type: str
    data: dict[str, Any]
    body: dict[str, Any]


@dataclass(frozen=True)
class Saga:
    """The catalog's side of the order saga against the real database, for direct calls."""

    sessions: async_sessionmaker[AsyncSession]
    events: CatalogHandlers

    async def handle(self, payload: OrderPlacedV1 | OrderCancelledV1) -> CloudEvent:
        """Run the catalog's handler of the event in a unit of work of its own, and commit."""
        event = new_event(payload, source="/fleet/orders", subject=str(payload.order_id))
        async with UnitOfWork(self.sessions) as uow:
            await self.handler(event.type)(uow, event, payload)
            await uow.commit()
        await settle_after_commit()
        return event

    def handler(
        self, event_type: str
    ) -> Callable[[UnitOfWork, CloudEvent, EventPayload], Awaitable[None]]:
        """The catalog's handler of `event_type`, as its consumer calls it."""
        handler = self.events.registry.get(event_type)
        assert handler is not None, event_type
        return handler

    async def settle(self) -> None:
        """Wait for what the handlers do after their commits (cache invalidations)."""
        await settle_after_commit()

    async def product(self, stock: int = 5) -> uuid.UUID:
        """Insert a product with the given stock straight into Postgres; its id."""
        async with UnitOfWork(self.sessions) as uow:
            product = await uow.repository(ProductRepository).add(
                sku=f"S-{uuid.uuid4().hex[:12].upper()}",
                name="Saga kettle",
                description="",
                price_cents=1000,
                currency="EUR",
                stock=stock,
            )
            assert product is not None
            await uow.commit()
            return product.id

    async def stock(self, product_id: uuid.UUID) -> int:
        async with self.sessions() as session:
            stock = await session.scalar(select(Product.stock).where(Product.id == product_id))
            assert stock is not None
            return stock

    async def staged(self, subject: uuid.UUID | str) -> list[StagedEvent]:
        """The events in the outbox about one subject (an order or product id), oldest first."""
        table = outbox.table
        query = select(table.c.event_type, table.c.body).where(table.c.subject == str(subject))
        async with self.sessions() as session:
            rows = (await session.execute(query.order_by(table.c.id))).all()
        return [StagedEvent(row.event_type, row.body["data"], row.body) for row in rows]


@pytest.fixture
def saga(sessions: async_sessionmaker[AsyncSession], stock_events: CatalogHandlers) -> Saga:
    return Saga(sessions, stock_events)


def order_placed(*lines: tuple[uuid.UUID, int]) -> OrderPlacedV1:
    """An `order.placed` payload for (product id, quantity) lines."""
    items = [
        PricedLineItem(product_id=product_id, quantity=quantity, unit_price_cents=1000)
        for product_id, quantity in lines
    ]
    return OrderPlacedV1(
        order_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        items=items,
        total_cents=sum(1000 * quantity for _, quantity in lines),
        currency="EUR",
    )


def order_cancelled(order: OrderPlacedV1) -> OrderCancelledV1:
    return OrderCancelledV1(order_id=order.order_id, user_id=order.user_id, reason="changed mind")


@pytest.fixture
def orders() -> Any:
    """Builders of order events: `orders.placed(*lines)`, `orders.cancelled(placed)`."""
    return SimpleNamespace(placed=order_placed, cancelled=order_cancelled)


@pytest.fixture
def counter() -> Callable[..., float]:
    """The current value of a Prometheus sample (0 when it was never incremented)."""

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return value
