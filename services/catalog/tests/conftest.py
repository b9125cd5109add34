"""Fixtures of the catalog tests: the real app on a migrated database, real Redis, real JWKS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from catalog.main import build_app
from catalog.settings import CatalogSettings
from fleetctl.stack import Stack
from fleetctl.testing import FleetDatabase
from fleetctl.tokens import TestTokenIssuer

MakeSettings = Callable[..., CatalogSettings]
RunApp = Callable[[CatalogSettings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def catalog_database_url(fleet_database: FleetDatabase) -> str:
    return fleet_database.migrate("catalog")


@pytest.fixture
def make_settings(
    catalog_database_url: str, base_stack: Stack, redis_prefix: str, token_issuer: TestTokenIssuer
) -> MakeSettings:
    def make(**overrides: Any) -> CatalogSettings:
        values: dict[str, Any] = {
            "fleet_env": "test",
            "database_url": catalog_database_url,
            "redis_url": base_stack.redis_url,
            "redis_key_prefix": redis_prefix,
            "auth_jwks_url": token_issuer.jwks_url,
            **overrides,
        }
        return CatalogSettings(**values)

    return make


@asynccontextmanager
async def _running(settings: CatalogSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield http


@pytest.fixture
def run_app() -> RunApp:
    """Start the catalog with the given settings, for tests that need a non-default one."""
    return _running


@pytest.fixture
async def client(make_settings: MakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with _running(make_settings()) as http:
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


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["request_id"]
    if code is not None:
        assert body["type"].endswith(f"/{code}")


@pytest.fixture
def problem() -> Callable[..., None]:
    return assert_problem
