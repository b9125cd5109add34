"""Retries: only idempotent methods (or keyed requests to orders), only after transient
failures, all within one deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
Bearer = Callable[..., dict[str, str]]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _tagged(request_id: str) -> dict[str, str]:
    return {"X-Request-ID": request_id}


def _seen(echo: Any, request_id: str) -> int:
    return sum(1 for r in echo.received if r["headers"].get("x-request-id") == request_id)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
async def test_idempotent_request_answered_503_once_is_retried_and_succeeds(
    gateway: httpx.AsyncClient, upstreams: dict[str, Any], bearer: Bearer, method: str
) -> None:
    key = uuid.uuid4().hex
    before = _sample("gateway_upstream_retries_total", upstream="orders")
    response = await gateway.request(method, f"/v1/orders/x?fail=1&key={key}", headers=bearer())
    assert response.status_code == 200
    assert upstreams["orders"].attempts[key] == 2
    assert _sample("gateway_upstream_retries_total", upstream="orders") == before + 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_non_idempotent_request_is_never_retried(
    gateway: httpx.AsyncClient, upstreams: dict[str, Any], bearer: Bearer, method: str
) -> None:
    key = uuid.uuid4().hex
    response = await gateway.request(method, f"/v1/orders/x?fail=1&key={key}", headers=bearer())
    assert response.status_code == 503
    assert upstreams["orders"].attempts[key] == 1


async def test_a_post_with_an_idempotency_key_to_orders_is_retried_like_a_get(
    gateway: httpx.AsyncClient, upstreams: dict[str, Any], bearer: Bearer
) -> None:
    # Orders stores each key's answer, so sending the request again cannot place it twice.
    key = uuid.uuid4().hex
    response = await gateway.post(
        f"/v1/orders/x?fail=1&key={key}", headers={**bearer(), "Idempotency-Key": key}
    )
    assert response.status_code == 200
    assert upstreams["orders"].attempts[key] == 2


async def test_a_post_with_an_idempotency_key_is_not_retried_where_keys_mean_nothing(
    gateway_factory: GatewayFactory, closed_port_url: str, bearer: Bearer
) -> None:
    before = _sample("gateway_upstream_requests_total", upstream="worker", outcome="unavailable")
    async with gateway_factory(worker_url=closed_port_url, circuit_failure_threshold=10) as gateway:
        response = await gateway.post(
            "/v1/webhooks/subscriptions", headers={**bearer(), "Idempotency-Key": uuid.uuid4().hex}
        )
    assert response.status_code == 503
    after = _sample("gateway_upstream_requests_total", upstream="worker", outcome="unavailable")
    assert after == before + 1


async def test_retries_stop_at_the_configured_count_and_relay_the_last_answer(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any]
) -> None:
    request_id = uuid.uuid4().hex
    async with gateway_factory(upstream_retries=2, circuit_failure_threshold=10) as gateway:
        response = await gateway.get("/v1/products?status=503", headers=_tagged(request_id))
    assert response.status_code == 503
    assert response.headers["x-upstream"] == "catalog"
    assert _seen(upstreams["catalog"], request_id) == 3


@pytest.mark.parametrize(("method", "attempts"), [("GET", 3), ("POST", 1)])
async def test_refused_connection_is_retried_only_for_idempotent_methods(
    gateway_factory: GatewayFactory,
    closed_port_url: str,
    bearer: Bearer,
    method: str,
    attempts: int,
) -> None:
    before = _sample("gateway_upstream_requests_total", upstream="worker", outcome="unavailable")
    async with gateway_factory(worker_url=closed_port_url, circuit_failure_threshold=10) as gateway:
        response = await gateway.request(method, "/v1/webhooks/subscriptions", headers=bearer())
    assert response.status_code == 503
    assert response.json()["type"].endswith("/upstream-unavailable")
    after = _sample("gateway_upstream_requests_total", upstream="worker", outcome="unavailable")
    assert after == before + attempts


async def test_read_timeout_is_not_retried(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any]
) -> None:
    request_id = uuid.uuid4().hex
    async with gateway_factory(upstream_read_timeout_seconds=0.2) as gateway:
        response = await gateway.get("/v1/products?sleep=1", headers={"X-Request-ID": request_id})
    assert response.status_code == 504
    assert _seen(upstreams["catalog"], request_id) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_deadline_bounds_an_answer_that_trickles_in_under_the_read_timeout(
    gateway_factory: GatewayFactory, bearer: Bearer, method: str
) -> None:
    async with gateway_factory(
        upstream_deadline_seconds=0.5, upstream_read_timeout_seconds=10
    ) as gateway:
        started = time.monotonic()
        response = await gateway.request(method, "/v1/orders?sleep=3", headers=bearer())
        elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["type"].endswith("/upstream-timeout")
    assert elapsed < 1.2


async def test_deadline_bounds_retries_and_their_backoff(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any]
) -> None:
    request_id = uuid.uuid4().hex
    async with gateway_factory(
        upstream_retries=10,
        upstream_retry_backoff_seconds=0.2,
        upstream_deadline_seconds=1.0,
        circuit_failure_threshold=100,
    ) as gateway:
        started = time.monotonic()
        response = await gateway.get("/v1/products?status=503", headers=_tagged(request_id))
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 1.3
    assert 2 <= _seen(upstreams["catalog"], request_id) <= 4


async def test_no_retry_once_the_circuit_has_opened(
    gateway_factory: GatewayFactory, closed_port_url: str
) -> None:
    before = _sample("gateway_upstream_requests_total", upstream="catalog", outcome="unavailable")
    async with gateway_factory(catalog_url=closed_port_url, circuit_failure_threshold=1) as gateway:
        response = await gateway.get("/v1/products")
    assert response.status_code == 503
    assert response.json()["type"].endswith("/circuit-open")
    after = _sample("gateway_upstream_requests_total", upstream="catalog", outcome="unavailable")
    assert after == before + 1


async def test_an_upstream_shedding_load_is_relayed_at_once_never_retried_nor_held_against_it(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any]
) -> None:
    request_id = uuid.uuid4().hex
    throttling_off = {"upstream_throttle_ratio": 0}  # every request reaches the upstream here
    async with gateway_factory(
        upstream_retries=2, circuit_failure_threshold=2, **throttling_off
    ) as gateway:
        for _ in range(4):
            shed = await gateway.get(
                "/v1/products?status=503&retry_after=3", headers=_tagged(request_id)
            )
            assert shed.status_code == 503
            assert shed.headers["retry-after"] == "3"
            assert shed.headers["x-upstream"] == "catalog"  # the upstream's own answer
        # Four refusals in a row, threshold 2: the circuit is still closed.
        assert (await gateway.get("/v1/products")).status_code == 200
    assert _seen(upstreams["catalog"], request_id) == 4  # one attempt each, no retry


async def test_while_an_upstream_sheds_a_method_the_gateway_refuses_part_of_it_itself(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any], bearer: Bearer
) -> None:
    before = _sample("gateway_upstream_throttled_total", upstream="orders")
    async with gateway_factory(upstream_throttle_ratio=1.5) as gateway:
        answers = [
            await gateway.post("/v1/orders/x?status=503&retry_after=1", headers=bearer())
            for _ in range(40)
        ]
        reading = await gateway.get("/v1/orders/x", headers=bearer())
    assert {a.status_code for a in answers} == {503}
    local = [a for a in answers if "x-upstream" not in a.headers]
    assert local  # refused by the gateway, without calling orders
    assert all(a.headers["retry-after"] == "1" for a in local)
    assert all(a.json()["type"].endswith("/overloaded") for a in local)
    assert _sample("gateway_upstream_throttled_total", upstream="orders") == before + len(local)
    assert reading.status_code == 200  # the upstream's GETs are not held against it
