"""Fixtures of the orders tests: the real app on a migrated database and a private broker
namespace, a real JWKS, and a small real catalog over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from orders_catalog_stub import CatalogStub, RunningCatalog
from orders_test_support import OrdersDb

from chassis.db import create_engine
from fleetctl.stack import Stack
from fleetctl.testing import FleetDatabase, ServiceUnderTest
from fleetctl.tokens import TestTokenIssuer
from orders.main import build_app
from orders.settings import OrdersSettings

MakeSettings = Callable[..., OrdersSettings]
StartApp = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def orders_database_url(fleet_database: FleetDatabase) -> str:
    return fleet_database.migrate("orders")


@pytest.fixture(scope="session")
def catalog() -> Iterator[CatalogStub]:
    stub = CatalogStub()
    running = RunningCatalog(stub)
    try:
        yield stub
    finally:
        running.stop()


@pytest.fixture(scope="session")
async def db(orders_database_url: str) -> AsyncIterator[OrdersDb]:
    engine = create_engine(orders_database_url)
    try:
        yield OrdersDb(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def orders_service(
    orders_database_url: str,
    base_stack: Stack,
    broker_namespace: dict[str, Any],
    catalog: CatalogStub,
    token_issuer: TestTokenIssuer,
) -> ServiceUnderTest[OrdersSettings]:
    return ServiceUnderTest(
        OrdersSettings,
        build_app,
        {
            "database_url": orders_database_url,
            "auth_jwks_url": token_issuer.jwks_url,
            "auth_token_url": token_issuer.token_url,
            "catalog_url": catalog.url,
            "amqp_url": base_stack.amqp_url,
            **broker_namespace,
            "outbox_poll_seconds": 0.2,
        },
    )


@pytest.fixture
def make_settings(orders_service: ServiceUnderTest[OrdersSettings]) -> MakeSettings:
    return orders_service.settings


@pytest.fixture
def start_app(orders_service: ServiceUnderTest[OrdersSettings]) -> StartApp:
    """Start the orders service with some settings overridden (`start_app(catalog_url=...)`)."""
    return orders_service.start


@pytest.fixture
async def client(
    orders_service: ServiceUnderTest[OrdersSettings],
) -> AsyncIterator[httpx.AsyncClient]:
    async with orders_service.start() as http:
        yield http


@dataclass(frozen=True)
class Customer:
    id: str
    headers: dict[str, str]

    def with_key(self, key: str | None = None) -> dict[str, str]:
        """Headers of a place-order request; a fresh Idempotency-Key unless one is given."""
        return {**self.headers, "Idempotency-Key": key or str(uuid.uuid4())}


@pytest.fixture
def new_customer(token_issuer: TestTokenIssuer) -> Callable[[], Customer]:
    def make() -> Customer:
        user_id = str(uuid.uuid4())
        token = token_issuer.issue(subject=user_id, roles=["customer"])
        return Customer(user_id, {"Authorization": f"Bearer {token}"})

    return make


@pytest.fixture
def customer(new_customer: Callable[[], Customer]) -> Customer:
    return new_customer()


@pytest.fixture
def place(client: httpx.AsyncClient, customer: Customer, catalog: CatalogStub) -> Any:
    """Place an order of one new product (or the given items) for `customer`; its body."""

    async def make(items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        items = items or [{"product_id": catalog.add(), "quantity": 1}]
        response = await client.post(
            "/v1/orders", json={"items": items}, headers=customer.with_key()
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    return make
