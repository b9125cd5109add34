"""An upstream that cannot answer gives a fast problem response: never a hang, never a 500."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from prometheus_client import REGISTRY

from fleetctl.testing import assert_problem

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
BrokenUpstream = Callable[[str], AbstractAsyncContextManager[str]]


def _outcomes(upstream: str, outcome: str) -> float:
    labels = {"upstream": upstream, "outcome": outcome}
    return REGISTRY.get_sample_value("gateway_upstream_requests_total", labels) or 0.0


async def test_closed_upstream_port_is_fast_503_with_retry_after(
    gateway_factory: GatewayFactory, closed_port_url: str
) -> None:
    before = _outcomes("catalog", "unavailable")
    async with gateway_factory(catalog_url=closed_port_url, upstream_retries=0) as gateway:
        started = time.monotonic()
        response = await gateway.get("/v1/products")
        elapsed = time.monotonic() - started
    assert_problem(response, 503, "upstream-unavailable")
    assert response.headers["retry-after"] == "1"
    assert elapsed < 1.5
    assert _outcomes("catalog", "unavailable") == before + 1


async def test_upstream_slower_than_read_timeout_is_504_within_bounded_time(
    gateway_factory: GatewayFactory,
) -> None:
    before = _outcomes("catalog", "timeout")
    async with gateway_factory(upstream_read_timeout_seconds=0.3) as gateway:
        started = time.monotonic()
        response = await gateway.get("/v1/products?sleep=3")
        elapsed = time.monotonic() - started
    assert_problem(response, 504, "upstream-timeout")
    assert elapsed < 2.5
    assert _outcomes("catalog", "timeout") == before + 1


async def test_exhausted_connection_pool_is_503_not_a_queue(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(
        upstream_max_connections=1,
        upstream_connect_timeout_seconds=0.2,
        upstream_read_timeout_seconds=5,
    ) as gateway:
        slow = asyncio.create_task(gateway.get("/v1/products?sleep=1.5"))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        queued = await gateway.get("/v1/products")
        elapsed = time.monotonic() - started
        assert (await slow).status_code == 200
    assert_problem(queued, 503, "upstream-unavailable")
    assert elapsed < 1.0


@pytest.mark.parametrize("kind", ["closes-without-answer", "answers-garbage"])
async def test_upstream_breaking_http_is_502(
    gateway_factory: GatewayFactory,
    broken_upstream: BrokenUpstream,
    bearer: Callable[..., dict[str, str]],
    kind: str,
) -> None:
    before = _outcomes("worker", "bad_gateway")
    async with broken_upstream(kind) as url, gateway_factory(worker_url=url) as gateway:
        response = await gateway.post("/v1/webhooks/subscriptions", headers=bearer())
    assert_problem(response, 502, "bad-gateway")
    assert _outcomes("worker", "bad_gateway") == before + 1


async def test_upstream_5xx_is_relayed_and_counted(gateway: httpx.AsyncClient) -> None:
    before = _outcomes("catalog", "upstream_error")
    response = await gateway.get("/v1/products?status=500")
    assert response.status_code == 500
    assert response.headers["x-upstream"] == "catalog"
    assert _outcomes("catalog", "upstream_error") == before + 1
