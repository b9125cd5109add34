"""`GET /v1/bff/home`: featured products and the caller's recent orders in one call, each part
fetched in parallel and degraded to empty (never a 5xx) when its upstream fails."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from fleetctl.tokens import TestTokenIssuer

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def _degraded(part: str) -> float:
    return REGISTRY.get_sample_value("gateway_bff_degraded_total", {"part": part}) or 0.0


def _rejected(upstream: str) -> float:
    labels = {"upstream": upstream}
    return REGISTRY.get_sample_value("gateway_circuit_rejected_total", labels) or 0.0


@pytest.fixture
def home_gateway(
    gateway_factory: GatewayFactory, paged_upstreams: dict[str, Any]
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """A gateway whose catalog and orders answer pages of items."""

    def run(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        urls = {f"{name}_url": page.url for name, page in paged_upstreams.items()}
        return gateway_factory(**{**urls, **overrides})

    return run


@pytest.fixture
def token(token_issuer: TestTokenIssuer) -> str:
    return token_issuer.issue(subject="alice", roles=["customer"])


async def test_home_has_featured_products_and_the_callers_recent_orders(
    home_gateway: GatewayFactory, paged_upstreams: dict[str, Any], token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "home-request-1"}
    async with home_gateway() as gateway:
        response = await gateway.get("/v1/bff/home", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "featured": [{"id": f"products-{n}"} for n in range(8)],
        "recent_orders": [{"id": f"orders-{n}"} for n in range(5)],
        "degraded": [],
    }
    assert response.headers["ratelimit-limit"] == "100"
    catalog, orders = paged_upstreams["catalog"].received[0], paged_upstreams["orders"].received[0]
    assert catalog["query"] == {"limit": "8"}
    assert orders["query"] == {"limit": "5"}
    assert orders["headers"]["authorization"] == f"Bearer {token}"
    assert "authorization" not in catalog["headers"]
    assert orders["headers"]["x-request-id"] == "home-request-1"
    assert catalog["headers"]["x-request-id"] == "home-request-1"


async def test_parts_are_fetched_in_parallel(
    home_gateway: GatewayFactory, paged_upstreams: dict[str, Any], token: str
) -> None:
    paged_upstreams["catalog"].delay = paged_upstreams["orders"].delay = 0.4
    async with home_gateway() as gateway:
        started = time.monotonic()
        response = await gateway.get("/v1/bff/home", headers={"Authorization": f"Bearer {token}"})
        elapsed = time.monotonic() - started
    assert response.json()["degraded"] == []
    assert elapsed < 0.75


async def test_stopped_orders_service_degrades_recent_orders_only(
    home_gateway: GatewayFactory, closed_port_url: str, token: str
) -> None:
    before = _degraded("recent_orders")
    async with home_gateway(orders_url=closed_port_url) as gateway:
        response = await gateway.get("/v1/bff/home", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] == ["recent_orders"]
    assert body["recent_orders"] == []
    assert len(body["featured"]) == 8
    assert _degraded("recent_orders") == before + 1


async def test_slow_catalog_degrades_within_the_part_timeout(
    home_gateway: GatewayFactory, paged_upstreams: dict[str, Any], token: str
) -> None:
    paged_upstreams["catalog"].delay = 3
    async with home_gateway(bff_part_timeout_seconds=0.3) as gateway:
        started = time.monotonic()
        response = await gateway.get("/v1/bff/home", headers={"Authorization": f"Bearer {token}"})
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["degraded"] == ["featured"]
    assert response.json()["featured"] == []
    assert len(response.json()["recent_orders"]) == 5
    assert elapsed < 0.8


@pytest.mark.parametrize("status", [500, 404])
async def test_error_answer_degrades_the_part(
    home_gateway: GatewayFactory, paged_upstreams: dict[str, Any], token: str, status: int
) -> None:
    paged_upstreams["orders"].status = status
    async with home_gateway() as gateway:
        response = await gateway.get("/v1/bff/home", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["degraded"] == ["recent_orders"]


async def test_open_circuit_degrades_the_part_without_calling_it(
    home_gateway: GatewayFactory, closed_port_url: str, token: str
) -> None:
    before = _rejected("orders")
    async with home_gateway(
        orders_url=closed_port_url, circuit_failure_threshold=1, upstream_retries=0
    ) as gateway:
        first = await gateway.get("/v1/bff/home", headers={"Authorization": f"Bearer {token}"})
        second = await gateway.get("/v1/bff/home", headers={"Authorization": f"Bearer {token}"})
    assert first.json()["degraded"] == second.json()["degraded"] == ["recent_orders"]
    assert second.status_code == 200
    assert _rejected("orders") == before + 1


@pytest.mark.parametrize("authorization", [None, "Bearer not.a.jwt"])
async def test_home_needs_a_valid_token(
    home_gateway: GatewayFactory, paged_upstreams: dict[str, Any], authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with home_gateway() as gateway:
        response = await gateway.get("/v1/bff/home", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert not paged_upstreams["catalog"].received
    assert not paged_upstreams["orders"].received
